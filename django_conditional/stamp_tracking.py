"""Stamps in Redis, mirrored in each process and kept current by Redis itself.

A warm 304 must read its stamps, and a Redis round trip costs more than a
whole Django request. So each process keeps the stamps it has read, and
Redis tells it when one changes: server-assisted client-side caching
(``CLIENT TRACKING ... BCAST PREFIX``, Redis 6 or later). In broadcasting
mode Redis sends the name of every key under the stamp prefix that any
client writes, evicts or expires, and a null for a flush, to the one
connection each process holds for this, which subscribes to the
``__redis__:invalidate`` channel and redirects its own tracking there.

Why a stamp read from the mirror is current:

- A read first applies every invalidation that has arrived (a
  non-blocking read of that connection), then uses the mirror.
- Redis queues the invalidation while it executes the write, in the same
  event-loop turn as the writer's reply; before the writing process can
  even send its own HTTP response, the message is on this process's socket.
- A value read from Redis is kept only if no invalidation or local move
  arrived between the reads (else a write racing the read could be lost).
- Moves made by this process drop its own copies at once (read your
  writes without waiting for the message).
- The mirror is used only while Redis has recently proved the connection
  current: a ``PING`` sent on it at most ``CONDITIONAL_STAMP_MIRROR_WINDOW``
  ago has been answered, so every invalidation Redis queued before that
  PING has been applied. A connection that silently stops delivering (a
  network cut, a paused or overloaded server) ends the trust within the
  window, and every writer's commit waits that long after moving its
  stamps (``StampStore.commit_delay``): no mirror can answer from a stamp
  older than a commit that has returned.
- Leases (``CacheStampStore.lease_key``) are mirrored like stamps, as the
  time they end; a lease in force makes the read raise ``StampsInFlight``.
- When the connection breaks (Redis restarted, the connection killed or
  evicted for a slow consumer), the mirror is emptied, and reads go to Redis
  until it is back: what may have been missed is never used.

Used only where this is exact: Django's ``RedisCache`` with a single server
(with replicas, a read after an invalidation could come from a lagging
replica) and a key function that keeps the stamp prefix a prefix. Otherwise,
and with ``CONDITIONAL_STAMP_TRACKING = False``, stamps are read from the
cache on every request (``CacheStampStore``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.utils.module_loading import import_string

from django_conditional import store_health
from django_conditional.conf import conf
from django_conditional.stamp_clock import MAX_RATE_ERROR
from django_conditional.stamp_errors import StampsInFlight
from django_conditional.stamps import STAMP_KEY_PREFIX, CacheStampStore, PerThreadByAlias

__all__ = ["TrackedRedisStampStore", "tracking_unavailable_reason"]

logger = logging.getLogger("django_conditional")

INVALIDATION_CHANNEL = "__redis__:invalidate"
# After a failed connection attempt, stamps are read from Redis for this long.
RETRY_SECONDS = 1.0
# A PING unanswered for this long means the tracking connection is dead.
PING_GIVE_UP_SECONDS = 2.0
# Options of Django's RedisCache that are not redis-py connection options.
_DJANGO_OPTIONS = {"serializer", "pool_class", "parser_class"}


def tracking_unavailable_reason(cache_alias: str) -> str | None:
    """Why the stamps in ``cache_alias`` cannot be mirrored; None when they can."""
    cache = caches[cache_alias]
    if not isinstance(cache, RedisCache):
        return "the cache is not Django's RedisCache"
    servers = _servers(conf.cache_settings(cache_alias).get("LOCATION", ""))
    if len(servers) != 1:
        return "the cache has more than one server (reads may come from a lagging replica)"
    prefix = cache.make_key(STAMP_KEY_PREFIX)
    if not cache.make_key(CacheStampStore.key("default", "table")).startswith(prefix):
        return "the cache's KEY_FUNCTION does not keep the stamp prefix a prefix"
    return None


class TrackedRedisStampStore:
    """``CacheStampStore`` for Django's RedisCache, with a per-process mirror of its stamps."""

    prepares = True

    def __init__(self, cache_alias: str) -> None:
        self.cache_alias = cache_alias
        self._plain = CacheStampStore(cache_alias)
        self._prefix = caches[cache_alias].make_key(STAMP_KEY_PREFIX)
        self._lock = threading.Lock()
        # Full Redis key -> token for a stamp, or the end of a lease (Redis
        # milliseconds; 0 for none) for a lease key.
        self._tokens: dict[str, int] = {}
        # (alias, table) -> the full Redis keys of its stamp and its lease.
        self._keys: dict[tuple[str, str], tuple[str, str]] = {}
        # Monotonic send times: of the PING awaiting its reply, and of the
        # last one answered (every invalidation queued before it is applied).
        self._ping_sent_at: float | None = None
        self._current_as_of = -float("inf")
        # A value read from Redis is kept only if nothing invalidated it
        # during the read: per key, and for everything (a flush, a reset).
        self._changes: dict[str, int] = {}
        self._epoch = 0
        self._listener: Any = None  # the tracking connection (redis-py Connection)
        self._client_id: int | None = None  # its CLIENT ID
        self._retry_at = 0.0
        self._failing = False
        # Whether this thread's last read, by alias, came from the mirror.
        self._mirrored = PerThreadByAlias()
        _stores.add(self)

    @property
    def reads_from_memory(self) -> bool:
        """True while the mirror is in use (a stamp not yet mirrored is one round trip)."""
        return self._listener is not None

    @property
    def health(self) -> store_health.Breaker:
        """The Redis stamp cache's breaker."""
        return self._plain.health

    def commit_delay(self) -> float:
        """The mirror window: how long a mirror may take to hear of a move."""
        return self._plain.commit_delay()

    def read(self, alias: str, tables: Sequence[str]) -> tuple[int, ...]:
        """The tokens, from the mirror when every one is there and current."""
        pairs = [self._key(alias, table) for table in tables]
        keys = [pair[0] for pair in pairs] + [pair[1] for pair in pairs]
        with self._lock:
            connected, trusted = self._track()
            if trusted:
                mirror = self._tokens
                try:
                    found = [mirror[key] for key in keys]
                except KeyError:
                    pass
                else:
                    self._mirrored.set(alias, True)
                    count = len(tables)
                    self._raise_if_in_flight(alias, found[count:])
                    return tuple(found[:count])
            epoch = self._epoch
            changes = [self._changes.get(key, 0) for key in keys]
        tokens, leases = self._plain.read_redis(alias, tables)
        if connected:
            with self._lock:
                if self._track()[0] and self._epoch == epoch:
                    values = (*tokens, *leases)
                    for key, value, seen in zip(keys, values, changes, strict=True):
                        if self._changes.get(key, 0) == seen:
                            self._tokens[key] = value
        self._mirrored.set(alias, False)
        if any(leases):
            raise StampsInFlight(alias)
        return tokens

    def _raise_if_in_flight(self, alias: str, lease_ends: list[int]) -> None:
        """Raise ``StampsInFlight`` unless Redis's clock has certainly passed every lease's end."""
        latest = max(lease_ends, default=0)
        if not latest:
            return
        clock = self._plain.clock
        bound = None if clock is None else clock.lower_bound()
        if bound is None or bound * 1000 < latest:
            raise StampsInFlight(alias)

    def prepare(self, alias: str, tables: Iterable[str]) -> None:
        """Undated stamps and leases in Redis (before a commit); this process's copies dropped."""
        tables = set(tables)
        self._plain.prepare(alias, tables)
        self._drop(alias, tables)

    def has_clock(self, alias: str) -> bool:
        """True: Redis's clock dates every move."""
        return True

    def clock_bound(self, alias: str, last_modified: float) -> float | None:
        """Redis's clock: read with the stamps, or for mirrored stamps bounded from here.

        A mirrored read is current as of now, so any time Redis's clock has
        certainly reached now will do (``ClockSample``), read from Redis
        again when it does not settle ``last_modified``.
        """
        if self._mirrored.get(alias):
            clock = self._plain.clock
            return None if clock is None else clock.bound_settling(last_modified)
        return self._plain.clock_bound(alias, last_modified)

    def move(self, alias: str, tables: Iterable[str]) -> None:
        """Move the stamps in Redis, then drop this process's copies of them."""
        tables = set(tables)
        self._plain.move(alias, tables)
        self._drop(alias, tables)

    def _drop(self, alias: str, tables: Iterable[str]) -> None:
        with self._lock:
            for table in tables:
                for key in self._key(alias, table):
                    self._invalidate(key)

    def close(self) -> None:
        """Stop tracking and forget the mirror (the settings changed, or the tests end)."""
        with self._lock:
            self._reset()

    def _key(self, alias: str, table: str) -> tuple[str, str]:
        # Worked out once per table: make_key runs the cache's key function.
        keys = self._keys.get((alias, table))
        if keys is None:
            cache = caches[self.cache_alias]
            keys = (
                cache.make_key(CacheStampStore.key(alias, table)),
                cache.make_key(CacheStampStore.lease_key(alias, table)),
            )
            self._keys[alias, table] = keys
        return keys

    # --- The tracking connection (call with the lock held) ----------------------

    def _track(self) -> tuple[bool, bool]:
        """Apply the invalidations that arrived: (connected, whether the mirror is current).

        Connected, values read from Redis may be mirrored; current, the
        mirror may be used (see the module's docstring).
        """
        if self._listener is None and not self._connect():
            return False, False
        now = time.monotonic()
        try:
            while self._listener.can_read(timeout=0):
                self._apply(self._listener.read_response())
            if self._ping_sent_at is None:
                if now - self._current_as_of >= conf.mirror_window / 2:
                    self._listener.send_command("PING")
                    self._ping_sent_at = now
            elif now - self._ping_sent_at > PING_GIVE_UP_SECONDS:
                raise TimeoutError(f"no reply to PING for {PING_GIVE_UP_SECONDS} s")
        except Exception:
            logger.warning(
                "Lost Redis stamp tracking on cache %r; reading stamps from Redis until it is back",
                self.cache_alias,
                exc_info=True,
            )
            self._reset()
            return False, False
        return True, now - self._current_as_of < conf.mirror_window * (1 - MAX_RATE_ERROR)

    def _apply(self, message: Any) -> None:
        if isinstance(message, list) and message and message[0] in (b"pong", "pong"):
            if self._ping_sent_at is not None:
                self._current_as_of, self._ping_sent_at = self._ping_sent_at, None
            return
        if not (isinstance(message, list) and len(message) == 3 and message[0] == b"message"):
            return  # a subscription confirmation
        keys = message[2]
        if keys is None:  # FLUSHDB / FLUSHALL
            self._forget_all()
            return
        for key in keys:
            self._invalidate(key.decode() if isinstance(key, bytes) else str(key))

    def _invalidate(self, key: str) -> None:
        self._tokens.pop(key, None)
        self._changes[key] = self._changes.get(key, 0) + 1

    def _forget_all(self) -> None:
        self._tokens.clear()
        self._changes.clear()
        self._epoch += 1

    def _connect(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        listener = None
        began = time.monotonic()
        try:
            listener = _connection(self.cache_alias)
            listener.send_command("CLIENT", "ID")
            own_id = listener.read_response()
            listener.send_command(
                "CLIENT", "TRACKING", "ON", "REDIRECT", own_id, "BCAST", "PREFIX", self._prefix
            )
            if listener.read_response() not in (b"OK", "OK"):
                raise RuntimeError("CLIENT TRACKING was refused")
            listener.send_command("SUBSCRIBE", INVALIDATION_CHANNEL)
            listener.read_response()
        except Exception:
            logger.warning(
                "Cannot track Redis stamps on cache %r; reading stamps from Redis.",
                self.cache_alias,
                exc_info=True,
            )
            if listener is not None:
                listener.disconnect()
            self._retry_at = time.monotonic() + RETRY_SECONDS
            return False
        # Stamps read before tracking began may have moved unseen.
        self._forget_all()
        self._listener = listener
        self._client_id = own_id
        self._failing = False
        # Tracking was on before Redis answered: the (empty) mirror is current as of then.
        self._current_as_of, self._ping_sent_at = began, None
        return True

    def _reset(self) -> None:
        listener, self._listener = self._listener, None
        self._forget_all()
        self._ping_sent_at, self._current_as_of = None, -float("inf")
        if listener is not None:
            try:
                listener.disconnect()
            except Exception:
                logger.debug("Closing the stamp tracking connection failed.", exc_info=True)

    def _forget_after_fork(self) -> None:
        # The child shares the parent's socket: never read or close it here.
        self._lock = threading.Lock()
        self._listener = None
        self._forget_all()
        self._ping_sent_at, self._current_as_of = None, -float("inf")


def _servers(location: str | Sequence[str]) -> list[str]:
    if isinstance(location, str):
        return [server for server in location.replace(";", ",").split(",") if server]
    return list(location)


def _connection(cache_alias: str) -> Any:
    """A new connection to the cache's server, outside its pool, as Django would configure it."""
    import redis

    settings = conf.cache_settings(cache_alias)
    options = dict(settings.get("OPTIONS") or {})
    parser_class = options.get("parser_class")
    if isinstance(parser_class, str):
        parser_class = import_string(parser_class)
    pool_options = {key: value for key, value in options.items() if key not in _DJANGO_OPTIONS}
    if parser_class is not None:
        pool_options["parser_class"] = parser_class
    # RESP2: invalidations then arrive as messages on the subscribed channel
    # (RESP3 would deliver them as push replies, which redis-py hides).
    pool_options["protocol"] = 2
    pool = redis.ConnectionPool.from_url(_servers(settings["LOCATION"])[0], **pool_options)
    return pool.make_connection()


# Every store of this process, to forget their connections in a forked child.
_stores: weakref.WeakSet[TrackedRedisStampStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_stores):
        store._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
