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

Failing safe (README, "What happens when ..."). A read that fails raises
``StampsUnavailable`` (after one try; ``store_health``'s breaker then
spares the next requests the wait), and the page is served without
validators. A write moves its stamps twice: once just before its commit
(``prepare``; a failure rolls the write back with ``StampsNotMoved``) and
once after it (``move``, which dates it). In the database both are in the
write's own transaction and after it; in a cache the first also leaves a
lease: until the second move or the lease's end (``CONDITIONAL_STAMP_LEASE``)
reads raise ``StampsInFlight`` and nothing is kept or answered 304, so
whatever becomes of the writer, no validator of the state before the
write outlives its commit.
"""

from __future__ import annotations

import math
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

from django_conditional import store_health
from django_conditional.conf import conf
from django_conditional.models import ChangeStamp
from django_conditional.stamp_clock import (
    MAX_RATE_ERROR,
    ClockSample,
    is_dated,
    is_settled,
    next_token,
    token_from_millis,
    token_seconds,
)
from django_conditional.stamp_errors import (
    StampsInFlight,
    StampsUnavailable,
    is_missing_stamp_table,
)

__all__ = [
    "STAMP_KEY_PREFIX",
    "CacheStampStore",
    "DatabaseStampStore",
    "PerThreadByAlias",
    "ProcessStampStore",
    "StampStore",
    "StampsInFlight",
    "StampsUnavailable",
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

    @property
    def health(self) -> store_health.Breaker:
        """This store's circuit breaker."""
        ...

    @property
    def prepares(self) -> bool:
        """Whether writes must ``prepare`` before their commit (every store but process memory)."""
        ...

    def read(self, alias: str, tables: Sequence[str]) -> tuple[int, ...]:
        """The current tokens of ``tables`` in database ``alias``, in order; one round trip.

        Raises ``StampsInFlight`` while a write to one of them is between its moves.
        """
        ...

    def prepare(self, alias: str, tables: Iterable[str]) -> None:
        """Move the tokens of ``tables`` just before a write's commit (undated, in flight)."""
        ...

    def move(self, alias: str, tables: Iterable[str]) -> None:
        """Replace the tokens of ``tables``: called after the writes committed."""
        ...

    def commit_delay(self) -> float:
        """Seconds a commit must not return before, after ``prepare``: 0 unless mirrored."""
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
    """Stamps in the ``django_conditional_changestamp`` table of each database.

    ``prepare`` runs in the write's transaction, so its move commits (or
    rolls back) with the write and needs no lease.
    """

    reads_from_memory = False
    prepares = True

    def __init__(self) -> None:
        # This thread's last clock reading, by alias (read with the stamps).
        self._readings = PerThreadByAlias()
        self.health = store_health.breaker("stamp table (CONDITIONAL_STAMP_CACHE = None)")

    def commit_delay(self) -> float:
        """0: the database's move commits with the write."""
        return 0.0

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

    def prepare(self, alias: str, tables: Iterable[str]) -> None:
        """Upsert undated tokens in the write's transaction, just before its commit.

        Once (no retry): a deadlock has aborted the transaction, which then
        rolls back.
        """
        ordered = sorted(set(tables))
        if ordered:
            self._upsert(connections[alias], ordered, in_flight=True)

    def move(self, alias: str, tables: Iterable[str]) -> None:
        """Upsert following tokens, in table order so concurrent movers cannot deadlock."""
        ordered = sorted(set(tables))
        if not ordered:
            return
        connection = connections[alias]
        for attempt in range(_MOVE_ATTEMPTS):
            try:
                self._upsert(connection, ordered, in_flight=False)
                return
            except OperationalError:  # noqa: PERF203 (a retry loop; the cost is the point)
                # A deadlock or lock timeout against a trigger holding a stamp
                # row: the write has committed, so the stamps must still move.
                if attempt == _MOVE_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))

    def _upsert(
        self, connection: BaseDatabaseWrapper, ordered: list[str], *, in_flight: bool
    ) -> None:
        vendor = connection.vendor
        if vendor not in _READ_CLOCK_SQL:
            # Another backend: tokens dated by this process's clock, never sent as dates.
            unique_fields = (
                ["table"] if connection.features.supports_update_conflicts_with_target else None
            )
            sign = -1 if in_flight else 1
            ChangeStamp.objects.using(connection.alias).bulk_create(
                [ChangeStamp(table=table, token=sign * new_token()) for table in ordered],
                update_conflicts=True,
                unique_fields=unique_fields,
                update_fields=["token"],
            )
            return
        quote = connection.ops.quote_name
        sql = _upsert_sql(
            vendor, quote(STAMP_TABLE), quote("table"), quote("token"), len(ordered), in_flight
        )
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
def _upsert_sql(
    vendor: str, stamp_table: str, table: str, token: str, count: int, in_flight: bool
) -> str:
    # A move before the commit stores its token negated (stamp_clock.is_dated);
    # either move follows the old token's magnitude, so tokens never repeat.
    sign = "-" if in_flight else ""
    rows = ", ".join([f"(%s, {sign}({token_sql(vendor)}))"] * count)
    insert = f"INSERT INTO {stamp_table} ({table}, {token}) VALUES {rows}"
    if vendor == "mysql":
        # VALUES(token): the row's fresh token; MariaDB has no row alias.
        following = following_token_sql(vendor, f"ABS({token})", f"ABS(VALUES({token}))")
        return f"{insert} ON DUPLICATE KEY UPDATE {token} = {sign}({following})"
    old = f"{stamp_table}.{token}" if vendor == "postgresql" else token
    following = following_token_sql(vendor, f"ABS({old})", f"ABS(excluded.{token})")
    return f"{insert} ON CONFLICT ({table}) DO UPDATE SET {token} = {sign}({following})"


class CacheStampStore:
    """Stamps in a Django cache (Redis, Memcached, the database cache) shared by all processes.

    With Django's ``RedisCache`` tokens are made by a script on the server,
    from its clock, and each read also reads that clock (``TIME`` first, in
    the same round trip). Other caches have no clock every process shares:
    their tokens are dated by the writer's clock and never sent as dates.

    A write's ``prepare`` leaves a lease key per table, which expires by
    itself after ``CONDITIONAL_STAMP_LEASE`` seconds (Redis's or Memcached's
    own expiry) and which the move after the commit deletes; reads fetch
    the leases with the stamps, in the same round trip.
    """

    reads_from_memory = False
    prepares = True

    def __init__(self, cache_alias: str) -> None:
        self.cache_alias = cache_alias
        self.is_redis = isinstance(caches[cache_alias], RedisCache)
        self.clock = ClockSample(self._read_redis_clock) if self.is_redis else None
        self._readings = PerThreadByAlias()
        self._script: Any = None  # redis-py's Script for _MOVE_SCRIPT, registered on first use
        self.health = store_health.breaker(f"stamp cache {cache_alias!r} (CONDITIONAL_STAMP_CACHE)")

    @staticmethod
    def key(alias: str, table: str) -> str:
        """The cache key of one table's stamp."""
        return f"{STAMP_KEY_PREFIX}{alias}:{table}"

    @staticmethod
    def lease_key(alias: str, table: str) -> str:
        """The cache key of one table's lease: present while a write is in flight."""
        return f"{STAMP_KEY_PREFIX}lease/{alias}:{table}"

    def commit_delay(self) -> float:
        """The mirror window with Redis tracking on (``stamp_tracking``), else 0."""
        return conf.mirror_window if self.is_redis and conf.stamp_tracking else 0.0

    def read(self, alias: str, tables: Sequence[str]) -> tuple[int, ...]:
        """One round trip; a stamp never set (or evicted) gets a fresh token first."""
        if not tables:
            return ()
        if self.is_redis:
            tokens, lease_ends = self.read_redis(alias, tables)
            if any(lease_ends):
                raise StampsInFlight(alias)
            return tokens
        cache = caches[self.cache_alias]
        keys = [self.key(alias, table) for table in tables]
        leases = [self.lease_key(alias, table) for table in tables]
        found = cache.get_many(keys + leases)
        if any(lease in found for lease in leases):
            raise StampsInFlight(alias)
        missing = [key for key in keys if key not in found]
        if missing:
            for key in missing:
                cache.add(key, new_token(), timeout=None)
            found.update(cache.get_many(missing))
        # A cache that stores nothing (DummyCache) yields a new token per read:
        # nothing then matches, which is slow but never stale.
        return tuple(int(found.get(key, new_token())) for key in keys)

    def prepare(self, alias: str, tables: Iterable[str]) -> None:
        """Undated tokens and a lease per table, before the write's commit."""
        self._move(alias, tables, in_flight=True)

    def move(self, alias: str, tables: Iterable[str]) -> None:
        """Replace the tokens, kept until replaced again, and end their leases."""
        self._move(alias, tables, in_flight=False)

    def _move(self, alias: str, tables: Iterable[str], *, in_flight: bool) -> None:
        tables = sorted(set(tables))
        if not tables:
            return
        if self.is_redis:
            mode = "prepare" if in_flight else "move"
            keys = self._redis_keys(alias, tables)
            leases = self._redis_keys(alias, tables, lease=True)
            self._run_script(keys + leases, mode)
            return
        # Without a script nothing is atomic: leases go up before the tokens change,
        # and reads fetch the tokens before the leases, so a read that sees a
        # token of a write in flight sees its lease too (no validator is kept
        # under it), even if the move after the commit never comes.
        cache = caches[self.cache_alias]
        leases = [self.lease_key(alias, table) for table in tables]
        if in_flight:
            cache.set_many(dict.fromkeys(leases, 1), timeout=max(1, math.ceil(conf.stamp_lease)))
        sign = -1 if in_flight else 1
        cache.set_many({self.key(alias, table): sign * new_token() for table in tables}, None)
        if not in_flight:
            cache.delete_many(leases)

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

    def _redis_keys(self, alias: str, tables: Sequence[str], *, lease: bool = False) -> list[str]:
        cache = caches[self.cache_alias]
        name = self.lease_key if lease else self.key
        return [cache.make_and_validate_key(name(alias, table)) for table in tables]

    def read_redis(self, alias: str, tables: Sequence[str]) -> tuple[tuple[int, ...], list[int]]:
        """The tokens and, per table, its lease's end (Redis milliseconds; 0 for none)."""
        keys = self._redis_keys(alias, tables)
        lease_keys = self._redis_keys(alias, tables, lease=True)
        pipeline = self._client().pipeline(transaction=False)
        # TIME before MGET: the reading is from before the stamps were read.
        pipeline.time()
        pipeline.mget(keys + lease_keys)
        (seconds, microseconds), values = pipeline.execute()
        reading = seconds + microseconds / 1_000_000
        assert self.clock is not None
        self.clock.observe(reading)
        self._readings.set(alias, reading)
        leases = [_as_token(value) or 0 for value in values[len(keys) :]]
        tokens = [_as_token(value) for value in values[: len(keys)]]
        if None in tokens:
            missing = [key for key, token in zip(keys, tokens, strict=True) if token is None]
            added = dict(zip(missing, self._run_script(missing, "add"), strict=True))
            tokens = [
                token if token is not None else _as_token(added[key])
                for key, token in zip(keys, tokens, strict=True)
            ]
        found = tuple(token if token is not None else new_token() for token in tokens)
        return found, leases

    def _run_script(self, keys: list[str], mode: str) -> list[Any]:
        client = self._client()
        if self._script is None:
            self._script = client.register_script(_MOVE_SCRIPT)
        script = self._script
        count = len(keys) // 2 if mode != "add" else len(keys)
        random_parts = [str(token_from_millis(0)) for _key in range(count)]  # 0 ms: the random part
        lease_millis = str(max(1, round(conf.stamp_lease * 1000)))
        result: list[Any] = script(
            keys=keys, args=[mode, lease_millis, *random_parts], client=client
        )
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


# Moves stamps ("move" after a commit, "prepare" before it) or creates them
# ("add") with tokens from Redis's clock, in one atomic step (stamp_clock's
# layout, as 19 decimal digits, negated for "prepare": Lua numbers are
# doubles, so the digits are handled as text). KEYS: the stamps, then for
# "move" and "prepare" their leases; "prepare" sets each lease (its end in
# Redis milliseconds, expiring then), "move" deletes it. ARGV: the mode, the
# lease in milliseconds, then a random part per stamp. Returns every stamp's token.
_MOVE_SCRIPT = """
local mode = ARGV[1]
local now = redis.call('TIME')
local millis = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local count = #KEYS
if mode ~= 'add' then count = #KEYS / 2 end
local tokens = {}
for i = 1, count do
  local key = KEYS[i]
  local old = redis.call('GET', key)
  local bare = old
  if old and string.sub(old, 1, 1) == '-' then bare = string.sub(old, 2) end
  local token = string.format('%d%06d', millis, tonumber(ARGV[i + 2]))
  if mode == 'add' and old and tonumber(old) then
    token = old
  else
    if bare and string.len(bare) == 19 and tonumber(bare) and bare >= token then
      local old_millis = tonumber(string.sub(bare, 1, 13))
      if old_millis <= millis + 1000 then
        local following = tonumber(string.sub(bare, 14)) + 1
        if following >= 1000000 then
          old_millis = old_millis + 1
          following = 0
        end
        token = string.format('%d%06d', old_millis, following)
      end
    end
    if mode == 'prepare' then token = '-' .. token end
  end
  if token ~= old then
    redis.call('SET', key, token)
  end
  if mode == 'prepare' then
    local lease = tonumber(ARGV[2])
    redis.call('SET', KEYS[count + i], tostring(millis + lease), 'PX', lease)
  elseif mode == 'move' then
    redis.call('DEL', KEYS[count + i])
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
    # One process: its move after a commit cannot be lost while it lives, and
    # its stamps die with it.
    prepares = False

    def __init__(self) -> None:
        # Tokens by database alias, then table.
        self._tokens: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()
        self.health = store_health.breaker("process stamp store")

    def prepare(self, alias: str, tables: Iterable[str]) -> None:
        """Nothing: see ``prepares``."""

    def commit_delay(self) -> float:
        """0: no other process reads these stamps."""
        return 0.0

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
    """The current tokens of ``tables`` in database ``alias``.

    Raises ``StampsUnavailable`` when the store does not answer (or its
    breaker says it did not a moment ago) and ``StampsInFlight`` while a
    write to one of the tables is in flight: the caller serves the page
    without validators. Two failures are not hidden: a stamp table that
    ``migrate`` never made (a mistake to fix, not an outage), and a failed
    read in a database transaction, which the database has aborted.
    """
    store = get_stamp_store()
    health = store.health
    if not health.allow():
        raise StampsUnavailable(health.name)
    try:
        tokens = store.read(alias, tables)
    except StampsInFlight:
        health.succeeded()
        raise
    except Exception as error:
        if is_missing_stamp_table(error) or (
            store is _DATABASE_STORE and connections[alias].in_atomic_block
        ):
            raise
        health.failed(error)
        raise StampsUnavailable(health.name) from error
    health.succeeded()
    return tokens


def stamps_date(alias: str, stamps: Sequence[int]) -> float | None:
    """When the newest of ``stamps`` (just read from ``alias``) moved; None without one clock.

    The exact date of a page built from them: each write to the tables
    they guard moved one of them, after its commit. None too when one of
    them moved before a commit whose time is unknown (``is_dated``).
    """
    if not stamps or not get_stamp_store().has_clock(alias):
        return None
    if not all(is_dated(stamp) for stamp in stamps):
        return None
    return token_seconds(max(stamps))


def date_is_settled(alias: str, last_modified: float) -> bool:
    """Whether a date from the stamps this thread just read from ``alias`` may be sent.

    The store's clock must have left the date's second before the data that
    is read after the stamps: before its snapshot, in a transaction
    (``snapshot_age``). False when the clock cannot be read.
    """
    age = snapshot_age(connections[alias])
    if age is None:
        return False
    store = get_stamp_store()
    try:
        bound = store.clock_bound(alias, last_modified)
    except Exception as error:
        # Reading the store's clock failed: the date is not sent, the tag still is.
        store.health.failed(error)
        return False
    if bound is not None:
        bound -= age * (1 + MAX_RATE_ERROR)
    return is_settled(last_modified, bound)


@receiver(setting_changed)
def _forget_stores(*, setting: str, **kwargs: Any) -> None:
    if setting in {"CACHES", "CONDITIONAL_STAMP_CACHE", "CONDITIONAL_STAMP_TRACKING"}:
        close_stamp_stores()
    if setting in {"CACHES", "DATABASES", "CONDITIONAL_STAMP_CACHE", "CONDITIONAL_CACHE"}:
        store_health.reset_all()  # other stores: what failed before says nothing of them


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
