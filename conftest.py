import os
import sys

import pytest
from django.db import connection


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _require_services(request: pytest.FixtureRequest) -> None:
    """Tests marked postgres/redis need the real service. In CI a missing service is a failure,
    never a skip; on a laptop without it they are skipped with the reason."""
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        message = "needs PostgreSQL: set DATABASE_URL=postgres://…"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    if request.node.get_closest_marker("redis") and not os.environ.get("REDIS_URL"):
        message = "needs Redis: set REDIS_URL=redis://…"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(autouse=True)
def _test_speed_and_static_settings(settings) -> None:
    """Pages in tests use plain static storage, so no test needs a collectstatic manifest, even
    when the suite runs with DEBUG off (test_settings checks the manifest storage itself)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; hashing is not under test
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    harness = sys.modules.get("portal.tests.browser.conftest")
    if harness is not None:
        harness.close_browser()
