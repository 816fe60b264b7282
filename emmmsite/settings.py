"""Settings for emmmbedding, read from environment variables (django-environ) with safe defaults.

Embedded defaults (no server needed): SQLite, a file cache, and kombu's filesystem
broker under ``var/``. Production: set DATABASE_URL, REDIS_URL (cache),
CELERY_BROKER_URL and DJANGO_SECRET_KEY. Every variable is in the README's one table.

Importing this module only reads the environment: folders under ``var/`` are created by
``ImagehostConfig.ready`` (``imagehost/apps.py``).
"""
from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import environ

from .redis_cache import cache_settings
from .worker_sizing import worker_size_from_environment

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
VAR_DIR = Path(env.str("EMMM_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Without DJANGO_SECRET_KEY: a development key derived from the checkout's path (stable across
# restarts). Its "django-insecure-" prefix makes `manage.py check --deploy` warn (W009), and
# `make run-prod` refuses to start without DJANGO_SECRET_KEY.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or (
    "django-insecure-dev-" + hashlib.sha256(f"emmmbedding:{BASE_DIR}".encode()).hexdigest()
)

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

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
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "imagehost.middleware.SharedAnswerMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "imagehost.middleware.NoReferrerCsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
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

DATABASES = {
    "default": env.db_url_config(env.str("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the workers write concurrently (issue 9.4). A deferred transaction
    # that reads and then writes fails at once with "database is locked" when another writer
    # holds the lock (a lock upgrade never waits); IMMEDIATE takes the write lock at BEGIN,
    # where `timeout` applies. WAL lets readers go on while one process writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        transaction_mode="IMMEDIATE",
        timeout=env.int("EMMM_SQLITE_TIMEOUT_S", default=30),
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable or silent server costs a request this long, then a 503 (errors.outage_error)
    # instead of a hang. libpq counts whole seconds, at least 2.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("EMMM_DATABASE_TIMEOUT_S", default=5)
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
EMMM_CACHE_TIMEOUT = env.int("EMMM_CACHE_TIMEOUT", default=7 * 24 * 3600)
# Seconds a cache connect or read may take before the request answers 503 (Retry-After).
EMMM_REDIS_TIMEOUT_S = env.float("EMMM_REDIS_TIMEOUT_S", default=2.0)
if REDIS_URL:
    CACHES = {"default": cache_settings(REDIS_URL, timeout_s=EMMM_REDIS_TIMEOUT_S, default_ttl_s=EMMM_CACHE_TIMEOUT)}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": env.str("EMMM_CACHE_DIR", default=str(VAR_DIR / "cache")),
            "TIMEOUT": EMMM_CACHE_TIMEOUT,
            "OPTIONS": {"MAX_ENTRIES": env.int("EMMM_CACHE_MAX_ENTRIES", default=5000)},
        },
        # Rate-limit counters in a folder of their own: a full file cache culls entries at
        # random, and clients can fill the default one (imagehost.ratelimits.counter_store).
        "ratelimits": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": env.str("EMMM_RATELIMIT_DIR", default=str(VAR_DIR / "ratelimits")),
            "OPTIONS": {"MAX_ENTRIES": env.int("EMMM_RATELIMIT_MAX_ENTRIES", default=20000)},
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
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# The site stores no media. Set anyway: with MEDIA_URL empty, Django's test live server treats
# every path as a media file first, and a long /i/<token> path fails there (file name too long).
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env.bool("EMMM_MANIFEST_STATIC", default=False)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Serve static files from the app folders too, so `make run` works before collectstatic.
WHITENOISE_USE_FINDERS = True

EMAIL_BACKEND = env.str("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="emmmbedding@localhost")

# Security headers. Every page may show tokens, so no page leaks its URL as a referrer.
SECURE_REFERRER_POLICY = "no-referrer"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Behind a TLS proxy (production) the HTTPS settings default on; each has its own variable.
BEHIND_TLS_PROXY = env.bool("DJANGO_BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=BEHIND_TLS_PROXY)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("DJANGO_SSL_REDIRECT", default=BEHIND_TLS_PROXY)
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31_536_000 if BEHIND_TLS_PROXY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=BEHIND_TLS_PROXY)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=BEHIND_TLS_PROXY)
# W003 looks for Django's CsrfViewMiddleware by name; ours is a subclass of it
# (imagehost.middleware.NoReferrerCsrfViewMiddleware), so CSRF protection is on.
SILENCED_SYSTEM_CHECKS = ["security.W003"]
# Content-Security-Policy (imagehost.middleware.ContentSecurityPolicyMiddleware): the site's
# pages load only their own scripts and styles (no inline code); images may be data:/blob:
# previews of the upload page.
EMMM_CSP = env.str(
    "EMMM_CSP",
    default="default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
)

# Uploads stay in memory (never a temp file named after anything the client sent);
# EMMM_MAX_UPLOAD_BYTES bounds them.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]

# --- emmmbedding limits -------------------------------------------------------
EMMM_MAX_UPLOAD_BYTES = env.int("EMMM_MAX_UPLOAD_BYTES", default=10 * 1024 * 1024)
EMMM_MAX_FILES_PER_UPLOAD = env.int("EMMM_MAX_FILES_PER_UPLOAD", default=10)
# The memory handler silently skips files in a larger request body, so it must hold the
# largest body the upload view accepts (the view answers 413 above it).
FILE_UPLOAD_MAX_MEMORY_SIZE = EMMM_MAX_UPLOAD_BYTES * EMMM_MAX_FILES_PER_UPLOAD + 256 * 1024
# Uploads with more pixels are refused (413). Smaller ones are downscaled by the codec to
# EMMM_MAX_PIXELS (read by the codec itself, default 512*512) before encoding.
EMMM_MAX_UPLOAD_PIXELS = env.int("EMMM_MAX_UPLOAD_PIXELS", default=40_000_000)
EMMM_MAX_TOKEN_CHARS = env.int("EMMM_MAX_TOKEN_CHARS", default=100_000)
EMMM_MAX_RENDER_WIDTH = env.int("EMMM_MAX_RENDER_WIDTH", default=4096)
EMMM_ALLOWED_FORMATS = env.list("EMMM_ALLOWED_FORMATS", default=["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "AVIF"])
EMMM_JOB_MAX_ATTEMPTS = env.int("EMMM_JOB_MAX_ATTEMPTS", default=3)
EMMM_REQUEUE_AFTER_S = env.int("EMMM_REQUEUE_AFTER_S", default=60)
# A running job's row is touched every EMMM_JOB_HEARTBEAT_S by its worker; with no touch for
# EMMM_RUNNING_STALE_S (a few missed beats) the sweeper takes its worker for dead.
EMMM_JOB_HEARTBEAT_S = env.float("EMMM_JOB_HEARTBEAT_S", default=5)
EMMM_RUNNING_STALE_S = env.int("EMMM_RUNNING_STALE_S", default=20)
EMMM_JOB_EXPIRE_S = env.int("EMMM_JOB_EXPIRE_S", default=3600)
# Each worker refreshes its heartbeat row this often; none fresher than EMMM_WORKER_STALE_S
# means no worker is running (upload results say so; /healthz answers 503).
EMMM_WORKER_HEARTBEAT_S = env.float("EMMM_WORKER_HEARTBEAT_S", default=10)
EMMM_WORKER_STALE_S = env.int("EMMM_WORKER_STALE_S", default=30)
EMMM_SWEEP_INTERVAL_S = env.int("EMMM_SWEEP_INTERVAL_S", default=10)
EMMM_HIT_FLUSH_INTERVAL_S = env.int("EMMM_HIT_FLUSH_INTERVAL_S", default=10)
# The similar-pictures change log (EmbeddingChange) keeps this long; pruned this often.
EMMM_EMBEDDING_LOG_KEEP_S = env.int("EMMM_EMBEDDING_LOG_KEEP_S", default=86400)
EMMM_EMBEDDING_LOG_PRUNE_INTERVAL_S = env.int("EMMM_EMBEDDING_LOG_PRUNE_INTERVAL_S", default=3600)
EMMM_PAGE_SIZE = env.int("EMMM_PAGE_SIZE", default=24)
# Requests that hold a web thread for long (issues 8.3, 8.5), capped without waiting (the
# others answer at once): waiters and cache-miss decodes per gunicorn worker process (decodes
# leave 2 of its GUNICORN_THREADS, default 8 as in gunicorn.conf.py, free for other pages);
# heavy decodes (coded above EMMM_HEAVY_DECODE_PIXELS) also per machine, through lock files
# in EMMM_LOCK_DIR (imagehost/concurrency.py: machine_slot).
EMMM_MAX_WAITERS = env.int("EMMM_MAX_WAITERS", default=1)
EMMM_DECODES_PER_WORKER = env.int("EMMM_DECODES_PER_WORKER", default=max(1, env.int("GUNICORN_THREADS", default=8) - 2))
EMMM_MAX_DECODES = env.int("EMMM_MAX_DECODES", default=1)
EMMM_HEAVY_DECODE_PIXELS = env.int("EMMM_HEAVY_DECODE_PIXELS", default=512 * 512)
EMMM_LOCK_DIR = Path(env.str("EMMM_LOCK_DIR", default=str(VAR_DIR / "locks")))
EMMM_CACHE_MAX_ENTRY_BYTES = env.int("EMMM_CACHE_MAX_ENTRY_BYTES", default=2 * 1024 * 1024)
# Renderings also kept in each web process's memory (an LRU bounded in bytes, in front of the
# shared cache: imagehost/services/rendering_cache.py); 0 turns it off.
EMMM_RENDER_MEMORY_CACHE_MB = env.int("EMMM_RENDER_MEMORY_CACHE_MB", default=32)

# --- rate limits: the scope table is imagehost/ratelimits.py ------------------------
EMMM_RATELIMIT_ENABLE = env.bool("EMMM_RATELIMIT_ENABLE", default=True)
EMMM_UPLOAD_RATE = env.str("EMMM_UPLOAD_RATE", default="30/m")
EMMM_DECODE_RATE = env.str("EMMM_DECODE_RATE", default="600/m")
EMMM_SHORTLINK_RATE = env.str("EMMM_SHORTLINK_RATE", default="60/m")
EMMM_SIGNUP_RATE = env.str("EMMM_SIGNUP_RATE", default="20/h")
EMMM_LOGIN_RATE = env.str("EMMM_LOGIN_RATE", default="10/m")
EMMM_PASSWORD_RESET_RATE = env.str("EMMM_PASSWORD_RESET_RATE", default="5/h")
#: How long a link that confirms a new e-mail address works (services.accounts).
EMMM_EMAIL_CONFIRM_MAX_AGE_S = env.int("EMMM_EMAIL_CONFIRM_MAX_AGE_S", default=3 * 24 * 3600)
EMMM_SLUG_RATE = env.str("EMMM_SLUG_RATE", default="120/m")
EMMM_SEARCH_RATE = env.str("EMMM_SEARCH_RATE", default="30/m")  # similar pictures / search by example
EMMM_API_ANON_SEARCH_RATE = env.str("EMMM_API_ANON_SEARCH_RATE", default="10/m")
EMMM_API_ANON_UPLOAD_RATE = env.str("EMMM_API_ANON_UPLOAD_RATE", default="10/m")
EMMM_API_ANON_DECODE_RATE = env.str("EMMM_API_ANON_DECODE_RATE", default="120/m")
EMMM_API_ANON_LINK_RATE = env.str("EMMM_API_ANON_LINK_RATE", default="20/m")

# --- Celery -----------------------------------------------------------------------
EMMM_BROKER_DIR = Path(env.str("EMMM_BROKER_DIR", default=str(VAR_DIR / "broker")))
_BROKER_DIR = EMMM_BROKER_DIR
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
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
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("EMMM_VISIBILITY_TIMEOUT_S", default=900)}
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
EMMM_DISPATCH_PER_OWNER = env.int("EMMM_DISPATCH_PER_OWNER", default=EMMM_WORKER_SIZE.processes + 1)
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-jobs": {
        "task": "imagehost.tasks.requeue_stale_jobs",
        "schedule": timedelta(seconds=EMMM_SWEEP_INTERVAL_S),
    },
    "flush-link-hits": {
        "task": "imagehost.tasks.flush_link_hits",
        "schedule": timedelta(seconds=EMMM_HIT_FLUSH_INTERVAL_S),
    },
    "prune-embedding-changes": {
        "task": "imagehost.tasks.prune_embedding_changes",
        "schedule": timedelta(seconds=EMMM_EMBEDDING_LOG_PRUNE_INTERVAL_S),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}

# --- REST API (imagehost.api) ------------------------------------------------------------
# Throttles: imagehost/ratelimits.py (keys on the real client address: REMOTE_ADDR, or
# behind EMMM_NUM_PROXIES trusted reverse proxies the address the outermost proxy saw).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "imagehost.api.authentication.ApiTokenAuthentication",
        "imagehost.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["imagehost.api.parsers.TextJSONParser"],  # uploads add multipart/raw
    "DEFAULT_PAGINATION_CLASS": "imagehost.api.pagination.Pagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "imagehost.api.exceptions.api_exception_handler",
    "URL_FORMAT_OVERRIDE": None,  # ?format= is an unknown query parameter (400), not a renderer switch
    "NUM_PROXIES": env.int("EMMM_NUM_PROXIES", default=0),
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
