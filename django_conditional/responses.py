"""Turn a precondition decision into the 304, 412, 428 or 431 response.

Imports the pure HTTP layer and ``django.http`` only: no ORM, no settings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.http import HttpResponse, HttpResponseNotModified
from django.http.response import HttpResponseBase, ResponseHeaders

from django_conditional.http import Decision, EntityTag

__all__ = [
    "NOT_MODIFIED_HEADERS",
    "NotModifiedResponse",
    "not_modified",
    "not_modified_from",
    "precondition_failed",
    "precondition_required",
    "request_fields_too_large",
    "validators_unavailable",
    "wants_problem_json",
]

# The fields a 304 repeats from the 200 it stands for (RFC 9110 section
# 15.4.5), plus Last-Modified, which Django's own 304 keeps too.
NOT_MODIFIED_HEADERS = (
    "Cache-Control",
    "Content-Location",
    "Date",
    "ETag",
    "Expires",
    "Last-Modified",
    "Vary",
)


class _NotModifiedHeaders(ResponseHeaders):
    """Response headers that refuse a Content-Length.

    A 304 may only carry the Content-Length the 200 would have had (RFC 9110
    section 8.6), which we cannot know without rendering. Django's
    ``CommonMiddleware`` sets ``Content-Length: 0`` on every non-streaming
    response it sees; refusing the field here keeps that wrong value off the
    wire whatever the middleware order.
    """

    def __setitem__(self, key: str, value: Any) -> None:
        if key.lower() == "content-length":
            return
        super().__setitem__(key, value)


class NotModifiedResponse(HttpResponseNotModified):
    """A 304 with no body, no Content-Type and no Content-Length."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.headers = _NotModifiedHeaders(self.headers)

    @HttpResponseNotModified.content.setter  # type: ignore[attr-defined,untyped-decorator]
    def content(self, value: Any) -> None:
        if value:
            raise AttributeError("You cannot set content to a 304 (Not Modified) response")
        # One empty chunk rather than none: the standard library's WSGI
        # handler (under runserver) adds "Content-Length: 0" when an
        # application writes no chunk at all.
        self._container = [b""]


def not_modified(headers: Mapping[str, str] | None = None) -> NotModifiedResponse:
    """A 304 carrying ``headers`` (only those a 304 may repeat are copied)."""
    response = NotModifiedResponse()
    if headers:
        for name in NOT_MODIFIED_HEADERS:
            value = headers.get(name)
            if value is not None:
                response.headers[name] = value
    return response


def not_modified_from(response: HttpResponseBase) -> NotModifiedResponse:
    """A 304 standing for ``response``: its validators, caching fields and cookies."""
    new_response = not_modified(response.headers)
    # Cookies set while producing the 200 still apply (RFC 6265 section 3).
    new_response.cookies = response.cookies
    return new_response


def wants_problem_json(accept: str | None, content_type: str | None) -> bool:
    """Whether a client reads JSON: it accepts JSON, or sent JSON (RFC 9457 problem details).

    A browser's ``Accept`` (``text/html,...,*/*``) names no JSON type: it gets text.
    """
    for value in (accept or "", content_type or ""):
        for part in value.split(",")[:32]:  # a hostile list is not read to its end
            media_type = part.split(";", 1)[0].strip().lower()
            if media_type.endswith(("/json", "+json")):
                return True
    return False


def _problem(status: int, title: str, detail: str, *, as_json: bool, **extra: str) -> HttpResponse:
    """A short error body: RFC 9457 problem details for JSON clients, a line of text otherwise."""
    if as_json:
        body = json.dumps(
            {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
        )
        return HttpResponse(body, status=status, content_type="application/problem+json")
    return HttpResponse(
        f"{title}: {detail}\n", status=status, content_type="text/plain; charset=utf-8"
    )


def precondition_failed(
    decision: Decision, etag: EntityTag | None = None, *, as_json: bool = False
) -> HttpResponse:
    """A 412 naming the precondition that failed, with the current ETag if any.

    The ETag lets a client that lost an update fetch nothing more before it
    decides how to merge (RFC 9110 section 15.5.13).
    """
    response = _problem(412, "Precondition Failed", f"{decision.reason}.", as_json=as_json)
    if etag is not None:
        response.headers["ETag"] = str(etag)
    return response


def precondition_required(method: str, *, as_json: bool = False) -> HttpResponse:
    """A 428 for an unsafe request that must be conditional (RFC 6585 section 3)."""
    return _problem(
        428,
        "Precondition Required",
        f"a {method} to this resource must carry If-Match with the entity tag you last "
        "received (GET it first), or If-None-Match: * to create it only if it does not exist.",
        as_json=as_json,
    )


def validators_unavailable() -> HttpResponse:
    """A 503 for a precondition that cannot be evaluated now (the stamps cannot be read).

    Sent instead of guessing: running the request without its precondition
    could overwrite what the client did not see.
    """
    response = HttpResponse(
        "Service Unavailable: the request's precondition (If-Match or If-Unmodified-Since) "
        "cannot be evaluated right now. Nothing was changed; send it again shortly.\n",
        status=503,
        content_type="text/plain; charset=utf-8",
    )
    response.headers["Retry-After"] = "1"
    response.headers["Cache-Control"] = "no-store"
    return response


def request_fields_too_large(decision: Decision) -> HttpResponse:
    """A 431 for a conditional field over the size limits (RFC 6585 section 5)."""
    return HttpResponse(
        f"Request Header Fields Too Large: {decision.reason}.\n",
        status=431,
        content_type="text/plain; charset=utf-8",
    )
