"""Redis stamps mirrored in each process (``stamp_tracking``): current after every kind of change.

Two stores stand for two processes: each has its own tracking connection and
mirror. Runs wherever Redis answers; a run that asked for Redis
(``CONDITIONAL_TEST_CACHE=redis``) fails instead of skipping without it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from django.core.cache import caches
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from django_conditional import stamps
from django_conditional.stamp_tracking import TrackedRedisStampStore, tracking_unavailable_reason
from django_conditional.stamps import CacheStampStore, get_stamp_store

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# Its own key prefix, so parallel runs on one server never see each other's stamps.
TRACKED = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": REDIS_URL,
    "KEY_PREFIX": f"tracking-test-{os.getpid()}",
}
TABLES = ("testapp_article", "testapp_author")
# How long an invalidation may take to arrive over loopback before a test says it never came.
ARRIVAL_SECONDS = 5.0


def _redis_unavailable() -> str | None:
    try:
        import redis
    except ImportError:
        return "the redis package is not installed"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as error:
        return f"Redis at {REDIS_URL} does not answer ({error})"
    return None


@pytest.fixture
def tracked_cache() -> Iterator[str]:
    reason = _redis_unavailable()
    if reason is not None:
        if os.environ.get("CONDITIONAL_TEST_CACHE", "").lower() == "redis":
            pytest.fail(f"CONDITIONAL_TEST_CACHE=redis, but {reason}")
        pytest.skip(reason)
    with override_settings(CACHES={"default": TRACKED, "tracked": TRACKED}):
        yield "tracked"
        caches["tracked"].clear()


def _two_processes(alias: str) -> tuple[TrackedRedisStampStore, TrackedRedisStampStore]:
    return TrackedRedisStampStore(alias), TrackedRedisStampStore(alias)


def _until_changed(store: TrackedRedisStampStore, before: tuple[int, ...]) -> tuple[int, ...]:
    """Read until the stamps differ from ``before`` (the invalidation is in flight)."""
    deadline = time.monotonic() + ARRIVAL_SECONDS
    current = store.read("default", TABLES)
    while current == before and time.monotonic() < deadline:
        time.sleep(0.001)
        current = store.read("default", TABLES)
    return current


def test_the_configured_redis_stamp_cache_is_tracked(tracked_cache):
    with override_settings(CONDITIONAL_STAMP_CACHE=tracked_cache):
        assert isinstance(get_stamp_store(), TrackedRedisStampStore)
    with override_settings(CONDITIONAL_STAMP_CACHE=tracked_cache, CONDITIONAL_STAMP_TRACKING=False):
        assert type(get_stamp_store()) is CacheStampStore


def test_a_mirrored_read_asks_redis_nothing(tracked_cache, monkeypatch):
    store = TrackedRedisStampStore(tracked_cache)
    # The first read gives the tables their stamps: written during the read,
    # so not mirrored yet (conservatively); the second read mirrors them.
    first = store.read("default", TABLES)
    assert store.read("default", TABLES) == first
    assert store.reads_from_memory

    def no_round_trip(*args, **kwargs):
        raise AssertionError("read from Redis")

    monkeypatch.setattr(store._plain, "read", no_round_trip)
    assert store.read("default", TABLES) == first
    store.close()


def test_a_move_in_another_process_reaches_the_mirror(tracked_cache):
    reader, writer = _two_processes(tracked_cache)
    before = reader.read("default", TABLES)
    writer.move("default", ["testapp_author"])
    after = _until_changed(reader, before)
    assert after[0] == before[0]
    assert after[1] != before[1]
    assert (
        after
        == writer.read("default", TABLES)
        == CacheStampStore(tracked_cache).read("default", TABLES)
    )
    reader.close()
    writer.close()


def test_a_write_from_outside_django_reaches_the_mirror(tracked_cache):
    import redis

    store = TrackedRedisStampStore(tracked_cache)
    before = store.read("default", TABLES)
    key = caches[tracked_cache].make_key(CacheStampStore.key("default", "testapp_article"))
    redis.Redis.from_url(REDIS_URL).set(key, 12345)
    assert _until_changed(store, before)[0] == 12345
    store.close()


def test_own_moves_are_seen_at_once(tracked_cache):
    store = TrackedRedisStampStore(tracked_cache)
    before = store.read("default", TABLES)
    store.move("default", TABLES)
    # No waiting for the invalidation: this process dropped its own copies.
    after = store.read("default", TABLES)
    assert after != before
    assert after == CacheStampStore(tracked_cache).read("default", TABLES)
    store.close()


def test_a_flush_empties_the_mirror(tracked_cache):
    store = TrackedRedisStampStore(tracked_cache)
    before = store.read("default", TABLES)
    caches[tracked_cache].clear()
    # Lost stamps come back as new tokens.
    after = _until_changed(store, before)
    assert after[0] != before[0]
    assert after[1] != before[1]
    store.close()


def test_a_lost_connection_is_never_trusted(tracked_cache):
    import redis

    reader, writer = _two_processes(tracked_cache)
    before = reader.read("default", TABLES)
    client = redis.Redis.from_url(REDIS_URL)
    client.client_kill_filter(_id=reader._client_id)
    # The move's invalidation has nowhere to go now; the reader must notice and re-read.
    writer.move("default", TABLES)
    after = reader.read("default", TABLES)
    assert after == writer.read("default", TABLES)
    assert after != before
    reader.close()
    writer.close()


def test_a_write_racing_a_read_through_is_not_kept(tracked_cache, monkeypatch):
    """A value read from Redis while a write lands is used once, never mirrored."""
    reader, writer = _two_processes(tracked_cache)
    original_read = reader._plain.read

    def read_then_someone_writes(alias, tables):
        values = original_read(alias, tables)
        writer.move(alias, tables)
        reader.move("other", ["unrelated"])  # stands for any invalidation arriving meanwhile
        return values

    monkeypatch.setattr(reader._plain, "read", read_then_someone_writes)
    stale = reader.read("default", TABLES)
    monkeypatch.setattr(reader._plain, "read", original_read)
    assert _until_changed(reader, stale) == writer.read("default", TABLES)
    reader.close()
    writer.close()


def test_a_forked_child_starts_without_the_parents_connection(tracked_cache):
    store = TrackedRedisStampStore(tracked_cache)
    store.read("default", TABLES)
    parent_listener = store._listener
    store._forget_after_fork()
    assert store._listener is None
    assert not store._tokens
    store.read("default", TABLES)
    assert store._listener is not parent_listener
    store.close()
    parent_listener.disconnect()


@pytest.mark.parametrize(
    ("cache", "reason"),
    [
        pytest.param(
            {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "not Django's RedisCache",
            id="locmem",
        ),
        pytest.param(
            {**TRACKED, "LOCATION": [REDIS_URL, REDIS_URL]},
            "more than one server",
            id="replicas",
        ),
        pytest.param(
            {**TRACKED, "KEY_FUNCTION": "tests.test_stamp_tracking.reversed_key"},
            "KEY_FUNCTION",
            id="key-function",
        ),
    ],
)
def test_where_tracking_would_not_be_exact_it_is_not_used(cache, reason):
    with override_settings(CACHES={"default": TRACKED, "other": cache}):
        assert reason in (tracking_unavailable_reason("other") or "")
        with override_settings(CONDITIONAL_STAMP_CACHE="other"):
            assert not isinstance(get_stamp_store(), TrackedRedisStampStore)


def reversed_key(key: str, key_prefix: str, version: int) -> str:
    return f"{key[::-1]}:{key_prefix}:{version}"


def test_closing_forgets_the_stores(tracked_cache):
    with override_settings(CONDITIONAL_STAMP_CACHE=tracked_cache):
        store = get_stamp_store()
        store.read("default", TABLES)
        assert store.reads_from_memory
        stamps.close_stamp_stores()
        assert not store.reads_from_memory
        assert get_stamp_store() is not store


# --- Any interleaving of changes: the mirrors agree with Redis ---------------------------

ALL_TABLES = ("t1", "t2", "t3")


def _barrier(store: TrackedRedisStampStore) -> None:
    """Apply every invalidation Redis sent the store before now.

    A PING on the subscribed connection is answered after the messages
    queued before it: reading up to its answer drains exactly those (what a
    request arriving a moment later would find on the socket).
    """
    with store._lock:
        if not store._track():  # no connection yet, or found broken (the mirror is empty)
            return
        try:
            store._listener.send_command("PING")
            while True:
                message = store._listener.read_response()
                if isinstance(message, list) and message and message[0] == b"pong":
                    return
                store._apply(message)
        except Exception:
            store._reset()


class MirrorMachine(RuleBasedStateMachine):
    """Two processes' mirrors, and every way a stamp changes; reads must give Redis's values."""

    def __init__(self) -> None:
        super().__init__()
        self.alias = "tracked"
        self.processes = _two_processes(self.alias)
        self.truth = CacheStampStore(self.alias)

    @rule(process=st.integers(0, 1), tables=st.sets(st.sampled_from(ALL_TABLES), min_size=1))
    def move(self, process, tables):
        self.processes[process].move("default", tables)

    @rule(table=st.sampled_from(ALL_TABLES), value=st.integers(1, 2**62))
    def write_from_outside_django(self, table, value):
        import redis

        key = caches[self.alias].make_key(CacheStampStore.key("default", table))
        redis.Redis.from_url(REDIS_URL).set(key, value)

    @rule(table=st.sampled_from(ALL_TABLES))
    def evict(self, table):
        caches[self.alias].delete(CacheStampStore.key("default", table))

    @rule()
    def flush(self):
        caches[self.alias].clear()

    @rule(process=st.integers(0, 1))
    def kill_tracking_connection(self, process):
        import redis

        client_id = self.processes[process]._client_id
        if self.processes[process]._listener is not None and client_id is not None:
            redis.Redis.from_url(REDIS_URL).client_kill_filter(_id=client_id)

    @rule(process=st.integers(0, 1), tables=st.lists(st.sampled_from(ALL_TABLES), min_size=1))
    def read(self, process, tables):
        store = self.processes[process]
        for each in self.processes:
            _barrier(each)
        assert store.read("default", tables) == self.truth.read("default", tables)

    def teardown(self) -> None:
        for store in self.processes:
            store.close()


# Each step is a few Redis round trips: hundreds of interleavings in seconds.
MIRROR_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_mirrors_agree_with_redis_after_any_changes(tracked_cache):
    run_state_machine_as_test(MirrorMachine, settings=MIRROR_SETTINGS)
