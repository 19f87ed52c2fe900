"""The stamp stores: one round trip per read, fresh tokens on every move."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.test import override_settings

from django_conditional.models import ChangeStamp
from django_conditional.stamps import (
    CacheStampStore,
    DatabaseStampStore,
    ProcessStampStore,
    get_stamp_store,
    new_token,
)

TABLES = ("testapp_article", "testapp_note")


def test_tokens_are_63_bit_and_fresh():
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(0 <= token < 2**63 for token in tokens)


def test_database_store_reads_in_one_query(db, django_assert_num_queries):
    store = DatabaseStampStore()
    first = store.read("default", TABLES)  # creates the rows
    with django_assert_num_queries(1):
        assert store.read("default", TABLES) == first
    assert ChangeStamp.objects.filter(table__in=TABLES).count() == 2


def test_database_store_moves(db):
    store = DatabaseStampStore()
    before = store.read("default", TABLES)
    store.move("default", ["testapp_note"])
    after = store.read("default", TABLES)
    assert after[0] == before[0]
    assert after[1] != before[1]


def test_database_store_move_creates_rows(db):
    DatabaseStampStore().move("default", ["never_read"])
    assert ChangeStamp.objects.filter(table="never_read").exists()


def test_empty_reads_cost_nothing(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert DatabaseStampStore().read("default", ()) == ()
        DatabaseStampStore().move("default", ())


def test_cache_store_runs_no_sql(db, django_assert_num_queries):
    store = CacheStampStore("default")
    with django_assert_num_queries(0):
        before = store.read("default", TABLES)
        assert store.read("default", TABLES) == before
        store.move("default", ["testapp_article"])
        after = store.read("default", TABLES)
    assert after[0] != before[0]
    assert after[1] == before[1]


def test_cache_store_keys_are_per_database():
    store = CacheStampStore("default")
    assert store.read("default", TABLES) != store.read("other", TABLES)


def test_a_lost_stamp_comes_back_as_a_new_token():
    store = CacheStampStore("default")
    before = store.read("default", TABLES)
    caches["default"].delete(CacheStampStore.key("default", "testapp_note"))
    assert store.read("default", TABLES)[1] != before[1]


@override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}})
def test_a_cache_that_stores_nothing_never_repeats_a_token():
    store = CacheStampStore("default")
    assert store.read("default", TABLES) != store.read("default", TABLES)


@pytest.mark.parametrize(
    ("setting", "store_type"),
    [
        pytest.param(None, DatabaseStampStore, id="database"),
        pytest.param("default", CacheStampStore, id="cache"),
        pytest.param("local", ProcessStampStore, id="local-memory"),
    ],
)
def test_store_follows_the_setting(setting, store_type):
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "t"},
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    with override_settings(CACHES=caches, CONDITIONAL_STAMP_CACHE=setting):
        assert isinstance(get_stamp_store(), store_type)


def test_local_memory_stamps_are_shared_by_aliases_of_one_location():
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "a": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "x"},
        "b": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "x"},
        "c": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "y"},
    }
    with override_settings(CACHES=caches, CONDITIONAL_STAMP_CACHE="a"):
        a = get_stamp_store()
    with override_settings(CACHES=caches, CONDITIONAL_STAMP_CACHE="b"):
        b = get_stamp_store()
    with override_settings(CACHES=caches, CONDITIONAL_STAMP_CACHE="c"):
        c = get_stamp_store()
    assert a is b
    assert a is not c
    assert a.reads_from_memory


def test_local_memory_stamps():
    store = ProcessStampStore()
    first = store.read("default", TABLES)
    assert store.read("default", TABLES) == first
    store.move("default", TABLES[:1])
    moved = store.read("default", TABLES)
    assert moved[0] != first[0]
    assert moved[1:] == first[1:]
    store.clear()
    assert store.read("default", TABLES)[1:] != first[1:]


def test_database_store_retries_a_deadlocked_move(db, monkeypatch):
    from django.db import OperationalError

    real_upsert = DatabaseStampStore._upsert
    failures = iter([OperationalError("deadlock detected")])

    def flaky_upsert(self, *args, **kwargs):
        error = next(failures, None)
        if error is not None:
            raise error
        return real_upsert(self, *args, **kwargs)

    store = DatabaseStampStore()
    before = store.read("default", TABLES)
    monkeypatch.setattr(DatabaseStampStore, "_upsert", flaky_upsert)
    store.move("default", ["testapp_note"])
    assert store.read("default", TABLES)[1] != before[1]


def test_database_store_gives_up_after_three_attempts(db, monkeypatch):
    from django.db import OperationalError

    calls = []

    def always_deadlocked(self, *args, **kwargs):
        calls.append(1)
        raise OperationalError("deadlock detected")

    monkeypatch.setattr(DatabaseStampStore, "_upsert", always_deadlocked)
    with pytest.raises(OperationalError):
        DatabaseStampStore().move("default", ["testapp_note"])
    assert len(calls) == 3
