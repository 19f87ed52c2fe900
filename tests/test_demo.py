"""The demo site through Django's test client: each page's way in, 304s, 404s, seeding, admin.

These tests run inside pytest-django's per-test transaction (``db``), where stamps
never move (they move after commit) and no validator is cached. What they check
holds without either: the validators' headers, 304s, 404s, row changes, reuse.
Writes that must move stamps, and the query counts of a warm 304, are in
``test_demo_writes.py`` (``transactional_db``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import AsyncClient
from django.urls import reverse
from django.utils.http import http_date

from testproject.demo.factories import (
    ArticleFactory,
    AuthorFactory,
    CommentFactory,
    TagFactory,
)
from testproject.demo.models import Article, Author, Comment, Tag
from testproject.demo.views import PER_PAGE, TAG_PAGE_SIZE
from tests.conftest import age_stamps

pytestmark = pytest.mark.django_db

# Enough for two pages of published articles, plus one draft that must never show.
PUBLISHED = PER_PAGE + 5

WEAK_ETAG = re.compile(r'^W/"[A-Za-z0-9_-]+"$')
STRONG_ETAG = re.compile(r'^"[A-Za-z0-9_-]+"$')


@pytest.fixture
def tag():
    return TagFactory(name="Caching", slug="caching")


@pytest.fixture
def articles(tag):
    author = AuthorFactory(name="Ada Lovelace", slug="ada")
    published = ArticleFactory.create_batch(PUBLISHED, author=author, tags=[tag])
    ArticleFactory(author=author, slug="draft", title="Unfinished draft", is_published=False)
    age_stamps()  # dates are sent once the stamp clock has left their second
    return published


@pytest.fixture
def article(articles):
    article = articles[0]
    CommentFactory.create_batch(2, article=article)
    age_stamps()
    return article


def assert_revalidation_headers(response, first):
    """A 304 repeats the 200's validators and caching fields, and nothing about a body."""
    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == first["ETag"]
    assert response["Cache-Control"] == first["Cache-Control"]
    assert response.get("Vary") == first.get("Vary")
    assert not response.has_header("Content-Length")
    assert not response.has_header("Content-Type")


def assert_revalidate_required(response):
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"max-age=0", "must-revalidate"} <= directives


def assert_public(response):
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert "private" not in directives
    assert "Cookie" not in response.get("Vary", "")


def revalidate(client, url, first, **headers):
    return client.get(url, headers={"if-none-match": first["ETag"], **headers})


# Article list: ListView + ConditionalListMixin --------------------------------------------


def test_list_has_validators_and_cache_control(client, articles):
    response = client.get("/")

    assert response.status_code == 200
    assert WEAK_ETAG.match(response["ETag"])
    assert response.has_header("Last-Modified")
    assert_revalidate_required(response)
    assert_public(response)
    assert response.context["page_obj"].paginator.count == PUBLISHED
    assert b"Unfinished draft" not in response.content
    assert b'rel="next" href="?page=2"' in response.content


def test_list_revalidates_with_if_none_match(client, articles):
    first = client.get("/")

    response = revalidate(client, "/", first)

    assert_revalidation_headers(response, first)
    assert response["Last-Modified"] == first["Last-Modified"]


def test_list_revalidates_with_if_modified_since_alone(client, articles):
    """A list's Last-Modified is exact (its stamps' newest move): the date alone is a 304."""
    first = client.get("/")

    response = client.get("/", headers={"if-modified-since": first["Last-Modified"]})

    assert_revalidation_headers(response, first)


def test_list_renders_the_rows_the_validator_fetched(client, articles, django_assert_num_queries):
    client.get("/")  # gives each table its first stamp

    # The stamps, the count, the page's rows, their tags: the rows are not fetched twice.
    with django_assert_num_queries(4):
        response = client.get("/")

    assert response.status_code == 200
    assert len(response.context["page_obj"]) == PER_PAGE


def test_head_has_validators_and_no_body(client, articles):
    get = client.get("/")

    response = client.head("/")

    assert response.status_code == 200
    assert response.content == b""
    assert response["ETag"] == get["ETag"]


def test_if_none_match_wins_over_if_modified_since(client, articles):
    first = client.get("/")

    response = client.get(
        "/",
        headers={"if-none-match": '"something-else"', "if-modified-since": first["Last-Modified"]},
    )

    assert response.status_code == 200


def test_list_etag_moves_when_an_article_is_added(client, articles):
    first = client.get("/")
    ArticleFactory(title="Breaking news", published_at=datetime(2030, 1, 1, tzinfo=timezone.utc))

    response = revalidate(client, "/", first)

    assert response.status_code == 200
    assert response["ETag"] != first["ETag"]
    assert b"Breaking news" in response.content


def test_list_etag_moves_when_an_article_on_the_page_is_deleted(client, articles):
    first = client.get("/")
    on_first_page = client.get("/").context["page_obj"][5]
    Article.objects.filter(pk=on_first_page.pk).delete()

    response = revalidate(client, "/", first)

    assert response.status_code == 200
    assert response["ETag"] != first["ETag"]


def test_list_etag_moves_when_an_article_is_unpublished(client, articles):
    first = client.get("/")
    articles[3].is_published = False
    articles[3].save()

    response = revalidate(client, "/", first)

    assert response.status_code == 200


def test_pages_have_distinct_etags(client, articles):
    page_one = client.get("/")
    page_one_explicit = client.get("/?page=1")
    page_two = client.get("/?page=2")

    assert page_two.status_code == 200
    assert page_one["ETag"] == page_one_explicit["ETag"]
    assert page_one["ETag"] != page_two["ETag"]
    assert len(page_two.context["page_obj"]) == PUBLISHED - PER_PAGE
    # Page 1's tag does not revalidate page 2.
    assert revalidate(client, "/?page=2", page_one).status_code == 200


def test_last_page_by_name(client, articles):
    response = client.get("/", {"page": "last"})

    assert response.status_code == 200
    assert response.context["page_obj"].number == 2


@pytest.mark.parametrize(
    "page",
    [
        pytest.param("3", id="past-the-end"),
        pytest.param("0", id="zero"),
        pytest.param("-1", id="negative"),
        pytest.param("abc", id="not-a-number"),
        pytest.param("²", id="unicode-digit"),
    ],
)
def test_bad_page_is_404_even_when_revalidating(client, articles, page):
    response = client.get("/", {"page": page}, headers={"if-none-match": "*"})

    assert response.status_code == 404


def test_empty_list_is_a_page(client):
    response = client.get("/")

    assert response.status_code == 200
    assert response.has_header("ETag")
    assert not response.has_header("Last-Modified")
    assert revalidate(client, "/", response).status_code == 304


@pytest.mark.parametrize("url", ["/", "/about/", "/authors/ada/"])
def test_unsafe_method_on_a_class_based_page_is_not_allowed(client, articles, url):
    assert client.post(url).status_code == 405


@pytest.mark.parametrize("url", ["/", "/about/", "/authors/ada/"])
def test_unsafe_method_with_a_precondition_is_still_not_allowed(client, articles, url):
    """RFC 9110 section 13.2.1: the 405 beats any precondition."""
    assert client.post(url, headers={"if-match": '"stale"'}).status_code == 405


@pytest.mark.parametrize(
    "url",
    ["/articles/{slug}/", "/async/articles/{slug}/", "/tags/caching/", "/feed.txt"],
)
def test_unsafe_method_on_a_function_page_is_not_allowed(client, article, url):
    url = url.format(slug=article.slug)

    assert client.post(url).status_code == 405
    assert client.post(url, headers={"if-match": '"stale"'}).status_code == 405


# Article detail: @conditional(object=...) -------------------------------------------------


def test_detail_has_validators_and_shows_comments(client, article):
    response = client.get(article.get_absolute_url())

    assert response.status_code == 200
    assert WEAK_ETAG.match(response["ETag"])
    assert response.has_header("Last-Modified")
    assert_revalidate_required(response)
    assert_public(response)
    assert response.context["article"] == article
    assert len(response.context["comments"]) == 2
    for comment in article.comments.all():
        assert f'id="comment-{comment.pk}"'.encode() in response.content


def test_detail_reuses_request_conditional(client, article):
    response = client.get(article.get_absolute_url())

    # The footer renders request.conditional.etag, the very value sent as ETag.
    assert response.context["etag"] is not None
    assert str(response.context["etag"]) == response["ETag"]
    opaque = response["ETag"].removeprefix('W/"').removesuffix('"')
    assert opaque.encode() in response.content
    assert http_date(response.context["last_modified"].timestamp()) == response["Last-Modified"]


def test_detail_renders_the_object_the_validator_fetched(
    client, article, django_assert_num_queries
):
    url = article.get_absolute_url()
    client.get(url)  # gives each table its first stamp

    # The stamps, the article with its author, its tags, its comments: not the article twice.
    with django_assert_num_queries(4):
        response = client.get(url)

    assert response.status_code == 200


def test_detail_revalidates(client, article):
    url = article.get_absolute_url()
    first = client.get(url)

    by_etag = revalidate(client, url, first)
    # Comments and tags move the page's date too (their stamps): the date alone is exact.
    by_date = client.get(url, headers={"if-modified-since": first["Last-Modified"]})

    assert_revalidation_headers(by_etag, first)
    assert_revalidation_headers(by_date, first)


def test_detail_etag_moves_when_the_article_is_edited(client, article):
    url = article.get_absolute_url()
    first = client.get(url)
    article.title = "A better title"
    article.save()

    response = revalidate(client, url, first)

    assert response.status_code == 200
    assert b"A better title" in response.content


def test_detail_etag_moves_when_the_article_is_tagged(client, article):
    url = article.get_absolute_url()
    first = client.get(url)
    # A many-to-many change moves the versions on both sides.
    article.tags.add(TagFactory(name="Proxies"))

    response = revalidate(client, url, first)

    assert response.status_code == 200
    assert b"Proxies" in response.content


def test_other_articles_keep_their_tags(client, articles):
    other = articles[1]
    first = client.get(other.get_absolute_url())
    articles[0].title = "Edited elsewhere"
    articles[0].save()

    assert revalidate(client, other.get_absolute_url(), first).status_code == 304


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="unconditional"),
        pytest.param({"if-match": '"anything"'}, id="if-match"),
        pytest.param({"if-match": "*"}, id="if-match-star"),
        pytest.param({"if-none-match": "*"}, id="if-none-match-star"),
        pytest.param({"if-unmodified-since": "Sat, 01 Jan 2000 00:00:00 GMT"}, id="ius"),
    ],
)
@pytest.mark.parametrize(
    "url",
    [
        pytest.param("/articles/no-such-article/", id="sync"),
        pytest.param("/async/articles/no-such-article/", id="async"),
        pytest.param("/articles/draft/", id="draft"),
        pytest.param("/async/articles/draft/", id="async-draft"),
        pytest.param("/authors/nobody/", id="author"),
        pytest.param("/tags/nothing/", id="tag"),
    ],
)
def test_missing_object_is_404_whatever_the_preconditions(client, articles, url, headers):
    response = client.get(url, headers=headers)

    assert response.status_code == 404


def test_failed_if_match_on_existing_article_is_412(client, article):
    response = client.get(article.get_absolute_url(), headers={"if-match": '"stale"'})

    assert response.status_code == 412
    assert response["ETag"] == client.get(article.get_absolute_url())["ETag"]


def test_if_match_with_the_current_weak_tag_fails(client, article):
    # If-Match compares strongly (RFC 9110 section 13.1.1): a weak tag never matches.
    first = client.get(article.get_absolute_url())

    response = client.get(article.get_absolute_url(), headers={"if-match": first["ETag"]})

    assert response.status_code == 412


# Async article detail: the same decorator on an async def view ----------------------------


def test_async_detail_through_the_wsgi_client(client, article):
    url = reverse("demo:async-article-detail", kwargs={"slug": article.slug})
    first = client.get(url)

    assert first.status_code == 200
    assert WEAK_ETAG.match(first["ETag"])
    assert first.context["is_async"] is True
    assert first.context["article"] == article
    assert len(first.context["comments"]) == 2
    assert b"Rendered by an async view" in first.content
    assert_revalidation_headers(revalidate(client, url, first), first)


def test_async_detail_through_the_asgi_client(article):
    url = reverse("demo:async-article-detail", kwargs={"slug": article.slug})
    async_client = AsyncClient()

    first = async_to_sync(async_client.get)(url)
    by_etag = async_to_sync(async_client.get)(url, headers={"if-none-match": first["ETag"]})
    by_date = async_to_sync(async_client.get)(
        url, headers={"if-modified-since": first["Last-Modified"]}
    )
    missing = async_to_sync(async_client.get)(
        "/async/articles/no-such-article/", headers={"if-match": '"x"'}
    )

    assert first.status_code == 200
    assert_revalidation_headers(by_etag, first)
    assert_revalidation_headers(by_date, first)  # Last-Modified is exact
    assert missing.status_code == 404


def test_async_detail_shares_nothing_with_the_sync_page(client, article):
    sync = client.get(article.get_absolute_url())
    async_url = reverse("demo:async-article-detail", kwargs={"slug": article.slug})

    # Two views, two tags: a cache never takes one page's body for the other.
    assert revalidate(client, async_url, sync).status_code == 200


# Author page: DetailView + ConditionalDetailMixin, per user ---------------------------------


def test_author_page_is_private_and_varies_by_cookie(client, articles):
    author = Author.objects.get()
    first = client.get(author.get_absolute_url())

    assert first.status_code == 200
    assert WEAK_ETAG.match(first["ETag"])
    assert "Cookie" in first["Vary"]
    assert "private" in first["Cache-Control"]
    assert_revalidate_required(first)
    assert len(first.context["articles"]) == PUBLISHED
    assert b"Edit in the admin" not in first.content
    assert_revalidation_headers(revalidate(client, author.get_absolute_url(), first), first)


def test_author_page_differs_for_staff(client, admin_client, articles):
    url = Author.objects.get().get_absolute_url()
    anonymous = client.get(url)

    staff = revalidate(admin_client, url, anonymous)

    assert staff.status_code == 200
    assert staff["ETag"] != anonymous["ETag"]
    assert b"Edit in the admin" in staff.content
    assert_revalidation_headers(revalidate(admin_client, url, staff), staff)


def test_author_etag_moves_on_rename(client, articles):
    author = Author.objects.get()
    first = client.get(author.get_absolute_url())
    author.name = "Augusta Ada King"
    author.save()

    response = revalidate(client, author.get_absolute_url(), first)

    assert response.status_code == 200
    assert b"Augusta Ada King" in response.content


# Tag page: @conditional(queryset=...) -------------------------------------------------------


def test_tag_page_shows_its_articles_and_revalidates(client, articles, tag):
    first = client.get(tag.get_absolute_url())

    assert first.status_code == 200
    assert WEAK_ETAG.match(first["ETag"])
    assert_revalidate_required(first)
    assert_public(first)
    assert first.context["tag"] == tag
    assert len(first.context["articles"]) == PUBLISHED
    assert b"Unfinished draft" not in first.content
    assert_revalidation_headers(revalidate(client, tag.get_absolute_url(), first), first)


def test_tag_page_shows_the_newest_articles_only(client, tag):
    author = AuthorFactory()
    oldest = ArticleFactory(
        author=author, tags=[tag], published_at=datetime(2000, 1, 1, tzinfo=timezone.utc)
    )
    ArticleFactory.create_batch(TAG_PAGE_SIZE, author=author, tags=[tag])

    response = client.get(tag.get_absolute_url())

    assert len(response.context["articles"]) == TAG_PAGE_SIZE
    assert oldest not in response.context["articles"]
    assert f"The {TAG_PAGE_SIZE} newest articles with this tag".encode() in response.content


def test_tag_etag_moves_when_an_article_is_untagged(client, articles, tag):
    first = client.get(tag.get_absolute_url())
    articles[5].tags.remove(tag)

    response = revalidate(client, tag.get_absolute_url(), first)

    assert response.status_code == 200
    assert len(response.context["articles"]) == PUBLISHED - 1


def test_tag_etag_ignores_articles_without_the_tag(client, articles, tag):
    first = client.get(tag.get_absolute_url())
    ArticleFactory(author=Author.objects.get(), tags=[TagFactory()])

    assert revalidate(client, tag.get_absolute_url(), first).status_code == 304


def test_empty_tag_page_is_a_page(client, db):
    tag = TagFactory(slug="lonely")

    response = client.get(tag.get_absolute_url())

    assert response.status_code == 200
    assert b"No published articles carry this tag" in response.content
    assert revalidate(client, tag.get_absolute_url(), response).status_code == 304


# About page: TemplateView + ConditionalTemplateMixin ------------------------------------------


def test_about_page_counts_and_revalidates(client, article):
    first = client.get("/about/")

    assert first.status_code == 200
    assert WEAK_ETAG.match(first["ETag"])
    assert first.has_header("Last-Modified")  # the stamps' newest move
    assert_revalidate_required(first)
    assert_public(first)
    assert first.context["counts"] == {
        "published": PUBLISHED,
        "drafts": 1,
        "comments": 2,
        "authors": 1,
    }
    assert_revalidation_headers(revalidate(client, "/about/", first), first)


def test_about_page_reads_only_the_stamps_before_a_304(client, article, django_assert_num_queries):
    first = client.get("/about/")

    with django_assert_num_queries(1):
        response = revalidate(client, "/about/", first)

    assert response.status_code == 304


# Feed: the Django-compatible condition decorator ----------------------------------------------


def test_feed_is_plain_text_with_validators(client, articles):
    response = client.get("/feed.txt")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain"
    assert STRONG_ETAG.match(response["ETag"])
    assert response.has_header("Last-Modified")
    assert_revalidate_required(response)
    lines = response.content.decode().splitlines()
    assert len(lines) == 20
    newest = Article.objects.filter(is_published=True).first()
    assert lines[0].endswith(f"http://testserver{newest.get_absolute_url()}")
    assert "Unfinished draft" not in response.content.decode()


def test_feed_revalidates_with_two_queries(client, articles, django_assert_num_queries):
    first = client.get("/feed.txt")

    # The drop-in condition calls both functions: the count and the stamps' date.
    with django_assert_num_queries(2):
        by_etag = revalidate(client, "/feed.txt", first)
    by_date = client.get("/feed.txt", headers={"if-modified-since": first["Last-Modified"]})

    assert_revalidation_headers(by_etag, first)
    assert_revalidation_headers(by_date, first)


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda articles: articles[-1].save(), id="edit"),
        pytest.param(lambda articles: articles[-1].delete(), id="delete"),
        pytest.param(
            lambda articles: Article.objects.filter(pk=articles[-1].pk).update(is_published=False),
            id="unpublish",
        ),
        pytest.param(lambda articles: ArticleFactory(author=articles[0].author), id="add"),
    ],
)
def test_feed_etag_moves_on_every_article_write(client, articles, write):
    first = client.get("/feed.txt")
    write(articles)

    assert revalidate(client, "/feed.txt", first).status_code == 200


def test_healthz(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.content == b""
    assert not response.has_header("ETag")


# seed_demo -----------------------------------------------------------------------------------


def test_seed_demo_seeds_then_does_nothing(capsys):
    call_command("seed_demo", articles=30)
    seeded = capsys.readouterr().out
    slugs = set(Article.objects.values_list("slug", flat=True))

    call_command("seed_demo", articles=30)
    again = capsys.readouterr().out

    assert "Seeded 8 authors, 12 tags, 30 articles" in seeded
    assert "username 'admin', password 'admin'" in seeded
    assert "already has 30 articles; nothing to do" in again
    assert set(Article.objects.values_list("slug", flat=True)) == slugs
    assert Author.objects.count() == 8
    assert Tag.objects.count() == 12
    assert Comment.objects.exists()
    assert Article.objects.filter(is_published=False).count() == 3
    assert all(article.tags.exists() for article in Article.objects.prefetch_related("tags"))
    # Rows made by bulk_create start at version 1, like rows made by save().
    assert set(Article.objects.values_list("version", flat=True)) == {1}
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password("admin")


def test_seed_demo_reset_is_deterministic(capsys):
    call_command("seed_demo", articles=15)
    first = list(Article.objects.order_by("slug").values_list("slug", "title", "author__slug"))
    first_comments = list(
        Comment.objects.order_by("article__slug", "created_at", "author_name").values_list(
            "article__slug", "author_name", "created_at"
        )
    )

    call_command("seed_demo", "--reset", "--articles", "15")

    assert "Kept the superuser" in capsys.readouterr().out
    assert list(Article.objects.order_by("slug").values_list("slug", "title", "author__slug")) == (
        first
    )
    assert (
        list(
            Comment.objects.order_by("article__slug", "created_at", "author_name").values_list(
                "article__slug", "author_name", "created_at"
            )
        )
        == first_comments
    )
    assert get_user_model().objects.filter(username="admin").count() == 1


def test_seed_demo_reset_replaces_data(client):
    call_command("seed_demo", articles=25)
    before = client.get("/")

    call_command("seed_demo", reset=True, articles=5)

    assert Article.objects.count() == 5
    after = revalidate(client, "/", before)
    assert after.status_code == 200


def test_seed_demo_never_reuses_a_taken_slug():
    call_command("seed_demo", articles=5)
    first_authors = set(Author.objects.values_list("slug", flat=True))
    # Authors and tags left behind (say, made in the admin), but no articles.
    Article.objects.all().delete()

    call_command("seed_demo", articles=5)

    assert Author.objects.count() == 16
    new_authors = set(Author.objects.values_list("slug", flat=True)) - first_authors
    assert len(new_authors) == 8
    assert all(slug.endswith("-2") for slug in new_authors)
    assert Tag.objects.count() == 12
    assert Article.objects.count() == 5


def test_seed_demo_rejects_negative_count():
    with pytest.raises(CommandError, match="--articles must be 0 or more"):
        call_command("seed_demo", articles=-1)


def test_seeded_site_serves_every_page(client):
    call_command("seed_demo", articles=45)
    article = Article.objects.filter(is_published=True).first()

    urls = [
        "/",
        "/?page=2",
        article.get_absolute_url(),
        reverse("demo:async-article-detail", kwargs={"slug": article.slug}),
        article.author.get_absolute_url(),
        *(tag.get_absolute_url() for tag in article.tags.all()),
        "/about/",
        "/feed.txt",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert revalidate(client, url, response).status_code == 304, url


# Admin -------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["article", "author", "tag", "comment"])
def test_admin_changelist_loads(admin_client, article, model):
    response = admin_client.get(reverse(f"admin:demo_{model}_changelist"))

    assert response.status_code == 200


def test_admin_change_and_add_pages_load(admin_client, article):
    change = admin_client.get(reverse("admin:demo_article_change", args=[article.pk]))
    add = admin_client.get(reverse("admin:demo_article_add"))
    search = admin_client.get(reverse("admin:demo_article_changelist"), {"q": article.title})

    assert change.status_code == 200
    assert add.status_code == 200
    assert search.status_code == 200
    assert article.title.encode() in search.content
    # The version is shown, never editable.
    assert b'name="version"' not in change.content
    assert b"Version" in change.content


def test_admin_requires_login(client):
    response = client.get(reverse("admin:demo_article_changelist"))

    assert response.status_code == 302


def test_published_at_is_content_not_a_validator(client, articles):
    # Backdating an article is an edit like any other: its version moves.
    first = client.get("/?page=2")
    last = first.context["page_obj"][-1]
    last.published_at -= timedelta(days=1)
    last.save()

    assert revalidate(client, "/?page=2", first).status_code == 200
