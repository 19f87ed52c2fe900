"""Deriving validators: exact for the rows selected, cached under the stamps they were read with."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import transaction
from django.db.models import Prefetch

from django_conditional.derivation import Derivation, derive
from tests.conftest import age_stamps
from tests.testapp.models import Article, Author, Code, Comment, Note, Restaurant, Tag

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def author():
    return Author.objects.create(name="Ada")


def tag_of(queryset=None, *, single=False, depends_on=(), key=None, salts=()):
    derivation = Derivation(
        queryset=None if queryset is None else (lambda: queryset),
        single=single,
        depends_on=depends_on,
        salts=salts,
    )
    return derive(derivation, cache_key=key).validator.etag


def test_the_same_data_gives_the_same_tag(author):
    Article.objects.create(title="a", author=author)
    assert tag_of(Article.objects.all()) == tag_of(Article.objects.all())


def test_unsliced_tag_ignores_row_order(author):
    for n in range(3):
        Article.objects.create(title=str(n), author=author)
    assert tag_of(Article.objects.order_by("id")) == tag_of(Article.objects.order_by("-id"))


def test_sliced_tag_follows_row_order(author):
    for n in range(3):
        Article.objects.create(title=str(n), author=author)
    assert tag_of(Article.objects.order_by("id")[:3]) != tag_of(Article.objects.order_by("-id")[:3])


@pytest.mark.parametrize("sliced", [False, True], ids=["set", "page"])
def test_a_primary_key_used_again_after_a_delete_changes_the_tag(sliced):
    Code.objects.create(code="abc", label="first")
    queryset = Code.objects.order_by("code")
    before = tag_of(queryset[:10] if sliced else queryset)
    Code.objects.filter(code="abc").delete()
    Code.objects.create(code="abc", label="second")  # version 1 again
    assert tag_of(queryset[:10] if sliced else queryset) != before


def test_object_tag_changes_with_its_version_only(author):
    first = Article.objects.create(title="a", author=author)
    other = Article.objects.create(title="b", author=author)
    before = tag_of(Article.objects.filter(pk=first.pk), single=True)
    other.save()
    assert tag_of(Article.objects.filter(pk=first.pk), single=True) == before
    first.save()
    assert tag_of(Article.objects.filter(pk=first.pk), single=True) != before


def test_multi_table_child_tag_moves_with_a_parent_only_update(db):
    restaurant = Restaurant.objects.create(name="Chez", serves="soup")
    before = tag_of(Restaurant.objects.filter(pk=restaurant.pk), single=True)
    Restaurant.objects.filter(pk=restaurant.pk).update(name="Chez Nous")
    assert tag_of(Restaurant.objects.filter(pk=restaurant.pk), single=True) != before


def test_models_without_versions_use_their_stamps(db):
    Note.objects.create(text="a")
    before = tag_of(Note.objects.all())
    Note.objects.create(text="b")
    assert tag_of(Note.objects.all()) != before


def test_joined_tables_are_part_of_the_tag(author):
    Article.objects.create(title="a", author=author)
    queryset = Article.objects.select_related("author")
    before = tag_of(queryset)
    Author.objects.update(name="Bea")
    assert tag_of(queryset) != before


def test_salts_separate_variants(author):
    assert tag_of(depends_on=(Note,), salts=("a",)) != tag_of(depends_on=(Note,), salts=("b",))


def test_validators_are_cached_under_their_stamps(author, django_assert_num_queries):
    Article.objects.create(title="a", author=author)
    derivation = Derivation(queryset=Article.objects.all)
    first = derive(derivation, cache_key=("k",))
    assert not first.cached
    with django_assert_num_queries(1):  # the stamp read only
        second = derive(derivation, cache_key=("k",))
    assert second.cached
    assert second.validator.settled() == first.validator.settled()


def test_nothing_is_cached_inside_a_transaction(author):
    Article.objects.create(title="a", author=author)
    derivation = Derivation(queryset=Article.objects.all)
    with transaction.atomic():
        derive(derivation, cache_key=("k",))
    assert not derive(derivation, cache_key=("k",)).cached


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param("text", id="text"),
        pytest.param((9, "x"), id="other-format"),
        pytest.param(None, id="none"),
    ],
)
def test_an_unreadable_cache_entry_is_a_miss(author, garbage):
    from django_conditional.validator_cache import shared_key

    Article.objects.create(title="a", author=author)
    derivation = Derivation(queryset=Article.objects.all)
    expected = derive(derivation).validator
    cache.set(shared_key(("k",)), garbage)
    derived = derive(derivation, cache_key=("k",))
    assert not derived.cached
    # Whether the date is settled yet depends on when each ran: the same date either way.
    assert (derived.validator.etag, derived.validator.last_modified) == (
        expected.etag,
        expected.last_modified,
    )


def test_missing_object_is_http_404(db):
    from django.http import Http404

    with pytest.raises(Http404):
        derive(Derivation(queryset=lambda: Article.objects.filter(pk=-1), single=True))


@pytest.mark.parametrize(
    ("queryset", "write"),
    [
        pytest.param(
            lambda: Article.objects.select_related("author"),
            lambda: Author.objects.update(name="Bea"),
            id="select-related-field",
        ),
        pytest.param(
            lambda: Article.objects.select_related(),
            lambda: Author.objects.update(name="Bea"),
            id="select-related-all",
        ),
        pytest.param(
            lambda: Article.objects.filter(author__name="Ada"),
            lambda: Author.objects.create(name="Cy"),
            id="filter-join",
        ),
        pytest.param(
            lambda: Article.objects.prefetch_related("tags"),
            lambda: Tag.objects.update(name="renamed"),
            id="prefetch-m2m",
        ),
        pytest.param(
            lambda: Author.objects.prefetch_related("articles__comments"),
            lambda: Comment.objects.update(body="edited"),
            id="prefetch-nested-reverse",
        ),
        pytest.param(
            lambda: Article.objects.prefetch_related(
                Prefetch("comments", queryset=Comment.objects.select_related("article"))
            ),
            lambda: Comment.objects.update(body="edited"),
            id="prefetch-object",
        ),
    ],
)
@pytest.mark.parametrize("sliced", [False, True], ids=["set", "page"])
# Django 6.1 deprecates select_related() without fields; until it is gone it must work.
@pytest.mark.filterwarnings("ignore:Calling select_related\\(\\) with no arguments")
def test_related_rows_the_queryset_brings_are_part_of_the_tag(author, queryset, write, sliced):
    article = Article.objects.create(title="a", author=author)
    article.tags.add(Tag.objects.create(name="t"))
    Comment.objects.create(article=article, body="c")
    before = tag_of(queryset()[:5] if sliced else queryset())
    write()
    assert tag_of(queryset()[:5] if sliced else queryset()) != before


def test_a_page_whose_tag_holds_keeps_its_date_when_other_rows_change(author):
    """Stamps move for every row of a table; the date moves only when the page changes.

    The date of a derived page is its stamps' newest move, but a recomputation that
    finds the tag this process kept keeps that validator's date: the tag is exact, so
    the page (and its date) are as they were.
    """
    shown = Article.objects.create(title="shown", author=author)
    other = Article.objects.create(title="other", author=author)
    age_stamps()
    derivation = Derivation(queryset=lambda: Article.objects.filter(pk=shown.pk), single=True)
    first = derive(derivation, cache_key=("detail",)).validator
    assert first.last_modified is not None
    other.save()  # moves the article table's stamp
    again = derive(derivation, cache_key=("detail",))
    assert not again.cached  # its stamps moved: recomputed
    assert again.validator.etag == first.etag
    assert again.validator.last_modified == first.last_modified
    shown.save()
    changed = derive(derivation, cache_key=("detail",)).validator
    assert changed.etag != first.etag
    assert changed.last_modified is not None
    assert changed.last_modified > first.last_modified
