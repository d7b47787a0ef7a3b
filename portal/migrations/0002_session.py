"""portal.Session (sessions that carry the user id) replaces django_session; the live sessions
move over, so nobody is logged out by the deploy (docs/decisions/0008-sessions-carry-the-user-id.md).

Moving a session also drops it from the cache of the engine it leaves: otherwise, after a
rollback, the old engine would find in its cache sessions that were ended meanwhile."""

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.cached_db import KEY_PREFIX as CACHED_DB_PREFIX
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.core.cache import caches
from django.db import migrations, models
from django.utils import timezone

_BATCH = 1000
# portal.sessions.SessionStore.cache_key_prefix, frozen here as migrations freeze models.
PORTAL_PREFIX = "portal.sessions"


def _user_id(session_data: str) -> int | None:
    # Both engines sign with the salt "django.contrib.sessions.SessionStore" (the class's name),
    # so the stored data is copied as it is; it is decoded only to read the user id.
    try:
        return int(DBStore().decode(session_data)[SESSION_KEY])
    except (KeyError, TypeError, ValueError):
        return None


def _move(source, target, *, cache_prefix: str, with_user_id: bool) -> None:
    cache = caches[settings.SESSION_CACHE_ALIAS]
    now = timezone.now()
    keys, rows = [], []

    def flush() -> None:
        target.objects.bulk_create(rows)
        cache.delete_many([cache_prefix + key for key in keys])
        keys.clear()
        rows.clear()

    for key, data, expires in source.objects.values_list("session_key", "session_data", "expire_date").iterator(
        chunk_size=_BATCH
    ):
        keys.append(key)
        if expires > now:
            row = target(session_key=key, session_data=data, expire_date=expires)
            if with_user_id:
                row.user_id = _user_id(data)
            rows.append(row)
        if len(keys) >= _BATCH:
            flush()
    flush()
    source.objects.all().delete()


def forwards(apps, schema_editor) -> None:
    _move(
        apps.get_model("sessions", "Session"),
        apps.get_model("portal", "Session"),
        cache_prefix=CACHED_DB_PREFIX,
        with_user_id=True,
    )


def backwards(apps, schema_editor) -> None:
    _move(
        apps.get_model("portal", "Session"),
        apps.get_model("sessions", "Session"),
        cache_prefix=PORTAL_PREFIX,
        with_user_id=False,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0001_worker_heartbeat"),
        ("sessions", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Session",
            fields=[
                (
                    "session_key",
                    models.CharField(max_length=40, primary_key=True, serialize=False, verbose_name="session key"),
                ),
                ("session_data", models.TextField(verbose_name="session data")),
                ("expire_date", models.DateTimeField(db_index=True, verbose_name="expire date")),
                ("user_id", models.BigIntegerField(blank=True, db_index=True, null=True)),
            ],
            options={
                "verbose_name": "session",
                "verbose_name_plural": "sessions",
                "abstract": False,
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]
