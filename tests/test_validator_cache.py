"""Kept validators: in this process first, the shared cache second, never past a moved stamp."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.test import override_settings

from django_conditional import validator_cache
from django_conditional.derivation import Derivation, derive
from django_conditional.stamps import get_stamp_store
from tests.testapp.models import Article, Author

pytestmark = pytest.mark.django_db(transaction=True)

KEY = ("view", "host", "/path", "", "lang:en")


@pytest.fixture(autouse=True)
def _empty_shared_cache():
    caches["default"].clear()


@pytest.fixture
def articles():
    author = Author.objects.create(name="Ada")
    return [Article.objects.create(title=f"A{n}", author=author) for n in range(3)]


def _derive(key=KEY, **kwargs):
    return derive(Derivation(queryset=Article.objects.all, **kwargs), cache_key=key)


class _SharedCacheSpy:
    """Counts reads of the shared cache."""

    def __init__(self, monkeypatch):
        self.gets = 0
        cache = caches["default"]
        original = cache.get

        def get(*args, **kwargs):
            self.gets += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(cache, "get", get)


def test_a_kept_validator_is_read_from_this_process(articles, monkeypatch):
    first = _derive()
    spy = _SharedCacheSpy(monkeypatch)
    again = _derive()
    assert again.cached
    assert again.validator.settled() == first.validator.settled()
    assert spy.gets == 0


def test_another_processes_validator_comes_from_the_shared_cache(articles, monkeypatch):
    first = _derive()
    validator_cache.clear_local()  # a process that never computed it
    spy = _SharedCacheSpy(monkeypatch)
    again = _derive()
    assert again.cached
    assert again.validator.settled() == first.validator.settled()
    assert spy.gets == 1
    assert _derive().cached
    assert spy.gets == 1  # remembered in this process since


def test_a_moved_stamp_makes_a_kept_validator_useless(articles):
    first = _derive()
    articles[0].save()
    again = _derive()
    assert not again.cached
    assert again.validator != first.validator


def test_a_newer_shared_entry_replaces_a_stale_local_one(articles):
    """Another process recomputed after a write: this one uses that, not its stale copy."""
    _derive()
    stale_entry = validator_cache._local[KEY]
    articles[0].save()
    current = _derive()
    assert not current.cached
    validator_cache._local[KEY] = stale_entry  # this process still holds the old one
    found = validator_cache.lookup(KEY, shared=True)
    assert found is not None
    assert found.settled() == current.validator.settled()


def test_stamps_only_validators_stay_in_this_process(db, monkeypatch):
    sets = []
    monkeypatch.setattr(caches["default"], "set", lambda *args, **kwargs: sets.append(args))
    derivation = Derivation(depends_on=(Author,))
    derive(derivation, cache_key=KEY)
    assert sets == []
    assert derive(derivation, cache_key=KEY).cached


@override_settings(CONDITIONAL_LOCAL_CACHE_SIZE=2)
def test_this_process_keeps_the_newest_entries_only(articles):
    for number in range(4):
        _derive(key=(*KEY, str(number)))
    assert list(validator_cache._local) == [(*KEY, "2"), (*KEY, "3")]


@override_settings(CONDITIONAL_LOCAL_CACHE_SIZE=0)
def test_size_zero_keeps_nothing_in_this_process(articles):
    _derive()
    assert not validator_cache._local
    assert _derive().cached  # from the shared cache


def test_changing_a_setting_forgets_this_processes_entries(articles):
    _derive()
    assert validator_cache._local
    with override_settings(CONDITIONAL_DEPLOY_VERSION="2"):
        assert not validator_cache._local


def test_nothing_is_kept_inside_a_transaction(articles):
    from django.db import transaction

    with transaction.atomic():
        _derive()
    assert not validator_cache._local
    assert not _derive().cached


def test_the_stamps_checked_are_the_current_ones(articles):
    """Whatever store the run uses, a kept entry's stamps are those read before computing."""
    _derive()
    entry = validator_cache._local[KEY]
    assert get_stamp_store().read(entry.alias, entry.tables) == entry.stamps
