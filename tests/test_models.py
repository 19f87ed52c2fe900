"""The version and modification-time mixins on every write path."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone

from tests.testapp.models import (
    Article,
    Author,
    Code,
    Comment,
    Event,
    Place,
    PublishedArticle,
    Restaurant,
    Tag,
)

pytestmark = pytest.mark.django_db


def version_in_db(obj):
    return type(obj)._base_manager.values_list("version", flat=True).get(pk=obj.pk)


@pytest.fixture
def author():
    return Author.objects.create(name="Ada")


@pytest.fixture
def article(author):
    return Article.objects.create(title="One", author=author)


def test_version_starts_at_one(article):
    assert article.version == 1
    assert version_in_db(article) == 1


def test_save_increments_in_the_database_and_the_instance_sees_it(article):
    article.title = "Two"
    article.save()
    assert article.version == 2
    assert version_in_db(article) == 2


def test_concurrent_saves_never_lose_an_increment(article):
    first = Article.objects.get(pk=article.pk)
    second = Article.objects.get(pk=article.pk)
    first.save()
    second.save()
    assert second.version == 3
    assert version_in_db(article) == 3


def test_save_with_update_fields_moves_version_and_modified(article):
    before = article.modified
    article.title = "Two"
    article.save(update_fields=["title"])
    article.refresh_from_db()
    assert article.version == 2
    assert article.modified > before


def test_modified_has_microseconds_and_is_never_in_the_future(article):
    assert article.modified <= timezone.now()
    stored = Article.objects.get(pk=article.pk).modified
    assert stored == article.modified  # microseconds survive the round trip


def test_queryset_update_moves_version_and_modified(article):
    before = article.modified
    assert Article.objects.filter(pk=article.pk).update(title="Bulk") == 1
    article.refresh_from_db()
    assert (article.version, article.title) == (2, "Bulk")
    assert article.modified > before


def test_update_through_a_plain_queryset_still_moves_the_version(article):
    """The tracking adds the increment to the SQL of any UPDATE of a versioned table."""
    Article._base_manager.filter(pk=article.pk).update(title="Plain")
    assert version_in_db(article) == 2


def test_raw_sql_update_through_djangos_cursor_moves_the_version(article):
    table = connection.ops.quote_name(Article._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET title = %s WHERE id = %s", ["Raw", article.pk])
    assert version_in_db(article) == 2


def test_bulk_update_moves_versions(author):
    articles = [Article.objects.create(title=str(n), author=author) for n in range(3)]
    for item in articles:
        item.title += "!"
    Article.objects.bulk_update(articles, ["title"])
    assert sorted(Article.objects.values_list("version", flat=True)) == [2, 2, 2]


def test_upsert_moves_the_version_of_updated_rows(author, article):
    if not connection.features.supports_update_conflicts:
        pytest.skip("this database has no upsert")
    replacement = Article(pk=article.pk, title="Upserted", author=author)
    Article.objects.bulk_create(
        [replacement],
        update_conflicts=True,
        unique_fields=["id"] if connection.features.supports_update_conflicts_with_target else None,
        update_fields=["title"],
    )
    article.refresh_from_db()
    assert (article.title, article.version) == ("Upserted", 2)


def test_set_null_from_the_deletion_collector_moves_the_version(author, article):
    reviewer = Author.objects.create(name="Rev")
    article.reviewer = reviewer
    article.save()
    reviewer.delete()
    article.refresh_from_db()
    assert article.reviewer is None
    assert article.version == 3


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda a, t: a.tags.add(t), id="add"),
        pytest.param(lambda a, t: t.articles.add(a), id="add-reverse"),
        pytest.param(lambda a, t: a.tags.set([t]), id="set"),
    ],
)
def test_many_to_many_changes_move_both_sides(article, change):
    tag = Tag.objects.create(name="t")
    change(article, tag)
    assert (version_in_db(article), version_in_db(tag)) == (2, 2)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda a, t: a.tags.remove(t), id="remove"),
        pytest.param(lambda a, t: t.articles.remove(a), id="remove-reverse"),
        pytest.param(lambda a, t: a.tags.clear(), id="clear"),
        pytest.param(lambda a, t: t.articles.clear(), id="clear-reverse"),
        pytest.param(lambda a, t: a.tags.set([]), id="set-empty"),
    ],
)
def test_many_to_many_removals_move_both_sides(article, change):
    tag = Tag.objects.create(name="t")
    article.tags.add(tag)
    change(article, tag)
    assert (version_in_db(article), version_in_db(tag)) == (3, 3)


def test_multi_table_inheritance(db):
    restaurant = Restaurant.objects.create(name="Chez", serves="soup")
    restaurant.serves = "bread"
    restaurant.save()
    assert restaurant.version == 2
    Restaurant.objects.filter(pk=restaurant.pk).update(serves="cake")
    assert Place.objects.get(pk=restaurant.pk).version == 3
    Place.objects.filter(pk=restaurant.pk).update(name="Chez Nous")
    assert Restaurant.objects.get(pk=restaurant.pk).version == 4


def test_proxy_models_share_the_version(article):
    proxy = PublishedArticle.objects.get(pk=article.pk)
    proxy.title = "Proxy"
    proxy.save()
    assert proxy.version == 2
    assert version_in_db(article) == 2


def test_non_integer_primary_key(db):
    code = Code.objects.create(code="abc", label="A")
    code.label = "B"
    code.save()
    assert code.version == 2
    Code.objects.filter(pk="abc").update(label="C")
    assert Code.objects.get(pk="abc").version == 3


def test_timestamped_model_without_version(db):
    event = Event.objects.create(name="e")
    before = event.modified
    Event.objects.filter(pk=event.pk).update(name="f")
    event.refresh_from_db()
    assert event.modified > before


def test_explicit_version_in_update_is_respected(article):
    Article.objects.filter(pk=article.pk).update(version=F("version") + 10)
    assert version_in_db(article) == 11


def test_comment_cascade_delete(article):
    Comment.objects.create(article=article, body="x")
    article.delete()
    assert Comment.objects.count() == 0


def test_modified_is_timezone_aware(article):
    assert article.modified.tzinfo is not None
    assert article.modified.utcoffset() == dt.timedelta(0)
