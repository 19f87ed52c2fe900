"""The engine every way in shares: a request and a validator in, a decision out.

Decorators, class-based views, the middleware and the DRF integration all
call these functions, so RFC 9110 is implemented once. Reads requests and
writes responses; never touches the ORM.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.log import log_response
from django.utils.translation import get_language

from django_conditional import responses, store_health
from django_conditional.conf import conf
from django_conditional.http import (
    IGNORING_METHODS,
    NOT_MODIFIED_BY_IF_NONE_MATCH,
    READ_METHODS,
    Decision,
    EntityTag,
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
    "ConditionalState",
    "EarlyResponse",
    "ResponseOptions",
    "answer_revalidation",
    "apply_representation_headers",
    "check_preconditions",
    "evaluate",
    "finish_response",
    "finish_without_validators",
    "is_conditional",
    "is_revalidation",
    "log_revalidated",
    "needs_validator",
    "not_modified_if_current",
    "read_preconditions",
    "request_salts",
    "short_circuit_response",
    "unverifiable_response",
    "variant_key",
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
    options: ResponseOptions | None = None,
) -> HttpResponseBase:
    """The 304, 412 or 431 that answers the request instead of the view.

    The 304 carries the caching fields of ``options``, as the 200 would.
    """
    response: HttpResponseBase
    if decision.outcome is Outcome.NOT_MODIFIED:
        response = (options or _NO_OPTIONS).not_modified(validator, now)
    elif decision.outcome is Outcome.PRECONDITION_FAILED:
        response = responses.precondition_failed(
            decision, validator.etag, as_json=wants_problem_json(request)
        )
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

    Headers the view set itself win, as in Django's ``condition``. A
    Last-Modified goes out only when settled and in an earlier second than
    the response's Date (or ``now``): see ``Validator.last_modified_seconds``.
    """
    if not (200 <= response.status_code < 300 or response.status_code == 304):
        return
    if validator is not None:
        if validator.etag_header is not None:
            response.headers.setdefault("ETag", validator.etag_header)
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


# --- The request lifecycle shared by decorators and class-based views ---------------


@dataclass(frozen=True)
class ResponseOptions:
    """Caching fields that go on the 200 and the 304 alike."""

    cache_control: CacheControl | None = None
    vary: Sequence[str] | None = None

    def per_user(self) -> ResponseOptions:
        """These options for a per-user page: ``private`` and ``Vary: Cookie`` added."""
        return ResponseOptions(
            cache_control={**(self.cache_control or {}), "private": True},
            vary=[*(self.vary or ()), "Cookie"],
        )

    @cached_property
    def _not_modified_headers(self) -> tuple[tuple[str, str], ...]:
        # Worked out once with Django's own functions, so a 304 carries
        # exactly the Cache-Control and Vary a fresh 200 would get.
        blank = HttpResponseBase()
        if self.cache_control:
            patch_cache_control(blank, **self.cache_control)
        if self.vary:
            patch_vary_headers(blank, self.vary)
        return tuple(
            (name, blank.headers[name]) for name in ("Cache-Control", "Vary") if name in blank
        )

    def not_modified(self, validator: Validator, now: float) -> HttpResponseBase:
        """The 304 for ``validator``: its ETag and Last-Modified, and these caching fields."""
        response = responses.not_modified()
        headers = response.headers
        if validator.etag_header is not None:
            headers["ETag"] = validator.etag_header
        seconds = validator.last_modified_seconds(now)
        if seconds is not None:
            headers["Last-Modified"] = format_http_date(seconds)
        for name, value in self._not_modified_headers:
            headers[name] = value
        return response


_NO_OPTIONS = ResponseOptions()


class ConditionalState:
    """What a view finds on ``request.conditional``: the validator and what was fetched.

    ``etag`` and ``last_modified`` are the validator's; ``object`` and
    ``object_list`` are what computing it fetched, fetched now if the
    validator came from the cache. Nothing is fetched twice.
    """

    def __init__(
        self,
        validator: Validator | None = None,
        *,
        object: Any = None,
        object_list: Any = None,
        fetch_object: Callable[[], Any] | None = None,
        fetch_object_list: Callable[[], Any] | None = None,
        from_cache: bool = False,
    ) -> None:
        self.validator = validator
        self._object = object
        self._object_list = object_list
        self._fetch_object = fetch_object
        self._fetch_object_list = fetch_object_list
        self.from_cache = from_cache

    @property
    def etag(self) -> EntityTag | None:
        """The entity tag sent with the response (``str()`` gives the header value)."""
        return None if self.validator is None else self.validator.etag

    @property
    def last_modified(self) -> dt.datetime | None:
        """The representation's date (aware, UTC): Last-Modified once it is settled."""
        return None if self.validator is None else self.validator.last_modified

    @property
    def needs_fetch(self) -> bool:
        """Whether reading ``object`` would query (the validator came from the cache)."""
        return self._object is None and self._fetch_object is not None

    def fetch(self) -> None:
        """Fetch the object now if it was not fetched (for async views, from a thread)."""
        if self.needs_fetch:
            self._object = self._fetch_object()  # type: ignore[misc]

    @property
    def object(self) -> Any:
        """The object the validator was derived from."""
        if self._object is None and self._fetch_object is not None:
            self._object = self._fetch_object()
        return self._object

    @property
    def object_list(self) -> Any:
        """The rows the validator was derived from (a list, or the queryset)."""
        if self._object_list is None and self._fetch_object_list is not None:
            self._object_list = self._fetch_object_list()
        return self._object_list


@dataclass(frozen=True, slots=True)
class EarlyResponse:
    """A response that answers the request instead of the view, and why."""

    decision: Decision
    response: HttpResponseBase

    def must_run_view_first(self, request: HttpRequest) -> bool:
        """Whether to run a safe view before answering 412.

        RFC 9110 section 13.2.1: preconditions are ignored when the response
        without them would not be 2xx or 412 (a missing object's 404, a
        redirect). Only GET and HEAD may be run to find out; running an
        unsafe view would perform the very write the precondition guards.
        """
        return (
            self.decision.outcome is Outcome.PRECONDITION_FAILED and request.method in READ_METHODS
        )

    def instead_of(self, response: HttpResponseBase) -> HttpResponseBase:
        """The 412 if the view's response was 2xx; otherwise the view's response."""
        return self.response if 200 <= response.status_code < 300 else response


def check_preconditions(
    request: HttpRequest, validator: Validator, options: ResponseOptions
) -> EarlyResponse | None:
    """Evaluate the request's preconditions: the early response, or None to run the view."""
    now = time.time()
    revalidated = answer_revalidation(request, validator, options, now=now)
    if revalidated is not None:
        if logger.isEnabledFor(logging.DEBUG):
            log_revalidated(request, validator, kept=False)
        return EarlyResponse(NOT_MODIFIED_BY_IF_NONE_MATCH, revalidated)
    decision = evaluate(request, validator, now=now)
    if not decision.is_short_circuit:
        return None
    return EarlyResponse(
        decision, short_circuit_response(request, decision, validator, now=now, options=options)
    )


def unverifiable_response(request: HttpRequest) -> HttpResponseBase | None:
    """The answer when no validator can be derived now (``StampsUnavailable``), or None.

    None means: run the view and send its page without validators (a 200
    is a right answer to any revalidation). A request whose precondition
    decides whether it may proceed (If-Match, If-Unmodified-Since, or any
    precondition of an unsafe method) gets a 503 instead.
    """
    meta = request.META
    guarded = "HTTP_IF_MATCH" in meta or "HTTP_IF_UNMODIFIED_SINCE" in meta
    # Logged once per outage by store_health, not here per request.
    if guarded or (request.method not in READ_METHODS and is_conditional(request)):
        logger.debug("%s %s: 503, precondition not evaluated", request.method, request.path)
        response = responses.validators_unavailable()
        _explain_unavailable(response, "503")
        return response
    logger.debug("%s %s: served without validators", request.method, request.path)
    return None


def finish_without_validators(
    request: HttpRequest, response: HttpResponseBase, options: ResponseOptions
) -> HttpResponseBase:
    """The view's response when no validator could be derived (after ``unverifiable_response``)."""
    _explain_unavailable(response, "without-validators")
    return finish_response(request, response, None, options)


def _explain_unavailable(response: HttpResponseBase, outcome: str) -> None:
    """Say in the debug header which store did not answer, with its breaker's counts."""
    if not conf.debug_header:
        return
    down = [found for found in store_health.snapshot() if not found.available]
    reason = "; ".join(
        f"the {found.name} does not answer ({found.last_error}; outage {found.outages}, "
        f"{found.skipped} request(s) served without it)"
        for found in down
    )
    response.headers["X-Conditional"] = (
        f"{outcome}; {reason or 'a write to its tables is in flight'}"
    )


def wants_problem_json(request: HttpRequest) -> bool:
    """Whether the request's client reads JSON error bodies (``responses.wants_problem_json``)."""
    meta = request.META
    return responses.wants_problem_json(meta.get("HTTP_ACCEPT"), meta.get("CONTENT_TYPE"))


def is_revalidation(request: HttpRequest) -> bool:
    """A GET or HEAD whose only entity-tag precondition is If-None-Match.

    What browsers and caches send to revalidate a page they hold; the one
    request worth answering before anything else is worked out.
    """
    meta = request.META
    return (
        "HTTP_IF_NONE_MATCH" in meta
        and request.method in READ_METHODS
        and "HTTP_IF_MATCH" not in meta
        and "HTTP_IF_UNMODIFIED_SINCE" not in meta
    )


def log_revalidated(request: HttpRequest, validator: Validator, *, kept: bool) -> None:
    """Log a 304 answered without the full evaluation, as :func:`evaluate` logs the others.

    Callers on the warm path check ``logger.isEnabledFor(logging.DEBUG)``
    first, so nothing is formatted unless DEBUG logging is on.
    """
    logger.debug(
        "%s %s: %s (%s); validator etag=%s last_modified=%s; %s",
        request.method,
        request.path,
        NOT_MODIFIED_BY_IF_NONE_MATCH.outcome.value,
        NOT_MODIFIED_BY_IF_NONE_MATCH.reason,
        validator.etag,
        validator.last_modified,
        "kept in this process" if kept else "derived for this request",
    )


def answer_revalidation(
    request: HttpRequest,
    validator: Validator,
    options: ResponseOptions,
    *,
    now: float | None = None,
) -> HttpResponseBase | None:
    """The 304 for a revalidation that sends back exactly the current tag, else None.

    RFC 9110 section 13.2.2: without If-Match and If-Unmodified-Since, an
    If-None-Match listing the current tag answers 304 (If-Modified-Since is
    then ignored). A field equal to the tag as we send it lists exactly
    that tag, so the full evaluation would decide the same, without parsing.
    Any other request gets None (and the full evaluation).
    """
    if not is_revalidation(request):
        return None
    return not_modified_if_current(request, validator, options, now=now)


def not_modified_if_current(
    request: HttpRequest,
    validator: Validator,
    options: ResponseOptions,
    *,
    now: float | None = None,
) -> HttpResponseBase | None:
    """``answer_revalidation`` for a request already known to be ``is_revalidation``."""
    if validator.etag_header is None or (
        request.META.get("HTTP_IF_NONE_MATCH") != validator.etag_header
    ):
        return None
    response = options.not_modified(validator, time.time() if now is None else now)
    add_debug_header(response, NOT_MODIFIED_BY_IF_NONE_MATCH)
    return response


def finish_response(
    request: HttpRequest,
    response: HttpResponseBase,
    validator: Validator | None,
    options: ResponseOptions,
) -> HttpResponseBase:
    """Put validators and caching fields on the view's response to GET and HEAD.

    As in Django, responses to other methods carry no validators: after a
    write, the validator computed before it is stale.
    """
    if request.method in READ_METHODS:
        apply_representation_headers(
            response,
            validator,
            now=time.time(),
            cache_control=options.cache_control,
            vary=options.vary,
        )
    return response


def request_salts(
    request: HttpRequest,
    *,
    public: bool = False,
    salt: Callable[[HttpRequest], object] | None = None,
) -> tuple[str, ...]:
    """The strings that make one variant of a page differ from another.

    The active language, the deploy version, an optional view-specific
    ``salt`` (a negotiated format, a theme cookie), and unless ``public``
    the user: their primary key and session auth hash, so a tag never
    matches across users and a password change (which logs sessions out)
    changes every tag of the user.
    """
    salts = [f"lang:{get_language() or ''}", f"deploy:{conf.deploy_version}"]
    if not public:
        salts.append(_user_salt(request))
    if salt is not None:
        salts.append(f"salt:{salt(request)}")
    return tuple(salts)


def _user_salt(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return "user:anonymous"
    auth_hash = getattr(user, "get_session_auth_hash", None)
    return f"user:{user.pk}:{auth_hash() if auth_hash is not None else ''}"


def variant_key(request: HttpRequest, view: str, salts: Sequence[str]) -> tuple[str, ...]:
    """What identifies one variant of one page: view, host, path and query, salts."""
    return (view, _host(request), request.path, request.META.get("QUERY_STRING", ""), *salts)


# Hosts that passed ``get_host()`` (ALLOWED_HOSTS), by the request fields it
# reads: its pattern matching would cost more than the rest of a 304.
_validated_hosts: dict[tuple[str | None, ...], str] = {}
# Bounded: with a wildcard in ALLOWED_HOSTS, clients choose the host.
_MAX_VALIDATED_HOSTS = 256
_HOST_SETTINGS = {"ALLOWED_HOSTS", "DEBUG", "USE_X_FORWARDED_HOST", "USE_X_FORWARDED_PORT"}


def _host(request: HttpRequest) -> str:
    """``request.get_host()``, validated once per distinct set of host fields."""
    meta = request.META
    fields = (
        meta.get("HTTP_X_FORWARDED_HOST"),
        meta.get("HTTP_X_FORWARDED_PORT"),
        meta.get("HTTP_HOST"),
        meta.get("SERVER_NAME"),
        meta.get("SERVER_PORT"),
    )
    host = _validated_hosts.get(fields)
    if host is None:
        host = request.get_host()  # DisallowedHost (a 400) for a host not allowed
        if len(_validated_hosts) >= _MAX_VALIDATED_HOSTS:
            _validated_hosts.clear()
        _validated_hosts[fields] = host
    return host


@receiver(setting_changed)
def _forget_hosts(*, setting: str, **kwargs: Any) -> None:
    if setting in _HOST_SETTINGS:
        _validated_hosts.clear()
