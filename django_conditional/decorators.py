"""Drop-in replacements for ``django.views.decorators.http``'s conditional decorators.

``condition``, ``etag`` and ``last_modified`` keep Django's signatures and
behaviour except where Django deviates from RFC 9110 (listed in the README),
and add: sync and async views and validator functions, no validator work for
unsafe requests without a precondition, the computed validator on
``request.conditional``, and ``cache_control`` / ``vary`` that the 304
carries as the 200 does.
"""

from __future__ import annotations

import datetime as dt
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from django_conditional import engine
from django_conditional.http import READ_METHODS, Decision, Outcome
from django_conditional.validators import Validator

__all__ = ["condition", "etag", "last_modified"]

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., Any])
EtagFunc = Callable[..., "str | Awaitable[str | None] | None"]
LastModifiedFunc = Callable[..., "dt.datetime | Awaitable[dt.datetime | None] | None"]


@dataclass(frozen=True, slots=True)
class _Options:
    etag_func: EtagFunc | None
    last_modified_func: LastModifiedFunc | None
    cache_control: engine.CacheControl | None
    vary: Sequence[str] | None


def condition(
    etag_func: EtagFunc | None = None,
    last_modified_func: LastModifiedFunc | None = None,
    *,
    cache_control: engine.CacheControl | None = None,
    vary: Sequence[str] | None = None,
) -> Callable[[ViewFunc], ViewFunc]:
    """Answer conditional requests from the validators the functions compute.

    ``etag_func`` and ``last_modified_func`` take the view's arguments and
    return an entity tag (quoted or not, ``W/`` for weak) and a datetime, or
    ``None``. Either may be a coroutine function. Each is called at most once
    per request, and not at all for an unsafe request without a precondition
    or for OPTIONS. A validator function that raises ``Http404`` (for example
    through ``get_object_or_404``) gives the 404, which takes precedence over
    any precondition (RFC 9110 section 13.2.1).

    On GET and HEAD the 304 is returned before the view runs; other methods
    get 412 when a precondition fails. ``cache_control`` (keyword arguments
    of ``patch_cache_control``) and ``vary`` (header names) go on the 200 and
    the 304 alike. The view can read the computed validator as
    ``request.conditional`` (a :class:`~django_conditional.validators.Validator`).
    """
    options = _Options(etag_func, last_modified_func, cache_control, vary)

    def decorator(view: ViewFunc) -> ViewFunc:
        if iscoroutinefunction(view):

            @wraps(view)
            async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                validator = request.conditional = None  # type: ignore[attr-defined]
                if engine.needs_validator(request):
                    validator = await _acompute_validator(options, request, args, kwargs)
                    early = _pre_process_request(options, request, validator)
                    if early is not None and not _should_defer(request, early):
                        return early.response
                    if early is not None:
                        response = await view(request, *args, **kwargs)
                        return _deferred_response(response, early)
                response = await view(request, *args, **kwargs)
                return _post_process_request(options, request, response, validator)

            return cast("ViewFunc", async_view)

        @wraps(view)
        def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            validator = request.conditional = None  # type: ignore[attr-defined]
            if engine.needs_validator(request):
                validator = _compute_validator(options, request, args, kwargs)
                early = _pre_process_request(options, request, validator)
                if early is not None and not _should_defer(request, early):
                    return early.response
                if early is not None:
                    return _deferred_response(view(request, *args, **kwargs), early)
            response = view(request, *args, **kwargs)
            return _post_process_request(options, request, response, validator)

        return cast("ViewFunc", sync_view)

    return decorator


def etag(
    etag_func: EtagFunc,
    *,
    cache_control: engine.CacheControl | None = None,
    vary: Sequence[str] | None = None,
) -> Callable[[ViewFunc], ViewFunc]:
    """:func:`condition` with an entity tag only."""
    return condition(etag_func=etag_func, cache_control=cache_control, vary=vary)


def last_modified(
    last_modified_func: LastModifiedFunc,
    *,
    cache_control: engine.CacheControl | None = None,
    vary: Sequence[str] | None = None,
) -> Callable[[ViewFunc], ViewFunc]:
    """:func:`condition` with a modification time only."""
    return condition(last_modified_func=last_modified_func, cache_control=cache_control, vary=vary)


@dataclass(frozen=True, slots=True)
class _EarlyResponse:
    decision: Decision
    response: HttpResponseBase


def _compute_validator(
    options: _Options, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Validator:
    """Call the validator functions from a sync view (async ones through ``async_to_sync``)."""
    etag_value = _call_sync(options.etag_func, request, args, kwargs)
    last_modified_value = _call_sync(options.last_modified_func, request, args, kwargs)
    return Validator.from_values(etag_value, last_modified_value)


async def _acompute_validator(
    options: _Options, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Validator:
    """Call the validator functions from an async view.

    Sync ones run through ``sync_to_async`` so an ORM query inside them does
    not raise ``SynchronousOnlyOperation``; async ones are awaited.
    """
    etag_value = await _call_async(options.etag_func, request, args, kwargs)
    last_modified_value = await _call_async(options.last_modified_func, request, args, kwargs)
    return Validator.from_values(etag_value, last_modified_value)


def _call_sync(
    func: Callable[..., Any] | None,
    request: HttpRequest,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    if func is None:
        return None
    if iscoroutinefunction(func):
        return async_to_sync(func)(request, *args, **kwargs)
    result = func(request, *args, **kwargs)
    if inspect.isawaitable(result):  # a plain function that returned a coroutine
        return async_to_sync(_await)(result)
    return result


async def _call_async(
    func: Callable[..., Any] | None,
    request: HttpRequest,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    if func is None:
        return None
    if iscoroutinefunction(func):
        return await func(request, *args, **kwargs)
    result = await sync_to_async(func)(request, *args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _pre_process_request(
    options: _Options, request: HttpRequest, validator: Validator
) -> _EarlyResponse | None:
    """Evaluate the preconditions; the response that replaces the view's, if any."""
    request.conditional = validator  # type: ignore[attr-defined]
    now = time.time()
    decision = engine.evaluate(request, validator, now=now)
    if not decision.is_short_circuit:
        return None
    response = engine.short_circuit_response(
        request,
        decision,
        validator,
        now=now,
        cache_control=options.cache_control,
        vary=options.vary,
    )
    return _EarlyResponse(decision, response)


def _should_defer(request: HttpRequest, early: _EarlyResponse) -> bool:
    """Whether to run a safe view before answering 412.

    RFC 9110 section 13.2.1: preconditions are ignored when the response
    without them would not be 2xx or 412 (a missing object's 404, a
    redirect). Only GET and HEAD may be run to find out; running an unsafe
    view would perform the very write the precondition guards.
    """
    return early.decision.outcome is Outcome.PRECONDITION_FAILED and request.method in READ_METHODS


def _deferred_response(response: HttpResponseBase, early: _EarlyResponse) -> HttpResponseBase:
    if 200 <= response.status_code < 300:
        return early.response
    return response


def _post_process_request(
    options: _Options,
    request: HttpRequest,
    response: HttpResponseBase,
    validator: Validator | None,
) -> HttpResponseBase:
    """Put validators and caching fields on the view's response to GET and HEAD.

    As in Django, responses to other methods carry no validators: after a
    write, the validator computed before it is stale.
    """
    if request.method in READ_METHODS:
        engine.apply_representation_headers(
            response,
            validator,
            now=time.time(),
            cache_control=options.cache_control,
            vary=options.vary,
        )
    return response
