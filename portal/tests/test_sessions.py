"""portal.sessions: cached_db sessions whose rows carry the logged-in user's id (set at login,
gone at logout), clearsessions through the engine, and the migration that moves the sessions of
the old engine (django_session) over and back without logging anyone out."""

import datetime as dt

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.cached_db import KEY_PREFIX as CACHED_DB_PREFIX
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore
from django.contrib.sessions.models import Session as OldSession
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal.models import Session
from portal.sessions import SessionStore
from portal.tests.factories import PASSWORD, make_staff, make_store, make_user

LOGIN = reverse("login")
BOARD = reverse("store:board")
OLD_ENGINE = "django.contrib.sessions.backends.cached_db"
BEFORE = [("portal", "0001_worker_heartbeat")]
AFTER = [("portal", "0002_session")]


def _logged_in(username: str) -> Client:
    # Through the real log-in page (django-axes needs the request), like a person on a device.
    client = Client()
    response = client.post(LOGIN, {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


def _key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _device(session_key: str) -> Client:
    # A fresh client carrying the same cookie: its middleware is built with the engine of now, as a
    # web process started by the deploy (or the rollback) would be.
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key
    return client


def _cache():
    return caches[settings.SESSION_CACHE_ALIAS]


def _staff(username: str):
    return make_staff(store=make_store(), user=make_user(username)).user


@pytest.mark.django_db
def test_session_row_carries_the_logged_in_users_id() -> None:
    dana = _staff("dana")

    client = _logged_in("dana")

    assert client.get(BOARD).status_code == 200
    assert Session.objects.get(session_key=_key(client)).user_id == dana.pk


@pytest.mark.django_db
def test_anonymous_session_gets_the_user_id_when_the_person_logs_in() -> None:
    dana = _staff("dana")
    client = Client()
    session = client.session  # an anonymous session, saved, its cookie on the client
    session["note"] = "before login"
    session.save()
    anonymous_key = session.session_key
    assert Session.objects.get(session_key=anonymous_key).user_id is None

    response = client.post(LOGIN, {"username": "dana", "password": PASSWORD})

    assert response.status_code == 302
    # Logging in gives the session a new key (session fixation) and keeps its data.
    assert list(Session.objects.values_list("session_key", "user_id")) == [(_key(client), dana.pk)]
    assert _key(client) != anonymous_key
    assert client.session["note"] == "before login"


@pytest.mark.django_db
def test_logging_out_leaves_no_session_with_the_users_id() -> None:
    dana = _staff("dana")
    client = _logged_in("dana")
    assert Session.objects.filter(user_id=dana.pk).count() == 1

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert list(Session.objects.filter(user_id=dana.pk)) == []
    assert client.get(BOARD).status_code == 302


@pytest.mark.django_db
def test_session_saved_again_after_logout_has_no_user_id() -> None:
    _staff("dana")
    client = _logged_in("dana")
    client.post("/accounts/logout/")

    session = client.session
    session["note"] = "after logout"
    session.save()

    assert list(Session.objects.values_list("session_key", "user_id")) == [(session.session_key, None)]


@pytest.mark.django_db
def test_clearsessions_deletes_the_expired_rows_only() -> None:
    dana = _staff("dana")
    live = _logged_in("dana")
    stale = _logged_in("dana")
    Session.objects.filter(session_key=_key(stale)).update(expire_date=timezone.now() - dt.timedelta(seconds=1))

    call_command("clearsessions")

    assert list(Session.objects.values_list("session_key", "user_id")) == [(_key(live), dana.pk)]


# The migration: django_session (the old engine) → portal_session, and back.


def _migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_migration_moves_live_sessions_over_and_people_stay_logged_in(settings) -> None:
    dana = _staff("dana")
    _migrate(BEFORE)
    try:
        settings.SESSION_ENGINE = OLD_ENGINE
        client = _logged_in("dana")
        assert client.get(BOARD).status_code == 200
        dana_key = _key(client)
        anonymous = CachedDBStore()
        anonymous["note"] = "anonymous"
        anonymous.save()
        expired = CachedDBStore()
        expired["note"] = "expired"
        expired.save()
        OldSession.objects.filter(session_key=expired.session_key).update(
            expire_date=timezone.now() - dt.timedelta(seconds=1)
        )
        assert _cache().get(CACHED_DB_PREFIX + dana_key) is not None

        _migrate(AFTER)
    finally:
        _migrate(AFTER)
        settings.SESSION_ENGINE = "portal.sessions"

    assert sorted(Session.objects.values_list("session_key", "user_id"), key=lambda row: row[1] is None) == [
        (dana_key, dana.pk),
        (anonymous.session_key, None),
    ]
    assert OldSession.objects.count() == 0
    assert _cache().get_many([CACHED_DB_PREFIX + dana_key, CACHED_DB_PREFIX + anonymous.session_key]) == {}
    device = _device(dana_key)
    assert device.get(BOARD).status_code == 200  # still logged in, now through portal.sessions
    assert _key(device) == dana_key
    assert SessionStore(session_key=anonymous.session_key)["note"] == "anonymous"


@pytest.mark.django_db(transaction=True)
def test_migration_backwards_moves_the_sessions_back_to_the_old_engine(settings) -> None:
    _staff("dana")
    client = _logged_in("dana")
    assert client.get(BOARD).status_code == 200
    dana_key = _key(client)
    assert _cache().get(SessionStore.cache_key_prefix + dana_key) is not None
    try:
        _migrate(BEFORE)
        settings.SESSION_ENGINE = OLD_ENGINE

        assert list(OldSession.objects.values_list("session_key", flat=True)) == [dana_key]
        assert _cache().get(SessionStore.cache_key_prefix + dana_key) is None
        assert _device(dana_key).get(BOARD).status_code == 200  # still logged in, through the old engine
    finally:
        _migrate(AFTER)
        settings.SESSION_ENGINE = "portal.sessions"


@pytest.mark.django_db
def test_session_saved_through_the_async_api_carries_the_user_id() -> None:
    dana = make_user("dana")
    session = SessionStore()
    session[SESSION_KEY] = str(dana.pk)

    async_to_sync(session.asave)()

    assert list(Session.objects.values_list("session_key", "user_id")) == [(session.session_key, dana.pk)]
