"""Settings shared by every environment. The environment is read here and only here."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)

# A development key exists only so that `make demo` works out of the box; production refuses it.
_DEVELOPMENT_SECRET_KEY = "insecure-development-key-only-for-debug"  # noqa: S105
SECRET_KEY = env("SECRET_KEY", default=_DEVELOPMENT_SECRET_KEY if DEBUG else None)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Fernet keys, comma-separated, newest first; older keys still decrypt (key rotation).
# The development default is a fixed, public key: fine for the demo, never for real secrets.
_DEVELOPMENT_ENCRYPTION_KEY = "ZGV2ZWxvcG1lbnQta2V5LW5vdC1mb3ItcHJvZHVjdGk="
FIELD_ENCRYPTION_KEY = env.list(
    "FIELD_ENCRYPTION_KEY", default=[_DEVELOPMENT_ENCRYPTION_KEY] if DEBUG else []
)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "axes",
    "accounts",
    "segments",
    "connections",
    "exports",
    "sources",
    "webhooks",
    "audit",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "api",
    "ops",
]

MIDDLEWARE = [
    # Before SecurityMiddleware: the API refuses plain HTTP rather than redirect it.
    "api.middleware.PlainHttpRefusedMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "api.middleware.NulInAddressRefusedMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "audit.context.AuditContextMiddleware",
    "core.logs.RequestUserMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["config.template_filters"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.role",
            ],
        },
    }
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Each web thread keeps its connection for a minute, checked before reuse: opening one per
# request halved the requests a server answers (bench/bench_api.py, 78 against 161 a second).
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo runs web, worker and beat against one SQLite file: wait for locks, use WAL.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # A Redis that hangs fails a request after this long instead of holding it.
            "OPTIONS": {"socket_connect_timeout": 5, "socket_timeout": 5},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "cache_entries",
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]
# Invitation and password-reset links (accounts/invitations.py) work once, for 72 hours.
PASSWORD_RESET_TIMEOUT = 72 * 3600
# Login throttling (django-axes, accounts/throttling.py): failures for one username from one
# address lock that pair; at an address the user has not logged in from lately, failures for
# the username from anywhere and failures from the address for any username count too.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "accounts.throttling.LoginThrottleHandler"
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_LIMIT_PER_USERNAME = env.int("LOGIN_FAILURE_LIMIT_PER_USERNAME", default=20)
LOGIN_FAILURE_LIMIT_PER_ADDRESS = env.int("LOGIN_FAILURE_LIMIT_PER_ADDRESS", default=20)
# An address a user logged in from within this many days is known (the access log keeps them).
LOGIN_KNOWN_ADDRESS_DAYS = env.int("LOGIN_KNOWN_ADDRESS_DAYS", default=90)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
# The counters kept; which of them apply to a login, and at what limit, the handler decides.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = False
AXES_LOCKOUT_CALLABLE = "accounts.throttling.lockout_response"
# How many reverse proxies in front of the app append to X-Forwarded-For (0: none, use the
# connection's address). Login throttling and the audit log both read the client address so.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "audit.context.client_address"
# Single sign-on with OpenID Connect (accounts/oidc.py): on when OIDC_RP_CLIENT_ID is set.
OIDC_RP_CLIENT_ID = env("OIDC_RP_CLIENT_ID", default="")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_RP_CLIENT_SECRET = env("OIDC_RP_CLIENT_SECRET", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env("OIDC_OP_JWKS_ENDPOINT", default=None)
OIDC_RP_SIGN_ALGO = env("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env("OIDC_RP_SCOPES", default="openid email profile")
OIDC_GROUPS_CLAIM = env("OIDC_GROUPS_CLAIM", default="groups")
OIDC_ROLE_GROUPS = {
    role: env.list(f"OIDC_{role.upper()}_GROUPS", default=[])
    for role in ("administrator", "contributor", "viewer")
}
OIDC_USE_PKCE = True
OIDC_TIMEOUT = 10
OIDC_AUTHENTICATION_CALLBACK_URL = "sso:callback"
OIDC_USERNAME_ALGO = "accounts.oidc.username_from_claims"
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.append("accounts.oidc.RoleMappingBackend")
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "segments:list"
LOGOUT_REDIRECT_URL = "accounts:login"

LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", _("English")),
    ("zh-hans", _("Chinese (Simplified)")),
    ("fr", _("French")),
    ("ja", _("Japanese")),
    ("nb", _("Norwegian Bokmål")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
# Uploaded CSV files are streamed to disk, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# The largest CSV file the import page accepts (1 GiB by default).
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=1024**3)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000

# Celery: Redis when REDIS_URL is set; otherwise an SQLite-backed broker that needs no server.
CELERY_BROKER_URL = REDIS_URL or f"sqla+sqlite:///{BASE_DIR / 'celery-broker.sqlite3'}"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker whose broker is gone waits for it as long as it takes, and survives its restart.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CONSUMER = "config.celery_worker:Consumer"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
# Redis redelivers an unacknowledged task after this long; it must outlast the longest task.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600} if REDIS_URL else {}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Every script, style and image is a static file of ours: no inline script, no inline style,
# nothing from elsewhere (htmx is vendored in static/js). A page cannot be framed either.
# No form-action: browsers apply it to the redirect after a POST, and Connect redirects to
# each service's OAuth page.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}

# LOG_FORMAT=json: one JSON object per line, with run_id, export_id, connection_id and user
# when known (core.logs); plain text otherwise. Celery workers log through the same handler.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "core.logs.ContextFilter"},
        "refusal_without_traceback": {"()": "core.logs.RefusalWithoutTraceback"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "core.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context", "refusal_without_traceback"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Destinations (connections): base URLs, and the OAuth application registered with Campaign
# Monitor. Point the URLs at the local fakes for the demo and the end-to-end tests.
CAMPAIGN_MONITOR_API_URL = env(
    "CAMPAIGN_MONITOR_API_URL", default="https://api.createsend.com/api/v3.3"
)
CAMPAIGN_MONITOR_OAUTH_URL = env(
    "CAMPAIGN_MONITOR_OAUTH_URL", default="https://api.createsend.com/oauth"
)
CAMPAIGN_MONITOR_TOKEN_URL = env(
    "CAMPAIGN_MONITOR_TOKEN_URL", default="https://api.createsend.com/oauth/token"
)
CAMPAIGN_MONITOR_CLIENT_ID = env("CAMPAIGN_MONITOR_CLIENT_ID", default="")
CAMPAIGN_MONITOR_CLIENT_SECRET = env("CAMPAIGN_MONITOR_CLIENT_SECRET", default="")
AUTOPILOT_API_URL = env("AUTOPILOT_API_URL", default="https://api2.autopilothq.com/v1")
# Requests per second per API key (Autopilot documents 5); shared by every worker through Redis.
AUTOPILOT_RATE_LIMIT = env.float("AUTOPILOT_RATE_LIMIT", default=5.0)
# Mailchimp: the API URL names the account's data centre as {dc} (from the key's suffix or
# the OAuth metadata call); the OAuth application registered with Mailchimp, if any.
MAILCHIMP_API_URL = env("MAILCHIMP_API_URL", default="https://{dc}.api.mailchimp.com/3.0")
MAILCHIMP_OAUTH_URL = env("MAILCHIMP_OAUTH_URL", default="https://login.mailchimp.com/oauth2")
MAILCHIMP_CLIENT_ID = env("MAILCHIMP_CLIENT_ID", default="")
MAILCHIMP_CLIENT_SECRET = env("MAILCHIMP_CLIENT_SECRET", default="")
# Simultaneous requests per Mailchimp account (it answers the 11th with 429), across workers.
MAILCHIMP_MAX_CONNECTIONS = env.int("MAILCHIMP_MAX_CONNECTIONS", default=10)
# Ortto: one API host per region of the account.
ORTTO_API_URLS = {
    "global": env("ORTTO_API_URL_GLOBAL", default="https://api.ap3api.com/v1"),
    "au": env("ORTTO_API_URL_AU", default="https://api.au.ap3api.com/v1"),
    "eu": env("ORTTO_API_URL_EU", default="https://api.eu.ap3api.com/v1"),
}
# Requests per second per API key (Business plan: 600 per 10 s, 1800 per 60 s = 30/s; a
# Free account has 1/s), shared by every worker through Redis.
ORTTO_RATE_LIMIT = env.float("ORTTO_RATE_LIMIT", default=5.0)

# Bulk work sizes, tunable without code changes.
PROFILE_IMPORT_CHUNK_ROWS = env.int("PROFILE_IMPORT_CHUNK_ROWS", default=50_000)
# Custom profile fields (attribute names) allowed besides the four built-in ones; an import or
# API call that would add more is refused before it stores anything (segments/catalogue.py).
PROFILE_FIELDS_MAX = env.int("PROFILE_FIELDS_MAX", default=500)
SEGMENT_PREVIEW_SIZE = 100
# Sources (sources/): a server that does not answer is given up on after the connect timeout;
# a query that runs longer than the statement timeout is stopped by the server. Rows are read
# and stored a batch at a time, each batch committed with the run's cursor; an incremental run
# reads again from its cursor less the overlap (rows committed late with an earlier time).
SOURCE_CONNECT_TIMEOUT_SECONDS = env.int("SOURCE_CONNECT_TIMEOUT_SECONDS", default=10)
SOURCE_STATEMENT_TIMEOUT_SECONDS = env.float("SOURCE_STATEMENT_TIMEOUT_SECONDS", default=1800.0)
SOURCE_BATCH_ROWS = env.int("SOURCE_BATCH_ROWS", default=20_000)
SOURCE_CURSOR_OVERLAP_SECONDS = env.float("SOURCE_CURSOR_OVERLAP_SECONDS", default=300.0)
# Removing more profiles than this (full sync, "remove missing profiles") waits for approval.
SOURCE_REMOVAL_APPROVAL_THRESHOLD = env.int("SOURCE_REMOVAL_APPROVAL_THRESHOLD", default=100)
# A file source at an https:// address is downloaded to a temporary file (DuckDB then reads it
# there): at most this many bytes, each read waiting at most this long. Plain http:// is
# refused except to these hosts (the tests' local server).
SOURCE_FILE_MAX_BYTES = env.int("SOURCE_FILE_MAX_BYTES", default=2 * 1024**3)
SOURCE_FILE_READ_TIMEOUT_SECONDS = env.float("SOURCE_FILE_READ_TIMEOUT_SECONDS", default=60.0)
SOURCE_FILE_PLAIN_HTTP_HOSTS: tuple[str, ...] = ()

# Export engine. Rates and concurrency are settings so that benchmarks can raise them together
# with the fakes' limits.
EXPORT_CONCURRENCY = env.int("EXPORT_CONCURRENCY", default=16)
EXPORT_MAX_RETRIES = env.int("EXPORT_MAX_RETRIES", default=6)
EXPORT_BACKOFF_BASE_SECONDS = env.float("EXPORT_BACKOFF_BASE_SECONDS", default=0.5)
EXPORT_BACKOFF_MAX_SECONDS = env.float("EXPORT_BACKOFF_MAX_SECONDS", default=60.0)
EXPORT_MAX_RATE_LIMIT_WAIT_SECONDS = env.float("EXPORT_MAX_RATE_LIMIT_WAIT_SECONDS", default=900.0)
EXPORT_HEARTBEAT_SECONDS = env.float("EXPORT_HEARTBEAT_SECONDS", default=5.0)
EXPORT_STALLED_AFTER_SECONDS = env.float("EXPORT_STALLED_AFTER_SECONDS", default=120.0)
# How often a run writes the sync state of what the service acknowledged (also at its end).
# Often enough that the write at the end, which the run waits for, stays short.
EXPORT_SYNC_STATE_SECONDS = env.float("EXPORT_SYNC_STATE_SECONDS", default=3.0)
# Alerts (exports.alerts): a run that completed with warnings alerts when the service refused
# at least this share of what it was sent, and at least this many records.
EXPORT_ALERT_FAILED_SHARE = env.float("EXPORT_ALERT_FAILED_SHARE", default=0.05)
EXPORT_ALERT_MIN_FAILED = env.int("EXPORT_ALERT_MIN_FAILED", default=10)
# Alerts are e-mailed; the demo prints them on the console. Links in them start with SITE_URL.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
# The file backend's folder (make demo writes invitations and alerts there, one file a message).
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(BASE_DIR / "demo-mail"))
# The production settings turn this on: mail must be delivered there (accounts.checks).
EMAIL_DELIVERY_REQUIRED = False
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="audience-relay@localhost")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
# Audit entries older than this are purged every night (audit/retention.py).
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=400)
CELERY_BEAT_SCHEDULE = {
    "purge-expired-audit-entries": {
        "task": "audit.tasks.purge_expired_entries",
        "schedule": crontab(hour=3, minute=17),
    },
    "resume-stalled-export-runs": {
        "task": "exports.tasks.resume_stalled_runs",
        "schedule": env.float("EXPORT_SWEEP_SECONDS", default=60.0),
    },
    # Proves to /readyz that beat and a worker are alive (ops.heartbeat).
    "ops-heartbeat": {"task": "ops.tasks.heartbeat", "schedule": 30.0},
    "deliver-due-webhooks": {
        "task": "webhooks.tasks.deliver_due",
        "schedule": env.float("WEBHOOK_SWEEP_SECONDS", default=30.0),
    },
}

# Webhooks (webhooks.services): endpoints must use HTTPS unless DEBUG or WEBHOOKS_ALLOW_HTTP.
WEBHOOKS_ALLOW_HTTP = env.bool("WEBHOOKS_ALLOW_HTTP", default=False)
# ... and public addresses only (webhooks.addresses: no loopback, private, link-local or cloud
# metadata address) unless DEBUG or WEBHOOKS_ALLOW_PRIVATE_ADDRESSES. Both are read when a
# webhook is saved or sent, so the DEBUG = False of the production and test settings counts.
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = env.bool("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", default=False)
WEBHOOK_CONNECT_TIMEOUT_SECONDS = env.float("WEBHOOK_CONNECT_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Seconds to wait before each retry of a failed delivery; after the last, it has failed.
WEBHOOK_RETRY_SCHEDULE_SECONDS = env.list(
    "WEBHOOK_RETRY_SCHEDULE_SECONDS", cast=float, default=[60, 300, 1800, 7200, 21600, 43200, 43200]
)
# An endpoint whose every attempt failed for this long (since the first failure) is disabled.
WEBHOOK_DISABLE_AFTER_HOURS = env.float("WEBHOOK_DISABLE_AFTER_HOURS", default=24.0)
# Deliveries that ended longer ago than this are removed from the delivery log.
WEBHOOK_LOG_DAYS = env.int("WEBHOOK_LOG_DAYS", default=30)
# The REST API (api/): tokens or the browser session, one permission class, problem details.
API_RATE_LIMIT = env("API_RATE_LIMIT", default="1200/min")
API_PAGE_SIZE = 100
# A bulk upsert of 10,000 profiles with their attributes is a body of several megabytes.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=32 * 1024 * 1024)
# Erasures keep a keyed hash of the address, never the address (exports/erasures.py).
ERASURE_HASH_KEY = env("ERASURE_HASH_KEY", default=SECRET_KEY or "")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.BearerTokenAuthentication",
        "api.authentication.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.RolePermission"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TokenRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.IdCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Audience Relay API",
    "DESCRIPTION": (
        "Automate what the pages do: push profiles, build segments, run exports, erase people. "
        "Authenticate with a personal API token (`Authorization: Bearer ar_...`, made on the "
        "API tokens page). Errors are RFC 9457 problem details (`application/problem+json`)."
    ),
    "VERSION": "1",
    # 3.1 for its "webhooks": the events endpoints receive are in the document too.
    "OAS_VERSION": "3.1.0",
    "WEBHOOKS": [
        f"webhooks.event_schemas.{name}"
        for name in (
            "EXPORT_RUN_FINISHED",
            "EXPORT_RUN_AWAITING_APPROVAL",
            "EXPORT_RUN_DISCARDED",
            "SEGMENT_REFRESHED",
            "CONNECTION_NEEDS_REAUTHENTICATION",
            "TEST",
        )
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets named alike in several apps (sources, exclusions, exports, connections) each
    # keep a name of their own, and the ones the document had keep theirs.
    "ENUM_NAME_OVERRIDES": {
        "SyncModeEnum": "exports.models.Export.SyncMode",
        "TriggerEnum": "exports.models.ExportRun.Trigger",
        "KindEnum": "connections.types.registry.choices",
        "StepStatusEnum": ["passed", "failed", "skipped"],
        "SourceSyncModeEnum": "sources.models.Source.SyncMode",
        "SourceKindEnum": "sources.kinds.registry.KIND_NAMES",
        "SourceStatusEnum": "sources.models.Source.Status",
        "SourceRunStatusEnum": "sources.models.SourceRun.Status",
        "SourceRunTriggerEnum": "sources.models.SourceRun.Trigger",
        "ExclusionKindEnum": "exports.models.Exclusion.Kind",
        "PastedExclusionKindEnum": ["address", "domain"],
        "ConsentRuleScopeEnum": "exports.models.ConsentRule.Scope",
        "ConsentStateEnum": "core.consent.ConsentState",
    },
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.add_problem_responses",
        "segments.rule_schema.add_rule_schemas",
        "api.schema.forbid_nul_in_requests",
        "api.schema.link_created_objects",
        "api.schema.null_as_json_schema_type",
    ],
}
# /metrics answers only requests with "Authorization: Bearer <METRICS_TOKEN>"; unset, it is a 404.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
