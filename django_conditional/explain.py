"""Explain what the rules do with one request: the logic behind ``manage.py conditional_explain``.

Builds the request with ``RequestFactory``, matches it against the rules as
the middleware does, derives the validator the middleware would send and
evaluates a revalidation against it. Reads the ORM and the stamps and writes
nothing (but a stamp row the first time a table is read, as every read does).
Never imports the middleware.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host
from django.test import RequestFactory
from django.urls import Resolver404, ResolverMatch, get_resolver
from django.utils import translation
from django.utils.cache import patch_cache_control, patch_vary_headers

from django_conditional import engine
from django_conditional.http import Outcome, format_http_date
from django_conditional.rule_patterns import PatternError, parse_path_globs, parse_url_names
from django_conditional.rules import ALLOWED_METHODS, Rule, RuleSet, load_rules, protection_of
from django_conditional.stamp_errors import StampsUnavailable
from django_conditional.tables import tables_for_models

__all__ = [
    "ExplainError",
    "Explanation",
    "Revalidation",
    "RuleVerdict",
    "Verdict",
    "build_request",
    "explain_request",
    "explain_url",
]

# Stands in for a session: the rules only look for the cookie; nothing is stored.
PLACEHOLDER_SESSION = "conditional-explain"
_CONDITIONAL_KEYS = (
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
)
_STATUS_TEXT = {
    200: "200 OK",
    304: "304 Not Modified",
    412: "412 Precondition Failed",
    431: "431 Request Header Fields Too Large",
    503: "503 Service Unavailable",
}


class ExplainError(ValueError):
    """Input that cannot be explained (a bad URL, method, header or user); says what to fix."""


class Verdict(enum.Enum):
    """What one rule does with the request."""

    APPLIES = "applies"
    OUTRANKED = "outranked"  # matches, but a higher-priority rule applies
    WRONG_METHOD = "wrong method"
    PROTECTED = "protected"  # matches, but the view is left to itself
    NO_VIEW = "no view"  # a path pattern matches, but the path resolves to nothing
    NO_MATCH = "no match"
    INVALID = "invalid"
    NOT_LOADED = "not loaded"  # the rules could not be read, or changed while being read
    DISABLED = "disabled"


@dataclass(frozen=True)
class RuleVerdict:
    """One rule's verdict on the request, and why."""

    name: str
    priority: int
    verdict: Verdict
    reason: str

    def line(self) -> str:
        """The verdict as one readable line."""
        return f"  [{self.verdict.value}] {self.name!r} (priority {self.priority}): {self.reason}"


@dataclass(frozen=True)
class Revalidation:
    """What a revalidation gets: the status, why, and whether the request itself carried it."""

    status: int
    reason: str
    # True: evaluated on the request's own conditional headers (--etag, --header);
    # False: what If-None-Match with the current ETag would get.
    asked: bool

    def line(self) -> str:
        """The outcome as one readable line."""
        status = _STATUS_TEXT.get(self.status, str(self.status))
        if self.asked:
            return f"Revalidation: {status}: {self.reason}."
        return f"Revalidation: {self.reason} would get {status}, before the view runs."


@dataclass
class Explanation:
    """What the rules and the middleware do with one request, field by field.

    ``lines()`` is the readable form ``conditional_explain`` prints; tests
    and tools read the fields.
    """

    method: str
    path: str
    query: str
    host: str
    user: str
    language: str
    host_note: str | None = None
    resolved: bool = False
    view: str = ""
    url_name: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    # Why no rule may answer for the view (its own validators, the admin, access checks).
    protected: str | None = None
    # Why the rules could not be read at all (the middleware then leaves every request alone).
    rules_unavailable: str | None = None
    verdicts: list[RuleVerdict] = field(default_factory=list)
    rule: str | None = None  # the name of the rule that applies
    audience: str | None = None  # the applying rule's audience
    # Why the applying rule leaves the request to the view (None: the rule answers it).
    passes: str | None = None
    refused: bool = False
    depends_on: tuple[str, ...] = ()  # model labels
    tables: tuple[str, ...] = ()
    object_lookup: str | None = None
    stamps: dict[str, int] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    # Why there is no validator at all, or no Last-Modified.
    no_validator: str | None = None
    no_last_modified: str | None = None
    caching_fields: tuple[str, ...] = ()
    revalidation: Revalidation | None = None

    def verdict_of(self, name: str) -> RuleVerdict:
        """The verdict on the rule called ``name`` (``KeyError`` when there is no such rule)."""
        for verdict in self.verdicts:
            if verdict.name == name:
                return verdict
        raise KeyError(name)

    def lines(self) -> list[str]:
        """The explanation in plain readable lines."""
        target = self.path + (f"?{self.query}" if self.query else "")
        lines = [
            f"{self.method} {target} (host {self.host}, {self.user}, language {self.language})"
        ]
        if self.host_note:
            lines.append(self.host_note)
        if self.resolved:
            name = f"URL name {self.url_name!r}" if self.url_name else "no URL name"
            lines.append(f"Resolves to {self.view} ({name}), kwargs {self.kwargs!r}.")
            if self.protected:
                lines.append(f"No rule may answer for this view: {self.protected}.")
            else:
                lines.append("The view has no validators of its own: rules may cover it.")
        else:
            lines.append("The path does not resolve (the 404 page): no rule answers it.")
        if self.rules_unavailable:
            lines.append(f"The rules could not be read: {self.rules_unavailable}.")
        if self.verdicts:
            lines.append("Rules, highest priority first:")
            lines.extend(verdict.line() for verdict in self.verdicts)
        else:
            lines.append("There are no conditional rules.")
        if self.rule is None:
            lines.append(
                "No rule applies: the view answers every request itself, revalidations included."
            )
            return lines
        lines.append(f"Rule {self.rule!r} applies (audience {self.audience}).")
        depends = ", ".join(self.depends_on) or "nothing but the rules themselves"
        lines.append(f"Depends on: {depends}; tables {', '.join(self.tables)}.")
        if self.object_lookup:
            lines.append(f"Object: {self.object_lookup}.")
        lines.append(
            "Refused: a 200 of this path showed it must not get the rule's validators."
            if self.refused
            else "Refused: no, this path is not among the rule's refused pages."
        )
        if self.passes is not None:
            lines.append(f"Passes through to the view: {self.passes}.")
        else:
            lines.append("Audience: the rule answers this request.")
        if self.stamps:
            stamps = ", ".join(f"{table}={token}" for table, token in self.stamps.items())
            lines.append(f"Stamps: {stamps}")
        if self.no_validator:
            lines.append(f"Validator: none: {self.no_validator}.")
        elif self.etag is not None:
            lines.append(f"ETag: {self.etag}")
            lines.append(
                f"Last-Modified: {self.last_modified or 'none: ' + str(self.no_last_modified)}"
            )
        if self.caching_fields:
            lines.append(f"Caching fields: {'; '.join(self.caching_fields)}")
        if self.revalidation is not None:
            lines.append(self.revalidation.line())
        elif self.passes is not None:
            lines.append("Revalidation: the view answers it; the rule leaves this request alone.")
        return lines


def explain_url(
    url: str,
    *,
    method: str = "GET",
    username: str | None = None,
    etag: str | None = None,
    headers: Sequence[str] = (),
) -> Explanation:
    """Explain ``url`` (a full URL or a path) requested with ``method`` by ``username``.

    ``etag`` is sent as If-None-Match; ``headers`` are ``"Name: value"``
    strings. Raises :class:`ExplainError` for input that cannot be explained.
    """
    request, host_note = build_request(
        url, method=method, username=username, etag=etag, headers=headers
    )
    explanation = explain_request(request)
    explanation.host_note = host_note
    return explanation


def build_request(
    url: str,
    *,
    method: str = "GET",
    username: str | None = None,
    etag: str | None = None,
    headers: Sequence[str] = (),
) -> tuple[HttpRequest, str | None]:
    """The request ``explain_url`` explains, and a note when the URL's host was not used.

    The URL's host is used when ``ALLOWED_HOSTS`` allows it; otherwise the
    first allowed host, or ``testserver``. With ``username`` the user is
    attached and the request carries a session cookie (a placeholder: no
    session is stored), as a logged-in visitor's would.
    """
    method = method.upper()
    if method not in ALLOWED_METHODS:
        raise ExplainError(
            f"Method {method!r} is not one a rule answers: use {' or '.join(ALLOWED_METHODS)}."
        )
    parts = _split_url(url)
    host, host_note = _choose_host(parts.netloc.rpartition("@")[2])
    fields = _header_fields(headers)
    if etag is not None:
        if not etag.strip():
            raise ExplainError('--etag is empty: give the ETag as printed, e.g. W/"abc".')
        fields["If-None-Match"] = etag
    user: Any = AnonymousUser()
    if username is not None:
        user = _find_user(username)
        session = f"{settings.SESSION_COOKIE_NAME}={PLACEHOLDER_SESSION}"
        cookie = fields.get("Cookie")
        fields["Cookie"] = f"{cookie}; {session}" if cookie else session
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = RequestFactory().generic(
        method, target, secure=parts.scheme == "https", headers=fields, HTTP_HOST=host
    )
    request.user = user
    return request, host_note


def _split_url(url: str) -> SplitResult:
    fix = "give a full URL (http://127.0.0.1:8000/plain/authors/) or a path starting with '/'"
    text = url.strip()
    if not text or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ExplainError(f"{url!r} is not a URL: {fix}.")
    try:
        parts = urlsplit(text)
        _port = parts.port  # a port that is not a number raises ValueError
    except ValueError as error:
        raise ExplainError(f"{url!r} is not a URL ({error}): {fix}.") from error
    if parts.scheme and parts.scheme not in {"http", "https"}:
        raise ExplainError(f"{url!r} is not an http or https URL: {fix}.")
    if parts.scheme and not parts.netloc:
        raise ExplainError(f"{url!r} has no host: {fix}.")
    if parts.netloc and not parts.path:
        parts = parts._replace(path="/")
    if not parts.path.startswith("/"):
        raise ExplainError(f"{url!r} is not a URL or a path: {fix}.")
    return parts


def _allowed_hosts() -> list[str]:
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        # What Django's get_host() allows in that case.
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return allowed


def _choose_host(netloc: str) -> tuple[str, str | None]:
    allowed = _allowed_hosts()
    if netloc:
        domain, _port = split_domain_port(netloc)
        if domain and validate_host(domain, allowed):
            return netloc, None
    fallback = next((host.lstrip(".") for host in allowed if host.lstrip(".") != "*"), "")
    fallback = fallback or "testserver"
    if netloc:
        return fallback, f"Host {netloc!r} is not in ALLOWED_HOSTS: explained for {fallback!r}."
    return fallback, None


def _header_fields(headers: Iterable[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for header in headers:
        name, colon, value = header.partition(":")
        name = name.strip()
        if not colon or not name or not name.replace("-", "").isalnum() or not name.isascii():
            raise ExplainError(
                f"--header {header!r} is not 'Name: value' (e.g. --header 'Accept: text/html')."
            )
        # Several lines of one field join with commas (RFC 9110 section 5.3).
        key = next((known for known in fields if known.lower() == name.lower()), name)
        value = value.strip()
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    return fields


def _find_user(username: str) -> Any:
    user_model = get_user_model()
    username_field = user_model.USERNAME_FIELD
    try:
        return user_model._default_manager.get(**{username_field: username})
    except user_model.DoesNotExist as error:
        raise ExplainError(
            f"No user with {user_model._meta.label}.{username_field} {username!r}: check the "
            "spelling, or leave out --user to explain the request of an anonymous visitor."
        ) from error


def explain_request(request: HttpRequest) -> Explanation:
    """Explain what the rules do with ``request`` (as ``build_request`` makes it)."""
    user: Any = getattr(request, "user", None)
    who = "anonymous"
    if user is not None and user.is_authenticated:
        who = f"user {user.get_username()!r}"
    explanation = Explanation(
        method=request.method or "GET",
        path=request.path,
        query=request.META.get("QUERY_STRING", ""),
        host=request.get_host(),
        user=who,
        language=_language(request),
    )
    with translation.override(explanation.language):
        _explain(request, explanation)
    return explanation


def _language(request: HttpRequest) -> str:
    """The language the server would have active when the middleware runs."""
    if settings.USE_I18N and "django.middleware.locale.LocaleMiddleware" in settings.MIDDLEWARE:
        return translation.get_language_from_request(request)
    return str(settings.LANGUAGE_CODE)


def _explain(request: HttpRequest, explanation: Explanation) -> None:
    match: ResolverMatch | None
    try:
        match = get_resolver(getattr(request, "urlconf", None)).resolve(request.path_info)
    except Resolver404:
        match = None
    if match is not None:
        explanation.resolved = True
        explanation.view = match._func_path
        explanation.url_name = (
            ":".join([*match.namespaces, match.url_name]) if match.url_name else None
        )
        explanation.kwargs = dict(match.kwargs)
        explanation.protected = protection_of(match)
    rows, rules = _load(explanation)
    page = rules.page(request)
    applied, _page = rules.rule_for(request)
    candidates = {rule.pk for rule in page.rules}
    by_name = {rule.name: rule for rule in rules.rules}
    method = explanation.method
    for row in rows:
        name, priority = row["name"], row["priority"]

        def verdict(kind: Verdict, reason: str, name: str = name, priority: int = priority) -> None:
            explanation.verdicts.append(RuleVerdict(name, priority, kind, reason))

        rule = by_name.get(name)
        if not row["enabled"]:
            verdict(Verdict.DISABLED, "disabled (enabled is off), never applied")
        elif name in rules.invalid:
            verdict(
                Verdict.INVALID, f"not applied, its stored data is not valid: {rules.invalid[name]}"
            )
        elif rule is None:
            verdict(
                Verdict.NOT_LOADED,
                "not loaded: the rules could not be read"
                if explanation.rules_unavailable
                else "not loaded (it changed while being explained): run again",
            )
        elif rule.pk in candidates:
            how = _how_it_matches(row, request.path_info, match)
            if page.protected is not None:
                verdict(Verdict.PROTECTED, f"{how}, but no rule may answer here: {page.protected}")
            elif method not in rule.methods:
                methods = ", ".join(sorted(rule.methods))
                verdict(
                    Verdict.WRONG_METHOD,
                    f"{how}, but {method} is not among its methods ({methods})",
                )
            elif applied is not None and applied.pk == rule.pk:
                verdict(Verdict.APPLIES, f"{how}: it applies")
            else:
                winner = applied.name if applied is not None else "another rule"
                verdict(
                    Verdict.OUTRANKED, f"{how}, but the higher-priority rule {winner!r} applies"
                )
        elif match is None and _matching(row["path_patterns"], request.path_info, None):
            verdict(
                Verdict.NO_VIEW,
                "its path pattern matches, but the path resolves to no view "
                "(rules leave the 404 page alone)",
            )
        else:
            verdict(Verdict.NO_MATCH, f"no path pattern or URL name matches ({_patterns_of(row)})")
    if applied is not None:
        _explain_rule(request, explanation, rules, applied, page.kwargs)


def _load(explanation: Explanation) -> tuple[list[dict[str, Any]], RuleSet]:
    from django_conditional.models import ConditionalRule

    try:
        rows: list[dict[str, Any]] = [
            dict(row)
            for row in ConditionalRule.objects.order_by("-priority", "name").values(
                "name", "enabled", "priority", "url_names", "path_patterns"
            )
        ]
    except DatabaseError as error:
        raise ExplainError(
            f"The rules cannot be read ({error}): run 'manage.py migrate django_conditional'."
        ) from error
    try:
        return rows, load_rules()
    except (StampsUnavailable, DatabaseError) as error:
        explanation.rules_unavailable = (
            f"{error or type(error).__name__}; the middleware leaves every request to its view "
            "until they can be"
        )
        return rows, RuleSet((), {}, {})


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _patterns_of(row: Mapping[str, Any]) -> str:
    paths = ", ".join(repr(line) for line in _lines(row["path_patterns"])) or "none"
    names = ", ".join(repr(line) for line in _lines(row["url_names"])) or "none"
    return f"path patterns {paths}; URL names {names}"


def _matching(text: str, path: str, match: ResolverMatch | None) -> list[str]:
    """The lines of a path-pattern (``match`` None) or URL-name text that match."""
    found = []
    for line in _lines(text):
        try:
            if match is None:
                hit = any(glob.matches(path) for glob in parse_path_globs(line))
            else:
                hit = any(
                    pattern.matches(match.namespaces, match.url_name)
                    for pattern in parse_url_names(line)
                )
        except PatternError:
            continue
        if hit:
            found.append(line)
    return found


def _how_it_matches(row: Mapping[str, Any], path: str, match: ResolverMatch | None) -> str:
    hits = [f"path pattern {line!r}" for line in _matching(row["path_patterns"], path, None)]
    if match is not None and match.url_name:
        hits += [f"URL name {line!r}" for line in _matching(row["url_names"], path, match)]
    return f"matches by {' and '.join(hits)}" if hits else "matches"


def _explain_rule(
    request: HttpRequest,
    explanation: Explanation,
    rules: RuleSet,
    rule: Rule,
    kwargs: Mapping[str, Any],
) -> None:
    explanation.rule = rule.name
    explanation.audience = rule.audience
    explanation.depends_on = tuple(model._meta.label for model in rule.depends_on)
    models = (*rule.depends_on, *((rule.object_model,) if rule.object_model else ()))
    explanation.tables = tables_for_models(models)
    if rule.object_model is not None:
        value = kwargs.get(rule.object_kwarg)
        explanation.object_lookup = (
            f"{rule.object_model._meta.label} with {rule.object_field} = {value!r} "
            f"(URL argument {rule.object_kwarg!r})"
        )
    explanation.caching_fields = _caching_fields(rule)
    explanation.refused = rules.is_refused(rule, request.path_info)
    passes = rule.admits(request)
    if passes is None and explanation.refused:
        passes = "a 200 of this page showed it must not get the rule's validators (see the admin)"
    derivation = None
    if passes is None:
        derivation = rule.derivation(rule.salts(request), kwargs)
        if derivation is None:
            passes = f"the URL has no argument {rule.object_kwarg!r}"
    if passes is not None or derivation is None:
        explanation.passes = passes
        explanation.no_validator = "the request passes through: the view sends its page as it is"
        return
    from django_conditional.derivation import derive

    try:
        # No cache_key: explaining keeps nothing (the ETag is the one the middleware sends).
        derived = derive(derivation)
    except StampsUnavailable as error:
        explanation.no_validator = (
            f"the stamp store does not answer ({error or type(error).__name__}): the page would "
            "be served without validators"
        )
        unverifiable = engine.unverifiable_response(request)
        status, reason = (
            (unverifiable.status_code, "a precondition that decides whether to proceed")
            if unverifiable is not None
            else (200, "the page is served without validators")
        )
        explanation.revalidation = Revalidation(status, reason, asked=_is_conditional(request))
        return
    except (Http404, ValueError, TypeError, ValidationError) as error:
        explanation.passes = f"the object was not found ({error}): the view answers"
        explanation.no_validator = "no object, so no validator"
        return
    validator = derived.validator
    explanation.stamps = dict(derived.stamps)
    explanation.etag = validator.etag_header
    now = time.time()
    seconds = validator.last_modified_seconds(now)
    if seconds is not None:
        explanation.last_modified = format_http_date(seconds)
    elif validator.last_modified is None:
        explanation.no_last_modified = (
            "the stamp store keeps no date every process shares, so no exact date can be sent"
        )
    else:
        explanation.no_last_modified = (
            "the stamps moved within the current second; the date is sent from the next second on"
        )
    if _is_conditional(request):
        decision = engine.evaluate(request, validator, now=now)
        status = decision.outcome.value
        reason = decision.reason
        if decision.outcome is Outcome.NOT_MODIFIED:
            reason += ", answered before the view runs"
        elif decision.outcome is Outcome.PROCEED:
            reason += "; the view runs and its page gets the current validators"
        elif decision.outcome is Outcome.PRECONDITION_FAILED:
            reason += " (after the view runs, if its answer is 2xx)"
        explanation.revalidation = Revalidation(status, reason, asked=True)
    else:
        explanation.revalidation = Revalidation(
            304, f"If-None-Match: {validator.etag_header}", asked=False
        )


def _is_conditional(request: HttpRequest) -> bool:
    return any(key in request.META for key in _CONDITIONAL_KEYS)


def _caching_fields(rule: Rule) -> tuple[str, ...]:
    """The Cache-Control and Vary the rule puts on its 200s and 304s."""
    blank = HttpResponse()
    options = rule.options
    if options.cache_control:
        patch_cache_control(blank, **options.cache_control)
    if options.vary:
        patch_vary_headers(blank, options.vary)
    return tuple(
        f"{name}: {blank.headers[name]}" for name in ("Cache-Control", "Vary") if name in blank
    )
