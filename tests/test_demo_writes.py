"""Every write path moves exactly the demo pages that show what it wrote.

Stamps move after commit, and validators are cached only outside a transaction,
so these tests commit for real (``transactional_db``). Each test warms every
page, makes one write (through the admin, the ORM, a cursor, ``touch()``), and
revalidates every page with the tag it had: the pages that show what was
written answer 200, every other page still 304.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import connection, connections, transaction
from django.test import override_settings
from django.urls import reverse

from django_conditional.tracking import touch
from testproject.demo.factories import ArticleFactory, AuthorFactory, CommentFactory, TagFactory
from testproject.demo.models import Article, Author, Comment, Tag
from testproject.demo.views import PER_PAGE
from tests.conftest import age_stamps

pytestmark = pytest.mark.django_db(transaction=True)

STAMPS_IN_CACHE = override_settings(CONDITIONAL_STAMP_CACHE="default")

# Page 3 of the list holds the oldest five published articles.
FILLERS = 2 * PER_PAGE + 3


@pytest.fixture(autouse=True)
def _empty_cache():
    # Validators (and, with CONDITIONAL_STAMP_CACHE, stamps) outlive a test in locmem.
    cache.clear()
    yield
    cache.clear()


@dataclass
class Blog:
    ada: Author
    bob: Author
    http: Tag
    sql: Tag
    newest: Article  # by Ada, tagged "http", on page 1 of the list, two comments
    oldest: Article  # by Bob, tagged "sql", on page 3 of the list, one comment

    def pages(self) -> dict[str, str]:
        return {
            "list-1": "/",
            "list-3": "/?page=3",
            "detail-newest": self.newest.get_absolute_url(),
            "async-detail-newest": f"/async{self.newest.get_absolute_url()}",
            "detail-oldest": self.oldest.get_absolute_url(),
            "author-ada": self.ada.get_absolute_url(),
            "author-bob": self.bob.get_absolute_url(),
            "tag-http": self.http.get_absolute_url(),
            "tag-sql": self.sql.get_absolute_url(),
            "about": "/about/",
            "feed": "/feed.txt",
        }


@pytest.fixture
def blog() -> Blog:
    ada = AuthorFactory(name="Ada Lovelace", slug="ada")
    bob = AuthorFactory(name="Bob Kahn", slug="bob")
    http, sql, misc = (TagFactory(name=name, slug=name) for name in ("http", "sql", "misc"))
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for day in range(FILLERS):
        ArticleFactory(author=ada, tags=[misc], published_at=start + timedelta(days=day + 1))
    newest = ArticleFactory(
        author=ada, title="Newest", tags=[http], published_at=start + timedelta(days=365)
    )
    oldest = ArticleFactory(author=bob, title="Oldest", tags=[sql], published_at=start)
    ArticleFactory(author=ada, slug="draft", is_published=False)
    CommentFactory.create_batch(2, article=newest)
    CommentFactory(article=oldest)
    age_stamps()  # dates are sent once the stamp clock has left their second
    return Blog(ada, bob, http, sql, newest, oldest)


# Each page's Last-Modified as the last warm() saw it.
_dates: dict[str, str] = {}


def warm(client, blog: Blog) -> dict[str, str]:
    """Visit every page three times: a 200, then a 304 for its tag and one for its date.

    Returns the tags.
    """
    age_stamps()  # the writes so far are old: every page sends its date
    tags = {}
    _dates.clear()
    for name, url in blog.pages().items():
        first = client.get(url)
        assert first.status_code == 200, name
        assert client.get(url, headers={"if-none-match": first["ETag"]}).status_code == 304, name
        since = first["Last-Modified"]
        assert client.get(url, headers={"if-modified-since": since}).status_code == 304, name
        tags[name] = first["ETag"]
        _dates[name] = since
    return tags


def revalidated(client, blog: Blog, tags: dict[str, str]) -> dict[str, int]:
    """Each page's status for its tag; a page changed for its tag is changed for its date."""
    statuses = {}
    for name, url in blog.pages().items():
        statuses[name] = client.get(url, headers={"if-none-match": tags[name]}).status_code
        by_date = client.get(url, headers={"if-modified-since": _dates[name]}).status_code
        # The date is coarser than the tag (any write to a table the page reads moves
        # it), never finer: a page changed for its tag is never a 304 for its date.
        if statuses[name] != 304:
            assert by_date == statuses[name], (name, by_date, statuses[name])
    return statuses


def expected(blog: Blog, changed: set[str], missing: frozenset[str] = frozenset()) -> dict:
    unknown = (changed | missing) - blog.pages().keys()
    assert not unknown, unknown
    return {
        name: 404 if name in missing else 200 if name in changed else 304 for name in blog.pages()
    }


# What each kind of write changes -------------------------------------------------------------

ALL = {
    "list-1",
    "list-3",
    "detail-newest",
    "async-detail-newest",
    "detail-oldest",
    "author-ada",
    "author-bob",
    "tag-http",
    "tag-sql",
    "about",
    "feed",
}
# The newest article's own row: its list page, its pages, its tag's page, and the
# pages built from whole models that include articles (authors' pages, about, feed).
NEWEST_EDITED = {
    "list-1",
    "detail-newest",
    "async-detail-newest",
    "author-ada",
    "author-bob",
    "tag-http",
    "about",
    "feed",
}
OLDEST_EDITED = {
    "list-3",
    "detail-oldest",
    "author-ada",
    "author-bob",
    "tag-sql",
    "about",
    "feed",
}
# Every page that shows tags: the list's cards, article pages, tag pages.
TAGS_WRITTEN = {
    "list-1",
    "list-3",
    "detail-newest",
    "async-detail-newest",
    "detail-oldest",
    "tag-http",
    "tag-sql",
}
COMMENTS_WRITTEN = {"detail-newest", "async-detail-newest", "detail-oldest", "about"}
BOB_RENAMED = (ALL - {"author-ada", "feed"}) | {"author-bob"}
ARTICLE_ADDED = {"list-1", "list-3", "author-ada", "author-bob", "about", "feed"}


# The admin ---------------------------------------------------------------------------------


class _FormValues(HTMLParser):
    """What a browser would submit from one form of a page, unchanged."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, list[str]] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.inside = attributes.get("id") == self.form_id
        if not self.inside:
            return
        name = attributes.get("name")
        if tag == "input" and name:
            kind = (attributes.get("type") or "text").lower()
            if kind in {"submit", "button", "image", "reset", "file"}:
                return
            if kind in {"checkbox", "radio"}:
                if "checked" not in attributes:
                    return
                # A checked box without a value submits "on" (HTML spec).
                attributes.setdefault("value", "on")
            self.data.setdefault(name, []).append(attributes.get("value") or "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.data.setdefault(name, []).append("")
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in attributes:
            self.data[self._select].append(attributes.get("value") or "")

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.data[self._textarea][-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def admin_change(admin_client, model: str, pk: int, **changes: Any) -> None:
    """Submit an object's admin change form as a browser would, with ``changes``.

    A change of ``None`` leaves the field out, as a browser does for a multiple
    select with nothing selected.
    """
    url = reverse(f"admin:demo_{model}_change", args=[pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    parser = _FormValues(f"{model}_form")
    parser.feed(page.content.decode())
    # A textarea's first newline belongs to the markup, not to the value (HTML spec).
    data: dict[str, Any] = {
        name: [value.removeprefix("\n") for value in values] for name, values in parser.data.items()
    }
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)  # a multiple select with nothing selected
        else:
            data[name] = [str(value)]
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context and response.context.get("errors")


def admin_edit_newest(blog, admin_client):
    admin_change(admin_client, "article", blog.newest.pk, title="Newest, revised")


def admin_add_tag(blog, admin_client):
    response = admin_client.post(reverse("admin:demo_tag_add"), {"name": "New", "slug": "new"})
    assert response.status_code == 302
    assert Tag.objects.filter(slug="new").exists()


def admin_delete_comment(blog, admin_client):
    comment = blog.newest.comments.first()
    url = reverse("admin:demo_comment_delete", args=[comment.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not Comment.objects.filter(pk=comment.pk).exists()


def admin_rename_bob(blog, admin_client):
    admin_change(admin_client, "author", blog.bob.pk, name="Robert Kahn")


def admin_untag_newest(blog, admin_client):
    admin_change(admin_client, "article", blog.newest.pk, tags=None)


@pytest.mark.parametrize(
    ("write", "changed"),
    [
        pytest.param(admin_edit_newest, NEWEST_EDITED, id="edit-article"),
        pytest.param(admin_add_tag, TAGS_WRITTEN, id="add-tag"),
        pytest.param(admin_delete_comment, COMMENTS_WRITTEN, id="delete-comment"),
        pytest.param(admin_rename_bob, BOB_RENAMED, id="rename-author"),
        pytest.param(admin_untag_newest, ALL, id="untag-article"),
    ],
)
def test_a_write_through_the_admin(client, admin_client, blog, write, changed):
    tags = warm(client, blog)

    write(blog, admin_client)

    assert revalidated(client, blog, tags) == expected(blog, changed)


def test_an_admin_save_without_changes_moves_only_that_article(client, admin_client, blog):
    # The admin saves the row (a new version) but writes no tag or comment.
    tags = warm(client, blog)

    admin_change(admin_client, "article", blog.oldest.pk)

    assert revalidated(client, blog, tags) == expected(blog, OLDEST_EDITED)


# The ORM and the database cursor ----------------------------------------------------------------


def save_newest(blog):
    blog.newest.title = "Saved"
    blog.newest.save()


def save_newest_update_fields(blog):
    blog.newest.title = "Saved"
    blog.newest.save(update_fields=["title"])


def update_newest(blog):
    Article.objects.filter(pk=blog.newest.pk).update(title="Updated")


def raw_update_newest(blog):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE demo_article SET title = %s WHERE id = %s", ["Raw", blog.newest.pk])


def bulk_update_oldest(blog):
    blog.oldest.title = "Bulk"
    Article.objects.bulk_update([blog.oldest], ["title"])


def bulk_create_article(blog):
    Article.objects.bulk_create(
        [
            Article(
                author=blog.ada,
                title="Bulk created",
                slug="bulk",
                body="...",
                published_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
            )
        ]
    )


def upsert_bob(blog):
    # bulk_create(update_conflicts=True): an INSERT that updates the existing row.
    unique = ["slug"] if connection.features.supports_update_conflicts_with_target else None
    Author.objects.bulk_create(
        [Author(name="Robert Kahn", slug="bob")],
        update_conflicts=True,
        unique_fields=unique,
        update_fields=["name"],
    )
    assert Author.objects.get(slug="bob").name == "Robert Kahn"


def add_comment_to_oldest(blog):
    CommentFactory(article=blog.oldest)


def delete_comments_queryset(blog):
    Comment.objects.filter(article=blog.newest).delete()


def delete_bob_cascades(blog):
    # Bob's article, its comment and its tag links go with him.
    blog.bob.delete()


class RollBack(Exception):
    pass


def _edit_everything_then_fail(blog):
    with transaction.atomic():
        save_newest(blog)
        Comment.objects.all().delete()
        TagFactory()
        raise RollBack


def rolled_back_edit(blog):
    with pytest.raises(RollBack):
        _edit_everything_then_fail(blog)
    blog.newest.refresh_from_db()


def _tag_then_fail():
    with transaction.atomic():
        TagFactory()
        raise RollBack


def rolled_back_savepoint(blog):
    with transaction.atomic():
        add_comment_to_oldest(blog)
        with pytest.raises(RollBack):
            _tag_then_fail()


def touch_tags(blog):
    touch(Tag)


def touch_newest(blog):
    touch(blog.newest)


def touch_table(blog):
    touch("demo_comment")


@pytest.mark.parametrize(
    ("write", "changed"),
    [
        pytest.param(save_newest, NEWEST_EDITED, id="save"),
        pytest.param(save_newest_update_fields, NEWEST_EDITED, id="save-update-fields"),
        pytest.param(update_newest, NEWEST_EDITED, id="queryset-update"),
        pytest.param(raw_update_newest, NEWEST_EDITED, id="raw-sql-update"),
        pytest.param(bulk_update_oldest, OLDEST_EDITED, id="bulk-update"),
        pytest.param(bulk_create_article, ARTICLE_ADDED, id="bulk-create"),
        pytest.param(upsert_bob, BOB_RENAMED, id="bulk-create-upsert"),
        pytest.param(add_comment_to_oldest, COMMENTS_WRITTEN, id="create-comment"),
        pytest.param(delete_comments_queryset, COMMENTS_WRITTEN, id="queryset-delete"),
        pytest.param(lambda blog: blog.newest.tags.add(blog.sql), ALL, id="m2m-add-forward"),
        pytest.param(
            lambda blog: blog.sql.articles.remove(blog.oldest), ALL, id="m2m-remove-reverse"
        ),
        pytest.param(lambda blog: blog.newest.tags.clear(), ALL, id="m2m-clear-forward"),
        pytest.param(lambda blog: blog.http.articles.clear(), ALL, id="m2m-clear-reverse"),
        pytest.param(lambda blog: blog.oldest.tags.set([blog.http]), ALL, id="m2m-set-forward"),
        pytest.param(rolled_back_edit, set(), id="rolled-back"),
        pytest.param(rolled_back_savepoint, COMMENTS_WRITTEN, id="rolled-back-savepoint"),
        pytest.param(touch_tags, TAGS_WRITTEN, id="touch-model"),
        # touch(instance) moves that row's version: exactly the pages showing it change.
        pytest.param(touch_newest, NEWEST_EDITED, id="touch-instance"),
        pytest.param(touch_table, COMMENTS_WRITTEN, id="touch-table"),
    ],
)
def test_a_write_through_the_orm(client, blog, write, changed):
    tags = warm(client, blog)

    write(blog)

    assert revalidated(client, blog, tags) == expected(blog, changed)


def test_a_cascade_delete(client, blog):
    tags = warm(client, blog)

    delete_bob_cascades(blog)

    assert revalidated(client, blog, tags) == expected(
        blog, ALL - {"detail-oldest", "author-bob"}, frozenset({"detail-oldest", "author-bob"})
    )


def test_a_write_through_the_orm_with_stamps_in_the_cache(client, blog):
    with STAMPS_IN_CACHE:
        tags = warm(client, blog)

        TagFactory()

        assert revalidated(client, blog, tags) == expected(blog, TAGS_WRITTEN)


# The cost of a 304 ---------------------------------------------------------------------------


@STAMPS_IN_CACHE
@pytest.mark.parametrize("page", ["list-1", "list-3", "detail-newest", "about", "tag-http"])
def test_a_warm_304_runs_no_query_with_stamps_in_the_cache(
    client, blog, page, django_assert_num_queries
):
    url = blog.pages()[page]
    first = client.get(url)

    with django_assert_num_queries(0):
        response = client.get(url, headers={"if-none-match": first["ETag"]})

    assert response.status_code == 304


@STAMPS_IN_CACHE
def test_a_write_elsewhere_keeps_the_list_at_zero_queries(client, blog, django_assert_num_queries):
    first = client.get("/")
    CommentFactory(article=blog.newest)  # comments are not on the list

    with django_assert_num_queries(0):
        response = client.get("/", headers={"if-none-match": first["ETag"]})

    assert response.status_code == 304


@pytest.mark.parametrize(
    "page", ["list-1", "list-3", "detail-newest", "about", "tag-http", "author-ada"]
)
def test_a_warm_304_reads_only_the_stamps_in_the_database(
    client, blog, page, django_assert_num_queries
):
    url = blog.pages()[page]
    first = client.get(url)

    with django_assert_num_queries(1):
        response = client.get(url, headers={"if-none-match": first["ETag"]})

    assert response.status_code == 304


def test_a_cached_validator_still_renders_the_page(client, blog, django_assert_num_queries):
    # A client without the tag gets the page from the cached validator: the rows
    # are fetched once, by the view, and nothing is computed again.
    client.get("/")

    # The stamps (the cache hit), then the view's count, rows and their tags.
    with django_assert_num_queries(4):
        response = client.get("/")

    assert response.status_code == 200
    assert response.context["page_obj"][0] == blog.newest


async def test_async_detail_after_a_cached_validator(async_client, blog):
    # The second request finds the validator cached: nothing was fetched for it,
    # and the view fetches the article through the async ORM.
    url = f"/async{blog.newest.get_absolute_url()}"
    try:
        first = await async_client.get(url)
        second = await async_client.get(url)
    finally:
        # The validator is derived in sync_to_async's worker thread: close its
        # connection, or PostgreSQL refuses to drop the test database.
        await sync_to_async(connections.close_all)()

    assert first.status_code == second.status_code == 200
    assert second["ETag"] == first["ETag"]
    assert b"Newest" in second.content


# If-Modified-Since alone ---------------------------------------------------------------


def test_if_modified_since_alone_sees_a_new_comment(client, blog):
    """A new comment moves the article page's date (the comment table's stamp)."""
    url = blog.newest.get_absolute_url()
    first = client.get(url)
    CommentFactory(article=blog.newest)

    response = client.get(url, headers={"if-modified-since": first["Last-Modified"]})

    assert response.status_code == 200
