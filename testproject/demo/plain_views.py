"""Demo pages with no code of django_conditional at all: the rules in the admin cover them.

``seed_demo`` creates the rules (``RULES``); ``ConditionalRulesMiddleware``
answers their revalidations before these views run. Plain Django views,
as a site that adds the package without touching its code has them.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from testproject.demo.models import Article, Author

__all__ = ["RULES", "plain_article", "plain_authors", "plain_me"]

# The rules seed_demo creates for these pages (ConditionalRule fields; models by label).
RULES: list[dict[str, Any]] = [
    {
        "name": "Plain article pages",
        "url_names": "demo:plain-article",
        "object": ("demo.Article", "slug", "slug"),
        "depends_on": ["demo.Author", "demo.Tag", "demo.Comment"],
        "audience": "everyone",
        "max_age": 0,
        "must_revalidate": True,
        "notes": "A detail page by URL name, with its article looked up from the URL.",
    },
    {
        "name": "Plain author index",
        "path_patterns": "/plain/authors/",
        "depends_on": ["demo.Author", "demo.Article"],
        "max_age": 0,
        "must_revalidate": True,
        "notes": "A list page by path pattern; anonymous visitors only (the default).",
    },
    {
        "name": "Plain greeting, per user",
        "path_patterns": "/plain/me/",
        "depends_on": ["auth.User"],
        "audience": "per_user",
        "notes": "Each user gets their own copy: private, Vary: Cookie.",
    },
]


@require_safe
def plain_article(request: HttpRequest, slug: str) -> HttpResponse:
    """One published article, its tags and comments: the rule found it by its slug."""
    article = get_object_or_404(
        Article.objects.select_related("author"), slug=slug, is_published=True
    )
    context = {
        "article": article,
        "tags": list(article.tags.all()),
        "comments": list(article.comments.all()),
        "etag": None,
    }
    return render(request, "demo/article_detail.html", context)


@require_safe
def plain_authors(request: HttpRequest) -> HttpResponse:
    """Every author with their number of published articles."""
    authors = Author.objects.annotate(
        published=Count("articles", filter=Q(articles__is_published=True))
    ).order_by("name")
    return render(request, "demo/plain_authors.html", {"authors": authors})


@require_safe
def plain_me(request: HttpRequest) -> HttpResponse:
    """Who the visitor is: a page different for every user."""
    user = request.user
    name = user.get_username() if user.is_authenticated else "anonymous visitor"
    return HttpResponse(f"Hello, {name}.\n", content_type="text/plain; charset=utf-8")
