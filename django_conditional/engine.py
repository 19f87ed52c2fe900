"""The engine every way in shares: a request and a validator in, a decision out.

Decorators, class-based views, the middleware and the DRF integration all
call these functions, so RFC 9110 is implemented once. Reads requests and
writes responses; never touches the ORM.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.log import log_response

from django_conditional import responses
from django_conditional.conf import conf
from django_conditional.http import (
    IGNORING_METHODS,
    READ_METHODS,
    Decision,
    Outcome,
    Preconditions,
    evaluate_preconditions,
    format_http_date,
    parse_http_date,
    parse_preconditions,
)
from django_conditional.validators import Validator

__all__ = [
    "CacheControl",
    "apply_representation_headers",
    "evaluate",
    "is_conditional",
    "needs_validator",
    "read_preconditions",
    "short_circuit_response",
]

logger = logging.getLogger("django_conditional")

CacheControl = Mapping[str, Any]

# The fields an unsafe method evaluates; If-Modified-Since applies to GET and
# HEAD only (RFC 9110 section 13.1.3), so it alone does not make a write conditional.
_WRITE_PRECONDITION_KEYS = ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH", "HTTP_IF_UNMODIFIED_SINCE")


def is_conditional(request: HttpRequest) -> bool:
    """True when an unsafe request carries a precondition it must honour."""
    meta = request.META
    return any(key in meta for key in _WRITE_PRECONDITION_KEYS)


def needs_validator(request: HttpRequest) -> bool:
    """Whether validators must be computed for this request at all.

    GET and HEAD always need them (the response carries ETag and
    Last-Modified). Unsafe methods need them only to evaluate a precondition
    they carry; OPTIONS, CONNECT and TRACE never (RFC 9110 section 13.2.1).
    """
    method = request.method or "GET"
    if method in READ_METHODS:
        return True
    if method in IGNORING_METHODS:
        return False
    return is_conditional(request)


def read_preconditions(request: HttpRequest, *, now: float) -> Preconditions:
    """Parse the request's conditional fields (never raises)."""
    meta = request.META
    return parse_preconditions(
        if_match=meta.get("HTTP_IF_MATCH"),
        if_none_match=meta.get("HTTP_IF_NONE_MATCH"),
        if_modified_since=meta.get("HTTP_IF_MODIFIED_SINCE"),
        if_unmodified_since=meta.get("HTTP_IF_UNMODIFIED_SINCE"),
        now=now,
    )


def evaluate(request: HttpRequest, validator: Validator, *, now: float | None = None) -> Decision:
    """Evaluate the request's preconditions against ``validator`` (RFC 9110 section 13.2.2)."""
    now = time.time() if now is None else now
    decision = evaluate_preconditions(
        request.method or "GET",
        read_preconditions(request, now=now),
        validator.representation(now),
        now=now,
    )
    logger.debug(
        "%s %s: %s (%s); validator etag=%s last_modified=%s",
        request.method,
        request.path,
        decision.outcome.value,
        decision.reason,
        validator.etag,
        validator.last_modified,
    )
    return decision


def short_circuit_response(
    request: HttpRequest,
    decision: Decision,
    validator: Validator,
    *,
    now: float,
    cache_control: CacheControl | None = None,
    vary: Sequence[str] | None = None,
) -> HttpResponseBase:
    """The 304, 412 or 431 that answers the request instead of the view."""
    response: HttpResponseBase
    if decision.outcome is Outcome.NOT_MODIFIED:
        response = responses.not_modified()
        apply_representation_headers(
            response, validator, now=now, cache_control=cache_control, vary=vary
        )
    elif decision.outcome is Outcome.PRECONDITION_FAILED:
        response = responses.precondition_failed(decision, validator.etag)
        log_response(
            "Precondition Failed: %s (%s)",
            request.path,
            decision.reason,
            response=response,
            request=request,
        )
    elif decision.outcome is Outcome.FIELDS_TOO_LARGE:
        response = responses.request_fields_too_large(decision)
        log_response(
            "Request Header Fields Too Large: %s",
            request.path,
            response=response,
            request=request,
        )
    else:  # pragma: no cover - callers only pass short-circuit decisions
        raise ValueError(f"{decision.outcome} does not short-circuit the request")
    add_debug_header(response, decision)
    return response


def apply_representation_headers(
    response: HttpResponseBase,
    validator: Validator | None,
    *,
    now: float,
    cache_control: CacheControl | None = None,
    vary: Sequence[str] | None = None,
) -> None:
    """Put the validators and caching fields on a 2xx or 304 for GET/HEAD.

    Headers the view set itself win, as in Django's ``condition``. The
    Last-Modified is clamped to the response's Date (or ``now``), which RFC
    9110 section 8.8.2.1 requires of an origin server.
    """
    if not (200 <= response.status_code < 300 or response.status_code == 304):
        return
    if validator is not None:
        if validator.etag is not None:
            response.headers.setdefault("ETag", str(validator.etag))
        if validator.last_modified is not None and not response.has_header("Last-Modified"):
            date_header = response.headers.get("Date")
            date = parse_http_date(date_header) if date_header else None
            seconds = validator.last_modified_seconds(now if date is None else date)
            if seconds is not None:
                response.headers["Last-Modified"] = format_http_date(seconds)
    if cache_control:
        patch_cache_control(response, **cache_control)
    if vary:
        patch_vary_headers(response, vary)


def add_debug_header(response: HttpResponseBase, decision: Decision) -> None:
    """Name the decision in ``X-Conditional`` when ``CONDITIONAL_DEBUG_HEADER`` is on."""
    if conf.debug_header:
        response.headers["X-Conditional"] = f"{decision.outcome.value}; {decision.reason}"
