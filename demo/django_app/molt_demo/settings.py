"""Settings of the molt demo: small, production-like, everything that varies from the environment.

Database: SQLite by default (``MOLT_DEMO_SQLITE_PATH``, else ``demo.sqlite3`` next to
``manage.py``); PostgreSQL when ``MOLT_DEMO_POSTGRES_DSN`` is set (a libpq conninfo string or
a ``postgresql://`` URI, the same text ``MOLT_DB_POSTGRES_DSN`` gives the worker).

The worker that the offloaded views call is ``MOLT_WORKER_CMD`` (molt_accel); it reads this
project's database unless ``MOLT_DB_SQLITE_PATH`` or ``MOLT_DB_POSTGRES_DSN`` already say
otherwise, or ``MOLT_DEMO_WORKER_DB=fake`` asks for the fake-DB contract.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def _postgres_database(dsn: str) -> dict[str, Any]:
    """DATABASES["default"] for a libpq conninfo string or URI."""
    from psycopg.conninfo import conninfo_to_dict

    params = {key: str(value) for key, value in conninfo_to_dict(dsn).items() if value is not None}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": params.pop("dbname", ""),
        "USER": params.pop("user", ""),
        "PASSWORD": params.pop("password", ""),
        "HOST": params.pop("host", ""),
        "PORT": params.pop("port", ""),
        "OPTIONS": params,
        "CONN_MAX_AGE": CONN_MAX_AGE,
        "CONN_HEALTH_CHECKS": True,
    }


DEBUG = _env_bool("MOLT_DEMO_DEBUG", False)
SECRET_KEY = os.environ.get("MOLT_DEMO_SECRET_KEY", "molt-demo-not-secret: no sessions, no auth")
ALLOWED_HOSTS = _env_list("MOLT_DEMO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")

INSTALLED_APPS = ["items", "django_tasks"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "molt_demo.urls"
WSGI_APPLICATION = "molt_demo.wsgi.application"
TEMPLATES: list[dict[str, Any]] = []

# Persistent connections, as a production deployment would run them.
CONN_MAX_AGE = int(os.environ.get("MOLT_DEMO_CONN_MAX_AGE", "60"))

POSTGRES_DSN = os.environ.get("MOLT_DEMO_POSTGRES_DSN", "").strip()
SQLITE_PATH = Path(os.environ.get("MOLT_DEMO_SQLITE_PATH", "") or BASE_DIR / "demo.sqlite3")

if POSTGRES_DSN:
    DATABASES = {"default": _postgres_database(POSTGRES_DSN)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            "CONN_MAX_AGE": CONN_MAX_AGE,
        }
    }

# The worker molt_accel starts inherits this process's environment; unless told otherwise it
# reads the same database as Django (docs/worker.md: MOLT_DB_SQLITE_PATH, MOLT_DB_POSTGRES_DSN).
MOLT_DEMO_WORKER_DB = os.environ.get("MOLT_DEMO_WORKER_DB", "").strip() or "database"
_WORKER_DB_VARIABLES = ("MOLT_DB_SQLITE_PATH", "MOLT_DB_POSTGRES_DSN")
if MOLT_DEMO_WORKER_DB == "fake":
    for _name in _WORKER_DB_VARIABLES:
        os.environ.pop(_name, None)
elif MOLT_DEMO_WORKER_DB != "database":
    raise ValueError(f"MOLT_DEMO_WORKER_DB must be 'database' or 'fake', got {MOLT_DEMO_WORKER_DB!r}")
elif not any(os.environ.get(name) for name in _WORKER_DB_VARIABLES):
    if POSTGRES_DSN:
        os.environ["MOLT_DB_POSTGRES_DSN"] = POSTGRES_DSN
    else:
        os.environ["MOLT_DB_SQLITE_PATH"] = str(SQLITE_PATH)

# Durable tasks (items/tasks.py): jobs in this project's database, run by
# `molt-worker --jobs-sqlite <the same file>` (or --jobs-postgres), which also creates their
# table. A second backend, with a small bound on a queue no worker runs, shows a full queue.
TASKS = {
    "default": {"BACKEND": "molt_accel.tasks.MoltTaskBackend"},
    "bounded": {
        "BACKEND": "molt_accel.tasks.MoltTaskBackend",
        "QUEUES": ["later"],
        "OPTIONS": {"MAX_PENDING": 1},
    },
}

# The offloaded views: their deadline, and whether a failing worker falls back to Django.
MOLT_DEMO_TIMEOUT_MS = int(os.environ.get("MOLT_DEMO_TIMEOUT_MS", "250"))
MOLT_DEMO_ALLOW_FALLBACK = _env_bool("MOLT_DEMO_ALLOW_FALLBACK", False)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("MOLT_DEMO_LOG_LEVEL", "WARNING")},
}
