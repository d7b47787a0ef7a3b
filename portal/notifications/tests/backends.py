"""SMS providers for tests: stand-ins for what leaves the machine, behind the real interface."""

import threading
import time

from django.core.mail.backends.base import BaseEmailBackend

from portal.notifications.sms import BaseSmsBackend, FileBackend, SmsMessage

HANG_TO = "+15550000005"


class DownBackend(BaseSmsBackend):
    """A provider that refuses everything."""

    def send(self, message: SmsMessage) -> None:
        raise ConnectionError("provider down")


class DownEmailBackend(BaseEmailBackend):
    """An email provider that refuses everything."""

    def send_messages(self, email_messages) -> int:
        raise ConnectionError("provider down")


class CountingBackend(BaseSmsBackend):
    """Counts every send (no de-duplication), a little slowly so two sweepers overlap."""

    sent: list[str] = []
    lock = threading.Lock()

    def send(self, message: SmsMessage) -> None:
        time.sleep(0.005)
        with self.lock:
            self.sent.append(message.idempotency_key)


class HangAfterAcceptBackend(FileBackend):
    """The file provider, but the first time it accepts the message to HANG_TO the worker hangs
    before it can mark the row sent: the window a SIGKILL must not turn into a loss or a repeat."""

    def send(self, message: SmsMessage) -> None:
        if self.append(message) and message.to == HANG_TO:
            time.sleep(3600)
