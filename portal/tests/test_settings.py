"""The one settings module under production variables, each case in its own Python process."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
# DJANGO_ALLOW_ASYNC_UNSAFE is set by the browser tests in this process; production never has it.
_OURS = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "SECURE_SSL_REDIRECT",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "PYTEST_XDIST_WORKER",
    "REDIS_KEY_PREFIX",
)


def _production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _OURS}
    env |= {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "mallrun.example,www.mallrun.example",
        "CSRF_TRUSTED_ORIGINS": "https://mallrun.example",
        "DATABASE_URL": "postgres://mallrun:secret@db.internal:5432/mallrun",
        "REDIS_URL": "redis://cache.internal:6379/0",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    }
    return env | overrides


def _development_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _OURS} | {"DEBUG": "1"}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_passes_under_production_variables() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_settings_without_secret_key_and_debug_off_fail_with_message() -> None:
    env = _production_env()
    del env["SECRET_KEY"]

    result = _manage("check", env=env)

    assert result.returncode == 1
    assert "ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_makemigrations_check_runs_without_secret_key_and_debug_off() -> None:
    env = _production_env()
    del env["SECRET_KEY"]

    result = _manage("makemigrations", "--check", "--dry-run", env=env)

    assert (result.returncode, result.stdout.strip()) == (0, "No changes detected"), result.stderr


def test_settings_with_wrong_boolean_fail_with_message() -> None:
    result = _manage("check", env=_production_env(DEBUG="maybe"))

    assert result.returncode == 1
    assert "ImproperlyConfigured: DEBUG='maybe' is not a boolean" in result.stderr


def test_settings_with_wrong_integer_fail_with_message() -> None:
    result = _manage("check", env=_production_env(SESSION_IDLE_TIMEOUT_SECONDS="half an hour"))

    assert result.returncode == 1
    assert "ImproperlyConfigured: SESSION_IDLE_TIMEOUT_SECONDS='half an hour' is not an integer" in result.stderr


def test_production_settings_are_secure_and_use_services() -> None:
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'portal.settings'; django.setup()\n"
        "from django.conf import settings as s\n"
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS,"
        " s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.DATABASES['default']['ENGINE'], s.DATABASES['default']['HOST'],"
        " s.CELERY_BROKER_URL, s.CACHES['default']['BACKEND'], s.STORAGES['staticfiles']['BACKEND'])"
    )

    result = _python(code, _production_env())

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False",
        "True",
        "True",
        "True",
        "31536000",
        "True",
        "django.db.backends.postgresql",
        "db.internal",
        "redis://cache.internal:6379/0",
        "portal.cache.PrefixedRedisCache",
        "whitenoise.storage.CompressedManifestStaticFilesStorage",
    ]


def test_default_settings_are_embedded_sqlite_and_filesystem_broker() -> None:
    env = _development_env()
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'portal.settings'; django.setup()\n"
        "from django.conf import settings as s\n"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.SESSION_COOKIE_SECURE)"
    )

    result = _python(code, env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["portal.sqlite", "filesystem://", "False"]


def test_collectstatic_builds_the_whitenoise_manifest(tmp_path: Path) -> None:
    env = _production_env(STATIC_ROOT=str(tmp_path / "static"))

    result = _manage("collectstatic", "--noinput", "-v0", env=env)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "staticfiles.json").is_file()
    assert list((tmp_path / "static" / "css").glob("mallrun.*.css.gz"))


_PREFIXES = (
    "from django.conf import settings; "
    "print(settings.CELERY_BROKER_TRANSPORT_OPTIONS['global_keyprefix'], settings.CACHES['default']['KEY_PREFIX'])"
)


def test_redis_keys_have_no_prefix_in_production() -> None:
    result = _python(_PREFIXES, env=_production_env(DJANGO_SETTINGS_MODULE="portal.settings"))

    assert result.returncode == 0, result.stderr
    assert result.stdout == " mallrun\n"


def test_redis_keys_of_each_xdist_test_worker_are_apart() -> None:
    outputs = [
        _python(_PREFIXES, env=_production_env(DJANGO_SETTINGS_MODULE="portal.settings", PYTEST_XDIST_WORKER=worker))
        for worker in ("gw0", "gw1")
    ]

    assert [result.stdout for result in outputs] == ["test-gw0: test-gw0:mallrun\n", "test-gw1: test-gw1:mallrun\n"]


def test_django_request_warning_is_printed_once_in_development() -> None:
    env = _development_env()
    code = (
        "import django, logging; django.setup()\n"
        "try:\n"
        "    raise PermissionError('only a store manager')\n"
        "except PermissionError:\n"
        "    log = logging.getLogger('django.request')\n"
        "    log.warning('Forbidden (Permission denied): /store/team/', exc_info=True)\n"
    )

    result = _python(code, env | {"DJANGO_SETTINGS_MODULE": "portal.settings"})

    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Forbidden (Permission denied): /store/team/") == 1
    assert result.stderr.count("PermissionError: only a store manager") == 1
    assert " WARNING django.request Forbidden (Permission denied): /store/team/" in result.stderr
