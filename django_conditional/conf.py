"""The package's settings: the only module that reads ``django.conf.settings``.

Each setting is one typed property, read once and cached; the cache is
cleared when a setting it depends on changes (``override_settings`` in
tests).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

__all__ = ["DEFAULTS", "PREFIX", "conf"]

PREFIX = "CONDITIONAL_"

DEFAULTS: dict[str, Any] = {
    # Django cache alias for derived validators.
    "CONDITIONAL_CACHE": "default",
    # Seconds a derived validator stays cached (it is checked against its stamps anyway).
    "CONDITIONAL_CACHE_TIMEOUT": 24 * 60 * 60,
    # Adds an ``X-Conditional`` header naming each decision and its reason;
    # None follows ``DEBUG``.
    "CONDITIONAL_DEBUG_HEADER": None,
    # Salted into every derived tag: change it with each deploy that changes templates.
    "CONDITIONAL_DEPLOY_VERSION": "",
    # Derived validators each process keeps in memory (0: none), in front of
    # CONDITIONAL_CACHE; checked against the stamps like any other.
    "CONDITIONAL_LOCAL_CACHE_SIZE": 4096,
    # Mirror stamps kept in Redis in each process, kept current by Redis's
    # client tracking (stamp_tracking); False reads them from Redis each time.
    "CONDITIONAL_STAMP_TRACKING": True,
    # Tables whose writes never move a stamp (beyond the stamp table itself).
    "CONDITIONAL_IGNORED_TABLES": ["django_session", "django_migrations"],
    # A cache alias holding the change stamps; None keeps them in the database.
    "CONDITIONAL_STAMP_CACHE": None,
    # Seconds a write's stamps stay "in flight" in a stamp cache when the move
    # after its commit never comes (the writer died or lost the cache): pages
    # of its tables are served without validators meanwhile.
    "CONDITIONAL_STAMP_LEASE": 10,
    # Seconds a process trusts its mirror of Redis stamps after Redis last
    # proved the tracking connection current; every write's commit waits this
    # long after moving its stamps, so no mirror can miss the move.
    "CONDITIONAL_STAMP_MIRROR_WINDOW": 0.02,
    # Seconds between checks that this process's rules are current, where
    # stamps are not read from memory (with them: every request).
    "CONDITIONAL_RULES_REFRESH": 1.0,
    # Requests a process counts per rule before adding its counts to the
    # database (also added after CONDITIONAL_RULES_COUNT_INTERVAL seconds).
    "CONDITIONAL_RULES_COUNT_BATCH": 500,
    "CONDITIONAL_RULES_COUNT_INTERVAL": 30.0,
    # Unsafe requests to views of one object (conditional(object=...)) must carry
    # a precondition (If-Match, If-Unmodified-Since or If-None-Match: *), or get 428;
    # a view's require_precondition=True/False overrides it.
    "CONDITIONAL_REQUIRE_PRECONDITION": False,
}

# Settings outside our prefix that derived values depend on.
_DEPENDENCIES = {"SECRET_KEY", "CACHES", "USE_I18N", "DATABASES", "DEBUG"}


class Settings:
    """Typed, cached access to the ``CONDITIONAL_*`` settings."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        try:
            return self._cache[name]
        except KeyError:
            value = getattr(settings, name, DEFAULTS[name])
            self._cache[name] = value
            return value

    def clear(self) -> None:
        """Forget cached values; the next read sees the current settings."""
        self._cache.clear()

    @property
    def cache_alias(self) -> str:
        """``CONDITIONAL_CACHE``: the cache alias for derived validators."""
        return str(self._get("CONDITIONAL_CACHE"))

    @property
    def cache_timeout(self) -> int | None:
        """``CONDITIONAL_CACHE_TIMEOUT``: seconds a derived validator stays cached."""
        value = self._get("CONDITIONAL_CACHE_TIMEOUT")
        return None if value is None else int(value)

    @property
    def debug_header(self) -> bool:
        """``CONDITIONAL_DEBUG_HEADER``: explain each decision in an ``X-Conditional`` header.

        None (the default) follows ``DEBUG``.
        """
        value = self._get("CONDITIONAL_DEBUG_HEADER")
        return bool(settings.DEBUG if value is None else value)

    @property
    def deploy_version(self) -> str:
        """``CONDITIONAL_DEPLOY_VERSION``: salted into every derived entity tag."""
        return str(self._get("CONDITIONAL_DEPLOY_VERSION"))

    @property
    def ignored_tables(self) -> frozenset[str]:
        """``CONDITIONAL_IGNORED_TABLES`` plus the stamp table and the rule counters."""
        try:
            return self._cache["ignored_tables"]  # type: ignore[no-any-return]
        except KeyError:
            # The stamps themselves, and the rules' counts, which no page shows: the
            # batches the middleware writes while serving GETs move no stamp.
            tables = frozenset(self._get("CONDITIONAL_IGNORED_TABLES")) | {
                "django_conditional_changestamp",
                "django_conditional_rulecounter",
            }
            self._cache["ignored_tables"] = tables
            return tables

    @property
    def stamp_tracking(self) -> bool:
        """``CONDITIONAL_STAMP_TRACKING``: mirror Redis stamps in each process."""
        return bool(self._get("CONDITIONAL_STAMP_TRACKING"))

    @property
    def local_cache_size(self) -> int:
        """``CONDITIONAL_LOCAL_CACHE_SIZE``: derived validators kept in each process."""
        return int(self._get("CONDITIONAL_LOCAL_CACHE_SIZE"))

    @property
    def stamp_cache(self) -> str | None:
        """``CONDITIONAL_STAMP_CACHE``: the cache alias holding stamps, or None for the database."""
        value = self._get("CONDITIONAL_STAMP_CACHE")
        return None if value is None else str(value)

    @property
    def stamp_lease(self) -> float:
        """``CONDITIONAL_STAMP_LEASE``: seconds a write's stamps stay in flight at most."""
        return float(self._get("CONDITIONAL_STAMP_LEASE"))

    @property
    def mirror_window(self) -> float:
        """``CONDITIONAL_STAMP_MIRROR_WINDOW``: how long a Redis stamp mirror stays trusted."""
        return float(self._get("CONDITIONAL_STAMP_MIRROR_WINDOW"))

    @property
    def rules_refresh(self) -> float:
        """``CONDITIONAL_RULES_REFRESH``: seconds between checks that the rules are current."""
        return float(self._get("CONDITIONAL_RULES_REFRESH"))

    @property
    def rules_count_batch(self) -> int:
        """``CONDITIONAL_RULES_COUNT_BATCH``: counted requests before a flush."""
        return int(self._get("CONDITIONAL_RULES_COUNT_BATCH"))

    @property
    def rules_count_interval(self) -> float:
        """``CONDITIONAL_RULES_COUNT_INTERVAL``: seconds between flushes of the counts."""
        return float(self._get("CONDITIONAL_RULES_COUNT_INTERVAL"))

    @property
    def require_precondition(self) -> bool:
        """``CONDITIONAL_REQUIRE_PRECONDITION``: 428 for unguarded writes to one object."""
        return bool(self._get("CONDITIONAL_REQUIRE_PRECONDITION"))

    def cache_settings(self, alias: str) -> dict[str, Any]:
        """The ``CACHES`` entry of cache ``alias``."""
        return dict(settings.CACHES[alias])

    @property
    def hash_key(self) -> bytes:
        """The key of the entity-tag hash, derived from ``SECRET_KEY``.

        Keyed so that a tag reveals nothing (no primary keys, counts or
        versions) and cannot be forged or predicted without the secret.
        """
        try:
            return self._cache["hash_key"]  # type: ignore[no-any-return]
        except KeyError:
            key = hashlib.blake2b(
                str(settings.SECRET_KEY).encode(), digest_size=32, person=b"dj-conditional"
            ).digest()
            self._cache["hash_key"] = key
            return key


conf = Settings()


@receiver(setting_changed)
def _clear_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith(PREFIX) or setting in _DEPENDENCIES:
        conf.clear()
