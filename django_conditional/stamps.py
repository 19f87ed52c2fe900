"""Per-table change stamps: read them, move them.

A stamp is a random 63-bit token per database alias and table, replaced
after every committed write to the table. Tokens, not counters or clocks: a
token never repeats, so a validator cached under an old one can never pass
for current, whatever was lost, evicted or flushed in between.

Stamps live in the database by default (``ChangeStamp``, one row per table,
also what the opt-in triggers write), or in a Django cache shared by every
process when ``CONDITIONAL_STAMP_CACHE`` names one. Either way a read of any
number of stamps is one round trip.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Protocol

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.signals import setting_changed
from django.db import OperationalError, connections
from django.dispatch import receiver

from django_conditional.conf import conf
from django_conditional.models import ChangeStamp

__all__ = [
    "STAMP_KEY_PREFIX",
    "CacheStampStore",
    "DatabaseStampStore",
    "ProcessStampStore",
    "StampStore",
    "close_stamp_stores",
    "get_stamp_store",
    "new_token",
    "read_stamps",
]


# What every stamp's cache key starts with.
STAMP_KEY_PREFIX = "django_conditional:stamp:"

# Attempts at moving database stamps before giving up (and logging).
_MOVE_ATTEMPTS = 3


def new_token() -> int:
    """A fresh random stamp token (63 bits, so it fits a signed BIGINT)."""
    return secrets.randbits(63)


class StampStore(Protocol):
    """Where stamps live."""

    @property
    def reads_from_memory(self) -> bool:
        """Whether a read needs no I/O (it may then run on an event loop)."""
        ...

    def read(self, alias: str, tables: Sequence[str]) -> tuple[int, ...]:
        """The current tokens of ``tables`` in database ``alias``, in order; one round trip."""
        ...

    def move(self, alias: str, tables: Iterable[str]) -> None:
        """Replace the tokens of ``tables``: called after the writes committed."""
        ...


class DatabaseStampStore:
    """Stamps in the ``django_conditional_changestamp`` table of each database."""

    reads_from_memory = False

    def read(self, alias: str, tables: Sequence[str]) -> tuple[int, ...]:
        """Read with one precompiled statement; tables never stamped get a row first."""
        if not tables:
            return ()
        connection = connections[alias]
        sql = _select_sql(connection.ops.quote_name("table"), len(tables))
        with connection.cursor() as cursor:
            cursor.execute(sql, list(tables))
            found = dict(cursor.fetchall())
        missing = [table for table in tables if table not in found]
        if missing:
            # First read of a table: give it a token. ignore_conflicts makes a
            # concurrent first reader's token win, and the re-read sees it.
            ChangeStamp.objects.using(alias).bulk_create(
                [ChangeStamp(table=table, token=new_token()) for table in missing],
                ignore_conflicts=True,
            )
            with connection.cursor() as cursor:
                cursor.execute(
                    _select_sql(connection.ops.quote_name("table"), len(missing)), missing
                )
                found.update(cursor.fetchall())
        return tuple(int(found[table]) for table in tables)

    def move(self, alias: str, tables: Iterable[str]) -> None:
        """Upsert fresh tokens, in table order so concurrent movers cannot deadlock."""
        ordered = sorted(set(tables))
        if not ordered:
            return
        connection = connections[alias]
        unique_fields = (
            ["table"] if connection.features.supports_update_conflicts_with_target else None
        )
        for attempt in range(_MOVE_ATTEMPTS):
            try:
                ChangeStamp.objects.using(alias).bulk_create(
                    [ChangeStamp(table=table, token=new_token()) for table in ordered],
                    update_conflicts=True,
                    unique_fields=unique_fields,
                    update_fields=["token"],
                )
                return
            except OperationalError:  # noqa: PERF203 (a retry loop; the cost is the point)
                # A deadlock or lock timeout against a trigger holding a stamp
                # row: the write has committed, so the stamps must still move.
                if attempt == _MOVE_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))


@lru_cache(maxsize=256)
def _select_sql(quoted_table_column: str, count: int) -> str:
    placeholders = ", ".join(["%s"] * count)
    return (
        f"SELECT {quoted_table_column}, token FROM django_conditional_changestamp "
        f"WHERE {quoted_table_column} IN ({placeholders})"
    )


class CacheStampStore:
    """Stamps in a Django cache (Redis, Memcached, the database cache) shared by all processes."""

    reads_from_memory = False

    def __init__(self, cache_alias: str) -> None:
        self.cache_alias = cache_alias

    @staticmethod
    def key(alias: str, table: str) -> str:
        """The cache key of one table's stamp."""
        return f"{STAMP_KEY_PREFIX}{alias}:{table}"

    def read(self, alias: str, tables: Sequence[str]) -> tuple[int, ...]:
        """One ``get_many``; a stamp never set (or evicted) gets a fresh token first."""
        if not tables:
            return ()
        cache = caches[self.cache_alias]
        keys = [self.key(alias, table) for table in tables]
        found = cache.get_many(keys)
        missing = [key for key in keys if key not in found]
        if missing:
            for key in missing:
                cache.add(key, new_token(), timeout=None)
            found.update(cache.get_many(missing))
        # A cache that stores nothing (DummyCache) yields a new token per read:
        # nothing then matches, which is slow but never stale.
        return tuple(int(found.get(key, new_token())) for key in keys)

    def move(self, alias: str, tables: Iterable[str]) -> None:
        """One ``set_many`` of fresh tokens, kept until replaced."""
        values = {self.key(alias, table): new_token() for table in set(tables)}
        if values:
            caches[self.cache_alias].set_many(values, timeout=None)


class ProcessStampStore:
    """Stamps in this process's memory: a ``LocMemCache`` stamp cache, without its per-key costs.

    Django's local-memory cache validates, locks and unpickles every key; a
    warm 304 reads stamps on every request. Like any local-memory cache,
    correct for one process only (check W002 says so).
    """

    reads_from_memory = True

    def __init__(self) -> None:
        # Tokens by database alias, then table.
        self._tokens: dict[str, dict[str, int]] = {}

    def read(self, alias: str, tables: Sequence[str]) -> tuple[int, ...]:
        """The tokens; a table never stamped gets one."""
        tokens = self._tokens.get(alias)
        if tokens is not None:
            try:
                return tuple([tokens[table] for table in tables])
            except KeyError:
                pass
        tokens = self._tokens.setdefault(alias, {})
        return tuple([tokens.setdefault(table, new_token()) for table in tables])

    def move(self, alias: str, tables: Iterable[str]) -> None:
        """Fresh tokens for ``tables``."""
        tokens = self._tokens.setdefault(alias, {})
        for table in set(tables):
            tokens[table] = new_token()

    def clear(self) -> None:
        """Forget every stamp, as a restart does: the next reads get fresh tokens."""
        self._tokens.clear()


_DATABASE_STORE = DatabaseStampStore()
# One store per stamp cache alias, made on first use (a tracking store holds
# connections); forgotten when the settings change.
_stores: dict[str, StampStore] = {}
# The store of the current settings, once worked out (read on every request).
_current_store: StampStore | None = None
# Local-memory stamps by the cache's LOCATION: aliases naming the same
# LOCATION share them, as they share a LocMemCache.
_process_stores: dict[str, ProcessStampStore] = {}


def get_stamp_store() -> StampStore:
    """The store configured by ``CONDITIONAL_STAMP_CACHE`` (the database when unset)."""
    store = _current_store
    if store is None:
        store = _resolve_stamp_store()
    return store


def _resolve_stamp_store() -> StampStore:
    global _current_store
    cache_alias = conf.stamp_cache
    if cache_alias is None:
        _current_store = _DATABASE_STORE
        return _DATABASE_STORE
    store = _stores.get(cache_alias)
    if store is None:
        store = _stores[cache_alias] = _make_cache_store(cache_alias)
    _current_store = store
    return store


def _make_cache_store(cache_alias: str) -> StampStore:
    from django_conditional.stamp_tracking import (
        TrackedRedisStampStore,
        tracking_unavailable_reason,
    )

    cache = caches[cache_alias]
    if isinstance(cache, LocMemCache):
        location = str(conf.cache_settings(cache_alias).get("LOCATION", ""))
        return _process_stores.setdefault(location, ProcessStampStore())
    if conf.stamp_tracking and tracking_unavailable_reason(cache_alias) is None:
        return TrackedRedisStampStore(cache_alias)
    return CacheStampStore(cache_alias)


def read_stamps(alias: str, tables: Sequence[str]) -> tuple[int, ...]:
    """The current tokens of ``tables`` in database ``alias``."""
    return get_stamp_store().read(alias, tables)


@receiver(setting_changed)
def _forget_stores(*, setting: str, **kwargs: Any) -> None:
    if setting in {"CACHES", "CONDITIONAL_STAMP_CACHE", "CONDITIONAL_STAMP_TRACKING"}:
        close_stamp_stores()


def close_stamp_stores() -> None:
    """Forget the stores made so far, closing their connections."""
    global _current_store
    _current_store = None
    stores = list(_stores.values())
    _stores.clear()
    for store in stores:
        close = getattr(store, "close", None)
        if close is not None:
            close()
