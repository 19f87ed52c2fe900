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


def test_own_moves_are_seen_at_once(tracked_cache, monkeypatch):
    store = TrackedRedisStampStore(tracked_cache)
    before = store.read("default", TABLES)
    store.move("default", TABLES)
    # No waiting for the invalidation: this process dropped its own copies.
    assert store.read("default", TABLES) != before
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
