"""When stamps moved: tokens dated by the store's clock, and when a date may be sent."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.cache import caches
from django.db import connection, transaction
from django.test import override_settings

from django_conditional import validator_cache
from django_conditional.derivation import last_changed
from django_conditional.stamp_clock import (
    TOKEN_SPAN,
    ClockSample,
    is_settled,
    next_token,
    token_from_millis,
    token_seconds,
)
from django_conditional.stamps import (
    CacheStampStore,
    DatabaseStampStore,
    ProcessStampStore,
    date_is_settled,
    read_stamps,
    snapshot_age,
    stamps_date,
)
from django_conditional.validators import Validator
from tests.conftest import age_stamps
from tests.test_stamp_tracking import tracked_cache  # noqa: F401 (a fixture)
from tests.testapp.models import Article, Author

TABLES = ("testapp_article", "testapp_note")
NOW_MILLIS = 1_800_000_000_000


# --- Token layout ---------------------------------------------------------------------


def test_a_token_carries_its_moves_time():
    token = token_from_millis(NOW_MILLIS)
    assert token // TOKEN_SPAN == NOW_MILLIS
    assert token_seconds(token) == NOW_MILLIS / 1000
    assert 0 <= token < 2**63


@pytest.mark.parametrize(
    ("previous", "millis", "expected"),
    [
        pytest.param(None, NOW_MILLIS, "fresh", id="first"),
        pytest.param((NOW_MILLIS - 5) * TOKEN_SPAN, NOW_MILLIS, "fresh", id="older"),
        pytest.param(
            NOW_MILLIS * TOKEN_SPAN + TOKEN_SPAN - 1, NOW_MILLIS, "plus-one", id="same-ms"
        ),
        pytest.param((NOW_MILLIS + 500) * TOKEN_SPAN, NOW_MILLIS, "plus-one", id="slightly-ahead"),
        pytest.param((NOW_MILLIS + 5000) * TOKEN_SPAN, NOW_MILLIS, "fresh", id="far-ahead"),
        pytest.param(2**63 - 1, NOW_MILLIS, "fresh", id="garbage"),
    ],
)
def test_next_token_only_grows_and_never_follows_a_far_future(previous, millis, expected):
    token = next_token(previous, millis)
    if expected == "plus-one":
        assert token == previous + 1
    else:
        assert token // TOKEN_SPAN == millis
    if previous is not None and expected == "plus-one":
        assert token > previous


@pytest.mark.parametrize(
    ("last_modified", "bound", "settled"),
    [
        pytest.param(999.5, 1000.0, True, id="next-second"),
        pytest.param(999.0, 999.99, False, id="same-second"),
        pytest.param(999.0, None, False, id="no-clock"),
        pytest.param(1001.0, 1000.0, False, id="future"),
    ],
)
def test_a_date_is_settled_once_the_clock_left_its_second(last_modified, bound, settled):
    assert is_settled(last_modified, bound) is settled


def test_a_clock_sample_bounds_the_servers_clock_from_below():
    clock = ClockSample()
    assert clock.lower_bound() is None
    received = time.monotonic()
    clock.observe(5000.0, received=received)
    first = clock.lower_bound()
    assert first is not None
    assert 5000.0 <= first < 5000.5
    time.sleep(0.02)
    second = clock.lower_bound()
    assert second is not None
    assert second > first
    # Elapsed time is discounted: the bound never runs ahead of the server's clock,
    # which was at least at the reading when the reply arrived.
    assert second - 5000.0 <= time.monotonic() - received


def test_a_clock_sample_asks_the_server_only_when_it_cannot_settle():
    asked = []

    def ask() -> float:
        asked.append(1)
        return 6000.5

    clock = ClockSample(ask, min_ask_interval=60)
    clock.observe(5000.0)
    assert is_settled(4998.0, clock.bound_settling(4998.0))
    assert asked == []
    assert is_settled(5999.0, clock.bound_settling(5999.0))
    assert asked == [1]
    # Asked at most once per interval: a date in the current second stays unsettled.
    assert not is_settled(6000.0, clock.bound_settling(6000.0))
    assert asked == [1]
    clock.forget()
    assert clock.lower_bound() is None


# --- The stores date their tokens -----------------------------------------------------


def _assert_dated_now(token: int) -> None:
    assert abs(token_seconds(token) - time.time()) < 5


@pytest.mark.django_db(transaction=True)
def test_database_tokens_are_dated_by_the_databases_clock():
    store = DatabaseStampStore()
    before = store.read("default", TABLES)
    store.move("default", ["testapp_article"])
    after = store.read("default", TABLES)
    assert after[0] > before[0]
    assert after[1] == before[1]
    _assert_dated_now(after[0])
    bound = store.clock_bound("default", 0.0)
    assert bound is not None
    assert abs(bound - time.time()) < 5


@pytest.mark.django_db(transaction=True)
def test_database_moves_in_one_millisecond_still_grow():
    store = DatabaseStampStore()
    tokens = []
    for _ in range(20):
        store.move("default", ["testapp_note"])
        tokens.append(store.read("default", ["testapp_note"])[0])
    assert tokens == sorted(tokens)
    assert len(set(tokens)) == len(tokens)


def test_local_memory_tokens_are_dated_by_this_process():
    store = ProcessStampStore()
    (before,) = store.read("default", ["t"])
    store.move("default", ["t"])
    (after,) = store.read("default", ["t"])
    assert after > before
    _assert_dated_now(after)
    bound = store.clock_bound("default", 0.0)
    assert bound is not None
    assert abs(bound - time.time()) < 1


def test_redis_tokens_are_dated_by_redis(tracked_cache):  # noqa: F811
    store = CacheStampStore(tracked_cache)
    before = store.read("default", TABLES)
    bound = store.clock_bound("default", 0.0)
    store.move("default", ["testapp_article"])
    store.move("default", ["testapp_article"])
    after = store.read("default", TABLES)
    assert after[0] > before[0]
    assert after[1] == before[1]
    _assert_dated_now(after[0])
    assert bound is not None
    assert abs(bound - time.time()) < 5
    assert store.has_clock("default")


def test_a_cache_without_a_clock_gives_no_date():
    with override_settings(
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "files": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
        },
        CONDITIONAL_STAMP_CACHE="files",
    ):
        store = CacheStampStore("files")
        assert not store.has_clock("default")
        assert stamps_date("default", store.read("default", TABLES)) is None
        caches["files"].clear()


# --- When a date is settled -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_date_within_its_second_is_not_settled_and_is_after_it():
    stamps = read_stamps("default", TABLES)
    date = stamps_date("default", stamps)
    assert date is not None
    assert not date_is_settled("default", time.time() + 10)
    assert date_is_settled("default", date - 5)


@pytest.mark.django_db(transaction=True)
def test_a_transaction_counts_from_its_first_statement():
    """Its snapshot is taken at its first read, no earlier: dates are settled against that."""
    assert snapshot_age(connection) == 0.0
    with transaction.atomic():
        Article.objects.exists()
        time.sleep(0.05)
        age = snapshot_age(connection)
        if connection.vendor == "postgresql":
            assert age == 0.0  # READ COMMITTED: every statement takes a fresh snapshot
        else:
            assert age is not None
            assert age >= 0.05
        read_stamps("default", TABLES)
        assert date_is_settled("default", time.time() - 3)
        assert not date_is_settled("default", time.time() + 1)
    Article.objects.exists()
    assert snapshot_age(connection) == 0.0


@pytest.mark.django_db(transaction=True)
def test_last_changed_is_an_exact_date_once_its_second_is_over():
    Article.objects.create(title="one", author=Author.objects.create(name="Ada"))
    assert last_changed(Article) is None  # the write's second is not over
    age_stamps(2)
    changed = last_changed(Article)
    assert changed is not None
    assert changed.tzinfo == dt.timezone.utc
    assert time.time() - 4 < changed.timestamp() < time.time() - 1
    # A deletion moves it (Max("modified") would not).
    Article.objects.all().delete()
    age_stamps(1)
    moved = last_changed(Article)
    assert moved is not None
    assert moved > changed
    assert last_changed(Author) is not None


@pytest.mark.django_db(transaction=True)
def test_a_kept_validator_settles_when_a_later_read_shows_it_can(monkeypatch):
    """A validator derived within its date's second is kept unsettled, and a later use,
    with the same stamps and the clock past that second, sends the date."""
    store = DatabaseStampStore()
    stamps = store.read("default", TABLES)
    date = stamps_date("default", stamps)
    assert date is not None
    unsettled = Validator(
        last_modified=dt.datetime.fromtimestamp(date, tz=dt.timezone.utc),
        last_modified_settled=False,
    )
    entry = validator_cache.Entry("default", TABLES, stamps, unsettled)
    validator_cache.store(("variant",), entry, shared=False)
    monkeypatch.setattr(DatabaseStampStore, "clock_bound", lambda self, alias, lm: date)
    found = validator_cache.lookup(("variant",), shared=False)
    assert found is not None
    assert not found.last_modified_settled
    monkeypatch.setattr(DatabaseStampStore, "clock_bound", lambda self, alias, lm: date + 1)
    found = validator_cache.lookup(("variant",), shared=False)
    assert found is not None
    assert found.last_modified_settled
