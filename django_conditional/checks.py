"""System checks: the ``CONDITIONAL_*`` settings, the stamp table, the views' ``depends_on``.

Ids are listed in the README and never reused.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from django_conditional.conf import DEFAULTS, PREFIX

__all__ = [
    "check_caches",
    "check_setting_ranges",
    "check_setting_types",
    "check_stamp_connections",
    "check_stamp_table",
    "check_stamp_tracking",
    "check_unknown_settings",
    "check_view_dependencies",
]

# Caches that live in one process: stamps kept there are invisible to the others.
_PER_PROCESS_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
}
_DUMMY_CACHE = "django.core.cache.backends.dummy.DummyCache"
_REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"


@register(Tags.compatibility)
def check_unknown_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W001: a ``CONDITIONAL_*`` setting this package does not know (most likely a typo)."""
    messages: list[CheckMessage] = []
    for name in sorted(dir(settings)):
        if name.startswith(PREFIX) and name not in DEFAULTS:
            close = difflib.get_close_matches(name, DEFAULTS, n=1)
            hint = f"Did you mean {close[0]}?" if close else "Remove it or fix its name."
            messages.append(
                Warning(
                    f"{name} is not a django-conditional setting.",
                    hint=hint,
                    id="django_conditional.W001",
                )
            )
    return messages


# (setting, accepted types, what to say was expected)
_TYPES: list[tuple[str, tuple[type, ...], str]] = [
    ("CONDITIONAL_DEBUG_HEADER", (bool, type(None)), "True, False or None (follow DEBUG)"),
    ("CONDITIONAL_CACHE", (str,), "a cache alias (str)"),
    ("CONDITIONAL_CACHE_TIMEOUT", (int, type(None)), "a number of seconds (int) or None"),
    ("CONDITIONAL_LOCAL_CACHE_SIZE", (int,), "a number of entries (int, 0 for none)"),
    ("CONDITIONAL_DEPLOY_VERSION", (str,), "a string"),
    ("CONDITIONAL_IGNORED_TABLES", (list, tuple, set, frozenset), "a list of table names"),
    ("CONDITIONAL_STAMP_CACHE", (str, type(None)), "a cache alias (str) or None"),
    ("CONDITIONAL_STAMP_TRACKING", (bool,), "True or False"),
    ("CONDITIONAL_STAMP_LEASE", (int, float), "a number of seconds"),
    ("CONDITIONAL_STAMP_MIRROR_WINDOW", (int, float), "a number of seconds"),
    ("CONDITIONAL_RULES_REFRESH", (int, float), "a number of seconds"),
    ("CONDITIONAL_RULES_COUNT_BATCH", (int,), "a number of requests (int)"),
    ("CONDITIONAL_RULES_COUNT_INTERVAL", (int, float), "a number of seconds"),
]


@register(Tags.compatibility)
def check_setting_types(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E001: a ``CONDITIONAL_*`` setting of the wrong type."""
    messages: list[CheckMessage] = []
    for name, types, expected in _TYPES:
        value = getattr(settings, name, DEFAULTS[name])
        # bool is an int: a timeout of True is a mistake, not one second.
        wrong = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        if name == "CONDITIONAL_IGNORED_TABLES" and not wrong:
            wrong = not all(isinstance(table, str) for table in value)
        if wrong:
            messages.append(
                Error(
                    f"{name} is {value!r}; expected {expected}.",
                    hint=f"Fix {name} in your settings, or remove it to use the default "
                    f"({DEFAULTS[name]!r}).",
                    id="django_conditional.E001",
                )
            )
    return messages


# (setting, the smallest value that makes sense, what to say was expected)
_MINIMUMS: list[tuple[str, float, str]] = [
    ("CONDITIONAL_LOCAL_CACHE_SIZE", 0, "0 or more entries (0 keeps none)"),
    ("CONDITIONAL_CACHE_TIMEOUT", 0, "0 or more seconds, or None to keep until evicted"),
    # Below a second, a slow commit could outlast the lease (README, "What happens when").
    ("CONDITIONAL_STAMP_LEASE", 1, "1 second or more"),
    # At least a millisecond: pings are sent at half of it.
    ("CONDITIONAL_STAMP_MIRROR_WINDOW", 0.001, "0.001 seconds or more"),
    ("CONDITIONAL_RULES_REFRESH", 0, "0 or more seconds (0 checks on every request)"),
    ("CONDITIONAL_RULES_COUNT_BATCH", 1, "1 or more requests"),
    ("CONDITIONAL_RULES_COUNT_INTERVAL", 0, "0 or more seconds"),
]


@register(Tags.compatibility)
def check_setting_ranges(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E004: a numeric ``CONDITIONAL_*`` setting of the right type but out of range."""
    messages: list[CheckMessage] = []
    for name, minimum, expected in _MINIMUMS:
        value = getattr(settings, name, DEFAULTS[name])
        # Wrong types are E001's.
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < minimum:
            messages.append(
                Error(
                    f"{name} is {value!r}; expected {expected}.",
                    hint=f"Fix {name} in your settings, or remove it to use the default "
                    f"({DEFAULTS[name]!r}).",
                    id="django_conditional.E004",
                )
            )
    return messages


@register(Tags.caches)
def check_caches(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E002/E003: cache aliases that do not exist; W002/W003: stamp caches that mislead."""
    messages: list[CheckMessage] = []
    caches = getattr(settings, "CACHES", {})
    stamp_cache = getattr(settings, "CONDITIONAL_STAMP_CACHE", None)
    validator_cache = getattr(settings, "CONDITIONAL_CACHE", DEFAULTS["CONDITIONAL_CACHE"])
    if isinstance(stamp_cache, str) and stamp_cache not in caches:
        messages.append(
            Error(
                f"CONDITIONAL_STAMP_CACHE {stamp_cache!r} is not in CACHES.",
                hint="Add it to CACHES, or remove the setting to keep stamps in the database.",
                id="django_conditional.E002",
            )
        )
    if isinstance(validator_cache, str) and validator_cache not in caches:
        messages.append(
            Error(
                f"CONDITIONAL_CACHE {validator_cache!r} is not in CACHES.",
                hint="Add it to CACHES or point CONDITIONAL_CACHE at an alias that exists.",
                id="django_conditional.E003",
            )
        )
    stamp_backend = caches.get(stamp_cache, {}).get("BACKEND") if stamp_cache else None
    if stamp_backend in _PER_PROCESS_CACHES:
        messages.append(
            Warning(
                f"CONDITIONAL_STAMP_CACHE {stamp_cache!r} is a per-process cache "
                f"({stamp_backend}): a write in one process does not move the stamps "
                "the others read, so they can answer 304 for changed pages.",
                hint="Use a shared cache (Redis, Memcached, the database cache) for stamps, "
                "or remove the setting to keep them in the database. Ignore this only "
                "if the site runs in a single process.",
                id="django_conditional.W002",
            )
        )
    if stamp_backend == _DUMMY_CACHE:
        messages.append(
            Warning(
                f"CONDITIONAL_STAMP_CACHE {stamp_cache!r} is a DummyCache: stamps are "
                "never kept, so derived validators change on every request and no "
                "revalidation is answered 304.",
                hint="Use a real cache for stamps, or remove the setting.",
                id="django_conditional.W003",
            )
        )
    return messages


@register(Tags.caches)
def check_stamp_connections(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W004: stamps in a client-server database that every request connects to anew."""
    if getattr(settings, "CONDITIONAL_STAMP_CACHE", None) is not None:
        return []
    return [
        Warning(
            f"Stamps are read from database {alias!r}, which has CONN_MAX_AGE=0: "
            "every 304 opens a new database connection, which costs more than the "
            "rest of the request.",
            hint="Set CONN_MAX_AGE (or the backend's connection pool), or keep stamps "
            "in Redis with CONDITIONAL_STAMP_CACHE.",
            id="django_conditional.W004",
        )
        for alias in connecting_per_request(getattr(settings, "DATABASES", {}))
    ]


def connecting_per_request(databases: dict[str, dict[str, Any]]) -> list[str]:
    """The aliases of client-server databases that each request connects to anew."""
    return [
        alias
        for alias, database in databases.items()
        if not str(database.get("ENGINE", "")).endswith("sqlite3")
        and not (database.get("OPTIONS") or {}).get("pool")
        and database.get("CONN_MAX_AGE", 0) == 0
    ]


@register(Tags.caches)
def check_stamp_tracking(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W005: stamps in Redis that cannot be mirrored in each process (a round trip per 304)."""
    stamp_cache = getattr(settings, "CONDITIONAL_STAMP_CACHE", None)
    caches = getattr(settings, "CACHES", {})
    if (
        not isinstance(stamp_cache, str)
        or caches.get(stamp_cache, {}).get("BACKEND") != _REDIS_CACHE
        or not getattr(settings, "CONDITIONAL_STAMP_TRACKING", True)
    ):
        return []
    from django_conditional.stamp_tracking import tracking_unavailable_reason

    reason = tracking_unavailable_reason(stamp_cache)
    if reason is None:
        return []
    return [
        Warning(
            f"The stamps in cache {stamp_cache!r} cannot be mirrored in each process: "
            f"{reason}. Every 304 reads them from Redis (a round trip).",
            hint="Point CONDITIONAL_STAMP_CACHE at a Redis cache with one server and the "
            "default KEY_FUNCTION, or set CONDITIONAL_STAMP_TRACKING = False to say "
            "that the round trip is intended.",
            id="django_conditional.W005",
        )
    ]


@register(Tags.caches)
def check_redis_timeouts(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W007: a Redis cache the package reads without socket timeouts.

    redis-py waits forever by default: a paused or unreachable Redis would
    hold every request that reads stamps or kept validators, and the breaker
    (``store_health``) that serves pages without it never hears of a failure.
    """
    caches = getattr(settings, "CACHES", {})
    used = {
        getattr(settings, "CONDITIONAL_STAMP_CACHE", None),
        getattr(settings, "CONDITIONAL_CACHE", "default"),
    }
    messages: list[CheckMessage] = []
    for alias in sorted(a for a in used if isinstance(a, str)):
        config = caches.get(alias, {})
        options = config.get("OPTIONS") or {}
        if config.get("BACKEND") != _REDIS_CACHE:
            continue
        missing = [o for o in ("socket_timeout", "socket_connect_timeout") if o not in options]
        if missing:
            messages.append(
                Warning(
                    f"Cache {alias!r} (Redis) sets no {' or '.join(missing)}: while Redis "
                    "is paused or unreachable, every request that reads stamps or kept "
                    "validators from it waits as long as the operating system lets it, "
                    "instead of being served at once without validators.",
                    hint=f"Add to CACHES[{alias!r}]['OPTIONS'], for example: "
                    '"socket_timeout": 0.5, "socket_connect_timeout": 0.5.',
                    id="django_conditional.W007",
                )
            )
    return messages


@register(Tags.database)
def check_stamp_table(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """W006: the stamp table is missing (``migrate`` never ran), so every derived page fails.

    Tagged ``database``: run by ``check --database default`` (and by
    ``migrate``, which is about to fix it: silent there, where it would tell
    a new user to run what is running). A warning, not an error, so that
    it could never stop that ``migrate``.
    """
    if (
        not databases
        or getattr(settings, "CONDITIONAL_STAMP_CACHE", None) is not None
        or _run_by_migrate()
    ):
        return []
    from django_conditional.stamp_errors import MIGRATE_HINT, STAMP_TABLE, stamp_table_exists

    return [
        Warning(
            f"The stamp table {STAMP_TABLE} does not exist in database {alias!r}: every "
            "view using django_conditional's derived validators (conditional, the "
            "class-based mixins) fails until it does.",
            hint=MIGRATE_HINT,
            id="django_conditional.W006",
        )
        for alias in databases
        if not stamp_table_exists(alias)
    ]


def _run_by_migrate() -> bool:
    """Whether ``manage.py migrate`` (or a command built on it) is running these checks."""
    from django.core.management.commands.migrate import Command as Migrate

    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        # Django runs a command's checks from its execute() (its handle() in older versions).
        if isinstance(frame.f_locals.get("self"), Migrate):
            return True
        frame = frame.f_back
    return False


@register(Tags.urls)
def check_view_dependencies(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E005: a view in the URLconf whose ``depends_on`` names no installed model."""
    if not getattr(settings, "ROOT_URLCONF", None):
        return []
    from django.urls import get_resolver

    from django_conditional.dependencies import DependencyError, configured_views

    def error(problem: DependencyError) -> CheckMessage:
        return Error(problem.message, hint=problem.hint, id="django_conditional.E005")

    try:
        configs = list(configured_views(get_resolver().url_patterns))
    except DependencyError as problem:
        # A conditional() applied while the URLconf was imported raised it.
        return [error(problem)]
    messages: list[CheckMessage] = []
    for config in configs:
        try:
            config.resolve()
        except DependencyError as problem:  # noqa: PERF203 (one per misconfigured view)
            messages.append(error(problem))
    return messages


from django_conditional import rule_checks  # noqa: E402,F401
