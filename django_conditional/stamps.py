"""Per-table change stamps: read them, move them, and know when they moved.

A stamp is a 63-bit token per database alias and table, replaced after
every committed write to the table. A token never repeats (it only grows),
so a validator cached under an old one can never pass for current,
whatever was lost, evicted or flushed in between. Each token also carries
the time of its move on the store's own clock (``stamp_clock``): one clock
for every process, whatever their machines' clocks say, from which pages
get an exact ``Last-Modified``.

Stamps live in the database by default (``ChangeStamp``, one row per table,
also what the opt-in triggers write; the database's clock), or in a Django
cache shared by every process when ``CONDITIONAL_STAMP_CACHE`` names one
(Redis's clock; other caches have none, so their pages send no date).
Either way a read of any number of stamps is one round trip.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Protocol

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.core.signals import setting_changed
from django.db import OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.dispatch import receiver

from django_conditional.conf import conf
from django_conditional.models import ChangeStamp
from django_conditional.stamp_clock import (
    MAX_RATE_ERROR,
    ClockSample,
    is_settled,
    next_token,
    token_from_millis,
    token_seconds,
)

__all__ = [
    "STAMP_KEY_PREFIX",
    "CacheStampStore",
    "DatabaseStampStore",
    "PerThreadByAlias",
    "ProcessStampStore",
    "StampStore",
    "close_stamp_stores",
    "date_is_settled",
    "following_token_sql",
    "get_stamp_store",
    "new_token",
    "note_statement",
    "read_stamps",
    "snapshot_age",
    "stamps_date",
    "token_sql",
]


# What every stamp's cache key starts with. "stamp2": tokens carry their
# move's time; the random tokens of 0.1 under "stamp:" are never read as dates.
STAMP_KEY_PREFIX = "django_conditional:stamp2:"

# Attempts at moving database stamps before giving up (and logging).
_MOVE_ATTEMPTS = 3

_last_local_token: int | None = None
_local_token_lock = threading.Lock()


def new_token() -> int:
    """A fresh token dated by this process's clock, greater than any it gave before."""
    global _last_local_token
    with _local_token_lock:
        _last_local_token = next_token(_last_local_token, _now_millis())
        return _last_local_token


def _now_millis() -> int:
    return time.time_ns() // 1_000_000


class PerThreadByAlias:
    """A value per thread and database alias: what this thread's last stamp read saw."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self, alias: str) -> Any:
        """The value this thread set for ``alias``, or None."""
        values: dict[str, Any] = getattr(self._local, "values", {})
        return values.get(alias)

    def set(self, alias: str, value: Any) -> None:
        """Set this thread's value for ``alias``."""
        values = getattr(self._local, "values", None)
        if values is None:
            values = self._local.values = {}
        values[alias] = value


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

    def has_clock(self, alias: str) -> bool:
        """Whether tokens of ``alias`` are dated by one clock that every process shares."""
        ...

    def clock_bound(self, alias: str, last_modified: float) -> float | None:
        """A time the store's clock had reached when this thread last read ``alias``'s stamps.

        Seconds since the epoch on the store's clock, or None when unknown
        (no clock, or a read inside a transaction whose snapshot may be
        older). ``last_modified`` is the date to settle: a store may read
        its clock once more when its bound does not.
        """
        ...


# SQL for the database's clock in whole milliseconds since the epoch, by vendor.
# Reads take a time their snapshot cannot precede: PostgreSQL's transaction
# start; MySQL's and SQLite's statement start, which inside a transaction
# snapshot_age corrects for. Moves take the time they run, after the write
# they follow committed.
_READ_CLOCK_SQL = {
    "postgresql": "CAST(FLOOR(EXTRACT(EPOCH FROM transaction_timestamp()) * 1000) AS BIGINT)",
    "mysql": "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000",
    "sqlite": "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
}
_MOVE_CLOCK_SQL = {
    **_READ_CLOCK_SQL,
    "postgresql": "CAST(FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT)",
}
# A random number in [0, TOKEN_SPAN), by vendor.
_RANDOM_PART_SQL = {
    "postgresql": "CAST(FLOOR(random() * 1000000) AS BIGINT)",
    "mysql": "FLOOR(RAND() * 1000000)",
    # No "%": these statements also run with parameters, where it is a placeholder.
    "sqlite": "ABS(random() / 9223372036855)",
}


def token_sql(vendor: str) -> str:
    """SQL for a fresh token dated by the database's clock (``stamp_clock`` layout)."""
    return f"({_MOVE_CLOCK_SQL[vendor]}) * 1000000 + {_RANDOM_PART_SQL[vendor]}"


def following_token_sql(vendor: str, old: str, fresh: str) -> str:
    """SQL for ``stamp_clock.next_token``: one more than ``old`` unless ``fresh`` is later.

    An old token over a second ahead of the fresh one is not followed.
    """
    del vendor  # the same CASE expression suits every vendor
    return (
        f"CASE WHEN {old} >= {fresh} AND {old} - {fresh} < 1000000000 "
        f"THEN {old} + 1 ELSE {fresh} END"
    )


class DatabaseStampStore:
    """Stamps in the ``django_conditional_changestamp`` table of each database."""

    reads_from_memory = False

    def __init__(self) -> None:
        # This thread's last clock reading, by alias (read with the stamps).
        self._readings = PerThreadByAlias()

    def read(self, alias: str, tables: Sequence[str]) -> tuple[int, ...]:
        """Read with one precompiled statement; tables never stamped get a row first."""
        if not tables:
            return ()
        connection = connections[alias]
        vendor = connection.vendor
        sql = _select_sql(connection.ops.quote_name("table"), len(tables), vendor)
        with connection.cursor() as cursor:
            cursor.execute(sql, list(tables))
            rows = cursor.fetchall()
        missing = [table for table in tables if table not in {row[0] for row in rows}]
        if missing:
            # First read of a table: give it a token. A concurrent first
            # reader's token wins, and the re-read sees it.
            self._insert_missing(connection, missing)
            with connection.cursor() as cursor:
                cursor.execute(sql, list(tables))
                rows = cursor.fetchall()
        found = {row[0]: row[1] for row in rows}
        self._remember_clock(connection, rows)
        return tuple(int(found[table]) for table in tables)

    def has_clock(self, alias: str) -> bool:
        """True on PostgreSQL, MySQL/MariaDB and SQLite (the database's clock)."""
        return connections[alias].vendor in _READ_CLOCK_SQL

    def clock_bound(self, alias: str, last_modified: float) -> float | None:
        """The database's clock as this thread's last read of ``alias`` saw it."""
        reading: float | None = self._readings.get(alias)
        return reading

    def _remember_clock(self, connection: BaseDatabaseWrapper, rows: list[Any]) -> None:
        reading = None
        if rows and rows[0][2] is not None:
            reading = int(rows[0][2]) / 1000
        self._readings.set(connection.alias, reading)

    def _insert_missing(self, connection: BaseDatabaseWrapper, missing: list[str]) -> None:
        vendor = connection.vendor
        if vendor not in _READ_CLOCK_SQL:
            ChangeStamp.objects.using(connection.alias).bulk_create(
                [ChangeStamp(table=table, token=new_token()) for table in missing],
                ignore_conflicts=True,
            )
            return
        quote = connection.ops.quote_name
        rows = ", ".join([f"(%s, {token_sql(vendor)})"] * len(missing))
        insert = "INSERT IGNORE INTO" if vendor == "mysql" else "INSERT INTO"
        on_conflict = "" if vendor == "mysql" else f" ON CONFLICT ({quote('table')}) DO NOTHING"
        with connection.cursor() as cursor:
            cursor.execute(
                f"{insert} {quote(STAMP_TABLE)} ({quote('table')}, {quote('token')}) "
                f"VALUES {rows}{on_conflict}",
                missing,
            )

    def move(self, alias: str, tables: Iterable[str]) -> None:
        """Upsert following tokens, in table order so concurrent movers cannot deadlock."""
        ordered = sorted(set(tables))
        if not ordered:
            return
        connection = connections[alias]
        for attempt in range(_MOVE_ATTEMPTS):
            try:
                self._upsert(connection, ordered)
                return
            except OperationalError:  # noqa: PERF203 (a retry loop; the cost is the point)
                # A deadlock or lock timeout against a trigger holding a stamp
                # row: the write has committed, so the stamps must still move.
                if attempt == _MOVE_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))

    def _upsert(self, connection: BaseDatabaseWrapper, ordered: list[str]) -> None:
        vendor = connection.vendor
        if vendor not in _READ_CLOCK_SQL:
            # Another backend: tokens dated by this process's clock, never sent as dates.
            unique_fields = (
                ["table"] if connection.features.supports_update_conflicts_with_target else None
            )
            ChangeStamp.objects.using(connection.alias).bulk_create(
                [ChangeStamp(table=table, token=new_token()) for table in ordered],
                update_conflicts=True,
                unique_fields=unique_fields,
                update_fields=["token"],
            )
            return
        quote = connection.ops.quote_name
        sql = _upsert_sql(vendor, quote(STAMP_TABLE), quote("table"), quote("token"), len(ordered))
        with connection.cursor() as cursor:
            cursor.execute(sql, ordered)


STAMP_TABLE = "django_conditional_changestamp"


def snapshot_age(connection: BaseDatabaseWrapper) -> float | None:
    """How long before now the connection's next read's snapshot may have been taken.

    0 outside a transaction (every statement takes a fresh snapshot) and on
    PostgreSQL at READ COMMITTED (every statement does there too). Otherwise
    the time since the transaction's first statement: MySQL's REPEATABLE
    READ and SQLite take the snapshot at the first read, which is no
    earlier. None when no statement was seen (``note_statement``).
    """
    if not connection.in_atomic_block:
        return 0.0
    if connection.vendor == "postgresql":
        level = (connection.settings_dict.get("OPTIONS") or {}).get("isolation_level")
        # psycopg's IsolationLevel.READ_COMMITTED is 1.
        if level is None or int(level) == 1:
            return 0.0
    began: float | None = getattr(connection, _BEGAN_ATTRIBUTE, None)
    return None if began is None else time.monotonic() - began


_BEGAN_ATTRIBUTE = "_conditional_began"


def note_statement(connection: BaseDatabaseWrapper, sql: str) -> None:
    """Called for every statement: remember when the current transaction began.

    Its first statement inside an atomic block (SQLite's explicit BEGIN
    starts one anew). Django commits and rolls back without a statement, so
    a transaction may inherit its predecessor's time until the connection's
    next statement outside a transaction: an earlier time, which only ever
    withholds a date.
    """
    if connection.in_atomic_block:
        if sql.startswith("BEGIN") or getattr(connection, _BEGAN_ATTRIBUTE, None) is None:
            setattr(connection, _BEGAN_ATTRIBUTE, time.monotonic())
    elif getattr(connection, _BEGAN_ATTRIBUTE, None) is not None:
        setattr(connection, _BEGAN_ATTRIBUTE, None)


@lru_cache(maxsize=256)
def _select_sql(quoted_table_column: str, count: int, vendor: str) -> str:
    placeholders = ", ".join(["%s"] * count)
    clock = _READ_CLOCK_SQL.get(vendor, "NULL")
    return (
        f"SELECT {quoted_table_column}, token, {clock} FROM {STAMP_TABLE} "
        f"WHERE {quoted_table_column} IN ({placeholders})"
    )


@lru_cache(maxsize=256)
def _upsert_sql(vendor: str, stamp_table: str, table: str, token: str, count: int) -> str:
    rows = ", ".join([f"(%s, {token_sql(vendor)})"] * count)
    insert = f"INSERT INTO {stamp_table} ({table}, {token}) VALUES {rows}"
    if vendor == "mysql":
        # VALUES(token): the row's fresh token; MariaDB has no row alias.
        following = following_token_sql(vendor, token, f"VALUES({token})")
        return f"{insert} ON DUPLICATE KEY UPDATE {token} = {following}"
    old = f"{stamp_table}.{token}" if vendor == "postgresql" else token
    following = following_token_sql(vendor, old, f"excluded.{token}")
    return f"{insert} ON CONFLICT ({table}) DO UPDATE SET {token} = {following}"


class CacheStampStore:
    """Stamps in a Django cache (Redis, Memcached, the database cache) shared by all processes.

    With Django's ``RedisCache`` tokens are made by a script on the server,
    from its clock, and each read also reads that clock (``TIME`` first, in
    the same round trip). Other caches have no clock every process shares:
    their tokens are dated by the writer's clock and never sent as dates.
    """

    reads_from_memory = False

    def __init__(self, cache_alias: str) -> None:
        self.cache_alias = cache_alias
        self.is_redis = isinstance(caches[cache_alias], RedisCache)
        self.clock = ClockSample(self._read_redis_clock) if self.is_redis else None
        self._readings = PerThreadByAlias()
        self._script: Any = None  # redis-py's Script for _MOVE_SCRIPT, registered on first use

    @staticmethod
    def key(alias: str, table: str) -> str:
        """The cache key of one table's stamp."""
        return f"{STAMP_KEY_PREFIX}{alias}:{table}"

    def read(self, alias: str, tables: Sequence[str]) -> tuple[int, ...]:
        """One round trip; a stamp never set (or evicted) gets a fresh token first."""
        if not tables:
            return ()
        if self.is_redis:
            return self._read_redis(alias, tables)
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
        """Replace the tokens, kept until replaced again."""
        tables = sorted(set(tables))
        if not tables:
            return
        if self.is_redis:
            self._run_script(self._redis_keys(alias, tables), "move")
            return
        values = {self.key(alias, table): new_token() for table in tables}
        caches[self.cache_alias].set_many(values, timeout=None)

    def has_clock(self, alias: str) -> bool:
        """True for Redis (its clock); other caches have none."""
        return self.is_redis

    def clock_bound(self, alias: str, last_modified: float) -> float | None:
        """Redis's clock as this thread's last read saw it; None for other caches."""
        reading: float | None = self._readings.get(alias)
        return reading

    # --- Redis ------------------------------------------------------------------------

    def _client(self) -> Any:
        # The primary: a replica could answer with a stamp older than a move.
        return caches[self.cache_alias]._cache.get_client(write=True)  # type: ignore[attr-defined]

    def _redis_keys(self, alias: str, tables: Sequence[str]) -> list[str]:
        cache = caches[self.cache_alias]
        return [cache.make_and_validate_key(self.key(alias, table)) for table in tables]

    def _read_redis(self, alias: str, tables: Sequence[str]) -> tuple[int, ...]:
        keys = self._redis_keys(alias, tables)
        pipeline = self._client().pipeline(transaction=False)
        # TIME before MGET: the reading is from before the stamps were read.
        pipeline.time()
        pipeline.mget(keys)
        (seconds, microseconds), values = pipeline.execute()
        reading = seconds + microseconds / 1_000_000
        assert self.clock is not None
        self.clock.observe(reading)
        self._readings.set(alias, reading)
        tokens = [_as_token(value) for value in values]
        if None in tokens:
            missing = [key for key, token in zip(keys, tokens, strict=True) if token is None]
            added = dict(zip(missing, self._run_script(missing, "add"), strict=True))
            tokens = [
                token if token is not None else _as_token(added[key])
                for key, token in zip(keys, tokens, strict=True)
            ]
        return tuple(token if token is not None else new_token() for token in tokens)

    def _run_script(self, keys: list[str], mode: str) -> list[Any]:
        client = self._client()
        if self._script is None:
            self._script = client.register_script(_MOVE_SCRIPT)
        script = self._script
        random_parts = [str(token_from_millis(0)) for _key in keys]  # 0 ms: the random part
        result: list[Any] = script(keys=keys, args=[mode, *random_parts], client=client)
        return result

    def _read_redis_clock(self) -> float:
        seconds, microseconds = self._client().time()
        return float(seconds + microseconds / 1_000_000)


def _as_token(value: Any) -> int | None:
    """A stamp token read from Redis; None for a missing key or a value that is no token."""
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# Moves ("move") or creates ("add") stamps with tokens from Redis's clock, in one
# atomic step (stamp_clock's layout, as 19 decimal digits: Lua numbers are
# doubles, so the digits are handled as text). ARGV: the mode, then a random
# part per key. Returns every key's token.
_MOVE_SCRIPT = """
local now = redis.call('TIME')
local millis = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local tokens = {}
for i, key in ipairs(KEYS) do
  local old = redis.call('GET', key)
  local token = string.format('%d%06d', millis, tonumber(ARGV[i + 1]))
  if ARGV[1] == 'add' and old and tonumber(old) then
    token = old
  elseif old and string.len(old) == 19 and old >= token then
    local old_millis = tonumber(string.sub(old, 1, 13))
    if old_millis <= millis + 1000 then
      local count = tonumber(string.sub(old, 14)) + 1
      if count >= 1000000 then
        old_millis = old_millis + 1
        count = 0
      end
      token = string.format('%d%06d', old_millis, count)
    end
  end
  if token ~= old then
    redis.call('SET', key, token)
  end
  tokens[i] = token
end
return tokens
"""


class ProcessStampStore:
    """Stamps in this process's memory: a ``LocMemCache`` stamp cache, without its per-key costs.

    Django's local-memory cache validates, locks and unpickles every key; a
    warm 304 reads stamps on every request. Like any local-memory cache,
    correct for one process only (check W002 says so); its clock is this
    process's.
    """

    reads_from_memory = True

    def __init__(self) -> None:
        # Tokens by database alias, then table.
        self._tokens: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    def read(self, alias: str, tables: Sequence[str]) -> tuple[int, ...]:
        """The tokens; a table never stamped gets one."""
        tokens = self._tokens.get(alias)
        if tokens is not None:
            try:
                return tuple([tokens[table] for table in tables])
            except KeyError:
                pass
        with self._lock:
            tokens = self._tokens.setdefault(alias, {})
            return tuple([tokens.setdefault(table, new_token()) for table in tables])

    def move(self, alias: str, tables: Iterable[str]) -> None:
        """Following tokens for ``tables``."""
        with self._lock:
            tokens = self._tokens.setdefault(alias, {})
            millis = _now_millis()
            for table in set(tables):
                tokens[table] = next_token(tokens.get(table), millis)

    def has_clock(self, alias: str) -> bool:
        """True: this process's clock dates every move here."""
        return True

    def clock_bound(self, alias: str, last_modified: float) -> float | None:
        """This process's clock: every move here is dated by it."""
        return time.time()

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


def stamps_date(alias: str, stamps: Sequence[int]) -> float | None:
    """When the newest of ``stamps`` (just read from ``alias``) moved; None without one clock.

    The exact date of a page built from them: each write to the tables
    they guard moved one of them, after its commit.
    """
    if not stamps or not get_stamp_store().has_clock(alias):
        return None
    return token_seconds(max(stamps))


def date_is_settled(alias: str, last_modified: float) -> bool:
    """Whether a date from the stamps this thread just read from ``alias`` may be sent.

    The store's clock must have left the date's second before the data that
    is read after the stamps: before its snapshot, in a transaction
    (``snapshot_age``).
    """
    age = snapshot_age(connections[alias])
    if age is None:
        return False
    bound = get_stamp_store().clock_bound(alias, last_modified)
    if bound is not None:
        bound -= age * (1 + MAX_RATE_ERROR)
    return is_settled(last_modified, bound)


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
