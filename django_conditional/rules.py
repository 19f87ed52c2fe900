"""The rules as each process holds them: parsed, indexed, matched to requests, reloaded by stamp.

``ConditionalRule`` rows become immutable :class:`Rule` values in a
:class:`RuleSet`; the middleware asks it which rule covers a request. The
set is loaded under the change stamps of the rule tables (read the stamps,
then the rows), and replaced when they move: at once where stamps are read
from memory, otherwise within ``CONDITIONAL_RULES_REFRESH`` seconds, and
at once whenever a derivation through a rule reads moved rule stamps.
Reads the ORM, never writes it; never imports the middleware.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.signals import setting_changed
from django.db import DatabaseError
from django.db.models import Model, QuerySet
from django.dispatch import receiver
from django.http import HttpRequest
from django.urls import Resolver404, ResolverMatch, get_resolver
from django.utils.translation import get_language

from django_conditional import engine
from django_conditional.conf import PREFIX, conf
from django_conditional.engine import ResponseOptions
from django_conditional.rule_patterns import (
    PathGlob,
    PatternError,
    PatternIndex,
    UrlNamePattern,
    parse_path_globs,
    parse_url_names,
)
from django_conditional.stamp_errors import StampsUnavailable
from django_conditional.tables import tables_for_models

if TYPE_CHECKING:
    from django_conditional.derivation import Derivation
    from django_conditional.models import ConditionalRule

__all__ = [
    "ALLOWED_METHODS",
    "PageMatch",
    "Rule",
    "RuleSet",
    "current_rules",
    "forget_rules",
    "protection_of",
    "rule_models",
    "rule_tables",
    "validate_rule",
]

logger = logging.getLogger("django_conditional")

# What a rule may answer. Safe methods only: a rule never runs before a write.
ALLOWED_METHODS = ("GET", "HEAD")
ANONYMOUS, PER_USER, EVERYONE = "anonymous", "per_user", "everyone"
# Request headers a rule's tag always covers: the active language is salted
# into every tag, and an encoding is the same representation (a weak tag).
_ALWAYS_COVERED = frozenset({"accept-language", "accept-encoding"})
# Paths whose resolution each process keeps (clients choose paths: bounded).
_MAX_PAGES = 4096
_ALIAS = "default"


def rule_models() -> tuple[type[Model], ...]:
    """The models whose rows make up the rules (their stamps guard every loaded set)."""
    from django_conditional.models import ConditionalRule, RuleRefusal

    # The many-to-many table's writes move ConditionalRule's stamp too (tables.py).
    return (ConditionalRule, RuleRefusal)


def rule_tables() -> tuple[str, ...]:
    """The stamps a rule set is loaded under."""
    return tables_for_models(rule_models())


# --- One rule ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One enabled rule, as the middleware applies it."""

    pk: int
    name: str
    priority: int
    methods: frozenset[str]
    url_names: tuple[UrlNamePattern, ...]
    path_globs: tuple[PathGlob, ...]
    depends_on: tuple[type[Model], ...]
    audience: str
    weak: bool | None
    options: ResponseOptions
    # Request header names (lower case) whose values are salted into the tag.
    vary: tuple[str, ...] = ()
    object_model: type[Model] | None = None
    object_field: str = ""
    object_kwarg: str = ""
    # Names the rule and everything about it that shapes a response: a
    # changed rule never answers with a tag derived under its old form.
    identity: str = ""
    # Writes to its object must carry a precondition, checked atomically (428, 412).
    require_precondition: bool = False

    @property
    def covered_vary(self) -> frozenset[str]:
        """The request headers this rule's tag includes (what a response may vary on)."""
        covered = _ALWAYS_COVERED | set(self.vary)
        if self.audience == PER_USER:
            covered |= {"cookie"}
        return frozenset(covered)

    def admits(self, request: HttpRequest) -> str | None:
        """Why the request passes through untouched (its audience), or None to apply the rule."""
        if self.audience != ANONYMOUS:
            return None
        meta = request.META
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            return "the request carries a session cookie (an anonymous-only rule)"
        if "HTTP_AUTHORIZATION" in meta or "REMOTE_USER" in meta:
            return "the request carries credentials (an anonymous-only rule)"
        if getattr(settings, "MESSAGE_COOKIE_NAME", "messages") in request.COOKIES:
            return "the request carries messages to show (an anonymous-only rule)"
        return None

    def salts(self, request: HttpRequest) -> tuple[str, ...]:
        """The strings that tell this request's variant of a page from others."""
        salts = engine.request_salts(request, public=self.audience != PER_USER)
        if not self.vary:
            return salts
        meta = request.META
        varied = tuple(
            f"vary:{name}:{meta.get('HTTP_' + name.upper().replace('-', '_'), '')}"
            for name in self.vary
        )
        return (*salts, *varied)

    def derivation(self, salts: Sequence[str], kwargs: Mapping[str, Any]) -> Derivation | None:
        """What the page's validator is derived from; None when the URL lacks the object's kwarg."""
        from django_conditional.derivation import Derivation

        queryset = None
        if self.object_model is not None:
            if self.object_kwarg not in kwargs:
                return None
            lookup = {self.object_field: kwargs[self.object_kwarg]}
            manager = self.object_model._default_manager

            def queryset() -> QuerySet[Any]:
                return manager.filter(**lookup)

        return Derivation(
            queryset=queryset,
            single=self.object_model is not None,
            depends_on=(*self.depends_on, *rule_models()),
            salts=(self.identity, *salts),
            weak=self.weak,
        )

    def describe(self) -> str:
        """The rule's name and audience, for the debug header and the logs."""
        return f"rule {self.name!r} (audience {self.audience})"


def _fingerprint(parts: Iterable[object]) -> str:
    digest = hashlib.blake2b(digest_size=8, person=b"dj-cond-rule")
    for part in parts:
        data = str(part).encode()
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _cache_control(row: ConditionalRule) -> dict[str, Any]:
    directives: dict[str, Any] = {}
    for name in ("max_age", "s_maxage", "stale_while_revalidate"):
        value = getattr(row, name)
        if value is not None:
            directives[name] = value
    for name in ("no_cache", "must_revalidate", "immutable"):
        if getattr(row, name):
            directives[name] = True
    if row.shared_caches and row.audience != PER_USER:
        directives[row.shared_caches] = True
    return directives


def _vary_names(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))


def build_rule(row: ConditionalRule, depends_on: Sequence[type[Model]]) -> Rule:
    """The :class:`Rule` of a row; ``ValidationError`` when it is not valid (``validate_rule``)."""
    content_type = row.object_model if row.object_model_id is not None else None
    object_model = None if content_type is None else content_type.model_class()
    problems = validate_rule(
        url_names=row.url_names,
        path_patterns=row.path_patterns,
        methods=row.methods,
        audience=row.audience,
        shared_caches=row.shared_caches,
        s_maxage=row.s_maxage,
        vary=row.vary,
        object_model=object_model,
        object_model_label=None if content_type is None else str(content_type),
        object_field=row.object_field,
        object_kwarg=row.object_kwarg,
        tag_strength=row.tag_strength,
        require_precondition=row.require_precondition,
    )
    if problems:
        raise ValidationError(problems)
    vary = _vary_names(row.vary)
    cache_control = _cache_control(row)
    extra_vary = [*vary]
    if row.audience == ANONYMOUS:
        # A shared cache must not hand the anonymous copy to a logged-in visitor.
        extra_vary.append("Cookie")
    options = ResponseOptions(cache_control or None, extra_vary or None)
    if row.audience == PER_USER:
        options = options.per_user()
    weak = {"weak": True, "strong": False}.get(row.tag_strength)
    models = tuple(sorted(depends_on, key=lambda model: model._meta.label))
    identity = "rule:{}:{}".format(
        row.pk,
        _fingerprint(
            (
                row.url_names,
                row.path_patterns,
                row.methods,
                [model._meta.label for model in models],
                object_model and object_model._meta.label,
                row.object_field,
                row.object_kwarg,
                row.audience,
                row.tag_strength,
                sorted(cache_control.items()),
                vary,
                row.require_precondition,
            )
        ),
    )
    return Rule(
        pk=row.pk,
        name=row.name,
        priority=row.priority,
        methods=frozenset(_methods(row.methods)),
        url_names=parse_url_names(row.url_names),
        path_globs=parse_path_globs(row.path_patterns),
        depends_on=models,
        audience=row.audience,
        weak=weak,
        options=options,
        vary=vary,
        object_model=object_model,
        object_field=row.object_field,
        object_kwarg=row.object_kwarg,
        identity=identity,
        require_precondition=row.require_precondition,
    )


def _methods(text: str) -> list[str]:
    return [part.strip().upper() for part in text.replace(" ", ",").split(",") if part.strip()]


def validate_rule(
    *,
    url_names: str,
    path_patterns: str,
    methods: str,
    audience: str,
    shared_caches: str,
    s_maxage: int | None,
    vary: str,
    object_model: type[Model] | None,
    object_model_label: str | None,
    object_field: str,
    object_kwarg: str,
    tag_strength: str,
    require_precondition: bool = False,
) -> dict[str, list[str]]:
    """What is wrong with a rule, by field: the messages the admin form shows.

    The rule is refused (never applied) while any remain. Coverage of the
    admin and of views with access checks is checked separately, against
    the URLconf (``url_catalog``); the middleware refuses those at run time.
    """
    problems: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    for name, text, parse in (
        ("url_names", url_names, parse_url_names),
        ("path_patterns", path_patterns, parse_path_globs),
    ):
        try:
            parse(text)
        except PatternError as error:  # noqa: PERF203 - two fields, each error shown
            add(name, str(error))
    if not url_names.strip() and not path_patterns.strip():
        add("url_names", "Give at least one URL name or path pattern: the pages the rule covers.")
    chosen = _methods(methods)
    wrong = [method for method in chosen if method not in ALLOWED_METHODS]
    if wrong or not chosen:
        add(
            "methods",
            f"Methods {', '.join(wrong) or '(none)'} cannot be answered by a rule; "
            "choose GET and HEAD.",
        )
    if audience not in {ANONYMOUS, PER_USER, EVERYONE}:
        add("audience", f"Audience {audience!r} is not one of anonymous, per_user, everyone.")
    if audience == PER_USER and shared_caches == "public":
        add(
            "shared_caches",
            "A per-user page must not be stored by shared caches: leave this empty or "
            "choose private (per-user rules are always private).",
        )
    if s_maxage is not None and (audience == PER_USER or shared_caches == "private"):
        add(
            "s_maxage",
            "s-maxage applies to shared caches, which never store private or per-user "
            "pages: remove it or make the rule public.",
        )
    for name in _vary_names(vary):
        if not name.replace("-", "").isalnum() or not name.isascii():
            add("vary", f"{name!r} is not a header name (letters, digits and '-').")
        elif name == "cookie" and audience != PER_USER:
            add(
                "vary",
                "Varying on Cookie means each visitor's copy differs: make the rule per user "
                "instead.",
            )
        elif name == "*":
            add("vary", "'Vary: *' can never be revalidated: do not cover such pages.")
    _validate_object(add, object_model, object_model_label, object_field, object_kwarg)
    if tag_strength == "strong" and object_model is None:
        add(
            "tag_strength",
            "A strong tag promises byte-identical pages; without an object lookup a rule "
            "cannot know that. Choose automatic or weak.",
        )
    if require_precondition and object_model_label is None:
        add(
            "require_precondition",
            "Writes are checked against one object: choose the object's model, the field "
            "to look it up by and the URL argument, or clear this box.",
        )
    elif require_precondition and tag_strength == "weak":
        add(
            "require_precondition",
            "If-Match compares tags strongly, so a weak tag never matches and every write "
            "would get 412: choose automatic or strong tags.",
        )
    return problems


def _validate_object(
    add: Any,
    object_model: type[Model] | None,
    label: str | None,
    field_name: str,
    kwarg: str,
) -> None:
    if label is None:
        if field_name or kwarg:
            add("object_model", "Choose the object's model, or clear its field and URL argument.")
        return
    if object_model is None:
        add("object_model", f"{label} is no longer an installed model.")
        return
    if not field_name:
        add("object_field", "Name the field to look the object up by, e.g. 'slug' or 'pk'.")
    elif field_name != "pk":
        try:
            found: Any = object_model._meta.get_field(field_name)
        except FieldDoesNotExist:
            names = [f.name for f in object_model._meta.concrete_fields]
            add(
                "object_field",
                f"{object_model._meta.label} has no field {field_name!r}; its fields are "
                f"{', '.join(names)}.",
            )
        else:
            if not (found.unique or found.primary_key):
                add(
                    "object_field",
                    f"{object_model._meta.label}.{field_name} is not unique: one URL could show "
                    "several objects. Choose a unique field.",
                )
    if not kwarg:
        add("object_kwarg", "Name the URL argument that holds the value, e.g. 'slug'.")
    elif not kwarg.isidentifier():
        add("object_kwarg", f"{kwarg!r} is not a URL argument name.")


# --- Which views a rule must leave alone ---------------------------------------------


def protection_of(match: ResolverMatch) -> str | None:
    """Why no rule may answer for the resolved view (None when one may).

    The view's own decorator or mixin of this package decides its validators;
    the admin and views with access checks decide per request who may see
    them, which a tag derived from data cannot know (a revoked permission
    would still be answered 304).
    """
    from django_conditional.views import ConditionalViewMixin

    if "admin" in match.app_names:
        return "the admin is never covered by rules"
    func: Any = match.func
    view_class = getattr(func, "view_class", None)
    if view_class is not None:
        # The class-based mixins, and DRF's (ConditionalModelMixin.conditional_guarded).
        if issubclass(view_class, ConditionalViewMixin) or getattr(
            view_class, "conditional_guarded", False
        ):
            return "the view has its own conditional mixin, which wins over rules"
        from django.contrib.auth.mixins import AccessMixin

        if issubclass(view_class, AccessMixin):
            return f"{view_class.__name__} checks access ({AccessMixin.__name__})"
    seen = 0
    while func is not None and seen < 32:
        if getattr(func, "conditional_guarded", False):
            return "the view has its own conditional decorator, which wins over rules"
        if getattr(func, "login_required", False):
            return "the view requires a login (login_required)"
        code = getattr(func, "__code__", None)
        filename = getattr(code, "co_filename", "").replace("\\", "/")
        if filename.endswith("django/contrib/auth/decorators.py"):
            return (
                "the view checks access (login_required, permission_required or user_passes_test)"
            )
        if filename.endswith("django/contrib/admin/sites.py"):
            return "the admin is never covered by rules"
        func = getattr(func, "__wrapped__", None)
        seen += 1
    return None


# --- The set of rules -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageMatch:
    """What one path resolved to, as far as rules are concerned."""

    rules: tuple[Rule, ...]  # the candidates, best first
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    # Why no rule applies to the view (its own decorator, the admin, access checks).
    protected: str | None = None
    view: str = ""


_NO_PAGE = PageMatch(rules=())


class RuleSet:
    """The enabled rules of one moment, indexed, with the refusals learned for them."""

    def __init__(
        self,
        rules: Sequence[Rule],
        refusals: Mapping[int, Iterable[str]],
        stamps: Mapping[str, int],
        invalid: Mapping[str, str] | None = None,
    ) -> None:
        self.rules = tuple(sorted(rules, key=lambda rule: (-rule.priority, rule.name)))
        self.stamps = dict(stamps)
        # Rules skipped because their stored data is not valid: name -> why.
        self.invalid = dict(invalid or {})
        self.methods = frozenset(method for rule in self.rules for method in rule.methods)
        self._index: PatternIndex[int] = PatternIndex(
            (position, rule.path_globs, rule.url_names) for position, rule in enumerate(self.rules)
        )
        self._refusals: dict[int, set[str]] = {pk: set(paths) for pk, paths in refusals.items()}
        self._pages: dict[tuple[Any, ...], PageMatch] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.rules)

    def is_refused(self, rule: Rule, path: str) -> bool:
        """Whether a 200 of ``path`` showed that ``rule`` must not give it validators."""
        refused = self._refusals.get(rule.pk)
        return refused is not None and ("*" in refused or path in refused)

    def refuse(self, rule: Rule, path: str) -> None:
        """Remember in this process that ``rule`` must leave ``path`` to its view."""
        with self._lock:
            self._refusals.setdefault(rule.pk, set()).add(path)

    def refusal_count(self, rule: Rule) -> int:
        """How many pages ``rule`` gives no validators."""
        return len(self._refusals.get(rule.pk, ()))

    def is_stale(self, stamps: Mapping[str, int]) -> bool:
        """Whether stamps just read show the rules changed since this set was loaded."""
        return any(stamps.get(table, token) != token for table, token in self.stamps.items())

    def page(self, request: HttpRequest) -> PageMatch:
        """The rules that could cover the request's path, best first (kept per path)."""
        path = request.path_info
        index = self._index
        if not index.has_name_patterns and not index.candidate_count(path):
            # Only path patterns, none even indexed under this path's first segment:
            # no lookup, no language, no resolution.
            return _NO_PAGE
        urlconf = getattr(request, "urlconf", None)
        key = (urlconf, get_language(), path)
        found = self._pages.get(key)
        if found is None:
            found = self._match(path, urlconf)
            with self._lock:
                if len(self._pages) >= _MAX_PAGES:
                    self._pages.clear()
                self._pages[key] = found
        return found

    @cached_property
    def guards_writes(self) -> bool:
        """Whether any rule requires preconditions on writes (else writes are not looked at)."""
        return any(rule.require_precondition for rule in self.rules)

    def write_rule_for(self, request: HttpRequest) -> tuple[Rule | None, PageMatch]:
        """The rule that guards an unsafe request's writes (None for none) and its page's match."""
        page = self.page(request)
        if page.protected is not None:
            return None, page  # the view's own decorator, the admin, an access check
        for rule in page.rules:
            if rule.require_precondition:
                return rule, page
        return None, page

    def rule_for(self, request: HttpRequest) -> tuple[Rule | None, PageMatch]:
        """The rule that applies to the request (None for none) and its page's match."""
        if request.method not in self.methods:
            return None, _NO_PAGE
        page = self.page(request)
        if page.protected is not None:
            return None, page
        method = request.method
        for rule in page.rules:
            if method in rule.methods:
                return rule, page
        return None, page

    def _match(self, path: str, urlconf: Any) -> PageMatch:
        index = self._index
        by_path = index.by_path(path) if index.has_path_patterns else []
        if not by_path and not index.has_name_patterns:
            return _NO_PAGE
        try:
            match = get_resolver(urlconf).resolve(path)
        except Resolver404:
            return _NO_PAGE  # the view is the 404 handler: nothing for a rule to answer
        by_name = index.by_name(match.namespaces, match.url_name) if index.has_name_patterns else []
        positions = sorted(set(by_path) | set(by_name))
        if not positions:
            return _NO_PAGE
        rules = tuple(self.rules[position] for position in positions)
        return PageMatch(
            rules=rules,
            kwargs=dict(match.kwargs),
            protected=protection_of(match),
            view=match.view_name or match._func_path,
        )


_EMPTY = RuleSet((), {}, {})


def load_rules() -> RuleSet:
    """Read the rule tables' stamps, then the enabled rules and their refusals."""
    from django_conditional.models import ConditionalRule, RuleRefusal
    from django_conditional.stamps import read_stamps

    tables = rule_tables()
    stamps = dict(zip(tables, read_stamps(_ALIAS, tables), strict=True))
    rules: list[Rule] = []
    invalid: dict[str, str] = {}
    rows = (
        ConditionalRule.objects.using(_ALIAS)
        .filter(enabled=True)
        .select_related("object_model")
        .prefetch_related("depends_on")
    )
    for row in rows:
        models = [ct.model_class() for ct in row.depends_on.all()]
        missing = [
            str(ct) for ct, model in zip(row.depends_on.all(), models, strict=True) if model is None
        ]
        try:
            if missing:
                raise ValidationError(
                    {"depends_on": [f"{', '.join(missing)}: no longer installed models."]}
                )
            rules.append(build_rule(row, [model for model in models if model is not None]))
        except (ValidationError, PatternError) as error:
            invalid[row.name] = "; ".join(_messages(error))
    refusals: dict[int, list[str]] = {}
    for rule_id, path in RuleRefusal.objects.using(_ALIAS).values_list("rule_id", "path"):
        refusals.setdefault(rule_id, []).append(path)
    for name, why in invalid.items():
        logger.warning("Conditional rule %r is not applied: %s", name, why)
    return RuleSet(rules, refusals, stamps, invalid)


def _messages(error: Exception) -> list[str]:
    if isinstance(error, ValidationError):
        return [message for messages in error.message_dict.values() for message in messages]
    return [str(error)]


# --- The current set, per process ------------------------------------------------------

_current: RuleSet | None = None
_checked = 0.0
_load_lock = threading.Lock()
_load_failed_logged = False


def current_rules(*, force: bool = False) -> RuleSet:
    """This process's rules, reloaded when the rule tables' stamps moved.

    Where stamps are read from memory (Redis mirrored, local memory) they are
    compared on every call; otherwise at most every
    ``CONDITIONAL_RULES_REFRESH`` seconds (a derivation through a rule reads
    them anyway, and reloads at once: ``RuleSet.is_stale``). Rules that cannot
    be loaded (the database or the stamps do not answer) leave the last set in
    place, or none: requests then go to their views.
    """
    global _current, _checked
    rules = _current
    now = time.monotonic()
    if rules is not None and not force:
        if now - _checked < conf.rules_refresh and not _stamp_store().reads_from_memory:
            return rules
        try:
            from django_conditional.stamps import read_stamps

            tables = tuple(rules.stamps)
            current = dict(zip(tables, read_stamps(_ALIAS, tables), strict=True))
        except StampsUnavailable:
            return rules
        _checked = now
        if current == rules.stamps:
            return rules
    with _load_lock:
        if _current is not rules and not force:
            return _current or _EMPTY
        try:
            loaded = load_rules()
        except (StampsUnavailable, DatabaseError) as error:
            _log_load_failure(error)
            _checked = now
            return rules or _EMPTY
        _current, _checked = loaded, now
        return loaded


def _log_load_failure(error: Exception) -> None:
    global _load_failed_logged
    if not _load_failed_logged:
        _load_failed_logged = True
        logger.warning(
            "Conditional rules could not be loaded (%s): requests go to their views until "
            "they can. If the table is missing, run 'manage.py migrate django_conditional'.",
            error,
        )


def _stamp_store() -> Any:
    from django_conditional.stamps import get_stamp_store

    return get_stamp_store()


def forget_rules() -> None:
    """Drop this process's rules: the next request loads them again."""
    global _current, _checked, _load_failed_logged
    _current, _checked, _load_failed_logged = None, 0.0, False


@receiver(setting_changed)
def _forget_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith(PREFIX) or setting in {"ROOT_URLCONF", "DATABASES", "CACHES"}:
        forget_rules()
