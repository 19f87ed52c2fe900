"""Hand-written validator functions for the demo pages, one pair per page.

These are the "Django docs" baseline: an aggregate query per page, run by the
decorator before the view, so a revalidation costs one small query and no
template. Each page computes its state once per request (the decorator calls the
entity-tag function and the last-modified function separately) and raises
``Http404`` for a missing object, so a 404 wins over a 412 or a 304.

Their blind spots are documented on each function: they are exactly what the
package's stamp-derived validators exist to close. ``Last-Modified`` here is
the newest ``updated_at`` and so cannot see a deletion; it is advisory, and a
client that sends ``If-None-Match`` too gets the entity tag's answer
(RFC 9110 section 13.2.2).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.db.models import Count, Max, Q
from django.http import Http404, HttpRequest
from django.shortcuts import aget_object_or_404, get_object_or_404
from django.utils.crypto import salted_hmac

from testproject.demo.models import Article, Author, Tag

__all__ = [
    "PER_PAGE",
    "PageState",
    "article_etag",
    "article_last_modified",
    "article_list_etag",
    "article_list_last_modified",
    "article_state",
    "async_article_etag",
    "async_article_last_modified",
    "author_etag",
    "author_last_modified",
    "author_state",
    "page_number",
    "tag_etag",
    "tag_last_modified",
    "tag_state",
]

PER_PAGE = 20

_MEMO_ATTRIBUTE = "_demo_page_state"

T = TypeVar("T")


@dataclass(frozen=True)
class PageState:
    """What one page's validators were built from, kept for the view to reuse."""

    etag: str
    last_modified: datetime | None
    pk: int | None = None


def _weak_etag(*parts: object) -> str:
    """Return an opaque weak entity tag over ``parts``.

    Weak because a rendered page is only semantically equivalent between two
    renders (RFC 9110 section 8.8.1). Keyed by SECRET_KEY so the tag reveals
    no primary keys or counts.
    """
    digest = salted_hmac("testproject.demo.etag", repr(parts), algorithm="sha256").hexdigest()[:32]
    return f'W/"{digest}"'


def _latest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None


def _memo(request: HttpRequest) -> dict[tuple[Any, ...], Any]:
    memo: dict[tuple[Any, ...], Any] = request.__dict__.setdefault(_MEMO_ATTRIBUTE, {})
    return memo


def _once(request: HttpRequest, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """Compute a page's state once per request: the decorator asks twice."""
    memo = _memo(request)
    if key not in memo:
        memo[key] = compute()
    result: T = memo[key]
    return result


async def _aonce(
    request: HttpRequest, key: tuple[Any, ...], compute: Callable[[], Awaitable[T]]
) -> T:
    """The async twin of ``_once``."""
    memo = _memo(request)
    if key not in memo:
        memo[key] = await compute()
    result: T = memo[key]
    return result


def page_number(request: HttpRequest) -> int:
    """Return the 1-based ``?page=`` number, or raise ``Http404`` for anything else.

    Validated before any list query, so a garbage page number is a 404 on the
    revalidation path too.
    """
    raw = request.GET.get("page", "1")
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise Http404(f"Invalid page {raw!r}.")
    return int(raw)


def _check_page_exists(number: int, count: int) -> None:
    # Like Paginator(allow_empty_first_page=True): page 1 always exists.
    if number > max(1, math.ceil(count / PER_PAGE)):
        raise Http404(f"Page {number} is past the last page.")


# Article list --------------------------------------------------------------


def _article_list_state(request: HttpRequest) -> PageState:
    """State of ``/``: newest ``updated_at`` and the count of published articles.

    The count catches deletions that the newest ``updated_at`` cannot see.
    Blind spots: renaming an author or a tag shown on a card.
    """

    def compute() -> PageState:
        number = page_number(request)
        state = Article.objects.filter(is_published=True).aggregate(
            last_updated=Max("updated_at"), count=Count("id")
        )
        _check_page_exists(number, state["count"])
        return PageState(
            etag=_weak_etag("article-list", number, state["count"], state["last_updated"]),
            last_modified=state["last_updated"],
        )

    return _once(request, ("article-list",), compute)


def article_list_etag(request: HttpRequest) -> str:
    """Entity tag of the article list page (``condition(etag_func=...)``)."""
    return _article_list_state(request).etag


def article_list_last_modified(request: HttpRequest) -> datetime | None:
    """Last-Modified of the article list page (``condition(last_modified_func=...)``)."""
    return _article_list_state(request).last_modified


# Article detail ------------------------------------------------------------


def article_state(request: HttpRequest, slug: str) -> PageState:
    """State of an article page: its ``updated_at`` and its comments, in one query.

    Comments are counted and their newest id taken because adding or deleting
    one does not touch the article's ``updated_at``. Blind spots: editing an
    existing comment's text, renaming the author.
    """

    def compute() -> PageState:
        row = get_object_or_404(
            Article.objects.filter(is_published=True)
            .values("pk", "updated_at")
            .annotate(
                comment_count=Count("comments"),
                last_comment_id=Max("comments__id"),
                last_comment_at=Max("comments__created_at"),
            ),
            slug=slug,
        )
        return PageState(
            etag=_weak_etag(
                "article",
                row["pk"],
                row["updated_at"],
                row["comment_count"],
                row["last_comment_id"],
            ),
            last_modified=_latest(row["updated_at"], row["last_comment_at"]),
            pk=row["pk"],
        )

    return _once(request, ("article", slug), compute)


def article_etag(request: HttpRequest, slug: str) -> str:
    """Entity tag of an article page."""
    return article_state(request, slug).etag


def article_last_modified(request: HttpRequest, slug: str) -> datetime | None:
    """Last-Modified of an article page."""
    return article_state(request, slug).last_modified


async def _async_article_state(request: HttpRequest, slug: str) -> PageState:
    """``article_state`` through the async ORM (``aget`` and ``aaggregate``)."""

    async def compute() -> PageState:
        article = await aget_object_or_404(
            Article.objects.filter(is_published=True).only("pk", "updated_at"), slug=slug
        )
        comments = await article.comments.aaggregate(
            count=Count("id"), last_id=Max("id"), last_at=Max("created_at")
        )
        return PageState(
            etag=_weak_etag(
                "async-article",
                article.pk,
                article.updated_at,
                comments["count"],
                comments["last_id"],
            ),
            last_modified=_latest(article.updated_at, comments["last_at"]),
            pk=article.pk,
        )

    return await _aonce(request, ("async-article", slug), compute)


async def async_article_etag(request: HttpRequest, slug: str) -> str:
    """Entity tag of the async article page."""
    return (await _async_article_state(request, slug)).etag


async def async_article_last_modified(request: HttpRequest, slug: str) -> datetime | None:
    """Last-Modified of the async article page."""
    return (await _async_article_state(request, slug)).last_modified


# Author detail -------------------------------------------------------------


def author_state(request: HttpRequest, slug: str) -> PageState:
    """State of an author page: the author's name and published articles, one query.

    The page shows staff an "edit" link, so it varies by user: staff status is
    part of the tag and the view sends ``Vary: Cookie`` and ``private``.
    """

    def compute() -> PageState:
        published = Q(articles__is_published=True)
        row = get_object_or_404(
            Author.objects.values("pk", "name").annotate(
                count=Count("articles", filter=published),
                last_updated=Max("articles__updated_at", filter=published),
            ),
            slug=slug,
        )
        return PageState(
            etag=_weak_etag(
                "author",
                row["pk"],
                row["name"],
                row["count"],
                row["last_updated"],
                request.user.is_staff,
            ),
            last_modified=row["last_updated"],
            pk=row["pk"],
        )

    return _once(request, ("author", slug), compute)


def author_etag(request: HttpRequest, slug: str) -> str:
    """Entity tag of an author page."""
    return author_state(request, slug).etag


def author_last_modified(request: HttpRequest, slug: str) -> datetime | None:
    """Last-Modified of an author page."""
    return author_state(request, slug).last_modified


# Tag detail ----------------------------------------------------------------


def tag_state(request: HttpRequest, slug: str) -> PageState:
    """State of a tag page: the tag, and its links to published articles.

    The newest link id catches an article tagged or untagged, which does not
    touch ``Article.updated_at``. Blind spot: renaming an author on a card.
    """

    def compute() -> PageState:
        number = page_number(request)
        tag = get_object_or_404(Tag.objects.values("pk", "name"), slug=slug)
        links = Article.tags.through.objects.filter(
            tag_id=tag["pk"], article__is_published=True
        ).aggregate(count=Count("id"), last_link=Max("id"), last_updated=Max("article__updated_at"))
        _check_page_exists(number, links["count"])
        return PageState(
            etag=_weak_etag(
                "tag",
                tag["pk"],
                tag["name"],
                number,
                links["count"],
                links["last_link"],
                links["last_updated"],
            ),
            last_modified=links["last_updated"],
            pk=tag["pk"],
        )

    return _once(request, ("tag", slug), compute)


def tag_etag(request: HttpRequest, slug: str) -> str:
    """Entity tag of a tag page."""
    return tag_state(request, slug).etag


def tag_last_modified(request: HttpRequest, slug: str) -> datetime | None:
    """Last-Modified of a tag page."""
    return tag_state(request, slug).last_modified
