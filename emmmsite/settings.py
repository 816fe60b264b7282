"""Settings for emmmbedding, read from environment variables (django-environ) with safe defaults.

Embedded defaults (no server needed): SQLite, a file cache, and kombu's filesystem
broker under ``var/``. Production: set DATABASE_URL, REDIS_URL (cache),
CELERY_BROKER_URL and DJANGO_SECRET_KEY. Every variable is in the README's one table.

Importing this module only reads the environment: folders under ``var/`` are created by
``ImagehostConfig.ready`` (``imagehost/apps.py``).
"""
from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from pathlib import Path

import environ

from . import environment
from .redis_cache import cache_settings
from .worker_sizing import worker_size_from_environment

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
VAR_DIR = Path(environment.text("EMMM_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = environment.boolean("DJANGO_DEBUG", False)
# Without DJANGO_SECRET_KEY: a development key derived from the checkout's path (stable across
# restarts). Its "django-insecure-" prefix makes `manage.py check --deploy` warn (W009), and
# `make run-prod` refuses to start without DJANGO_SECRET_KEY.
SECRET_KEY = environment.text("DJANGO_SECRET_KEY", "") or (
    "django-insecure-dev-" + hashlib.sha256(f"emmmbedding:{BASE_DIR}".encode()).hexdigest()
)

ALLOWED_HOSTS = environment.names("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = environment.names("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "imagehost",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "imagehost.api",
]

MIDDLEWARE = [
    "imagehost.middleware.HttpsOnlyMiddleware",
    "imagehost.middleware.LengthRequiredMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "imagehost.middleware.SharedAnswerMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "imagehost.middleware.NoReferrerCsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "imagehost.middleware.SignedInAnswerMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "imagehost.views.errors.ServiceErrorMiddleware",
    "imagehost.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "emmmsite.urls"
CSRF_FAILURE_VIEW = "imagehost.views.errors.csrf_failure"  # the site's page, not Django's stock one
WSGI_APPLICATION = "emmmsite.wsgi.application"

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

# Seconds a write waits for SQLite's lock; seconds a PostgreSQL connect may take (libpq: whole
# seconds, at least 2; its 0 would mean for ever, hence the minimum).
EMMM_SQLITE_TIMEOUT_S = environment.integer("EMMM_SQLITE_TIMEOUT_S", 30, minimum=1)
EMMM_DATABASE_TIMEOUT_S = environment.integer("EMMM_DATABASE_TIMEOUT_S", 5, minimum=1)
DATABASES = {
    "default": env.db_url_config(environment.text("DATABASE_URL", "") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
}
DATABASES["default"]["CONN_MAX_AGE"] = environment.integer("DATABASE_CONN_MAX_AGE", 0, minimum=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the workers write concurrently (issue 9.4). A deferred transaction
    # that reads and then writes fails at once with "database is locked" when another writer
    # holds the lock (a lock upgrade never waits); IMMEDIATE takes the write lock at BEGIN,
    # where `timeout` applies. WAL lets readers go on while one process writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        transaction_mode="IMMEDIATE",
        timeout=EMMM_SQLITE_TIMEOUT_S,
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable or silent server costs a request this long, then a 503 (errors.outage_error)
    # instead of a hang. libpq counts whole seconds, at least 2.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", EMMM_DATABASE_TIMEOUT_S
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = environment.text("REDIS_URL", "")
EMMM_CACHE_TIMEOUT = environment.integer("EMMM_CACHE_TIMEOUT", 7 * 24 * 3600, minimum=1)
# Seconds a cache connect or read may take before the request answers 503 (Retry-After).
EMMM_REDIS_TIMEOUT_S = environment.number("EMMM_REDIS_TIMEOUT_S", 2.0, above=0)
if REDIS_URL:
    CACHES = {"default": cache_settings(REDIS_URL, timeout_s=EMMM_REDIS_TIMEOUT_S, default_ttl_s=EMMM_CACHE_TIMEOUT)}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": environment.text("EMMM_CACHE_DIR", str(VAR_DIR / "cache")),
            "TIMEOUT": EMMM_CACHE_TIMEOUT,
            "OPTIONS": {"MAX_ENTRIES": environment.integer("EMMM_CACHE_MAX_ENTRIES", 5000, minimum=1)},
        },
        # Rate-limit counters in a folder of their own: a full file cache culls entries at
        # random, and clients can fill the default one (imagehost.ratelimits.counter_store).
        "ratelimits": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": environment.text("EMMM_RATELIMIT_DIR", str(VAR_DIR / "ratelimits")),
            "OPTIONS": {"MAX_ENTRIES": environment.integer("EMMM_RATELIMIT_MAX_ENTRIES", 20000, minimum=1)},
        },
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Every password check counts against the ``logins`` rate limit (the admin's login page too).
# ModelBackend stays listed after it: a session names the backend that signed it in, so
# sessions from before keep working (it only ever sees a password the first one refused).
AUTHENTICATION_BACKENDS = ["imagehost.ratelimits.LoginRateLimitedBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "library"
LOGOUT_REDIRECT_URL = "upload"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(environment.text("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# The site stores no media. Set anyway: with MEDIA_URL empty, Django's test live server treats
# every path as a media file first, and a long /i/<token> path fails there (file name too long).
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if environment.boolean("EMMM_MANIFEST_STATIC", False)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Serve static files from the app folders too, so `make run` works before collectstatic.
WHITENOISE_USE_FINDERS = True

EMAIL_BACKEND = environment.text("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
# An SMTP server as one URL (django-environ): smtp://user:password@host:25, smtp+tls://…:587
# (STARTTLS), smtp+ssl://…:465; it sets the backend, host, port, login and TLS settings.
vars().update(environment.mail_server("DJANGO_EMAIL_URL"))
# A mail server that accepts and never answers must not hold a request (and its thread) for ever.
EMAIL_TIMEOUT = environment.integer("DJANGO_EMAIL_TIMEOUT_S", 10, minimum=1)
# Reset mail goes after the answer (imagehost/services/mail.py), so its time tells nothing.
EMMM_MAIL_IN_BACKGROUND = environment.boolean("EMMM_MAIL_IN_BACKGROUND", True)
DEFAULT_FROM_EMAIL = environment.text("DJANGO_DEFAULT_FROM_EMAIL", "emmmbedding@localhost")

# Security headers. Every page may show tokens, so no page leaks its URL as a referrer.
SECURE_REFERRER_POLICY = "no-referrer"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Behind a TLS proxy (production) the HTTPS settings default on; each has its own variable.
# The scheme is gunicorn's ``wsgi.url_scheme``: https from X-Forwarded-Proto only when the peer
# is in FORWARDED_ALLOW_IPS (gunicorn.conf.py). Django's SECURE_PROXY_SSL_HEADER would take
# that header from any peer.
BEHIND_TLS_PROXY = environment.boolean("DJANGO_BEHIND_TLS_PROXY", False)
SESSION_COOKIE_SECURE = environment.boolean("DJANGO_SECURE_COOKIES", BEHIND_TLS_PROXY)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = environment.boolean("DJANGO_SSL_REDIRECT", BEHIND_TLS_PROXY)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # a probe asks over plain HTTP; a 301 would read as "up"
SECURE_HSTS_SECONDS = environment.integer("DJANGO_HSTS_SECONDS", 31_536_000 if BEHIND_TLS_PROXY else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = environment.boolean("DJANGO_HSTS_INCLUDE_SUBDOMAINS", BEHIND_TLS_PROXY)
SECURE_HSTS_PRELOAD = environment.boolean("DJANGO_HSTS_PRELOAD", BEHIND_TLS_PROXY)
# W003 looks for Django's CsrfViewMiddleware by name; ours is a subclass of it
# (imagehost.middleware.NoReferrerCsrfViewMiddleware), so CSRF protection is on.
SILENCED_SYSTEM_CHECKS = ["security.W003"]
# Content-Security-Policy (imagehost.middleware.ContentSecurityPolicyMiddleware): the site's
# pages load only their own scripts and styles (no inline code); images may be data:/blob:
# previews of the upload page.
EMMM_CSP = environment.text(
    "EMMM_CSP",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
)

# A form that takes no files refuses a file part as it arrives (400); the views that take
# files swap in a handler that keeps them in memory (never a temp file named after anything the
# client sent), bounded by EMMM_MAX_UPLOAD_BYTES: imagehost/uploadhandlers.py.
FILE_UPLOAD_HANDLERS = ["imagehost.uploadhandlers.NoFilesUploadHandler"]

# --- emmmbedding limits -------------------------------------------------------
EMMM_MAX_UPLOAD_BYTES = environment.integer("EMMM_MAX_UPLOAD_BYTES", 10 * 1024 * 1024, minimum=1)
EMMM_MAX_FILES_PER_UPLOAD = environment.integer("EMMM_MAX_FILES_PER_UPLOAD", 10, minimum=1)
# Uploads with more pixels are refused (413). Smaller ones are downscaled by the codec to
# EMMM_MAX_PIXELS (read by the codec itself, default 512*512) before encoding.
EMMM_MAX_UPLOAD_PIXELS = environment.integer("EMMM_MAX_UPLOAD_PIXELS", 40_000_000, minimum=1)
EMMM_MAX_TOKEN_CHARS = environment.integer("EMMM_MAX_TOKEN_CHARS", 100_000, minimum=1)
EMMM_MAX_RENDER_WIDTH = environment.integer("EMMM_MAX_RENDER_WIDTH", 4096, minimum=1)
EMMM_ALLOWED_FORMATS = environment.names("EMMM_ALLOWED_FORMATS", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "AVIF"])
EMMM_JOB_MAX_ATTEMPTS = environment.integer("EMMM_JOB_MAX_ATTEMPTS", 3, minimum=1)
EMMM_REQUEUE_AFTER_S = environment.integer("EMMM_REQUEUE_AFTER_S", 60, minimum=1)
# A running job's row is touched every EMMM_JOB_HEARTBEAT_S by its worker; with no touch for
# EMMM_RUNNING_STALE_S (a few missed beats) the sweeper takes its worker for dead.
EMMM_JOB_HEARTBEAT_S = environment.number("EMMM_JOB_HEARTBEAT_S", 5, above=0)
EMMM_RUNNING_STALE_S = environment.integer("EMMM_RUNNING_STALE_S", 20, minimum=1)
EMMM_JOB_EXPIRE_S = environment.integer("EMMM_JOB_EXPIRE_S", 3600, minimum=1)
# Each worker refreshes its heartbeat row this often; none fresher than EMMM_WORKER_STALE_S
# means no worker is running (upload results say so; /healthz answers 503).
EMMM_WORKER_HEARTBEAT_S = environment.number("EMMM_WORKER_HEARTBEAT_S", 10, above=0)
EMMM_WORKER_STALE_S = environment.integer("EMMM_WORKER_STALE_S", 30, minimum=1)
environment.below("EMMM_JOB_HEARTBEAT_S", EMMM_JOB_HEARTBEAT_S, "EMMM_RUNNING_STALE_S", EMMM_RUNNING_STALE_S)
environment.below("EMMM_WORKER_HEARTBEAT_S", EMMM_WORKER_HEARTBEAT_S, "EMMM_WORKER_STALE_S", EMMM_WORKER_STALE_S)
EMMM_SWEEP_INTERVAL_S = environment.integer("EMMM_SWEEP_INTERVAL_S", 10, minimum=1)
EMMM_HIT_FLUSH_INTERVAL_S = environment.integer("EMMM_HIT_FLUSH_INTERVAL_S", 10, minimum=1)
# The similar-pictures change log (EmbeddingChange) keeps this long; pruned this often.
EMMM_EMBEDDING_LOG_KEEP_S = environment.integer("EMMM_EMBEDDING_LOG_KEEP_S", 86400, minimum=1)
EMMM_EMBEDDING_LOG_PRUNE_INTERVAL_S = environment.integer("EMMM_EMBEDDING_LOG_PRUNE_INTERVAL_S", 3600, minimum=1)
EMMM_PAGE_SIZE = environment.integer("EMMM_PAGE_SIZE", 24, minimum=1)
EMMM_MAX_API_TOKENS = environment.integer("EMMM_MAX_API_TOKENS", 50, minimum=1)  # active ones per account
# Requests that hold a web thread for long (issues 8.3, 8.5), capped without waiting (the
# others answer at once): waiters and cache-miss decodes per gunicorn worker process (decodes
# leave 2 of its GUNICORN_THREADS, default 8 as in gunicorn.conf.py, free for other pages);
# heavy decodes (coded above EMMM_HEAVY_DECODE_PIXELS) also per machine, through lock files
# in EMMM_LOCK_DIR (imagehost/concurrency.py: machine_slot).
EMMM_MAX_WAITERS = environment.integer("EMMM_MAX_WAITERS", 1, minimum=0)  # 0: no upload waits
EMMM_DECODES_PER_WORKER = environment.integer("EMMM_DECODES_PER_WORKER", max(1, environment.integer("GUNICORN_THREADS", 8, minimum=1) - 2), minimum=1)
EMMM_MAX_DECODES = environment.integer("EMMM_MAX_DECODES", 1, minimum=1)
# A request for a token another thread of this process is decoding waits for that picture at
# most this long (services/rendering.py: decode_in_a_slot), then answers 503 busy.
EMMM_DECODE_FOLLOW_TIMEOUT_S = environment.number("EMMM_DECODE_FOLLOW_TIMEOUT_S", 30.0, above=0)
EMMM_HEAVY_DECODE_PIXELS = environment.integer("EMMM_HEAVY_DECODE_PIXELS", 512 * 512, minimum=1)
EMMM_LOCK_DIR = Path(environment.text("EMMM_LOCK_DIR", str(VAR_DIR / "locks")))
EMMM_CACHE_MAX_ENTRY_BYTES = environment.integer("EMMM_CACHE_MAX_ENTRY_BYTES", 2 * 1024 * 1024, minimum=0)  # 0: none
# Renderings also kept in each web process's memory (an LRU bounded in bytes, in front of the
# shared cache: imagehost/services/rendering_cache.py); 0 turns it off.
EMMM_RENDER_MEMORY_CACHE_MB = environment.integer("EMMM_RENDER_MEMORY_CACHE_MB", 32, minimum=0)

# --- rate limits: the scope table is imagehost/ratelimits.py ------------------------
EMMM_RATELIMIT_ENABLE = environment.boolean("EMMM_RATELIMIT_ENABLE", True)
EMMM_UPLOAD_RATE = environment.rate("EMMM_UPLOAD_RATE", "30/m")
EMMM_DECODE_RATE = environment.rate("EMMM_DECODE_RATE", "600/m")
EMMM_SHORTLINK_RATE = environment.rate("EMMM_SHORTLINK_RATE", "60/m")
EMMM_SIGNUP_RATE = environment.rate("EMMM_SIGNUP_RATE", "20/h")
EMMM_LOGIN_RATE = environment.rate("EMMM_LOGIN_RATE", "10/m")
EMMM_PASSWORD_RESET_RATE = environment.rate("EMMM_PASSWORD_RESET_RATE", "5/h")
# Mails to one address, whoever asks (resets past it send nothing; confirmations are a 429).
EMMM_MAILS_TO_ADDRESS_RATE = environment.rate("EMMM_MAILS_TO_ADDRESS_RATE", "3/h")
#: How long a link that confirms a new e-mail address works (services.accounts).
EMMM_EMAIL_CONFIRM_MAX_AGE_S = environment.integer("EMMM_EMAIL_CONFIRM_MAX_AGE_S", 3 * 24 * 3600, minimum=1)
EMMM_SLUG_RATE = environment.rate("EMMM_SLUG_RATE", "120/m")
EMMM_SEARCH_RATE = environment.rate("EMMM_SEARCH_RATE", "30/m")  # similar pictures / search by example
EMMM_API_ANON_SEARCH_RATE = environment.rate("EMMM_API_ANON_SEARCH_RATE", "10/m")
EMMM_API_ANON_UPLOAD_RATE = environment.rate("EMMM_API_ANON_UPLOAD_RATE", "10/m")
EMMM_API_ANON_DECODE_RATE = environment.rate("EMMM_API_ANON_DECODE_RATE", "120/m")
EMMM_API_ANON_LINK_RATE = environment.rate("EMMM_API_ANON_LINK_RATE", "20/m")

# --- the codec's own variables (it reads them itself, codec/environment.py): checked here too
# (without loading torch), so that a typo stops the site at start-up, not every encode.
environment.codec_variables()

# --- Celery -----------------------------------------------------------------------
EMMM_BROKER_DIR = Path(environment.text("EMMM_BROKER_DIR", str(VAR_DIR / "broker")))
_BROKER_DIR = EMMM_BROKER_DIR
CELERY_BROKER_URL = environment.text("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
# Seconds a broker connect, and each read or write on the connection, may take. A broker that
# accepts connections and never answers (a hung Redis, a black-holed route) then fails a publish
# (the upload is kept: queue_unavailable) instead of hanging the upload, the worker or /healthz.
# Above 1 s: the worker's BRPOP waits 1 s on the server (kombu's brpop_timeout).
EMMM_BROKER_TIMEOUT_S = environment.number("EMMM_BROKER_TIMEOUT_S", 3.0, above=1)
EMMM_BROKER_SOCKET_OPTIONS = {"socket_timeout": EMMM_BROKER_TIMEOUT_S, "socket_connect_timeout": EMMM_BROKER_TIMEOUT_S}
if CELERY_BROKER_URL.startswith("filesystem"):
    # The folders are created by ImagehostConfig.ready (not at import).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "out"),
        "data_folder_out": str(_BROKER_DIR / "out"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Unacknowledged messages (worker died mid-task) go back to the queue after this.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": environment.integer("EMMM_VISIBILITY_TIMEOUT_S", 900, minimum=1),
        **EMMM_BROKER_SOCKET_OPTIONS,
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One task at a time per process (acks late: a message is acknowledged after the encode).
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Prefork processes × torch threads sized to the machine (emmmsite/worker_sizing.py);
# EMMM_WORKER_CONCURRENCY / EMMM_TORCH_THREADS override.
EMMM_WORKER_SIZE = worker_size_from_environment()
CELERY_WORKER_CONCURRENCY = EMMM_WORKER_SIZE.processes
# Fair order (imagehost/services/dispatch.py): jobs one owner may have sent and unfinished
# at a time; default: the worker's processes + 1, so a lone user keeps every process busy
# and the next job already waits on the broker (no idle gap between two of one user's jobs).
EMMM_DISPATCH_PER_OWNER = environment.integer("EMMM_DISPATCH_PER_OWNER", EMMM_WORKER_SIZE.processes + 1, minimum=1)
CELERY_BROKER_CONNECTION_TIMEOUT = EMMM_BROKER_TIMEOUT_S
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Time limits of one encode task (imagehost/tasks.py: encode_job): claim, encode, complete. The
# slowest measured encode is 70-80 s (token v1 under a link budget, 2 threads, this 2-core
# machine; README, docs/benchmarks.md); a job may be encoded twice (a token over
# EMMM_MAX_TOKEN_CHARS) and is decoded once more to warm the cache. At the soft limit the encode
# is interrupted and the job goes back to the queue (an attempt: a poison image fails after
# EMMM_JOB_MAX_ATTEMPTS); at the hard one the pool kills the process (an encode stuck in native
# code) and the job goes back too. Prefork pool only (`make run`'s worker): solo/threads pools
# ignore time limits. Celery sends the limits in each task's message, from the process that
# queues it (the web process on upload, the worker when it dispatches): set them alike for both.
EMMM_ENCODE_SOFT_TIME_LIMIT_S = environment.integer("EMMM_ENCODE_SOFT_TIME_LIMIT_S", 300, minimum=1)
EMMM_ENCODE_TIME_LIMIT_S = environment.integer("EMMM_ENCODE_TIME_LIMIT_S", EMMM_ENCODE_SOFT_TIME_LIMIT_S + 60, minimum=2)
environment.below("EMMM_ENCODE_SOFT_TIME_LIMIT_S", EMMM_ENCODE_SOFT_TIME_LIMIT_S, "EMMM_ENCODE_TIME_LIMIT_S", EMMM_ENCODE_TIME_LIMIT_S)
# Periodic tasks expire after their interval: with no worker running, beat's messages are not
# all run when one starts again (a worker discards an expired message unrun).
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-jobs": {
        "task": "imagehost.tasks.requeue_stale_jobs",
        "schedule": timedelta(seconds=EMMM_SWEEP_INTERVAL_S),
        "options": {"expires": EMMM_SWEEP_INTERVAL_S},
    },
    "flush-link-hits": {
        "task": "imagehost.tasks.flush_link_hits",
        "schedule": timedelta(seconds=EMMM_HIT_FLUSH_INTERVAL_S),
        "options": {"expires": EMMM_HIT_FLUSH_INTERVAL_S},
    },
    "prune-embedding-changes": {
        "task": "imagehost.tasks.prune_embedding_changes",
        "schedule": timedelta(seconds=EMMM_EMBEDDING_LOG_PRUNE_INTERVAL_S),
        "options": {"expires": EMMM_EMBEDDING_LOG_PRUNE_INTERVAL_S},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # no whole token (the image) or secret link in a log line: emmmsite/gunicorn_logging.py
    "formatters": {"redacted": {"()": "emmmsite.gunicorn_logging.RedactingFormatter"}},
    "filters": {"client_error": {"()": "emmmsite.gunicorn_logging.ClientErrorFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "redacted"}},
    "root": {"handlers": ["console"], "level": environment.choice("DJANGO_LOG_LEVEL", "INFO", tuple(logging.getLevelNamesMapping()))},
    # Django's own loggers go to the same redacting handler (its defaults print unredacted
    # paths under DEBUG, and runserver's request lines always).
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.request": {"level": "ERROR"},
        "django.security.DisallowedHost": {"filters": ["client_error"]},  # a 400: one line, no traceback
        "django.security.FilesNotAccepted": {"filters": ["client_error"]},  # a file sent to a form that takes none
        "faiss.loader": {"level": "WARNING"},  # six lines per process about CPU builds it tried
    },
}

# --- REST API (imagehost.api) ------------------------------------------------------------
# Throttles: imagehost/ratelimits.py (keys on the real client address: REMOTE_ADDR, or
# behind EMMM_NUM_PROXIES trusted reverse proxies the address the outermost proxy saw).
# The proxies' addresses (gunicorn's variable, read by gunicorn.conf.py too): only a request
# from one of them has its X-Forwarded-For read (ratelimits.client_ip); "*": any peer.
FORWARDED_ALLOW_IPS = environment.names("FORWARDED_ALLOW_IPS", ["127.0.0.1"])
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "imagehost.api.authentication.ApiTokenAuthentication",
        "imagehost.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["imagehost.api.parsers.TextJSONParser"],  # uploads add multipart/raw
    "DEFAULT_PAGINATION_CLASS": "imagehost.api.pagination.Pagination",
    "DEFAULT_SCHEMA_CLASS": "imagehost.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "imagehost.api.exceptions.api_exception_handler",
    "URL_FORMAT_OVERRIDE": None,  # ?format= is an unknown query parameter (400), not a renderer switch
    # Behind the TLS proxy every request comes from its address: key on what it saw.
    "NUM_PROXIES": environment.integer("EMMM_NUM_PROXIES", 1 if BEHIND_TLS_PROXY else 0, minimum=0),
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "emmmbedding API",
    "DESCRIPTION": (
        "An image host that stores no images: an upload becomes a token, URL-safe text that is "
        "the image. Authenticate with an API token (`Authorization: Bearer emmm_...`, created on "
        "/api/tokens/) or the site session. Every error answers "
        '`{"error": {"status", "code", "message", "fields"?}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"VisibilityEnum": "imagehost.models.Visibility"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",  # the default hook, kept
        "imagehost.api.schema.document_shared_refusals",
    ],
}
