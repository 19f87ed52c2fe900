"""Unsafe requests to a view of one object: 428, 412, and the write made atomic with its check.

``conditional(object=...)`` hands PUT, PATCH, POST and DELETE here. A
request without a precondition runs the view as it is, or gets 428 where a
precondition is required. One with a precondition has it evaluated against
a validator derived afresh (never a kept one: the version it was derived
from is the one the write is checked against), then the view runs with
the row claimed (``guarded_writes``): of concurrent requests carrying the
same tag exactly one runs, the others get 412 with the current tag. A
successful write answers with the object's new ``ETag``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.utils.log import log_response

from django_conditional import engine, guarded_writes, responses
from django_conditional.conf import conf
from django_conditional.engine import ConditionalState, ResponseOptions
from django_conditional.http import IGNORING_METHODS, READ_METHODS, Decision, Outcome
from django_conditional.stamp_errors import StampsUnavailable
from django_conditional.validators import Validator

if TYPE_CHECKING:
    from django.db.models import Model

    from django_conditional.derivation import Derived

__all__ = ["LOST_WRITE", "Fresh", "WriteGuard", "fresh_derivation", "is_write"]

# The 412 of a request whose claim found the row changed (or deleted) meanwhile.
LOST_WRITE = Decision(
    Outcome.PRECONDITION_FAILED,
    "another request changed the resource after your precondition was evaluated and before "
    "your change was written; nothing of yours was written (GET it again, then retry)",
    "If-Match",
)
_CREATED_MEANWHILE = Decision(
    Outcome.PRECONDITION_FAILED,
    "another request created the resource after If-None-Match: * was evaluated; nothing of "
    "yours was written",
    "If-None-Match",
)


def is_write(request: HttpRequest) -> bool:
    """An unsafe method: one that may change the object (not GET/HEAD, not OPTIONS/TRACE)."""
    return request.method not in READ_METHODS and request.method not in IGNORING_METHODS


@dataclass(frozen=True, slots=True)
class Fresh:
    """A validator derived without the cache; ``state.object`` None when there is no row."""

    state: ConditionalState
    using: str


# Derives the request's validator afresh: (request, view args, view kwargs).
Derive = Callable[[HttpRequest, tuple[Any, ...], dict[str, Any]], Fresh]
# The request's state from a validator (None: the stamps cannot be read) and its object.
MakeState = Callable[["Validator | None", "Model | None"], ConditionalState]


def _plain_state(validator: Validator | None, instance: Model | None) -> ConditionalState:
    return ConditionalState(validator, object=instance)


def fresh_derivation(
    derive: Callable[[], Derived],
    using: str,
    *,
    make_state: MakeState = _plain_state,
    not_found: tuple[type[Exception], ...] = (Http404,),
) -> Fresh:
    """What a write is checked against: ``derive()`` run now, its failures made states.

    Stamps that cannot be read give no validator (the request gets 503); a
    missing row (``not_found``) gives "no current representation".
    """
    try:
        derived = derive()
    except StampsUnavailable:
        return Fresh(make_state(None, None), using)
    except not_found:
        return Fresh(make_state(Validator(exists=False), None), using)
    return Fresh(make_state(derived.validator, derived.object), using)


@dataclass(frozen=True, slots=True)
class WriteGuard:
    """How a view of one object answers unsafe requests."""

    derive: Derive
    idle: Callable[[HttpRequest, tuple[Any, ...], dict[str, Any]], ConditionalState]
    options: ResponseOptions
    # 428 for an unsafe request without a precondition; None: the setting.
    require_precondition: bool | None = None

    def requires_precondition(self) -> bool:
        """Whether an unsafe request must carry a precondition (or get 428)."""
        if self.require_precondition is None:
            return conf.require_precondition
        return self.require_precondition

    def answer(
        self,
        request: HttpRequest,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call_view: Callable[[], HttpResponseBase],
    ) -> HttpResponseBase:
        """The response to an unsafe request: 428, 412, 503, or the view's (run atomically)."""
        if not engine.is_conditional(request):
            if self.requires_precondition():
                return _precondition_required(request)
            request.conditional = self.idle(request, args, kwargs)  # type: ignore[attr-defined]
            return call_view()
        fresh = self.derive(request, args, kwargs)
        state = fresh.state
        request.conditional = state  # type: ignore[attr-defined]
        if state.validator is None:  # the stamps cannot be read now: never guess
            refused = engine.unverifiable_response(request)
            return refused if refused is not None else call_view()
        if not state.validator.exists and "HTTP_IF_MATCH" in request.META:
            # If-Match asks to change what exists: nothing is written either way, and
            # the 404 says why (RFC 9110 section 13.2.1: without the precondition,
            # the view of a missing object answers 404 too).
            raise Http404("No object matches the given query.")
        early = engine.check_preconditions(request, state.validator, self.options)
        if early is not None:
            return early.response
        if not state.validator.exists:
            # Absent, and the precondition lets the request create it (a PUT; a view
            # that only edits finds request.conditional.object raising Http404).
            response = guarded_writes.create_only(fresh.using, call_view)
            if response is None:
                return self._lost(request, args, kwargs, _CREATED_MEANWHILE)
            return self._with_new_tag(request, args, kwargs, response, version=1)
        seen = guarded_writes.SeenRow.of(state.object)
        recheck = None
        if seen.version is None:
            # No version to compare: evaluate again once the row is locked.
            def recheck() -> bool:
                again = self.derive(request, args, kwargs).state.validator
                return again is not None and not engine.evaluate(request, again).is_short_circuit

        written = guarded_writes.run_claimed(seen, call_view, recheck=recheck)
        if written is None:
            return self._lost(request, args, kwargs, LOST_WRITE)
        if seen.version is None:
            return written.response  # no version to prove the new tag is this write's
        return self._with_new_tag(request, args, kwargs, written.response, written.version)

    def _lost(
        self,
        request: HttpRequest,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        decision: Decision,
    ) -> HttpResponseBase:
        """The 412 of a request that lost the race, with the winner's tag."""
        current = self.derive(request, args, kwargs).state.validator
        etag = current.etag if current is not None and current.exists else None
        response = responses.precondition_failed(
            decision, etag, as_json=engine.wants_problem_json(request)
        )
        engine.add_debug_header(response, decision)
        log_response(
            "Precondition Failed: %s (%s)",
            request.path,
            "lost a concurrent write",
            response=response,
            request=request,
        )
        return response

    def _with_new_tag(
        self,
        request: HttpRequest,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        response: HttpResponseBase,
        version: int | None,
    ) -> HttpResponseBase:
        """Put the object's new ETag on a successful write's response, when it is this write's.

        The tag is derived after the commit; it goes out only if the row is still
        at the version this write left (a later write's tag would let the client
        overwrite what it never saw).
        """
        if not 200 <= response.status_code < 300 or version is None:
            return response
        try:
            fresh = self.derive(request, args, kwargs).state
        except Http404:
            return response
        instance, validator = fresh.object, fresh.validator
        if (
            validator is not None
            and validator.etag_header is not None
            and instance is not None
            and getattr(instance, "version", None) == version
        ):
            response.headers.setdefault("ETag", validator.etag_header)
        return response


def _precondition_required(request: HttpRequest) -> HttpResponseBase:
    response = responses.precondition_required(
        request.method or "POST", as_json=engine.wants_problem_json(request)
    )
    if conf.debug_header:
        response.headers["X-Conditional"] = "428; unsafe requests here must be conditional"
    log_response("Precondition Required: %s", request.path, response=response, request=request)
    return response
