"""The demo blog's pages: each one shows a different way into django_conditional.

==========================  ==========================================================
Page                        Way in
==========================  ==========================================================
``/``                       ``ListView`` + ``ConditionalListMixin`` (paginated queryset)
``/articles/<slug>/``       ``@conditional(object=...)`` on a function view
``/async/articles/<slug>/`` the same decorator on an ``async def`` view
``/authors/<slug>/``        ``DetailView`` + ``ConditionalDetailMixin``, per user
``/tags/<slug>/``           ``@conditional(queryset=...)`` on a sliced queryset
``/about/``                 ``TemplateView`` + ``ConditionalTemplateMixin`` (models only)
``/feed.txt``               the Django-compatible ``@condition`` with hand-written functions
``/healthz``                nothing: the floor the benchmark compares against
==========================  ==========================================================

Each derived validator is computed before the view body runs, so a revalidation
is answered 304 before any list query or template. Every page names in
``depends_on`` each model it shows beyond its own rows, and says ``public``
when it is the same for every visitor.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Max, Prefetch, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import aget_object_or_404, get_object_or_404, render
from django.utils.crypto import salted_hmac
from django.views.decorators.http import require_safe
from django.views.generic import DetailView, ListView, TemplateView

from django_conditional.decorators import condition, conditional
from django_conditional.derivation import last_changed
from django_conditional.views import (
    ConditionalDetailMixin,
    ConditionalListMixin,
    ConditionalTemplateMixin,
)
from testproject.demo.models import Article, Author, Comment, Tag

__all__ = [
    "PER_PAGE",
    "AboutView",
    "ArticleListView",
    "AuthorDetailView",
    "article_detail",
    "async_article_detail",
    "feed",
    "healthz",
    "tag_detail",
]

PER_PAGE = 20
# The tag page shows this many of the newest articles carrying the tag.
TAG_PAGE_SIZE = 50
FEED_SIZE = 20

# Any cache may store these pages, but must ask before reusing them.
REVALIDATE: dict[str, Any] = {"max_age": 0, "must_revalidate": True}


def _published() -> QuerySet[Article]:
    """Published articles with what a card shows, in two queries, not one per card."""
    return (
        Article.objects.filter(is_published=True)
        .select_related("author")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.only("name", "slug")))
    )


# Article list: a class-based ListView -----------------------------------------------


class ArticleListView(ConditionalListMixin, ListView):
    """The newest published articles, ``PER_PAGE`` a page (``?page=``).

    The validator covers the page's rows (each one's primary key and version,
    in order) and the total count, so an edit of an article on another page
    keeps this page's tag; a new or deleted article changes every page's. The
    cards also show authors and tags: any write to those tables changes every
    page's tag. (``select_related`` and ``prefetch_related`` would bring them in
    anyway; ``depends_on`` names them for the reader.)
    """

    template_name = "demo/article_list.html"
    paginate_by = PER_PAGE
    depends_on = (Author, Tag)
    public = True
    cache_control = REVALIDATE
    http_method_names = ("get", "head")

    def get_queryset(self) -> QuerySet[Article]:
        return _published()


# Article detail: the conditional decorator on one object ----------------------------


def published_article(request: HttpRequest, slug: str) -> QuerySet[Article]:
    """The one published article a detail page shows; no row means 404."""
    return Article.objects.filter(slug=slug, is_published=True).select_related("author")


# The page shows the article, its author's name, its tags and its comments. One
# decorator for the sync and the async view: each view gets its own tags.
ARTICLE_PAGE = conditional(
    object=published_article,
    depends_on=[Author, Tag, Comment],
    public=True,
    weak=True,
    cache_control=REVALIDATE,
)


@require_safe
@ARTICLE_PAGE
def article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """One article with its tags and comments.

    The article is the one the decorator fetched to derive the validator
    (``request.conditional.object``), not fetched twice. Weak, because a
    rendered page is only equivalent between two renders, never used with
    ``If-Match``.
    """
    article = request.conditional.object
    context = {
        "article": article,
        "tags": list(article.tags.all()),
        "comments": list(article.comments.all()),
        "etag": request.conditional.etag,
        "last_modified": request.conditional.last_modified,
    }
    return render(request, "demo/article_detail.html", context)


@require_safe
@ARTICLE_PAGE
async def async_article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """``article_detail`` as an async view.

    The decorator derives the validator in a worker thread. When it came from
    the cache nothing was fetched, and ``request.conditional.object`` would
    query synchronously, which Django refuses in the event loop: the view
    fetches the article itself through the async ORM then. Every query is
    evaluated here; the template must not touch the database.
    """
    state = request.conditional
    if state.from_cache:
        article = await aget_object_or_404(published_article(request, slug))
    else:
        article = state.object
    context = {
        "article": article,
        "tags": [tag async for tag in article.tags.all()],
        "comments": [comment async for comment in Comment.objects.filter(article=article)],
        "etag": state.etag,
        "last_modified": state.last_modified,
        "is_async": True,
    }
    return render(request, "demo/article_detail.html", context)


# Author page: a class-based DetailView, different for staff ---------------------------


class AuthorDetailView(ConditionalDetailMixin, DetailView):
    """An author and their published articles; staff also see an admin link.

    Per user (the default, ``public = False``): the tag is salted with the
    user, and the page goes out ``private`` with ``Vary: Cookie``. The
    author's own version is in the tag; the article list on the page is
    covered by ``depends_on``. Weak, as for every rendered page: the mixin's
    default tag for one object is strong, for representations used with
    ``If-Match``.
    """

    model = Author
    template_name = "demo/author_detail.html"
    depends_on = (Article,)
    weak = True
    cache_control = REVALIDATE
    http_method_names = ("get", "head")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["articles"] = self.object.articles.filter(is_published=True).only(
            "title", "slug", "published_at"
        )
        return context


# Tag page: the conditional decorator on a queryset ------------------------------------


def tagged_articles(request: HttpRequest, slug: str) -> QuerySet[Article]:
    """The newest published articles carrying a tag, for the tag page.

    A missing tag is a 404 here, while the validator is derived, so that
    ``If-None-Match: *`` (or any other precondition) cannot get a 304 or a
    412 for a tag that does not exist: an empty list of articles would
    otherwise be a representation like any other.
    """
    if not Tag.objects.filter(slug=slug).exists():
        raise Http404("No tag matches the given query.")
    return (
        Article.objects.filter(tags__slug=slug, is_published=True)
        .select_related("author")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.only("name", "slug")))[
            :TAG_PAGE_SIZE
        ]
    )


@require_safe
@conditional(
    queryset=tagged_articles,
    depends_on=[Tag, Author],
    public=True,
    cache_control=REVALIDATE,
)
def tag_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The newest published articles carrying one tag (``TAG_PAGE_SIZE`` at most).

    The articles are the rows the decorator fingerprinted, in order
    (``request.conditional.object_list``). The tag's name is covered by
    ``depends_on``, as are the cards' authors and tags.
    """
    tag = get_object_or_404(Tag.objects.only("name", "slug"), slug=slug)
    context = {
        "tag": tag,
        "articles": request.conditional.object_list,
        "page_size": TAG_PAGE_SIZE,
    }
    return render(request, "demo/tag_detail.html", context)


# About page: a TemplateView whose validator comes from whole models --------------------


class AboutView(ConditionalTemplateMixin, TemplateView):
    """What the demo is, with counts of what it holds.

    Nothing to fingerprint row by row: the tag is built from the change stamps
    of the models the counts come from, so a revalidation reads the stamps and
    nothing else, and any write to one of those tables changes it.
    """

    template_name = "demo/about.html"
    depends_on = (Article, Comment, Author)
    public = True
    cache_control = REVALIDATE
    http_method_names = ("get", "head")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        published = Q(is_published=True)
        context["counts"] = Article.objects.aggregate(
            published=Count("pk", filter=published),
            drafts=Count("pk", filter=~published),
        )
        context["counts"]["comments"] = Comment.objects.count()
        context["counts"]["authors"] = Author.objects.count()
        return context


# Feed: the Django-compatible decorator with hand-written functions ---------------------


def _feed_summary(request: HttpRequest) -> dict[str, Any]:
    """One aggregate query for both validator functions, kept on the request.

    The count sees a published article deleted or unpublished; the newest
    modification time sees every edit and every new article.
    """
    summary: dict[str, Any] | None = getattr(request, "_demo_feed_summary", None)
    if summary is None:
        summary = Article.objects.filter(is_published=True).aggregate(
            count=Count("pk"), newest=Max("modified")
        )
        request._demo_feed_summary = summary  # type: ignore[attr-defined]
    return summary


def feed_etag(request: HttpRequest) -> str:
    """An opaque tag over the published articles' count and newest modification."""
    summary = _feed_summary(request)
    value = f"{summary['count']}:{summary['newest']}"
    return salted_hmac("testproject.demo.feed", value, algorithm="sha256").hexdigest()[:32]


def feed_last_modified(request: HttpRequest) -> dt.datetime | None:
    """When any article last changed, exactly (deletions and raw SQL included).

    Not ``Max("modified")``: a deletion leaves it where it was, and two writes
    within one second give one date; ``last_changed`` moves on every write path
    and is None within the second it names.
    """
    return last_changed(Article)


@require_safe
@condition(etag_func=feed_etag, last_modified_func=feed_last_modified, cache_control=REVALIDATE)
def feed(request: HttpRequest) -> HttpResponse:
    """The newest published articles as plain text, one a line.

    The drop-in path: ``condition`` with the same functions Django's own
    decorator takes. The functions are the view's business, blind spots
    included; the other pages derive theirs from the data instead.
    """
    articles = Article.objects.filter(is_published=True).only("title", "slug", "published_at")
    lines = [
        f"{article.published_at:%Y-%m-%d}  {article.title}  "
        f"{request.build_absolute_uri(article.get_absolute_url())}"
        for article in articles[:FEED_SIZE]
    ]
    return HttpResponse("".join(f"{line}\n" for line in lines), content_type="text/plain")


def healthz(request: HttpRequest) -> HttpResponse:
    """An empty view: the floor the benchmark measures the 304 path against."""
    return HttpResponse(b"", content_type="text/plain")
