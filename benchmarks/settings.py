"""Django settings of the benchmark, chosen by ``BENCH_*`` environment variables.

Nothing from ``testproject``: no middleware at all, so the floor (an empty
view) is Django's own request cost and every difference is the view's. The
rule ways go through a second handler of the same process whose only
middleware is ``ConditionalRulesMiddleware`` (``benchmarks.measure``); the
contenttypes app is installed because rules name their models by content type.

- ``BENCH_DATABASE``: ``sqlite`` (default) or ``postgresql``.
- ``BENCH_SQLITE_PATH``: the SQLite file (default ``benchmarks/results/bench.sqlite3``).
- ``BENCH_PG_NAME``: the PostgreSQL database (default ``bench_conditional``); the
  server is ``PGHOST``/``PGPORT``/``PGUSER``/``PGPASSWORD`` (``127.0.0.1``, ``5432``,
  ``postgres``, empty).
- ``BENCH_CONN_MAX_AGE``: ``persistent`` (default, ``None``) or seconds (``0``).
- ``BENCH_REDIS_URL``: the Redis database (default ``redis://127.0.0.1:6379/9``).
- ``BENCH_KEY_PREFIX``: the cache key prefix, one per environment of a run.
- ``BENCH_STORE``: where stamps and validators live (``benchmarks.configs.STORES``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from benchmarks.configs import STORES

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "django-conditional-benchmark-key-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = ["django.contrib.contenttypes", "django_conditional", "benchmarks.bench"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "benchmarks.urls"
WSGI_APPLICATION = "benchmarks.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": []},
    },
]


def _conn_max_age() -> int | None:
    value = os.environ.get("BENCH_CONN_MAX_AGE", "persistent")
    return None if value == "persistent" else int(value)


def _database() -> dict[str, Any]:
    engine = os.environ.get("BENCH_DATABASE", "sqlite")
    if engine == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get(
                "BENCH_SQLITE_PATH", str(BASE_DIR / "results" / "bench.sqlite3")
            ),
            "CONN_MAX_AGE": _conn_max_age(),
        }
    if engine == "postgresql":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("BENCH_PG_NAME", "bench_conditional"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "CONN_MAX_AGE": _conn_max_age(),
        }
    raise ValueError(f"BENCH_DATABASE={engine!r}; expected 'sqlite' or 'postgresql'.")


DATABASES = {"default": _database()}

_PREFIX = os.environ.get("BENCH_KEY_PREFIX", "djcbench")
CACHES: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "default",
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    },
    "locmem": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "locmem",
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    },
    "redis": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
        "KEY_PREFIX": _PREFIX,
    },
}

_STORE = STORES[os.environ.get("BENCH_STORE", "locmem")]
CONDITIONAL_STAMP_CACHE = _STORE.stamp_cache
CONDITIONAL_CACHE = _STORE.validator_cache

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_conditional": {"handlers": ["console"], "level": "WARNING"}},
}
