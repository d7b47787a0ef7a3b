"""Emails through Django's backends (issue 6 point 6): the console backend by default, SMTP from
environment variables in production, and an outbox email with text and HTML parts sent over
real SMTP to a small server on this machine."""

import email
import email.policy
import os
import socketserver
import threading
from collections.abc import Iterator

import pytest
from django.db import transaction

from portal.notifications import services
from portal.notifications.models import Channel, NotificationStatus
from portal.notifications.services import Recipient, notify
from portal.tests.factories import make_user
from portal.tests.test_settings import _OURS, _production_env, _python

_EMAIL_VARS = ("EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS")
_EMAIL_VARS += ("EMAIL_USE_SSL", "EMAIL_TIMEOUT_SECONDS", "DEFAULT_FROM_EMAIL")
_PRINT_EMAIL = (
    "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'portal.settings'; django.setup()\n"
    "from django.conf import settings as s\n"
    "print('|'.join(map(str, [s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, s.EMAIL_HOST_PASSWORD,"
    " s.EMAIL_USE_TLS, s.EMAIL_USE_SSL, s.EMAIL_TIMEOUT, s.DEFAULT_FROM_EMAIL])))"
)


def _without_email_vars(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in _EMAIL_VARS}


def test_email_default_is_the_console_backend() -> None:
    env = _without_email_vars({k: v for k, v in os.environ.items() if k not in _OURS}) | {"DEBUG": "1"}

    result = _python(_PRINT_EMAIL, env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "django.core.mail.backends.console.EmailBackend|localhost|25|||False|False|20|Mallrun <noreply@mallrun.example>"
    )


def test_email_smtp_settings_come_from_the_environment() -> None:
    env = _without_email_vars(_production_env()) | {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.mail.example",
        "EMAIL_PORT": "587",
        "EMAIL_HOST_USER": "mallrun",
        "EMAIL_HOST_PASSWORD": "s3cret",
        "EMAIL_USE_TLS": "1",
        "EMAIL_TIMEOUT_SECONDS": "7",
        "DEFAULT_FROM_EMAIL": "Mallrun <hello@mallrun.example>",
    }

    result = _python(_PRINT_EMAIL, env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "django.core.mail.backends.smtp.EmailBackend|smtp.mail.example|587|mallrun|s3cret|True|False|7|"
        "Mallrun <hello@mallrun.example>"
    )


def test_email_tls_and_ssl_together_fail_with_message() -> None:
    env = _without_email_vars(_production_env()) | {"EMAIL_USE_TLS": "1", "EMAIL_USE_SSL": "1"}

    result = _python(_PRINT_EMAIL, env)

    assert result.returncode == 1
    assert "ImproperlyConfigured: Set EMAIL_USE_TLS (STARTTLS) or EMAIL_USE_SSL (implicit TLS), not both." in (
        result.stderr
    )


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for Django's smtp backend: EHLO, MAIL, RCPT, DATA, QUIT."""

    def _reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        self._reply("220 test-smtp ready")
        while raw := self.rfile.readline():
            command = raw.decode().strip().upper()
            if command.startswith(("EHLO", "HELO")):
                self._reply("250 test-smtp")
            elif command.startswith(("MAIL", "RCPT", "RSET", "NOOP")):
                self._reply("250 OK")
            elif command == "DATA":
                self._reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while (line := self.rfile.readline()) not in {b".\r\n", b""}:
                    lines.append(line[1:] if line.startswith(b"..") else line)
                self.server.received.append(b"".join(lines))
                self._reply("250 queued")
            elif command == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("502 not implemented")


@pytest.fixture
def smtp_server() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    server.daemon_threads = True
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_outbox_email_goes_over_smtp_with_text_and_html_parts(settings, smtp_server) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = smtp_server.server_address
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    user = make_user(email="lee@example.com")
    context = {"contact_name": "Lee", "store_name": "Kicks & Co", "mall": "Baybrook Mall", "unit": "B-12"}
    with transaction.atomic():
        [row] = notify(
            recipients=[Recipient(user=user, email=user.email)],
            channels=[Channel.EMAIL],
            kind="application.received",
            context=context | {"reference": "A-7", "seller_id": "S1"},
            dedupe_key="application-7",
        )

    assert services.send_due() == 1

    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT
    [raw] = smtp_server.received
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert (message["To"], message["Subject"], message.get_content_type()) == (
        "lee@example.com",
        "We received your application for Kicks & Co",
        "multipart/alternative",
    )
    assert message["Idempotency-Key"] == f"mallrun-notification-{row.pk}"
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text.get_content().replace("\r\n", "\n").strip() == row.body
    assert "<strong>Kicks &amp; Co</strong> (Baybrook Mall, unit B-12)" in html.get_content()
