"""Tillbook settings: one module, driven by the environment.

Every variable is listed in ``.env.example``. Readers are typed and fail loudly: a value that
does not parse stops start-up with ``ImproperlyConfigured`` naming the variable, instead of
being silently replaced by a default.

With nothing set, head office runs on SQLite with Celery tasks executed eagerly (the embedded
default). ``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch to PostgreSQL and Redis.
``ERP_ENV=production`` turns on the deployment hardening that ``check --deploy`` looks for.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_env = environ.Env()
_env_file = BASE_DIR / ".env"
if _env_file.is_file():
    environ.Env.read_env(_env_file, overwrite=False)


def _read(kind: str, name: str, default: object = environ.Env.NOTSET) -> object:
    reader = getattr(_env, kind)
    try:
        return reader(name, default=default)
    except ImproperlyConfigured:
        raise
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            f"{name}={_env.str(name, default='')!r} is not a valid {kind}: {exc}"
        ) from exc


def env_str(name: str, default: object = environ.Env.NOTSET) -> str:
    return _read("str", name, default)  # type: ignore[return-value]


def env_int(name: str, default: object = environ.Env.NOTSET, *, minimum: int = 0) -> int:
    value = _read("int", name, default)
    if not isinstance(value, int) or value < minimum:
        raise ImproperlyConfigured(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = _env.str(name, default="").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false)")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = _env.str(name, default="")
    if raw.strip() == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


# --- mode ------------------------------------------------------------------------------------

ERP_ENV = env_choice("ERP_ENV", "development", ("development", "production", "test"))
# hq: head office. node: a store node (its till services and sync agent arrive with node mode).
ERP_ROLE = env_choice("ERP_ROLE", "hq", ("hq", "node"))
PRODUCTION = ERP_ENV == "production"

DEBUG = env_bool("DJANGO_DEBUG", default=not PRODUCTION and ERP_ENV != "test")

_DEV_SECRET = "django-insecure-tillbook-development-only-key-never-use-in-production-0123456789"
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "" if PRODUCTION else _DEV_SECRET)
if PRODUCTION and (len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure")):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set to a random string of at least 50 characters in production"
    )

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must name the host names in production")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

DATA_DIR = Path(env_str("ERP_DATA_DIR", str(BASE_DIR / "var")))

# --- applications ------------------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "erp",
    "inventory",
    "stores",
    "sync",
    "devices",
    "books",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "erp.middleware.ApiErrorBodyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "erp.urls"
WSGI_APPLICATION = "erp.wsgi.application"

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

# --- data ------------------------------------------------------------------------------------

_default_db = f"sqlite:///{DATA_DIR / 'tillbook.sqlite3'}"
try:
    DATABASES = {"default": _env.db_url("DATABASE_URL", default=_default_db)}
except (ValueError, KeyError, ImproperlyConfigured) as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
# django-environ passes an unknown scheme through as the engine (or none at all); the
# database invariants exist for these two only (inventory migration 0002).
if DATABASES["default"].get("ENGINE") not in (
    "django.db.backends.postgresql",
    "django.db.backends.sqlite3",
):
    _scheme = _env.str("DATABASE_URL", default="").partition(":")[0]  # not the password
    raise ImproperlyConfigured(
        "DATABASE_URL must be a PostgreSQL (postgres://) or SQLite (sqlite:///) URL, "
        f"not {_scheme!r}"
    )
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
            "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
            "transaction_mode": "IMMEDIATE",
        }
    )
DATABASES["default"].setdefault("TEST", {})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "tillbook"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery ----------------------------------------------------------------------------------

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
_EAGER_DEFAULT = not CELERY_BROKER_URL
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"  # tasks run eagerly; nothing is ever sent
CELERY_RESULT_BACKEND = (
    env_str("CELERY_RESULT_BACKEND", "" if _EAGER_DEFAULT else CELERY_BROKER_URL) or None
)
# The embedded default has no broker: tasks run in-process, at once, raising their errors.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=_EAGER_DEFAULT)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360, minimum=1)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Redis redelivers a task whose worker died (acks_late) once this many seconds have passed.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)
}

# --- auth ------------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if ERP_ENV == "test":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- i18n and time ---------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- static ----------------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))

# --- API -------------------------------------------------------------------------------------

API_PAGE_SIZE = env_int("API_PAGE_SIZE", 100, minimum=1)
API_MAX_PAGE_SIZE = env_int("API_MAX_PAGE_SIZE", 1000, minimum=1)
BULK_MAX_ROWS = env_int("BULK_MAX_ROWS", 10_000, minimum=1)
SYNC_MAX_EVENTS = env_int("SYNC_MAX_EVENTS", 1000, minimum=1)
SYNC_MAX_BYTES = env_int("SYNC_MAX_BYTES", 5 * 1024 * 1024, minimum=1024)
# Django refuses bodies over this before any view runs; a 10,000-row bulk upsert and a full
# sync batch both fit, and anything larger becomes a 413 with the standard error body.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int(
    "DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", max(SYNC_MAX_BYTES, 16 * 1024 * 1024), minimum=1024
)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20_000

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["erp.api.permissions.RolePermission"],
    "DEFAULT_PARSER_CLASSES": ["erp.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "erp.api.pagination.PageNumberPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "erp.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "60/minute"),
        "user": env_str("API_THROTTLE_USER", "6000/minute"),
        "node": env_str("API_THROTTLE_NODE", "600/minute"),
    },
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Tillbook API",
    "DESCRIPTION": (
        "Head-office API (master data, reports) and the store sync protocol v1. "
        'Every error body is {"error": {"code", "message", "details"}}.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs UI is served from this server, not a CDN: head office may be offline too.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ProductUnitEnum": "inventory.models.Unit",
        "StockLocationKindEnum": "inventory.models.StockLocation.Kind",
    },
}

# --- security --------------------------------------------------------------------------------

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    # nginx terminates TLS and says so in X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("ERP_LOG_LEVEL", "INFO").upper()},
    "loggers": {"django.request": {"level": "ERROR"}},
}
SIMPLE_HISTORY_ENFORCE_HISTORY_MODEL_PERMISSIONS = True
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

# --- sync ------------------------------------------------------------------------------------

SYNC_MAX_CLOCK_SKEW = env_int("SYNC_MAX_CLOCK_SKEW", 120, minimum=1)
SYNC_LOCK_TIMEOUT_SECONDS = env_int("SYNC_LOCK_TIMEOUT_SECONDS", 15, minimum=1)
SYNC_BATCH_RETENTION_DAYS = env_int("SYNC_BATCH_RETENTION_DAYS", 7, minimum=7)
# Store node (ERP_ROLE=node): how often the sync agent pulls master data, how many events one
# push carries, the HTTP timeout of each request to head office, and the caps on the waits
# between retries (after 5xx/429 answers; while head office cannot be reached at all).
SYNC_PULL_SECONDS = env_int("SYNC_PULL_SECONDS", 30, minimum=1)
SYNC_PUSH_BATCH = env_int("SYNC_PUSH_BATCH", 200, minimum=1)
SYNC_HTTP_TIMEOUT = env_int("SYNC_HTTP_TIMEOUT", 30, minimum=1)
SYNC_BACKOFF_MAX_SECONDS = env_int("SYNC_BACKOFF_MAX_SECONDS", 60, minimum=1)
# While head office is unreachable a node retries at least this often (full jitter: 1 s on
# average), so a store is caught up within about 2 s of the network coming back.
SYNC_OFFLINE_RETRY_MAX_SECONDS = env_int("SYNC_OFFLINE_RETRY_MAX_SECONDS", 2, minimum=1)

CELERY_BEAT_SCHEDULE = {
    "batches-purge": {"task": "sync.tasks.batches_purge", "schedule": 6 * 3600},
    "held-events-sweep": {
        "task": "sync.tasks.held_events_sweep",
        "schedule": env_int("SYNC_HELD_SWEEP_SECONDS", 300, minimum=10),
    },
    "books-store-days-post": {
        "task": "books.tasks.store_days_post",
        "schedule": env_int("BOOKS_POST_SECONDS", 3600, minimum=60),
    },
}

# --- books ---------------------------------------------------------------------------------------

# Seconds the close job waits between its steps: 0 in production; tests use it to stop a worker
# in the middle of a close.
BOOKS_CLOSE_STEP_PAUSE = env_int("BOOKS_CLOSE_STEP_PAUSE", 0)
# Seconds after ingestion of a finished day's events before its store is posted (one run per
# store in that time, so a backlog uploaded in many batches becomes one entry); 0: at once.
BOOKS_POST_DELAY_SECONDS = env_int("BOOKS_POST_DELAY_SECONDS", 60)

# --- store node: till and devices ------------------------------------------------------------
# In-store EAN-13 barcodes (prefixes 20–29: PP IIIII VVVVV C): which prefixes carry a weight
# in grams and which a price in the currency's minor units; the item is found by the barcode
# with its value zeroed (a product registered as 2101234000003) or by its item number as SKU.
TILL_WEIGHT_PREFIXES = env_list("TILL_WEIGHT_PREFIXES", ["21", "22", "23", "24"])
TILL_PRICE_PREFIXES = env_list("TILL_PRICE_PREFIXES", ["20", "25", "26", "27", "28", "29"])
# Receipt printer (devices.printers): file (one text file per receipt) or dummy (in memory).
DEVICES_PRINTER = env_choice("DEVICES_PRINTER", "file", ("file", "dummy"))
DEVICES_PRINTER_PATH = env_str("DEVICES_PRINTER_PATH", "")  # default: ERP_DATA_DIR/receipts
DEVICES_PRINT_INLINE = env_bool("DEVICES_PRINT_INLINE", default=False)  # tests: no thread
DEVICES_STATE_DIR = env_str("DEVICES_STATE_DIR", "")  # default: ERP_DATA_DIR/devices
# A scale for weighed items: none, or file (the weight in kg in DEVICES_STATE_DIR/scale-weight).
DEVICES_SCALE = env_choice("DEVICES_SCALE", "none", ("none", "file"))
DEVICES_TERMINAL_MODE = env_choice(
    "DEVICES_TERMINAL_MODE", "approve", ("approve", "decline", "offline")
)
