"""Settings for the demo site, also the base of the test settings.

SQLite and Django's local-memory cache by default, so the demo and the tests
run on a machine with nothing but Python. Other backends are chosen by
environment variables (documented in the README under "Running the tests"):

- ``CONDITIONAL_TEST_DATABASE``: ``sqlite`` (default), ``postgresql`` or ``mariadb``.
- ``CONDITIONAL_TEST_CACHE``: ``locmem`` (default) or ``redis``.
- ``CONDITIONAL_STAMP_REDIS_URL``: keep the change stamps in this Redis (a cache alias
  ``stamps``, ``CONDITIONAL_STAMP_CACHE = "stamps"``) instead of the database.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent

# The demo's key is public on purpose; a real project reads its own from the environment.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-conditional-demo-key-not-for-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_conditional",
    "testproject.demo",
]
if importlib.util.find_spec("rest_framework") is not None:  # the drf extra: /api/drf/
    INSTALLED_APPS.append("rest_framework")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: after the session, the user and the language are known (checks W010-W013).
    "django_conditional.middleware.ConditionalRulesMiddleware",
]

ROOT_URLCONF = "testproject.urls"
WSGI_APPLICATION = "testproject.wsgi.application"
ASGI_APPLICATION = "testproject.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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


def _database() -> dict[str, Any]:
    engine = os.environ.get("CONDITIONAL_TEST_DATABASE", "sqlite").lower()
    if engine == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("CONDITIONAL_SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            # Concurrent writers wait for each other instead of failing with "database
            # is locked": transactions take the write lock when they begin (not when
            # a read inside them turns into a write, which SQLite cannot wait for),
            # readers never block the writer (WAL), and a writer waits up to 20 s.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    if engine in {"postgresql", "postgres"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PGDATABASE", "test"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
        }
    if engine in {"mariadb", "mysql"}:
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": os.environ.get("MYSQL_DATABASE", "test"),
            "USER": os.environ.get("MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("MYSQL_PASSWORD", ""),
            "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("MYSQL_PORT", "3306"),
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    raise ValueError(
        f"CONDITIONAL_TEST_DATABASE={engine!r} is not supported; "
        "expected 'sqlite', 'postgresql' or 'mariadb'."
    )


def _cache() -> dict[str, Any]:
    backend = os.environ.get("CONDITIONAL_TEST_CACHE", "locmem").lower()
    if backend == "locmem":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if backend == "redis":
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            # Without them a paused Redis would hold requests (django_conditional.W007);
            # generous, for a busy shared machine.
            "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
        }
    raise ValueError(
        f"CONDITIONAL_TEST_CACHE={backend!r} is not supported; expected 'locmem' or 'redis'."
    )


DATABASES = {"default": _database()}
CACHES = {"default": _cache()}
if os.environ.get("CONDITIONAL_STAMP_REDIS_URL"):
    CACHES["stamps"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["CONDITIONAL_STAMP_REDIS_URL"],
        "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
    }
    CONDITIONAL_STAMP_CACHE = "stamps"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django_conditional": {
            "handlers": ["console"],
            "level": os.environ.get("CONDITIONAL_LOG_LEVEL", "WARNING"),
        },
    },
}
