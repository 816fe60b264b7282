"""Settings for emmmbedding, read from environment variables with safe defaults.

Embedded defaults (no server needed): SQLite, a file cache, and kombu's filesystem
broker under ``var/``. Production: set DATABASE_URL, REDIS_URL (cache) and
CELERY_BROKER_URL. See the README's configuration table.
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("EMMM_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable ("1/true/yes/on" are true)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_list(name: str, default: str) -> list[str]:
    return [p.strip() for p in os.environ.get(name, default).split(",") if p.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    # Development only: a per-checkout key kept in var/ so sessions survive restarts.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _key_file = VAR_DIR / "secret_key"
    if not _key_file.exists():
        import secrets

        _key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

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
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "imagehost.middleware.NoReferrerCsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_ratelimit.middleware.RatelimitMiddleware",
    "imagehost.views.ServiceErrorMiddleware",
]

ROOT_URLCONF = "emmmsite.urls"
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
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write concurrently: wait instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "TIMEOUT": env_int("EMMM_CACHE_TIMEOUT", 7 * 24 * 3600),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": os.environ.get("EMMM_CACHE_DIR", str(VAR_DIR / "cache")),
            "TIMEOUT": env_int("EMMM_CACHE_TIMEOUT", 7 * 24 * 3600),
            "OPTIONS": {"MAX_ENTRIES": env_int("EMMM_CACHE_MAX_ENTRIES", 5000)},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "library"
LOGOUT_REDIRECT_URL = "upload"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("EMMM_MANIFEST_STATIC", False)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Serve static files from the app folders too, so `make run` works before collectstatic.
WHITENOISE_USE_FINDERS = True

EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "emmmbedding@localhost")

# Security headers. Every page may show tokens, so no page leaks its URL as a referrer.
SECURE_REFERRER_POLICY = "no-referrer"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Uploads stay in memory (never a temp file named after anything the client sent);
# EMMM_MAX_UPLOAD_BYTES bounds them.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]

# --- emmmbedding limits -------------------------------------------------------
EMMM_MAX_UPLOAD_BYTES = env_int("EMMM_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)
EMMM_MAX_FILES_PER_UPLOAD = env_int("EMMM_MAX_FILES_PER_UPLOAD", 10)
# The memory handler silently skips files in a larger request body, so it must hold the
# largest body the upload view accepts (the view answers 413 above it).
FILE_UPLOAD_MAX_MEMORY_SIZE = EMMM_MAX_UPLOAD_BYTES * EMMM_MAX_FILES_PER_UPLOAD + 256 * 1024
# Uploads with more pixels are refused (413). Smaller ones are downscaled by the codec to
# EMMM_MAX_PIXELS (read by the codec itself, default 512*512) before encoding.
EMMM_MAX_UPLOAD_PIXELS = env_int("EMMM_MAX_UPLOAD_PIXELS", 40_000_000)
EMMM_MAX_TOKEN_CHARS = env_int("EMMM_MAX_TOKEN_CHARS", 100_000)
EMMM_MAX_RENDER_WIDTH = env_int("EMMM_MAX_RENDER_WIDTH", 4096)
EMMM_ALLOWED_FORMATS = env_list("EMMM_ALLOWED_FORMATS", "PNG,JPEG,WEBP,GIF,BMP,TIFF,AVIF")
EMMM_UPLOAD_RATE = os.environ.get("EMMM_UPLOAD_RATE", "30/m")
EMMM_DECODE_RATE = os.environ.get("EMMM_DECODE_RATE", "600/m")
EMMM_SHORTLINK_RATE = os.environ.get("EMMM_SHORTLINK_RATE", "60/m")
EMMM_JOB_MAX_ATTEMPTS = env_int("EMMM_JOB_MAX_ATTEMPTS", 3)
EMMM_REQUEUE_AFTER_S = env_int("EMMM_REQUEUE_AFTER_S", 60)
EMMM_RUNNING_STALE_S = env_int("EMMM_RUNNING_STALE_S", 600)
EMMM_JOB_EXPIRE_S = env_int("EMMM_JOB_EXPIRE_S", 3600)
EMMM_SWEEP_INTERVAL_S = env_int("EMMM_SWEEP_INTERVAL_S", 30)
EMMM_RETRY_AFTER_S = env_int("EMMM_RETRY_AFTER_S", 30)
EMMM_PAGE_SIZE = env_int("EMMM_PAGE_SIZE", 24)
# Fault injection for tests only: seconds the worker sleeps inside an encode.
EMMM_TEST_ENCODE_DELAY_S = float(os.environ.get("EMMM_TEST_ENCODE_DELAY_S", "0") or 0)

# --- rate limits (django-ratelimit) ---------------------------------------------
RATELIMIT_ENABLE = env_bool("EMMM_RATELIMIT_ENABLE", True)
RATELIMIT_VIEW = "imagehost.views.ratelimited"
# The same client address as the API's throttles: REMOTE_ADDR, or behind EMMM_NUM_PROXIES
# trusted proxies the address the outermost one saw; never a client-supplied header alone.
RATELIMIT_IP_META_KEY = "imagehost.api.throttling.client_ip"
# The file cache is shared between processes on one machine; Redis in production.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001", "django_ratelimit.E003"]

# --- Celery -----------------------------------------------------------------------
_BROKER_DIR = Path(os.environ.get("EMMM_BROKER_DIR", VAR_DIR / "broker"))
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem"):
    for _sub in ("out", "processed", "control"):
        (_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "out"),
        "data_folder_out": str(_BROKER_DIR / "out"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Unacknowledged messages (worker died mid-task) go back to the queue after this.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("EMMM_VISIBILITY_TIMEOUT_S", 900)}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-jobs": {
        "task": "imagehost.tasks.requeue_stale_jobs",
        "schedule": timedelta(seconds=EMMM_SWEEP_INTERVAL_S),
    }
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}

# --- REST API (imagehost.api) ------------------------------------------------------------
# Throttles key anonymous clients on the real address: REMOTE_ADDR, or, behind
# EMMM_NUM_PROXIES trusted reverse proxies, the address the outermost proxy saw
# (read from the right of X-Forwarded-For).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "imagehost.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],  # uploads add multipart/raw
    "DEFAULT_PAGINATION_CLASS": "imagehost.api.pagination.Pagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "imagehost.api.exceptions.api_exception_handler",
    "NUM_PROXIES": env_int("EMMM_NUM_PROXIES", 0),
    "DEFAULT_THROTTLE_RATES": {
        "uploads": EMMM_UPLOAD_RATE,
        "uploads_anon": os.environ.get("EMMM_API_ANON_UPLOAD_RATE", "10/m"),
        "decodes": EMMM_DECODE_RATE,
        "decodes_anon": os.environ.get("EMMM_API_ANON_DECODE_RATE", "120/m"),
        "links": EMMM_SHORTLINK_RATE,
        "links_anon": os.environ.get("EMMM_API_ANON_LINK_RATE", "20/m"),
    },
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
}
