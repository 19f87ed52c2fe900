"""The demo's JSON API for articles: edits that can never silently overwrite each other.

==================================  =====================================================
``GET /api/articles/``              the newest articles (ETag, 304)
``POST /api/articles/``             create one: 201 with its ``Location`` and ``ETag``
``GET /api/articles/<id>/``         one article, with a strong ``ETag``
``PUT|PATCH|DELETE .../<id>/``      only with ``If-Match`` (428 without): 412 for a stale
                                    tag, and of concurrent edits with one tag, one wins
``/api/unguarded/articles/<id>/``   the same edits under Django's own ``condition``:
                                    check, then save, so concurrent edits are lost (kept
                                    to compare; the tests use it as their control)
==================================  =====================================================

JSON clients, so CSRF does not apply (no cookie authenticates them) and errors are
RFC 9457 problem details.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.crypto import get_random_string
from django.utils.text import slugify
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import condition, require_http_methods

from django_conditional.decorators import conditional
from testproject.demo.models import Article, Author

__all__ = ["article", "articles", "unguarded_article"]

API_PAGE = 20
_FIELDS = ("title", "body")


def _as_json(article: Article) -> dict[str, Any]:
    return {
        "id": article.pk,
        "title": article.title,
        "body": article.body,
        "author": article.author.name,
        "slug": article.slug,
        "url": f"/api/articles/{article.pk}/",
    }


def _problem(status: int, detail: str) -> JsonResponse:
    return JsonResponse(
        {"type": "about:blank", "title": "Bad Request", "status": status, "detail": detail},
        status=status,
        content_type="application/problem+json",
    )


def _fields(request: HttpRequest, *, partial: bool) -> dict[str, str] | JsonResponse:
    """The edited fields from a JSON body, or the 400 saying what is wrong with it."""
    try:
        data = json.loads(request.body or b"null")
    except ValueError:
        return _problem(400, "the body is not JSON")
    if not isinstance(data, dict):
        return _problem(400, 'send an object, such as {"title": "...", "body": "..."}')
    unknown = sorted(set(data) - set(_FIELDS))
    missing = [] if partial else [name for name in _FIELDS if name not in data]
    wrong = [name for name in _FIELDS if name in data and not isinstance(data[name], str)]
    if unknown or missing or wrong:
        return _problem(
            400,
            "; ".join(
                part
                for part in (
                    unknown and f"unknown fields: {', '.join(unknown)}",
                    missing and f"missing fields: {', '.join(missing)}",
                    wrong and f"not strings: {', '.join(wrong)}",
                )
                if part
            ),
        )
    if "title" in data and not data["title"].strip():
        return _problem(400, "the title must not be empty")
    return {name: data[name] for name in _FIELDS if name in data}


def _edit(request: HttpRequest, found: Article) -> HttpResponse:
    if request.method == "DELETE":
        found.delete()
        return HttpResponse(status=204)
    fields = _fields(request, partial=request.method == "PATCH")
    if isinstance(fields, JsonResponse):
        return fields
    for name, value in fields.items():
        setattr(found, name, value)
    found.save(update_fields=list(fields))
    return JsonResponse(_as_json(found))


def _article_query(request: HttpRequest, pk: int) -> Any:
    return Article.objects.filter(pk=pk).select_related("author")


@csrf_exempt
@require_http_methods(["GET", "HEAD", "PUT", "PATCH", "DELETE"])
@conditional(object=_article_query, depends_on=[Author], public=True, require_precondition=True)
def article(request: HttpRequest, pk: int) -> HttpResponse:
    """One article; edits must carry If-Match and are written atomically with its check."""
    found: Article = request.conditional.object  # type: ignore[attr-defined]
    if request.method in {"GET", "HEAD"}:
        return JsonResponse(_as_json(found))
    return _edit(request, found)


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
@conditional(
    queryset=lambda request: Article.objects.select_related("author")[:API_PAGE],
    depends_on=[Author],
    public=True,
)
def articles(request: HttpRequest) -> HttpResponse:
    """The newest articles; POST creates one."""
    if request.method != "POST":
        rows = request.conditional.object_list  # type: ignore[attr-defined]
        return JsonResponse({"articles": [_as_json(row) for row in rows]})
    fields = _fields(request, partial=False)
    if isinstance(fields, JsonResponse):
        return fields
    author, _ = Author.objects.get_or_create(slug="api", defaults={"name": "API client"})
    slug = slugify(fields["title"])[:150] or "article"
    # A random suffix: concurrent creations of one title never meet on the unique slug.
    created = Article.objects.create(
        author=author, slug=f"{slug}-{get_random_string(10).lower()}", **fields
    )
    response = JsonResponse(_as_json(created), status=201)
    response["Location"] = f"/api/articles/{created.pk}/"
    return response


def _version_tag(request: HttpRequest, pk: int) -> str | None:
    found = Article.objects.filter(pk=pk).values_list("version", flat=True).first()
    return None if found is None else f'"v{found}"'


@csrf_exempt
@require_http_methods(["GET", "HEAD", "PUT", "PATCH", "DELETE"])
@condition(etag_func=_version_tag)
def unguarded_article(request: HttpRequest, pk: int) -> HttpResponse:
    """Django's ``condition``: the If-Match check, then the save, two steps apart."""
    found = get_object_or_404(Article.objects.select_related("author"), pk=pk)
    if request.method in {"GET", "HEAD"}:
        return JsonResponse(_as_json(found))
    return _edit(request, found)
