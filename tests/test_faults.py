"""Faults of the stamp store, for real: a private redis-server stopped, restarted, flushed,
paused and cut off from this process; writes that fail before or after their commit.

For each fault: no 500, no stale 304 (a 304 only while the page is what the client holds),
the data intact, and pages back with validators by themselves. Each recovery time is
printed (``-s``) for the README's "What happens when ..." table. The controls turn one
safeguard off and must then produce the stale 304 the safeguard prevents.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from django.core.cache import caches
from django.test import override_settings

from django_conditional import store_health
from django_conditional.stamp_errors import STAMP_TABLE, StampsInFlight, StampsNotMoved
from django_conditional.stamps import (
    CacheStampStore,
    DatabaseStampStore,
    get_stamp_store,
    read_stamps,
)
from tests.redis_server import PrivateRedis, require
from tests.tcp_proxy import TcpProxy
from tests.testapp.models import Note

pytestmark = [pytest.mark.urls("tests.testapp.urls"), pytest.mark.django_db(transaction=True)]

PAGE = "/data/notes/"
NOTES = Note._meta.db_table
# Short, so that a fault is noticed fast; the demo's settings use the same order.
CLIENT_TIMEOUT_SECONDS = 0.25
LEASE_SECONDS = 2  # long enough for a busy machine to look inside it
# A page must be back with validators this long after a fault ends (the breaker's longest
# wait is 8 s; the faults here last about a second).
RECOVERY_LIMIT_SECONDS = 15


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    require("redis-server", "apt-get install redis-server")
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def proxy(redis_server: PrivateRedis) -> Iterator[TcpProxy]:
    proxy = TcpProxy(redis_server.port)
    yield proxy
    proxy.close()


def redis_caches(url: str) -> dict[str, dict[str, object]]:
    return {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "f"},
        "stamps": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {
                "socket_timeout": CLIENT_TIMEOUT_SECONDS,
                "socket_connect_timeout": CLIENT_TIMEOUT_SECONDS,
            },
        },
    }


@contextmanager
def redis_stamps(redis_server: PrivateRedis, proxy: TcpProxy, tracking: bool) -> Iterator[None]:
    """This process keeps its stamps in the private Redis, reached through the proxy."""
    if redis_server.process is None:  # a test stopped it
        redis_server.start()
    redis_server.client().flushall()
    with override_settings(
        CACHES=redis_caches(proxy.url),
        CONDITIONAL_STAMP_CACHE="stamps",
        CONDITIONAL_STAMP_TRACKING=tracking,
        CONDITIONAL_STAMP_LEASE=LEASE_SECONDS,
    ):
        caches["default"].clear()
        yield


@pytest.fixture(params=[False, True], ids=["read-each-time", "tracked"])
def stamps_in_redis(request, redis_server, proxy) -> Iterator[PrivateRedis]:
    with redis_stamps(redis_server, proxy, tracking=request.param):
        yield redis_server


def notes_text() -> str:
    return ",".join(Note.objects.values_list("text", flat=True))


def revalidate(client, etag: str, **headers: str):
    return client.get(PAGE, headers={"if-none-match": etag, **headers})


def assert_safe(response, etag: str | None = None) -> None:
    """Never a 5xx; a 304 only for the page the client holds (``etag`` is still current)."""
    assert response.status_code in {200, 304}, response.status_code
    if response.status_code == 304:
        assert etag is not None
        assert revalidate_is_current(etag), "a stale 304"
    else:
        assert response.content.decode() == notes_text()


_current_etags: dict[str, str] = {}


def revalidate_is_current(etag: str) -> bool:
    return _current_etags.get(notes_text()) == etag


def first_page(client):
    response = client.get(PAGE)
    assert response.status_code == 200
    assert response.has_header("ETag")
    _current_etags[response.content.decode()] = response["ETag"]
    return response


def wait_for_validators(client, etag: str) -> float:
    """Revalidate until the page has validators again; every answer meanwhile is safe."""
    began = time.monotonic()
    while True:
        response = revalidate(client, etag)
        assert_safe(response, etag)
        if response.status_code == 304 or response.has_header("ETag"):
            return time.monotonic() - began
        assert time.monotonic() - began < RECOVERY_LIMIT_SECONDS, "pages did not recover"
        time.sleep(0.02)


@dataclass
class Fault:
    name: str
    begin: Callable[[PrivateRedis, TcpProxy], None]
    end: Callable[[PrivateRedis, TcpProxy], None]


def _sleep_then_join(server: PrivateRedis, proxy: TcpProxy) -> None:
    _sleeping.pop().join()


_sleeping: list = []

FAULTS = [
    Fault("stopped, restarted empty", lambda s, p: s.stop(), lambda s, p: s.start()),
    Fault(
        "stopped, restarted with its data",
        lambda s, p: s.stop(keep_data=True),
        lambda s, p: s.start(with_data=True),
    ),
    Fault("this process cut off", lambda s, p: p.cut(), lambda s, p: p.restore()),
    Fault("CLIENT PAUSE", lambda s, p: s.pause(1.5), lambda s, p: time.sleep(1.6)),
    Fault("DEBUG SLEEP", lambda s, p: _sleeping.append(s.sleep(1.5)), _sleep_then_join),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
def test_a_fault_never_gives_a_500_or_a_stale_304(
    client, stamps_in_redis, proxy, fault, caplog
) -> None:
    Note.objects.create(text="a")
    first = first_page(client)
    breaker = get_stamp_store().health
    caplog.set_level(logging.ERROR, logger="django_conditional")

    fault.begin(stamps_in_redis, proxy)
    # Pages are served in full, without validators; a revalidation too. (A tracking
    # mirror may still answer for its window, 0.02 s: no commit returns before it ends.)
    answers = []
    for _ in range(5):
        response = revalidate(client, first["ETag"])
        assert_safe(response, first["ETag"])
        answers.append((response.status_code, response.has_header("ETag")))
    assert answers[-1] == (200, False)
    # The breaker spared most of them the client timeout, and said so once.
    snapshot = breaker.snapshot()
    assert not snapshot.available
    assert snapshot.skipped >= 1
    outage_logs = [r for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(outage_logs) == 1
    # The debug header names the store and the breaker's counts.
    with override_settings(CONDITIONAL_DEBUG_HEADER=True):
        explained = client.get(PAGE)["X-Conditional"]
    assert explained.startswith("without-validators; the stamp cache 'stamps'"), explained
    assert "request(s) served without it" in explained
    # A precondition that decides whether a write may proceed cannot be checked: 503.
    guarded = client.post(PAGE, headers={"if-match": first["ETag"]})
    assert guarded.status_code == 503
    assert guarded["Retry-After"] == "1"
    # A write whose stamps cannot move is refused, whole.
    store_health.reset_all()  # ask the store now, not after the breaker's wait
    with pytest.raises(StampsNotMoved):
        Note.objects.create(text="b")
    assert notes_text() == "a"

    fault.end(stamps_in_redis, proxy)
    recovery = wait_for_validators(client, first["ETag"])
    print(f"\n{fault.name} ({get_stamp_store().__class__.__name__}): back in {recovery:.2f} s")
    # And writes move the pages on as before.
    Note.objects.create(text="c")
    after = revalidate(client, first["ETag"])
    assert after.status_code == 200
    assert after.content == b"a,c"
    assert after.has_header("ETag")


def test_a_flushed_store_never_gives_a_stale_304(client, stamps_in_redis) -> None:
    Note.objects.create(text="a")
    first = first_page(client)
    stamps_in_redis.client().flushall()
    Note.objects.create(text="b")
    response = revalidate(client, first["ETag"])
    assert response.status_code == 200
    assert response.content == b"a,b"


def test_a_move_that_fails_after_the_commit_holds_validators_back_for_its_lease(
    client, stamps_in_redis, proxy, monkeypatch, caplog
) -> None:
    """The move before the commit worked, the one after it did not: the lease holds pages."""
    Note.objects.create(text="a")
    first = first_page(client)
    real_move = CacheStampStore.move

    def cut_off_first(self, alias, tables):
        proxy.cut()
        try:
            real_move(self, alias, tables)
        finally:
            proxy.restore()

    monkeypatch.setattr(CacheStampStore, "move", cut_off_first)
    began = time.monotonic()  # before the lease begins (with the move before the commit)
    Note.objects.create(text="b")
    monkeypatch.setattr(CacheStampStore, "move", real_move)
    assert "after a committed write" in caplog.text
    store_health.reset_all()
    held = revalidate(client, first["ETag"])
    assert held.status_code == 200
    assert not held.has_header("ETag")
    recovery = wait_for_validators(client, first["ETag"])
    assert time.monotonic() - began >= LEASE_SECONDS * 0.99  # not before the lease ended
    print(f"\nmove after the commit failed: back in {recovery:.2f} s")
    assert revalidate(client, first["ETag"]).status_code == 200


def test_a_worker_killed_between_its_two_moves_holds_validators_back_for_the_lease(
    client, stamps_in_redis
) -> None:
    """What a killed worker leaves behind: stamps moved before a commit that never came."""
    Note.objects.create(text="a")
    first = first_page(client)
    get_stamp_store().prepare("default", [NOTES])  # ... and the worker is gone
    with pytest.raises(StampsInFlight):
        read_stamps("default", [NOTES])
    held = revalidate(client, first["ETag"])
    assert (held.status_code, held.has_header("ETag")) == (200, False)
    recovery = wait_for_validators(client, first["ETag"])
    print(f"\nworker killed between prepare and commit: back in {recovery:.2f} s")
    assert notes_text() == "a"


def test_control_a_cut_off_writer_without_the_move_before_its_commit_leaves_a_stale_304(
    client, stamps_in_redis, proxy, monkeypatch
) -> None:
    """The safeguard off (no move before the commit): the issue's stale 304s come back."""
    store = get_stamp_store()
    monkeypatch.setattr(type(store), "prepares", False)
    Note.objects.create(text="a")
    first = first_page(client)
    proxy.cut()
    Note.objects.create(text="b")  # commits; its move fails and is only logged
    proxy.restore()
    store_health.reset_all()
    stale = revalidate(client, first["ETag"])
    assert stale.status_code == 304
    assert notes_text() == "a,b"  # the client holds "a": this 304 is stale


# --- The tracking mirror ------------------------------------------------------------


@pytest.fixture
def tracked(redis_server, proxy) -> Iterator[None]:
    with redis_stamps(redis_server, proxy, tracking=True):
        yield


def move_elsewhere() -> None:
    """Another process's write: the stamps move in Redis, not through this process's store."""
    CacheStampStore("stamps").move("default", [NOTES])


def make_deaf(store, monkeypatch) -> None:
    """The tracking connection stays open and delivers nothing (a stalled network path)."""
    store._track()  # connected, as it is while serving pages
    monkeypatch.setattr(store._listener, "can_read", lambda timeout=0: False)


def mirrored_token(store) -> int:
    before = read_stamps("default", [NOTES])[0]
    assert store.reads_from_memory
    assert read_stamps("default", [NOTES])[0] == before
    return before


def test_a_mirror_that_stops_hearing_from_redis_stops_answering_within_its_window(
    transactional_db, tracked, monkeypatch
) -> None:
    store = get_stamp_store()
    before = mirrored_token(store)
    make_deaf(store, monkeypatch)
    move_elsewhere()
    time.sleep(0.05)  # more than the window (0.02 s): every commit waits that long
    assert read_stamps("default", [NOTES])[0] != before


def test_control_a_deaf_mirror_trusted_for_longer_than_commits_wait_answers_old_stamps(
    transactional_db, tracked, monkeypatch
) -> None:
    """The safeguard off (a window far longer than a commit waits): the old stamp is served."""
    with override_settings(CONDITIONAL_STAMP_MIRROR_WINDOW=60):
        store = get_stamp_store()
        before = mirrored_token(store)
        make_deaf(store, monkeypatch)
        move_elsewhere()
        time.sleep(0.05)
        assert read_stamps("default", [NOTES])[0] == before


def test_a_killed_tracking_connection_is_never_trusted_again(
    transactional_db, tracked, redis_server
) -> None:
    store = get_stamp_store()
    before = mirrored_token(store)
    redis_server.client().client_kill_filter(_id=store._client_id)
    move_elsewhere()
    time.sleep(0.05)  # as the writer's commit waits (the window, 0.02 s)
    assert read_stamps("default", [NOTES])[0] != before


def test_a_commit_that_moved_redis_stamps_returns_only_after_the_mirror_window(
    transactional_db, tracked, monkeypatch
) -> None:
    """The wait comes after the move that ends the write's flight: pages are not held by it."""
    from django.conf import settings

    from django_conditional import tracking

    waits: list[tuple[float, tuple[int, ...]]] = []

    def sleep(seconds: float) -> None:
        waits.append((seconds, read_stamps("default", [NOTES])))  # raises while in flight

    monkeypatch.setattr(tracking.time, "sleep", sleep)
    Note.objects.create(text="a")
    [(seconds, tokens)] = waits
    window = getattr(settings, "CONDITIONAL_STAMP_MIRROR_WINDOW", 0.02)
    assert 0 < seconds <= window * 1.01
    assert tokens == read_stamps("default", [NOTES])  # moved, and dated, before the wait


def test_a_validator_cache_that_does_not_answer_is_passed_over(client, transactional_db):
    """CONDITIONAL_CACHE down, stamps in the database: validators are derived, 304s go on."""
    from tests.failing_cache import FAILING_CACHES, failing
    from tests.testapp.models import Article, Author

    page = "/data/articles/"  # a queryset page: its validators go to the shared cache
    author = Author.objects.create(name="Ada")
    Article.objects.create(title="One", author=author)
    with override_settings(CACHES=FAILING_CACHES, CONDITIONAL_CACHE="stamps"), failing():
        first = client.get(page)
        assert first.status_code == 200
        etag = first["ETag"]
        assert client.get(page, headers={"if-none-match": etag}).status_code == 304
        Article.objects.create(title="Two", author=author)
        changed = client.get(page, headers={"if-none-match": etag})
        assert changed.status_code == 200
        assert changed["ETag"] != etag
        breakers = {found.name: found for found in store_health.snapshot()}
        assert breakers["validator cache 'stamps' (CONDITIONAL_CACHE)"].outages == 1
        assert get_stamp_store().health.snapshot().outages == 0  # the stamps never were down


# --- The database stamp store ---------------------------------------------------------


def test_database_stamps_move_in_the_write_transaction_and_are_undated_until_after_it(
    client, transactional_db, monkeypatch
) -> None:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from django_conditional.stamps import stamps_date

    assert isinstance(get_stamp_store(), DatabaseStampStore)
    Note.objects.create(text="a")
    first = first_page(client)
    before = read_stamps("default", [NOTES])
    monkeypatch.setattr(DatabaseStampStore, "move", lambda self, alias, tables: 1 / 0)
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        Note.objects.create(text="b")
    statements = [query["sql"] for query in queries.captured_queries]
    # The stamp's UPDATE ran before the COMMIT, inside the write's transaction.
    assert any(STAMP_TABLE in sql for sql in statements)
    after = read_stamps("default", [NOTES])
    assert after != before
    assert stamps_date("default", after) is None  # no Last-Modified: its commit is undated
    response = revalidate(client, first["ETag"])
    assert response.status_code == 200
    assert response.content == b"a,b"
    assert not response.has_header("Last-Modified")


# --- A database connection killed mid-write ---------------------------------------------


def kill_own_database_connection() -> None:
    """What a database restart or a proxy's idle timeout does to a connection in a write."""
    from django.db import connection, connections

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_backend_pid()"
            if connection.vendor == "postgresql"
            else "SELECT CONNECTION_ID()"
        )
        (own_id,) = cursor.fetchone()
    killer = connections.create_connection("default")
    try:
        with killer.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_terminate_backend(%s)", [own_id])
            else:
                cursor.execute(f"KILL {int(own_id)}")
    finally:
        killer.close()


def write_on_a_connection_killed_mid_write(client) -> None:
    from django.db import DatabaseError, connection, transaction

    if connection.vendor == "sqlite":
        pytest.skip("SQLite runs in this process: there is no server connection to kill")
    Note.objects.create(text="a")
    first = first_page(client)

    @transaction.atomic
    def write_then_lose_the_connection():
        Note.objects.create(text="b")
        kill_own_database_connection()

    with pytest.raises(DatabaseError):
        write_then_lose_the_connection()
    connection.close()
    assert notes_text() == "a"
    store_health.reset_all()
    recovery = wait_for_validators(client, first["ETag"])
    store = type(get_stamp_store()).__name__
    print(f"\ndatabase connection killed mid-write ({store}): back in {recovery:.2f} s")


def test_a_database_connection_killed_mid_write_with_stamps_in_redis(client, stamps_in_redis):
    write_on_a_connection_killed_mid_write(client)


def test_a_database_connection_killed_mid_write_with_stamps_in_the_database(
    client, transactional_db
):
    write_on_a_connection_killed_mid_write(client)
