"""Plain views for the middleware's tests: none uses django_conditional, rules cover them.

Each misbehaves in one way a rule must learn from (``rule_safety``), or
behaves (``plain``). ``urlpatterns`` also includes the demo's URLs.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404
from django.urls import include, path
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import etag

from tests.testapp.models import Article, Note

calls: list[str] = []


def plain(request: HttpRequest, name: str = "plain", pk: int | None = None) -> HttpResponse:
    calls.append(request.path)
    notes = ", ".join(Note.objects.order_by("pk").values_list("text", flat=True))
    return HttpResponse(f"{name}: {notes}\n", content_type="text/plain")


async def async_plain(request: HttpRequest) -> HttpResponse:
    calls.append(request.path)
    notes = [text async for text in Note.objects.order_by("pk").values_list("text", flat=True)]
    return HttpResponse(f"async: {', '.join(notes)}\n", content_type="text/plain")


def sets_cookie(request: HttpRequest) -> HttpResponse:
    response = plain(request)
    response.set_cookie("theme", "dark")
    return response


def private(request: HttpRequest) -> HttpResponse:
    response = plain(request)
    patch_cache_control(response, private=True)
    return response


def no_store(request: HttpRequest) -> HttpResponse:
    response = plain(request)
    patch_cache_control(response, no_store=True)
    return response


def varies_on_accept(request: HttpRequest) -> HttpResponse:
    response = plain(request, request.headers.get("Accept", ""))
    patch_vary_headers(response, ["Accept"])
    return response


def with_csrf_token(request: HttpRequest) -> HttpResponse:
    get_token(request)
    return plain(request)


def writes_session(request: HttpRequest) -> HttpResponse:
    request.session["seen"] = True
    return plain(request)


def reads_user(request: HttpRequest) -> HttpResponse:
    return plain(request, str(request.user))


def shows_messages(request: HttpRequest) -> HttpResponse:
    messages.info(request, "Hello")
    return plain(request)


@etag(lambda request: "own")
def own_etag(request: HttpRequest) -> HttpResponse:
    return plain(request)


def missing(request: HttpRequest) -> HttpResponse:
    return HttpResponse("gone", status=404)


@login_required
def members(request: HttpRequest) -> HttpResponse:
    return plain(request)


@permission_required("testapp.change_note")
def editors(request: HttpRequest) -> HttpResponse:
    return plain(request)


@csrf_exempt
def article(request: HttpRequest, pk: int) -> HttpResponse:
    """A plain edit view: GET shows the title, PUT sets it from the body, DELETE deletes."""
    calls.append(request.path)
    found = get_object_or_404(Article, pk=pk)
    if request.method == "PUT":
        found.title = request.body.decode()
        found.save()
    elif request.method == "DELETE":
        found.delete()
        return HttpResponse(status=204)
    return HttpResponse(found.title, content_type="text/plain")


rules_patterns = [
    path("plain/", plain, name="plain"),
    path("plain/<int:pk>/", plain, name="plain-pk"),
    path("plain/café/", plain, name="plain-cafe"),
    path("other/", plain, {"name": "other"}, name="other"),
    path("async/", async_plain, name="async"),
    path("cookie/", sets_cookie, name="cookie"),
    path("private/", private, name="private"),
    path("no-store/", no_store, name="no-store"),
    path("vary-accept/", varies_on_accept, name="vary-accept"),
    path("csrf/", with_csrf_token, name="csrf"),
    path("session/", writes_session, name="session"),
    path("user/", reads_user, name="user"),
    path("messages/", shows_messages, name="messages"),
    path("own-etag/", own_etag, name="own-etag"),
    path("missing/", missing, name="missing"),
    path("members/", members, name="members"),
    path("editors/", editors, name="editors"),
    path("articles/<int:pk>/", article, name="article"),
]

urlpatterns = [
    path("r/", include((rules_patterns, "r"))),
    path("", include("testproject.urls")),
]
