"""Settings for VISION, read from the environment (django-environ).

With nothing set, VISION runs self-contained: a SQLite file and a file-system Celery
broker under var/. Production deployments use `vision_project.settings_production`,
which refuses weak defaults.
"""
import os
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VISION_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost", "testserver"]),
)
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env("DEBUG")
# A development-only key; production settings replace it and refuse to start without one.
SECRET_KEY = env.str("SECRET_KEY", default="insecure-development-key-do-not-use-in-production")
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_prometheus",
    "axes",
    "core",
    "labeling",
    "training",
    "reports",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "vision_project.urls"
WSGI_APPLICATION = "vision_project.wsgi.application"
ASGI_APPLICATION = "vision_project.asgi.application"

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
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'vision.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker share one file: wait for locks instead of failing,
    # and let readers proceed while a writer holds the lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The same backend, its per-request health check without a round trip (see the module).
    DATABASES["default"]["ENGINE"] = "vision_project.postgresql"

# The queue's hot-path statements are prepared once per PostgreSQL session
# (vision_project.queries.execute_prepared). Turn off behind a pooler in transaction mode
# (PgBouncer's default), where consecutive statements may reach different sessions.
VISION_PREPARED_STATEMENTS = env.bool("VISION_PREPARED_STATEMENTS", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "vision_project.authentication.SignInAttemptBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Wrong passwords: after AXES_FAILURE_LIMIT for one username from one address, sign-in (page
# and token endpoint) is refused with 429 for AXES_COOLOFF_TIME; a success resets the count.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# API tokens are refused this many days after they were issued; the account page revokes one.
VISION_TOKEN_TTL_DAYS = env.int("VISION_TOKEN_TTL_DAYS", default=30)
# Content-Security-Policy (django-csp): scripts only from our own origin (the Vite build under
# /static/), no plugins, no framing. Styles allow inline attributes: templates and the editor
# set element styles (widths, colours); they cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
# The Vite build writes here; collectstatic and WhiteNoise serve it.
FRONTEND_BUILD_DIR = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [FRONTEND_BUILD_DIR] if FRONTEND_BUILD_DIR.is_dir() else []
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Workers read remote-storage files through a local cache of this size (core/storage.py).
VISION_STORAGE_CACHE_DIR = Path(env.str("VISION_STORAGE_CACHE_DIR", default=str(VAR_DIR / "storage-cache")))
VISION_STORAGE_CACHE_MAX_BYTES = env.int("VISION_STORAGE_CACHE_MAX_BYTES", default=20 * 2**30)

# S3-compatible object storage when a bucket is configured (django-storages).
if env.str("AWS_STORAGE_BUCKET_NAME", default=""):
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default=None),
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }

# Uploads: Django streams bodies above this size to temporary files instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env.int("DATA_UPLOAD_MAX_NUMBER_FILES", default=1000)
VISION_MAX_UPLOAD_BYTES = env.int("VISION_MAX_UPLOAD_BYTES", default=50 * 1024 * 1024)
VISION_MAX_IMAGE_PIXELS = env.int("VISION_MAX_IMAGE_PIXELS", default=100_000_000)
# Pixels decoded at once per process (all threads): one image at the limit, or many small ones.
VISION_DECODE_PIXELS_IN_FLIGHT = env.int("VISION_DECODE_PIXELS_IN_FLIGHT", default=VISION_MAX_IMAGE_PIXELS)
VISION_MAX_ARCHIVE_BYTES = env.int("VISION_MAX_ARCHIVE_BYTES", default=2 * 1024**3)
VISION_MAX_ARCHIVE_ENTRIES = env.int("VISION_MAX_ARCHIVE_ENTRIES", default=100_000)
VISION_DISPLAY_MAX_SIDE = env.int("VISION_DISPLAY_MAX_SIDE", default=1600)
# Label files (COCO JSON, CSV, ...) are parsed whole, so they get their own cap.
VISION_MAX_LABEL_FILE_BYTES = env.int("VISION_MAX_LABEL_FILE_BYTES", default=200 * 1024 * 1024)
# Uploads of more files than this, or with a zip, run as a background job (202).
VISION_IMPORT_SYNC_MAX_FILES = env.int("VISION_IMPORT_SYNC_MAX_FILES", default=20)
# Exports of more labeled images than this run as a background job (202).
VISION_EXPORT_SYNC_MAX_IMAGES = env.int("VISION_EXPORT_SYNC_MAX_IMAGES", default=200)
# Finished export zips are deleted this many days after they were written.
VISION_EXPORT_RETENTION_DAYS = env.int("VISION_EXPORT_RETENTION_DAYS", default=7)
# How long a signed media URL handed to a token client stays valid.
VISION_MEDIA_URL_MAX_AGE_SECONDS = env.int("VISION_MEDIA_URL_MAX_AGE_SECONDS", default=3600)

# Model weights: an admin-configured folder of trusted start weights (never downloaded).
VISION_WEIGHTS_DIR = Path(env.str("VISION_WEIGHTS_DIR", default=str(VAR_DIR / "weights")))
VISION_RUNS_DIR = Path(env.str("VISION_RUNS_DIR", default=str(VAR_DIR / "runs")))

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header turns a request without credentials into a 401
    # (DRF answers 403 when the first class has no header to offer, as sessions do).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "vision_project.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Bodies are JSON; only the views that take files add multipart (one content type each
    # in the schema, so generated clients get one body model).
    "DEFAULT_PARSER_CLASSES": ["vision_project.json_input.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "vision_project.media_access.MediaSigningJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "vision_project.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "VISION API",
    "DESCRIPTION": "Human-in-the-loop active-learning annotation for images.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs are for signed-in people and scripts, like the API itself.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Serve Swagger UI from our own static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `status` field with different choices; name each enum.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "core.models.JobStatus",
        "TaskStatusEnum": "labeling.models.TaskStatus",
        "ModelVersionStatusEnum": "core.models.VersionStatus",
    },
}

# Celery. The embedded default is kombu's file-system transport: no broker server needed.
REDIS_URL = env.str("REDIS_URL", default="")
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Longer than the longest training run, so a running task is not handed out twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
CELERY_RESULT_BACKEND = None

# Marks that web processes and workers must share (a queue-model fit waiting to start):
# Redis when there is one, else files under var/, which every local process sees.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "coordination": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "vision"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
              "LOCATION": str(VAR_DIR / "coordination")}
    ),
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "training.tasks.training_run_execute": {"queue": "gpu"},
    "training.tasks.prelabel_execute": {"queue": "gpu"},
    "training.tasks.embed_images": {"queue": "gpu"},
}
CELERY_TASK_SOFT_TIME_LIMIT = 30 * 60
CELERY_TASK_TIME_LIMIT = 35 * 60
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request that sends a task waits at most about a second for an unreachable broker; the job
# row stays queued and the re-dispatch sweep sends it later (the API answers 503 with its id).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.3, "interval_max": 0.5}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    # Sends again what a broker outage kept from the broker (core.jobs.queued_jobs_redispatch).
    "redispatch-queued-jobs": {
        "task": "labeling.tasks.queued_jobs_redispatch",
        "schedule": timedelta(minutes=1),
    },
    "fail-stale-jobs": {
        "task": "training.tasks.stale_jobs_fail",
        "schedule": timedelta(minutes=1),
    },
    # Starts training where enough new labels arrived (Project.retrain_every_n_labels).
    "auto-retrain-check": {
        "task": "training.tasks.auto_retrain_check",
        "schedule": timedelta(minutes=5),
    },
    # Removes staged uploads left behind by import jobs whose worker died.
    "import-staging-sweep": {
        "task": "labeling.tasks.import_staging_sweep",
        "schedule": timedelta(hours=1),
    },
    # Deletes export zips older than VISION_EXPORT_RETENTION_DAYS.
    "export-files-expire": {
        "task": "labeling.tasks.export_files_expire",
        "schedule": timedelta(hours=1),
    },
}
# Embedded mode runs tasks in a worker like production; set to True only in unit tests.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# A job whose heartbeat is older than this is taken for dead and marked failed.
VISION_JOB_STALE_AFTER = timedelta(seconds=env.int("VISION_JOB_STALE_AFTER_SECONDS", default=180))
# Running jobs refresh their heartbeat this often (well under the stale limit above).
# A queued job whose task message never reached the broker (it was down) is sent again by the
# re-dispatch sweep after this grace; one sent longer than RESEND_AFTER ago and still queued
# (lost in a broker restart) is sent again too. Duplicates are harmless: a job is claimed once.
VISION_JOB_DISPATCH_GRACE = timedelta(seconds=env.int("VISION_JOB_DISPATCH_GRACE_SECONDS", default=30))
VISION_JOB_RESEND_AFTER = timedelta(seconds=env.int("VISION_JOB_RESEND_AFTER_SECONDS", default=1800))
VISION_JOB_HEARTBEAT_SECONDS = env.float("VISION_JOB_HEARTBEAT_SECONDS", default=15.0)
# Training and prelabel time limits; both stay under the broker's visibility timeout.
VISION_TRAIN_SOFT_TIME_LIMIT = env.int("VISION_TRAIN_SOFT_TIME_LIMIT", default=5 * 3600)
VISION_PRELABEL_SOFT_TIME_LIMIT = env.int("VISION_PRELABEL_SOFT_TIME_LIMIT", default=2 * 3600)
# Prelabel: images per model batch, predictions per bulk write, detector score floor (low, so
# the uncertainty score sees the boxes the model half-believes).
VISION_PRELABEL_BATCH_SIZE = env.int("VISION_PRELABEL_BATCH_SIZE", default=32)
VISION_PRELABEL_WRITE_EVERY = env.int("VISION_PRELABEL_WRITE_EVERY", default=256)
VISION_PRELABEL_MIN_SCORE = env.float("VISION_PRELABEL_MIN_SCORE", default=0.05)
VISION_PRELABEL_MAX_BOXES = env.int("VISION_PRELABEL_MAX_BOXES", default=100)
# Embeddings (ml.embeddings): the model key new vectors are made with, images per
# batch, the device ("" = CUDA when available, else CPU), whether imports queue a run, and
# after how long a still-queued run gets its message sent again when a new request joins it.
VISION_EMBEDDING_MODEL = env.str("VISION_EMBEDDING_MODEL", default="efficientnet_lite0-imagenet-224")
VISION_EMBED_BATCH_SIZE = env.int("VISION_EMBED_BATCH_SIZE", default=64)
VISION_EMBED_DEVICE = env.str("VISION_EMBED_DEVICE", default="")
VISION_EMBED_ON_IMPORT = env.bool("VISION_EMBED_ON_IMPORT", default=True)
VISION_EMBED_SOFT_TIME_LIMIT = env.int("VISION_EMBED_SOFT_TIME_LIMIT", default=2 * 3600)
# Privacy blurring: faces are detected on a copy no larger than this (pixels on the longer side).
VISION_BLUR_DETECT_MAX_SIDE = env.int("VISION_BLUR_DETECT_MAX_SIDE", default=2048)

# One-shot taxonomisation (docs/oneshot.md). Propagation builds a graph over the whole pool:
# above this many images it is refused (the prototype method scales). Discover clusters a
# seeded sample of at most this many unlabeled images (HDBSCAN a smaller one). The similarity
# index is rebuilt once this share of its vectors was added after it was saved.
VISION_PROPAGATION_MAX_IMAGES = env.int("VISION_PROPAGATION_MAX_IMAGES", default=20_000)
VISION_DISCOVER_MAX_IMAGES = env.int("VISION_DISCOVER_MAX_IMAGES", default=20_000)
VISION_DISCOVER_HDBSCAN_MAX_IMAGES = env.int("VISION_DISCOVER_HDBSCAN_MAX_IMAGES", default=5_000)
VISION_SIMILARITY_REBUILD_SHARE = env.float("VISION_SIMILARITY_REBUILD_SHARE", default=0.2)
# A request finding no index builds one only up to this many vectors; a larger one is built
# by a worker (minutes at 100,000).
VISION_SIMILARITY_SYNC_BUILD_MAX = env.int("VISION_SIMILARITY_SYNC_BUILD_MAX", default=20_000)
# Vision-language assist, off unless VISION_ASSIST_URL is set: an OpenAI-compatible chat
# completions URL, the model name, and the NAME of the environment variable that holds the key
# (the key is read from the environment at call time, never stored). Bounds per request and
# per project and hour.
VISION_ASSIST_URL = env.str("VISION_ASSIST_URL", default="")
VISION_ASSIST_MODEL = env.str("VISION_ASSIST_MODEL", default="")
VISION_ASSIST_KEY_ENV = env.str("VISION_ASSIST_KEY_ENV", default="")
VISION_ASSIST_TIMEOUT_SECONDS = env.float("VISION_ASSIST_TIMEOUT_SECONDS", default=30.0)
VISION_ASSIST_MAX_IMAGES = env.int("VISION_ASSIST_MAX_IMAGES", default=8)
VISION_ASSIST_THUMBNAIL_SIDE = env.int("VISION_ASSIST_THUMBNAIL_SIDE", default=256)
VISION_ASSIST_MAX_REQUEST_BYTES = env.int("VISION_ASSIST_MAX_REQUEST_BYTES", default=2 * 1024 * 1024)
VISION_ASSIST_MAX_REPLY_BYTES = env.int("VISION_ASSIST_MAX_REPLY_BYTES", default=256 * 1024)
VISION_ASSIST_REQUESTS_PER_HOUR = env.int("VISION_ASSIST_REQUESTS_PER_HOUR", default=30)

# ultralytics reads these from the environment when first imported: never reach the
# network, never pip-install at run time, keep its settings file in a folder of ours.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_CONFIG_DIR", str(VAR_DIR / "ultralytics"))

# /metrics answers a bearer token when one is set, else loopback callers only (health.py).
VISION_METRICS_TOKEN = env.str("VISION_METRICS_TOKEN", default="")

# LOG_FORMAT=json: one JSON object per line (for a log shipper); plain text otherwise.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "pythonjsonlogger.json.JsonFormatter",
                 "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
                 "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}},
    },
    "handlers": {"console": {"class": "logging.StreamHandler",
                             "formatter": "json" if env.str("LOG_FORMAT", default="plain") == "json" else "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes logs every sign-in at INFO; failures and lockouts come at WARNING.
    "loggers": {"axes": {"level": "WARNING"}},
}
