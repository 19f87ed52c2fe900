"""The demo blog's pages, each behind django_conditional's ``condition`` decorator.

The validator functions (``validators.py``) run before the view body, so a
revalidation is answered with a 304 before any list query or template.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import InvalidPage, Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import aget_object_or_404, get_object_or_404, render
from django.views.decorators.http import require_safe

from django_conditional.decorators import condition
from testproject.demo import validators
from testproject.demo.models import Article, Author, Comment, Tag

__all__ = [
    "article_detail",
    "article_list",
    "async_article_detail",
    "author_detail",
    "healthz",
    "tag_detail",
]

# Public pages: any cache may store them but must ask before reusing them.
REVALIDATE: dict[str, Any] = {"max_age": 0, "must_revalidate": True}
# Pages that differ per user (staff see edit links): only the browser may store them.
REVALIDATE_PRIVATE: dict[str, Any] = {**REVALIDATE, "private": True}


def _published_cards() -> Any:
    """Published articles with what a card shows, in two queries, not one per card."""
    return (
        Article.objects.filter(is_published=True)
        .select_related("author")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.only("name", "slug")))
    )


def _page(queryset: Any, number: int) -> Any:
    try:
        return Paginator(queryset, validators.PER_PAGE).page(number)
    except InvalidPage as error:
        # Rows deleted between the validator's query and this one.
        raise Http404(str(error)) from error


@require_safe
@condition(
    etag_func=validators.article_list_etag,
    last_modified_func=validators.article_list_last_modified,
    cache_control=REVALIDATE,
)
def article_list(request: HttpRequest) -> HttpResponse:
    """The newest published articles, ``validators.PER_PAGE`` a page (``?page=``)."""
    page_obj = _page(_published_cards(), validators.page_number(request))
    return render(request, "demo/article_list.html", {"page_obj": page_obj})


@require_safe
@condition(
    etag_func=validators.article_etag,
    last_modified_func=validators.article_last_modified,
    cache_control=REVALIDATE,
)
def article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """One article with its tags and comments.

    Reuses what the decorator already computed: the primary key from the
    validator's query, and ``request.conditional`` for the page footer.
    """
    state = validators.article_state(request, slug)
    article = get_object_or_404(Article.objects.select_related("author"), pk=state.pk)
    context = {
        "article": article,
        "tags": list(article.tags.all()),
        "comments": list(article.comments.all()),
        "etag": request.conditional.etag,
        "last_modified": request.conditional.last_modified,
    }
    return render(request, "demo/article_detail.html", context)


@require_safe
@condition(
    etag_func=validators.async_article_etag,
    last_modified_func=validators.async_article_last_modified,
    cache_control=REVALIDATE,
)
async def async_article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """``article_detail`` as an async view on the async ORM.

    Every query is evaluated here: the template must not touch the database
    from the event loop.
    """
    article = await aget_object_or_404(
        Article.objects.select_related("author"), slug=slug, is_published=True
    )
    context = {
        "article": article,
        "tags": [tag async for tag in article.tags.all()],
        "comments": [comment async for comment in Comment.objects.filter(article=article)],
        "etag": request.conditional.etag,
        "last_modified": request.conditional.last_modified,
        "is_async": True,
    }
    return render(request, "demo/article_detail.html", context)


@require_safe
@condition(
    etag_func=validators.author_etag,
    last_modified_func=validators.author_last_modified,
    cache_control=REVALIDATE_PRIVATE,
    vary=["Cookie"],
)
def author_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """An author and their published articles; staff also see an admin link."""
    author = get_object_or_404(Author, pk=validators.author_state(request, slug).pk)
    articles = author.articles.filter(is_published=True).only("title", "slug", "published_at")
    return render(request, "demo/author_detail.html", {"author": author, "articles": articles})


@require_safe
@condition(
    etag_func=validators.tag_etag,
    last_modified_func=validators.tag_last_modified,
    cache_control=REVALIDATE,
)
def tag_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The published articles carrying one tag, paginated like the list."""
    tag = get_object_or_404(Tag, pk=validators.tag_state(request, slug).pk)
    page_obj = _page(_published_cards().filter(tags=tag), validators.page_number(request))
    return render(request, "demo/tag_detail.html", {"tag": tag, "page_obj": page_obj})


def healthz(request: HttpRequest) -> HttpResponse:
    """An empty view: the floor the benchmark measures the 304 path against."""
    return HttpResponse(b"", content_type="text/plain")
