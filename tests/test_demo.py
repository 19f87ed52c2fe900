"""The demo site through Django's test client: validators, 304s, 404s, seeding, admin."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import AsyncClient
from django.urls import reverse
from django.utils import timezone

from testproject.demo.factories import (
    ArticleFactory,
    AuthorFactory,
    CommentFactory,
    TagFactory,
)
from testproject.demo.models import Article, Author, Comment, Tag
from testproject.demo.validators import PER_PAGE

pytestmark = pytest.mark.django_db

# Enough for two pages of published articles, plus one draft that must never show.
PUBLISHED = PER_PAGE + 5

WEAK_ETAG = re.compile(r'^W/"[0-9a-f]{32}"$')


@pytest.fixture
def tag():
    return TagFactory(name="Caching", slug="caching")


@pytest.fixture
def articles(tag):
    author = AuthorFactory(name="Ada Lovelace", slug="ada")
    published = ArticleFactory.create_batch(PUBLISHED, author=author, tags=[tag])
    ArticleFactory(author=author, slug="draft", title="Unfinished draft", is_published=False)
    return published


@pytest.fixture
def article(articles):
    article = articles[0]
    CommentFactory.create_batch(2, article=article)
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


# Article list ----------------------------------------------------------------------------


def test_list_has_validators_and_cache_control(client, articles):
    response = client.get("/")

    assert response.status_code == 200
    assert WEAK_ETAG.match(response["ETag"])
    assert response.has_header("Last-Modified")
    assert_revalidate_required(response)
    assert response.context["page_obj"].paginator.count == PUBLISHED
    assert b"Unfinished draft" not in response.content
    assert b'rel="next" href="?page=2"' in response.content


def test_list_revalidates_with_if_none_match(client, articles, django_assert_num_queries):
    first = client.get("/")

    # One aggregate query and no list query, no template: the point of the package.
    with django_assert_num_queries(1):
        response = client.get("/", headers={"if-none-match": first["ETag"]})

    assert_revalidation_headers(response, first)
    assert response["Last-Modified"] == first["Last-Modified"]


def test_list_revalidates_with_if_modified_since(client, articles):
    first = client.get("/")

    response = client.get("/", headers={"if-modified-since": first["Last-Modified"]})

    assert_revalidation_headers(response, first)


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
    ArticleFactory(title="Breaking news", published_at=timezone.now() + timedelta(days=1))

    response = client.get("/", headers={"if-none-match": first["ETag"]})

    assert response.status_code == 200
    assert response["ETag"] != first["ETag"]
    assert b"Breaking news" in response.content


def test_list_etag_moves_when_an_old_article_is_deleted(client, articles):
    first = client.get("/")
    # Not the newest updated_at: only the count in the tag can see this deletion.
    Article.objects.filter(pk=articles[0].pk).delete()

    response = client.get("/", headers={"if-none-match": first["ETag"]})

    assert response.status_code == 200
    assert response["ETag"] != first["ETag"]


def test_list_etag_moves_when_an_article_is_unpublished(client, articles):
    first = client.get("/")
    articles[3].is_published = False
    articles[3].save()

    response = client.get("/", headers={"if-none-match": first["ETag"]})

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
    response = client.get("/?page=2", headers={"if-none-match": page_one["ETag"]})
    assert response.status_code == 200


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
    assert client.get("/", headers={"if-none-match": response["ETag"]}).status_code == 304


def test_unsafe_method_is_not_allowed(client, articles):
    assert client.post("/").status_code == 405


# Article detail --------------------------------------------------------------------------


def test_detail_has_validators_and_shows_comments(client, article):
    response = client.get(article.get_absolute_url())

    assert response.status_code == 200
    assert WEAK_ETAG.match(response["ETag"])
    assert response.has_header("Last-Modified")
    assert_revalidate_required(response)
    assert response.context["article"] == article
    assert len(response.context["comments"]) == 2
    for comment in article.comments.all():
        assert f'id="comment-{comment.pk}"'.encode() in response.content


def test_detail_reuses_request_conditional(client, article):
    response = client.get(article.get_absolute_url())

    # The footer renders request.conditional.etag, the very value sent as ETag.
    assert response.context["etag"] is not None
    assert str(response.context["etag"]) == response["ETag"]
    digest = response["ETag"].removeprefix('W/"').removesuffix('"')
    assert digest.encode() in response.content
    assert response.context["last_modified"] is not None


def test_detail_revalidates(client, article, django_assert_num_queries):
    url = article.get_absolute_url()
    first = client.get(url)

    with django_assert_num_queries(1):
        by_etag = client.get(url, headers={"if-none-match": first["ETag"]})
    by_date = client.get(url, headers={"if-modified-since": first["Last-Modified"]})

    assert_revalidation_headers(by_etag, first)
    assert_revalidation_headers(by_date, first)


def test_detail_etag_moves_when_a_comment_is_added(client, article):
    url = article.get_absolute_url()
    first = client.get(url)
    CommentFactory(article=article, body="A new comment")

    response = client.get(url, headers={"if-none-match": first["ETag"]})

    assert response.status_code == 200
    assert b"A new comment" in response.content


def test_detail_etag_moves_when_the_article_is_edited(client, article):
    url = article.get_absolute_url()
    first = client.get(url)
    article.title = "A better title"
    article.save()

    response = client.get(url, headers={"if-none-match": first["ETag"]})

    assert response.status_code == 200
    assert b"A better title" in response.content


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


# Async article detail -------------------------------------------------------------------


def test_async_detail_through_the_wsgi_client(client, article):
    url = reverse("demo:async-article-detail", kwargs={"slug": article.slug})
    first = client.get(url)

    assert first.status_code == 200
    assert WEAK_ETAG.match(first["ETag"])
    assert first.context["is_async"] is True
    assert len(first.context["comments"]) == 2
    assert b"Rendered by an async view" in first.content
    assert_revalidation_headers(client.get(url, headers={"if-none-match": first["ETag"]}), first)


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
    assert_revalidation_headers(by_date, first)
    assert missing.status_code == 404


def test_async_detail_etag_moves_when_a_comment_is_added(client, article):
    url = reverse("demo:async-article-detail", kwargs={"slug": article.slug})
    first = client.get(url)
    CommentFactory(article=article)

    assert client.get(url, headers={"if-none-match": first["ETag"]}).status_code == 200


# Author and tag pages ---------------------------------------------------------------------


def test_author_page_is_private_and_varies_by_cookie(client, articles):
    author = Author.objects.get()
    first = client.get(author.get_absolute_url())

    assert first.status_code == 200
    assert "Cookie" in first["Vary"]
    assert "private" in first["Cache-Control"]
    assert_revalidate_required(first)
    assert len(first.context["articles"]) == PUBLISHED
    assert b"Edit in the admin" not in first.content
    assert_revalidation_headers(
        client.get(author.get_absolute_url(), headers={"if-none-match": first["ETag"]}), first
    )


def test_author_page_differs_for_staff(client, admin_client, articles):
    url = Author.objects.get().get_absolute_url()
    anonymous = client.get(url)

    staff = admin_client.get(url, headers={"if-none-match": anonymous["ETag"]})

    assert staff.status_code == 200
    assert staff["ETag"] != anonymous["ETag"]
    assert b"Edit in the admin" in staff.content


def test_author_etag_moves_on_rename(client, articles):
    author = Author.objects.get()
    first = client.get(author.get_absolute_url())
    author.name = "Augusta Ada King"
    author.save()

    response = client.get(author.get_absolute_url(), headers={"if-none-match": first["ETag"]})

    assert response.status_code == 200
    assert b"Augusta Ada King" in response.content


def test_tag_page_paginates_and_revalidates(client, articles, tag):
    first = client.get(tag.get_absolute_url())
    second = client.get(tag.get_absolute_url(), {"page": 2})

    assert first.status_code == 200
    assert second.status_code == 200
    assert first["ETag"] != second["ETag"]
    assert_revalidate_required(first)
    assert_revalidation_headers(
        client.get(tag.get_absolute_url(), headers={"if-none-match": first["ETag"]}), first
    )
    assert client.get(tag.get_absolute_url(), {"page": 3}).status_code == 404


def test_tag_etag_moves_when_an_article_is_untagged(client, articles, tag):
    first = client.get(tag.get_absolute_url())
    # Removing an m2m link does not touch Article.updated_at.
    articles[5].tags.remove(tag)

    response = client.get(tag.get_absolute_url(), headers={"if-none-match": first["ETag"]})

    assert response.status_code == 200
    assert response.context["page_obj"].paginator.count == PUBLISHED - 1


def test_healthz(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.content == b""


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
    after = client.get("/", headers={"if-none-match": before["ETag"]})
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
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert client.get(url, headers={"if-none-match": response["ETag"]}).status_code == 304


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


def test_admin_requires_login(client):
    response = client.get(reverse("admin:demo_article_changelist"))

    assert response.status_code == 302
