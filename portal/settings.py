"""The one settings module. Every value comes from the environment; the defaults give the
embedded development setup (SQLite, a filesystem Celery broker, console email)."""

import secrets
import sys
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from portal.env import envbool, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("MALLRUN_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = envbool("DEBUG", False)
# manage.py commands that only compare the models with the migration files: they sign and serve
# nothing, so without a key they run with a throwaway one (`makemigrations --check` on a bare
# checkout). Everything else refuses to start without a key when DEBUG is off.
_KEYLESS_COMMANDS = frozenset({"makemigrations", "showmigrations", "sqlmigrate"})
SECRET_KEY = envstr("SECRET_KEY", "")
if not SECRET_KEY:
    if Path(sys.argv[0]).name == "manage.py" and sys.argv[1:2] and sys.argv[1] in _KEYLESS_COMMANDS:
        SECRET_KEY = secrets.token_urlsafe(50)
    elif not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    else:
        SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production-0123456789"  # noqa: S105

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "portal.security.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "csp",
    "portal",
    "retailers",
    "orders",
    "drivers",
    "portal.notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.PrivatePagesNotStoredMiddleware",
    "portal.middleware.HtmxLoginRedirectMiddleware",
    "portal.middleware.IdleSessionTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Axes goes last so it sees the outcome of every login attempt.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "portal.context_processors.store_nav",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=envint("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web process, the worker and beat share one file.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Django's backend, with out-of-range integers from URLs and forms finding nothing instead
    # of raising OverflowError (portal/sqlite/base.py).
    DATABASES["default"]["ENGINE"] = "portal.sqlite"
    # Tests run in memory, as Django's default for SQLite (pytest-django's xdist suffix, which
    # it leaves out only for Django's own engine name, leaves ":memory:" alone too).
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Connections a full eligibility recompute uses at once on PostgreSQL (its own and helpers that
# compare, or on a first run build, other malls at the same time, retailers.eligibility_parallel);
# about the database server's free cores. 1: its own connection only.
ELIGIBILITY_RECOMPUTE_CONNECTIONS = envint("ELIGIBILITY_RECOMPUTE_CONNECTIONS", 2)
# Webhooks to localhost and private addresses over plain http: development and tests only
# (orders.api.webhook_addresses; in production that would let a URL reach internal hosts).
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = envbool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", DEBUG)
if ELIGIBILITY_RECOMPUTE_CONNECTIONS < 1:
    raise ImproperlyConfigured(
        f"ELIGIBILITY_RECOMPUTE_CONNECTIONS={ELIGIBILITY_RECOMPUTE_CONNECTIONS} must be 1 or more."
    )

# How long a first recompute on PostgreSQL waits for readers of the results table before it swaps
# the malls' partitions it built in (retailers.eligibility_partitions); past that it copies their
# rows in instead, which takes longer but makes no reader wait.
ELIGIBILITY_SWAP_LOCK_TIMEOUT_MS = 5000

REDIS_URL = envstr("REDIS_URL", "")
# Every Redis key (Celery's queues, the cache) starts with this prefix. Each pytest-xdist test
# worker gets its own, as pytest-django gives it its own test database, so a real Celery worker
# started by one test worker never takes a task queued by another (it would run it against the
# wrong database). Subprocesses inherit PYTEST_XDIST_WORKER and so share their parent's prefix.
_xdist_worker = envstr("PYTEST_XDIST_WORKER", "")
REDIS_KEY_PREFIX = envstr("REDIS_KEY_PREFIX", "") or (f"test-{_xdist_worker}:" if _xdist_worker else "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "portal.cache.PrefixedRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_KEY_PREFIX + envstr("CACHE_KEY_PREFIX", "mallrun"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
# Stored times are UTC; every page shows them in the mall's own time zone.
TIME_ZONE = "UTC"
# Dates and times Django writes out itself carry their zone ("Nov. 24, 2026, 3:43 a.m. PST").
FORMAT_MODULE_PATH = ["portal.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = Path(envstr("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# Security. Cookies are secure and HSTS is on whenever DEBUG is off; behind a TLS proxy set
# SECURE_PROXY_SSL_HEADER through SECURE_PROXY_SSL=1.
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if envbool("SECURE_PROXY_SSL", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Reverse proxies / load balancers in front of the web process that append the address they saw
# to X-Forwarded-For. 0: none, the client's address is REMOTE_ADDR. portal.security.client_ip
# reads it for log-in throttling, the /join/ and password-reset limits and the security log.
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured(f"TRUSTED_PROXY_COUNT={TRUSTED_PROXY_COUNT} must be 0 (no proxy) or more.")
SESSION_COOKIE_HTTPONLY = True
# Cached_db sessions whose rows carry the user id, so one person's sessions are one query away.
SESSION_ENGINE = "portal.sessions"
# Counter tablets are shared: a session with no human action for this long is ended.
SESSION_IDLE_TIMEOUT_SECONDS = envint("SESSION_IDLE_TIMEOUT_SECONDS", 30 * 60)
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 12 * 60 * 60)

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# Login throttling: five failures for one username from one address lock that pair out.
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = envint("AXES_COOLOFF_MINUTES", 15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Failed attempts count for a username whatever its case (portal.auth).
AXES_USERNAME_CALLABLE = "portal.auth.axes_username"
AXES_LOCKOUT_CALLABLE = "portal.security.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# The same client address as the rate limits and the log (TRUSTED_PROXY_COUNT), not ipware's.
AXES_CLIENT_IP_CALLABLE = "portal.security.axes_client_ip"

EMAIL_BACKEND = envstr("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)  # implicit TLS (port 465); EMAIL_USE_TLS is STARTTLS (587)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("Set EMAIL_USE_TLS (STARTTLS) or EMAIL_USE_SSL (implicit TLS), not both.")
# A stuck SMTP server must not hold the outbox sweeper: the send fails and is retried.
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT_SECONDS", 20)
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "Mallrun <noreply@mallrun.example>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Links in emails (invitations, applications) are absolute: where people reach this portal.
PORTAL_BASE_URL = envstr("PORTAL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Store applications on the public /join/ page per client address per hour.
JOIN_RATE_LIMIT_PER_HOUR = envint("JOIN_RATE_LIMIT_PER_HOUR", 5)
# Password reset (/accounts/password_reset/): requests per client address and per email address
# per hour, and how long the emailed link works (Django's token machinery; used once).
PASSWORD_RESET_RATE_LIMIT_PER_HOUR = envint("PASSWORD_RESET_RATE_LIMIT_PER_HOUR", 10)
PASSWORD_RESET_RATE_LIMIT_PER_EMAIL = envint("PASSWORD_RESET_RATE_LIMIT_PER_EMAIL", 3)
PASSWORD_RESET_TIMEOUT = envint("PASSWORD_RESET_TIMEOUT_HOURS", 2) * 3600

# Celery: Redis in production; with no REDIS_URL a filesystem broker in var/ that needs no
# service, so `make run` runs a real worker and beat on its own.
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600, "global_keyprefix": REDIS_KEY_PREFIX}
else:
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Every periodic job, in one place. Business timers (offer expiry, retries, SLA alerts) are rows
# with a due time that these sweepers claim; none lives in a countdown or ETA.
CELERY_BEAT_SCHEDULE: dict = {
    "heartbeat": {"task": "portal.record_heartbeat", "schedule": envint("HEARTBEAT_SECONDS", 30)},
    # Numbers committed feed events and sends due webhooks. No `expires` option: Celery workers
    # discarded every beat-sent sweep carrying one as revoked on arrival (seen in `make run`); the
    # sweep is idempotent, so a late duplicate costs one cheap query.
    "webhook-sweep": {"task": "orders.deliver_webhooks", "schedule": 2.0},
    "notifications-send-due": {"task": "notifications.send_due", "schedule": 2.0},
    "drivers-build-routes": {"task": "drivers.build_routes", "schedule": 2.0},
    "drivers-sweep-offers": {"task": "drivers.sweep_offers", "schedule": 2.0},
    # A driver whose document has just expired gets no offers from that instant (every check reads
    # valid_until); this takes them offline and tells them within a minute of it.
    "drivers-sweep-documents": {"task": "drivers.sweep_documents", "schedule": 60.0},
    # The eligibility outbox (EligibilityRequest rows the hooks write with each change).
    "eligibility-requests-sweep": {"task": "retailers.eligibility_requests_sweep", "schedule": 2.0},
    # Stores whose opening, cutoff or hourly capacity just moved; the nightly full run is the safety
    # net (10:15 UTC is 02:15-05:15 across the US malls).
    "eligibility-sweep": {"task": "retailers.eligibility_sweep", "schedule": 60.0},
    "eligibility-nightly": {"task": "retailers.eligibility_recompute_all", "schedule": crontab(hour=10, minute=15)},
    # Store onboarding: the demo driver for training orders, their delivery, automatic go-live.
    "training-orders-sweep": {"task": "retailers.training_orders_sweep", "schedule": 15.0},
}

# Notifications: one outbox for email and SMS (portal/notifications), sent by the beat sweeper.
SMS_BACKEND = envstr("SMS_BACKEND", "portal.notifications.sms.FileBackend")
NOTIFICATIONS_CLAIM_SECONDS = envint("NOTIFICATIONS_CLAIM_SECONDS", 120)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler (DEBUG only) would print each request warning and its
        # traceback a second time, beside the root handler's line.
        "django": {"handlers": [], "level": "INFO"},
        "mallrun.security": {"level": "INFO"},
        "axes": {"level": "WARNING"},
    },
}
