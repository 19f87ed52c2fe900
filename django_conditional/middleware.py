"""The middleware: applies the rules kept in the database before the view runs. Sync and async.

Writes (PUT, PATCH, POST, DELETE) to the object of a rule that requires
preconditions get 428 without one and 412 when stale, and otherwise run
with the object's row claimed (``unsafe_methods``, ``guarded_writes``).

For a GET or HEAD that an enabled rule covers, it derives the page's
validator from the rule's stamps (and its object), answers 304 or 412
before the view and its template run, and otherwise adds the validators and
the rule's caching fields to the view's 200, unless that 200 shows the page
must not have them (``rule_safety``). Views with this package's own
decorators or mixins, the admin, and views that check access are left to
themselves. Put it after ``SessionMiddleware``, ``AuthenticationMiddleware``,
``LocaleMiddleware`` and ``CommonMiddleware`` (checks W010-W013).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase

from django_conditional import engine, rule_counts, rule_safety, validator_cache
from django_conditional.conf import conf
from django_conditional.derivation import Derived, derive
from django_conditional.engine import ConditionalState, EarlyResponse
from django_conditional.revalidation import answer_from_kept
from django_conditional.rules import ALLOWED_METHODS, PageMatch, Rule, RuleSet, current_rules
from django_conditional.stamp_errors import StampsUnavailable
from django_conditional.unsafe_methods import Fresh, WriteGuard, fresh_derivation, is_write
from django_conditional.validators import Validator

__all__ = ["ConditionalRulesMiddleware"]

logger = logging.getLogger("django_conditional")

GetResponse = Callable[[HttpRequest], HttpResponseBase]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


@dataclass
class _Pending:
    """A request the view must answer; what to do with its response afterwards."""

    rules: RuleSet
    rule: Rule | None = None
    # Why the rule left the request untouched (debug header, counts).
    passed: str | None = None
    derived: Derived | None = None
    early: EarlyResponse | None = None
    unverifiable: bool = False


class ConditionalRulesMiddleware:
    """Answer revalidations of rule-covered pages before their views run."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse | AsyncGetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        if is_write(request):
            return _write(request, self.get_response)  # type: ignore[arg-type]
        before = _before_view(request)
        if before is None:
            return self.get_response(request)
        if isinstance(before, HttpResponseBase):
            return before
        response = self.get_response(request)
        return _after_view(request, before, response)  # type: ignore[arg-type]

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if is_write(request):
            # One thread for the claim's transaction and the view's ORM calls:
            # thread-sensitive code inside async_to_sync comes back to it.
            get_response = async_to_sync(self.get_response)  # type: ignore[arg-type]
            return await sync_to_async(_write)(request, get_response)
        # Rules may load and stamps may be read from the database: off the event loop.
        before = await sync_to_async(_before_view)(request)
        if before is None:
            return await self.get_response(request)  # type: ignore[no-any-return,misc]
        if isinstance(before, HttpResponseBase):
            return before
        response = await self.get_response(request)  # type: ignore[misc]
        return await sync_to_async(_after_view)(request, before, response)


_REFUSED = "a 200 of this page showed it must not get shared validators (see the admin)"


def _write(request: HttpRequest, get_response: GetResponse) -> HttpResponseBase:
    """An unsafe request: a rule that guards writes answers 428 or 412, or runs it atomically."""
    rules = current_rules()
    if not rules.guards_writes:
        return get_response(request)
    rule, page = rules.write_rule_for(request)
    if rule is None:
        return get_response(request)
    guard = WriteGuard(
        partial(_fresh, rule, page),
        lambda _request, _args, _kwargs: ConditionalState(),
        rule.options,
        require_precondition=True,
    )
    response = guard.answer(request, (), {}, partial(get_response, request))
    if response.status_code in {412, 428}:
        rule_counts.count(rule.pk, "failed")
    _explain(response, rule, str(response.status_code), "a write the rule guards")
    return response


def _fresh(rule: Rule, page: PageMatch, request: HttpRequest, args: Any, kwargs: Any) -> Fresh:
    """The rule's validator for the write's object, derived now (never a kept one)."""
    derivation = rule.derivation(rule.salts(request), page.kwargs)
    if derivation is None or derivation.queryset is None:
        return Fresh(ConditionalState(Validator(exists=False)), "default")
    # No such object, or a URL value its field cannot hold: no representation.
    return fresh_derivation(
        partial(derive, derivation),
        derivation.using or derivation.queryset().db,
        not_found=(Http404, ValueError, TypeError, ValidationError),
    )


def _before_view(request: HttpRequest) -> HttpResponseBase | _Pending | None:
    """The early answer, what to do after the view, or None for a request no rule covers."""
    if request.method not in ALLOWED_METHODS:
        return None  # rules never answer for a write: nothing to load
    return _apply(request, current_rules(), retried=False)


def _apply(
    request: HttpRequest, rules: RuleSet, *, retried: bool
) -> HttpResponseBase | _Pending | None:
    """``_before_view`` under ``rules``; ``retried`` once they were found stale and reloaded."""
    if not rules.rules or request.method not in rules.methods:
        return None
    rule, page = rules.rule_for(request)
    if rule is None:
        if page.protected is not None and logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s: no rule applies: %s", request.method, request.path, page.protected)
        return None
    passed = rule.admits(request)
    if passed is None and rules.is_refused(rule, request.path_info):
        passed = _REFUSED
    if passed is not None:
        return _Pending(rules, rule, passed=passed)
    salts = rule.salts(request)
    variant = engine.variant_key(request, rule.identity, salts)
    if not retried:
        revalidated = answer_from_kept(request, lambda _request: variant, rule.options)
        if revalidated is not None:
            rule_counts.count(rule.pk, "not_modified")
            _explain(revalidated, rule, "304", "kept in this process", variant=variant)
            return revalidated
    return _derive(request, rules, rule, page, salts, variant, retried=retried)


def _derive(
    request: HttpRequest,
    rules: RuleSet,
    rule: Rule,
    page: PageMatch,
    salts: tuple[str, ...],
    variant: tuple[str, ...],
    *,
    retried: bool,
) -> HttpResponseBase | _Pending | None:
    derivation = rule.derivation(salts, page.kwargs)
    if derivation is None:
        return _Pending(rules, rule, passed=f"the URL has no argument {rule.object_kwarg!r}")
    try:
        derived = derive(derivation, cache_key=variant)
    except StampsUnavailable:
        refused = engine.unverifiable_response(request)
        if refused is not None:
            return refused
        return _Pending(rules, rule, unverifiable=True)
    except (Http404, ValueError, TypeError, ValidationError):
        # No such object, or a URL value its field cannot hold: the view decides.
        return _Pending(rules, rule, passed="the object was not found: the view answers")
    if not derived.cached and rules.is_stale(derived.stamps):
        # The rules changed since this process loaded them: match again under the new
        # ones (once: rules changing again meanwhile leave the request to its view).
        return None if retried else _apply(request, current_rules(force=True), retried=True)
    request.conditional = ConditionalState(  # type: ignore[attr-defined]
        derived.validator, object=derived.object, from_cache=derived.cached
    )
    early = engine.check_preconditions(request, derived.validator, rule.options)
    if early is not None and not early.must_run_view_first(request):
        rule_counts.count(
            rule.pk, "not_modified" if early.response.status_code == 304 else "failed"
        )
        _explain(early.response, rule, None, early.decision.reason, derived=derived)
        return early.response
    return _Pending(rules, rule, derived=derived, early=early)


def _after_view(
    request: HttpRequest, pending: _Pending, response: HttpResponseBase
) -> HttpResponseBase:
    """Finish the view's response: the rule's validators and caching fields, when safe."""
    rule = pending.rule
    assert rule is not None
    if pending.passed is not None:
        rule_counts.count(rule.pk, "passed")
        _explain(response, rule, "passed", pending.passed)
        return response
    if pending.unverifiable:
        rule_counts.count(rule.pk, "passed")
        return engine.finish_without_validators(request, response, rule.options)
    derived = pending.derived
    assert derived is not None
    if pending.early is not None:
        final = pending.early.instead_of(response)
        if final is not response:
            rule_counts.count(rule.pk, "failed")
            return final
    if response.status_code != 200:
        return response  # only 200s get a rule's validators
    reason = rule_safety.reason_to_refuse(request, response, rule)
    if reason is not None:
        rule_safety.refuse(pending.rules, rule, request.path_info, reason)
        rule_counts.count(rule.pk, "passed")
        _explain(response, rule, "refused", reason)
        return response
    rule_counts.count(rule.pk, "full")
    engine.finish_response(request, response, derived.validator, rule.options)
    _explain(response, rule, "200", "the view answered; validators added", derived=derived)
    return response


def _explain(
    response: HttpResponseBase,
    rule: Rule,
    outcome: str | None,
    reason: str,
    *,
    derived: Derived | None = None,
    variant: tuple[str, ...] | None = None,
) -> None:
    """Name the rule, the validator's parts and the outcome in the debug header and the log."""
    debug = conf.debug_header
    if not debug and not logger.isEnabledFor(logging.DEBUG):
        return
    stamps: dict[str, int] | None = None
    if derived is not None and derived.stamps:
        stamps = derived.stamps
    elif variant is not None:
        entry = validator_cache.kept_entry(variant)
        if entry is not None:
            stamps = dict(zip(entry.tables, entry.stamps, strict=True))
    parts = [rule.describe()]
    if stamps:
        parts.append("stamps " + ", ".join(f"{table}={token}" for table, token in stamps.items()))
    if outcome is None:
        existing = response.headers.get("X-Conditional", "")
        text = f"{existing}; {'; '.join(parts)}" if existing else "; ".join(parts)
    else:
        text = f"{outcome}; {reason}; {'; '.join(parts)}"
    if debug:
        response.headers["X-Conditional"] = text
    logger.debug("%s", text)
