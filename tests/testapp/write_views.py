"""Views that write one object, guarded by ``conditional(object=...)``, and an unguarded control."""

from __future__ import annotations

import json

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from django_conditional.decorators import conditional
from tests.testapp.models import Article, Author, Comment, Note


def _article_query(request: HttpRequest, pk: int):
    return Article.objects.filter(pk=pk)


def _title(request: HttpRequest) -> str | None:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return None
    title = body.get("title") if isinstance(body, dict) else None
    return title if isinstance(title, str) else None


def _edit(request: HttpRequest, pk: int) -> HttpResponse:
    """PUT/PATCH: set the title; POST: append "!"; DELETE: delete. ``?status=400``: refuse."""
    try:
        article = request.conditional.object
    except Http404:
        if request.method != "PUT":
            raise
        article = None  # a PUT creates what is not there
    if request.method == "DELETE":
        article.delete()
        return HttpResponse(status=204)
    if request.GET.get("status") == "400":
        return JsonResponse({"error": "refused"}, status=400)
    if request.method == "POST":
        article.title += "!"
        article.save()
    else:
        title = _title(request)
        if title is None:
            return JsonResponse({"error": "send {'title': ...}"}, status=400)
        if article is None:  # a PUT creating what is not there
            author = Author.objects.get_or_create(name="creator")[0]
            article = Article.objects.create(pk=pk, title=title, author=author)
            return JsonResponse({"title": article.title}, status=201)
        article.title = title
        article.save()
        if request.GET.get("raise"):
            raise RuntimeError("the view failed after saving")
    return JsonResponse({"title": article.title, "version": article.version})


@csrf_exempt
@conditional(object=_article_query, public=True)
def article(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method in {"GET", "HEAD"}:
        found = request.conditional.object
        return JsonResponse({"title": found.title})
    return _edit(request, pk)


@csrf_exempt
@conditional(object=_article_query, public=True, require_precondition=True)
def article_required(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method in {"GET", "HEAD"}:
        return JsonResponse({"title": request.conditional.object.title})
    return _edit(request, pk)


@csrf_exempt
@conditional(object=_article_query, public=True)
def comment_on(request: HttpRequest, pk: int) -> HttpResponse:
    """A POST that writes only a related row: the guard moves the article's version."""
    if request.method == "POST":
        Comment.objects.create(article=request.conditional.object, body="hi")
        return HttpResponse(status=201)
    return HttpResponse(request.conditional.object.title)


@csrf_exempt
@conditional(object=lambda request, pk: Note.objects.filter(pk=pk), public=True)
def note(request: HttpRequest, pk: int) -> HttpResponse:
    """A model without a version counter: claimed by a row lock, checked again under it."""
    found = request.conditional.object
    if request.method == "PUT":
        found.text = _title(request) or ""
        found.save()
    return HttpResponse(found.text)


@csrf_exempt
@conditional(object=_article_query, public=True)
async def async_article(request: HttpRequest, pk: int) -> HttpResponse:
    from asgiref.sync import sync_to_async

    if request.method == "PUT":
        found = request.conditional.object
        found.title = _title(request) or ""
        await sync_to_async(found.save)()
        return JsonResponse({"title": found.title})
    return JsonResponse({"title": request.conditional.object.title})
