"""System checks of the rules: where their middleware sits, and the rules stored in the database.

Registered by importing this module from ``checks``; ids in the README, never reused.
Reads settings, the URLconf (``url_catalog``) and the rule table; never writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import DatabaseError
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from django_conditional.models import ConditionalRule

__all__ = [
    "RULES_MIDDLEWARE",
    "check_rules",
    "check_rules_middleware_order",
    "middleware_positions",
]

RULES_MIDDLEWARE = "django_conditional.middleware.ConditionalRulesMiddleware"
_SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
_AUTHENTICATION = "django.contrib.auth.middleware.AuthenticationMiddleware"
# The database the middleware loads its rules from (rules.load_rules).
_RULES_DATABASE = "default"
# Fields of validate_rule's messages that W015 words better when it has found the cause.
_OBJECT_FIELDS = ("object_model", "object_field")


def middleware_positions(middleware: Sequence[str], target: str) -> list[int]:
    """The positions in ``middleware`` of ``target`` (a dotted path) or of subclasses of it.

    Entries that do not import are matched by their path only (Django
    reports them when it loads the middleware).
    """
    target_class = _import(target)
    positions = []
    for position, entry in enumerate(middleware):
        if entry == target:
            positions.append(position)
            continue
        found = _import(entry)
        if (
            isinstance(found, type)
            and isinstance(target_class, type)
            and issubclass(found, target_class)
        ):
            positions.append(position)
    return positions


def _import(path: str) -> Any:
    try:
        return import_string(path)
    except Exception:  # any failure: a wrong path, an app that is not installed
        return None


@dataclass(frozen=True)
class _Below:
    """A middleware that must come before (above) the rules middleware, and why."""

    path: str
    check_id: str
    why: str
    hint: str


_MUST_BE_ABOVE = (
    _Below(
        "django.middleware.locale.LocaleMiddleware",
        "django_conditional.W010",
        "the rules run before it activates the request's language, so every language's "
        "page gets the entity tag of the default language (a 304 could keep a visitor on "
        "another language's copy) and i18n_patterns URLs resolve in the wrong language",
        "Move LocaleMiddleware above the rules middleware (earlier in MIDDLEWARE); the end "
        "of MIDDLEWARE is the right place for the rules middleware.",
    ),
    _Below(
        "django.middleware.gzip.GZipMiddleware",
        "django_conditional.W011",
        "it compresses the body after the rule gave it its entity tag, so the compressed "
        "and the plain body share one tag, which GZipMiddleware can no longer make weak",
        "Move GZipMiddleware above the rules middleware (earlier in MIDDLEWARE), as Django "
        "advises for every middleware that reads or changes the body.",
    ),
    _Below(
        "django.middleware.common.CommonMiddleware",
        "django_conditional.W012",
        "a rule answers 304 before its PREPEND_WWW and APPEND_SLASH redirects and its "
        "DISALLOWED_USER_AGENTS refusal run",
        "Move CommonMiddleware above the rules middleware (earlier in MIDDLEWARE); the end "
        "of MIDDLEWARE is the right place for the rules middleware.",
    ),
    _Below(
        "django.middleware.http.ConditionalGetMiddleware",
        "django_conditional.W013",
        "it hashes every rendered body and answers 304 inside the rules middleware, which "
        "then never sees the 200s it learns from, and pays for the render it exists to avoid",
        "Move ConditionalGetMiddleware above the rules middleware (earlier in MIDDLEWARE), "
        "or remove it if the rules cover the pages it served.",
    ),
)


@register(Tags.compatibility)
def check_rules_middleware_order(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E006, W010-W013: the rules middleware is above middleware it needs to run first.

    Silent unless ``ConditionalRulesMiddleware`` (or a subclass) is in
    MIDDLEWARE. The first one is the one that answers: its position counts.
    """
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    found = middleware_positions(middleware, RULES_MIDDLEWARE)
    if not found:
        return []
    position = found[0]
    rules = middleware[position]
    messages: list[CheckMessage] = []
    why = (
        "the rules cannot tell users apart, so per-user rules would give every user the "
        "same entity tag and anonymous-only rules would answer logged-in users"
    )
    hint = (
        f"Put {rules!r} after SessionMiddleware and AuthenticationMiddleware; the end of "
        "MIDDLEWARE is the right place."
    )
    for needed in (_SESSION, _AUTHENTICATION):
        positions = middleware_positions(middleware, needed)
        if not positions:
            messages.append(
                Error(
                    f"{rules!r} is in MIDDLEWARE but {needed!r} is not: {why}.",
                    hint=f"Add {needed!r} to MIDDLEWARE. {hint}",
                    id="django_conditional.E006",
                )
            )
        elif positions[0] > position:
            messages.append(
                Error(
                    f"{rules!r} (MIDDLEWARE[{position}]) comes before "
                    f"{middleware[positions[0]]!r} (MIDDLEWARE[{positions[0]}]): {why}.",
                    hint=hint,
                    id="django_conditional.E006",
                )
            )
    for below in _MUST_BE_ABOVE:
        after = [at for at in middleware_positions(middleware, below.path) if at > position]
        if after:
            messages.append(
                Warning(
                    f"{middleware[after[0]]!r} (MIDDLEWARE[{after[0]}]) comes after "
                    f"{rules!r} (MIDDLEWARE[{position}]): {below.why}.",
                    hint=below.hint,
                    id=below.check_id,
                )
            )
    return messages


@register(Tags.database)
def check_rules(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """W014-W017: enabled rules naming what does not exist, covering protected views, or invalid.

    Tagged ``database`` (run by ``check --database default`` and by
    ``migrate``); silent while the rule table does not exist or cannot be
    read. The URLs are ROOT_URLCONF's: a rule for a per-host URLconf
    (``request.urlconf``) may be reported as covering no URL.
    """
    if not databases or _RULES_DATABASE not in databases:
        return []
    from django.db import connections

    from django_conditional.models import ConditionalRule

    connection = connections[_RULES_DATABASE]
    try:
        if ConditionalRule._meta.db_table not in connection.introspection.table_names():
            return []
        rows = list(
            ConditionalRule.objects.using(_RULES_DATABASE)
            .filter(enabled=True)
            .select_related("object_model")
            .prefetch_related("depends_on")
        )
    except DatabaseError:
        # Mid-migration (a column not added yet): migrate is about to fix it.
        return []
    with_urls = bool(getattr(settings, "ROOT_URLCONF", None))
    messages: list[CheckMessage] = []
    for row in rows:
        messages.extend(_rule_messages(row, with_urls=with_urls))
    return messages


def _rule_messages(row: ConditionalRule, *, with_urls: bool) -> list[CheckMessage]:
    from django_conditional.url_catalog import protected_coverage, unknown_url_name_patterns

    rule = f"Conditional rule {row.name!r}"
    messages: list[CheckMessage] = []
    if with_urls:
        for text, close in unknown_url_name_patterns(row.url_names):
            messages.append(
                Warning(
                    f"{rule} names URL {text!r}, which matches no URL name in the URLconf: "
                    "the rule covers no page by it.",
                    hint=(
                        f"Did you mean {close!r}? Fix the rule's URL names in the admin."
                        if close
                        else "Fix the name in the rule's URL names in the admin, or remove it."
                    ),
                    id="django_conditional.W014",
                )
            )
    messages.extend(_depends_on_problems(row, rule))
    object_problems = _object_problems(row, rule)
    messages.extend(object_problems)
    if with_urls and row.object_model_id is not None and row.object_kwarg.isidentifier():
        messages.extend(_kwarg_problems(row, rule))
    if with_urls:
        lines = protected_coverage(row.url_names, row.path_patterns)
        if lines:
            messages.append(
                Warning(
                    f"{rule} covers views no rule may answer; the middleware passes them "
                    f"through at run time: {'; '.join(lines)}.",
                    hint="Remove those URL names and path patterns from the rule, or narrow "
                    "them to the pages the rule should answer.",
                    id="django_conditional.W016",
                )
            )
    messages.extend(_validation_problems(row, rule, object_reported=bool(object_problems)))
    return messages


_SKIPPED = "the rule is not applied (the middleware skips it)"


def _depends_on_problems(row: ConditionalRule, rule: str) -> list[CheckMessage]:
    """W015: models the rule depends on that are no longer installed."""
    return [
        Warning(
            f"{rule} depends on {content_type.app_label}.{content_type.model}, which is "
            f"no longer an installed model: {_SKIPPED}.",
            hint="Remove it from the rule's depends_on in the admin, or install its app again.",
            id="django_conditional.W015",
        )
        for content_type in row.depends_on.all()
        if content_type.model_class() is None
    ]


def _object_problems(row: ConditionalRule, rule: str) -> list[CheckMessage]:
    """W015: the object's model is gone, or its field is gone or not unique."""
    messages: list[CheckMessage] = []
    content_type = row.object_model
    if content_type is None:
        return messages
    model = content_type.model_class()
    if model is None:
        messages.append(
            Warning(
                f"{rule} looks its object up in {content_type.app_label}.{content_type.model}, "
                f"which is no longer an installed model: {_SKIPPED}.",
                hint="Choose an installed model for the rule's object, or clear the object "
                "lookup (model, field and URL argument).",
                id="django_conditional.W015",
            )
        )
        return messages
    label = model._meta.label
    unique = ["pk"] + [
        field.name for field in model._meta.concrete_fields if field.unique or field.primary_key
    ]
    choose = f"Choose a unique field of {label}: {', '.join(unique)}."
    if row.object_field and row.object_field != "pk":
        try:
            found: Any = model._meta.get_field(row.object_field)
        except FieldDoesNotExist:
            messages.append(
                Warning(
                    f"{rule} looks its object up by {label}.{row.object_field}, which does not "
                    f"exist: {_SKIPPED}.",
                    hint=choose,
                    id="django_conditional.W015",
                )
            )
        else:
            if not (getattr(found, "unique", False) or getattr(found, "primary_key", False)):
                messages.append(
                    Warning(
                        f"{rule} looks its object up by {label}.{row.object_field}, which is "
                        f"not unique (one URL could show several objects): {_SKIPPED}.",
                        hint=choose,
                        id="django_conditional.W015",
                    )
                )
    return messages


def _kwarg_problems(row: ConditionalRule, rule: str) -> list[CheckMessage]:
    """W015: the URL argument holding the object's value is in none of the URLs covered."""
    from django_conditional.url_catalog import covered_entries

    # Protected views are passed through whatever the rule says (W016).
    covered = [
        coverage.entry
        for coverage in covered_entries(row.url_names, row.path_patterns)
        if coverage.entry.protected is None
    ]
    if not covered or any(row.object_kwarg in entry.kwargs for entry in covered):
        return []
    shown = ", ".join(entry.describe() for entry in covered[:3])
    more = f" and {len(covered) - 3} more" if len(covered) > 3 else ""
    arguments = sorted({name for entry in covered for name in entry.kwargs})
    return [
        Warning(
            f"{rule} reads its object from URL argument {row.object_kwarg!r}, which none of "
            f"the URLs it covers has ({shown}{more}): it finds no object, so it answers "
            "none of them.",
            hint=(
                f"Use one of their URL arguments: {', '.join(arguments)}."
                if arguments
                else "Cover the detail pages whose route captures the value "
                "(e.g. <slug:slug>), or clear the object lookup."
            ),
            id="django_conditional.W015",
        )
    ]


def _validation_problems(
    row: ConditionalRule, rule: str, *, object_reported: bool
) -> list[CheckMessage]:
    """W017: what ``rules.build_rule`` refuses, as the middleware loads the rule."""
    from django_conditional.rules import build_rule

    models = [content_type.model_class() for content_type in row.depends_on.all()]
    try:
        build_rule(row, [model for model in models if model is not None])
    except ValidationError as error:
        problems = [
            f"{field}: {message}"
            for field, field_messages in error.message_dict.items()
            if not (object_reported and field in _OBJECT_FIELDS)
            for message in field_messages
        ]
    else:
        return []
    if not problems:
        return []
    return [
        Warning(
            f"{rule} no longer validates, so it is not applied (the middleware skips it): "
            f"{'; '.join(problems)}",
            hint="Open the rule in the admin, fix the fields named and save it, or disable it.",
            id="django_conditional.W017",
        )
    ]
