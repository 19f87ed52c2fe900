"""The rule admin: a form whose errors say what to fix, the counts, the refused pages.

Checks ``rules.validate_rule``'s and the URLconf's (the admin); never imports the middleware.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.sites import all_sites
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import conditional_escape, format_html, format_html_join

# Imported for its post_save receiver: saving a rule forgets its refused pages,
# which the change form promises.
from django_conditional import rule_counts, rule_safety  # noqa: F401
from django_conditional.models import ConditionalRule, RuleRefusal
from django_conditional.rule_patterns import PathGlob, PatternError, UrlNamePattern
from django_conditional.rules import ALLOWED_METHODS, forget_rules, validate_rule

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldOpts, _FieldsetSpec

    # Generic only to the type checker: Django's classes take no subscripts at run time.
    _ContentTypeChoiceField = forms.ModelChoiceField[ContentType]
    _ContentTypeMultipleChoiceField = forms.ModelMultipleChoiceField[ContentType]
    _RuleForm = forms.ModelForm[ConditionalRule]
    _RefusalInline = admin.TabularInline[RuleRefusal, ConditionalRule]
    _RuleAdmin = admin.ModelAdmin[ConditionalRule]
else:
    _ContentTypeChoiceField = forms.ModelChoiceField
    _ContentTypeMultipleChoiceField = forms.ModelMultipleChoiceField
    _RuleForm = forms.ModelForm
    _RefusalInline = admin.TabularInline
    _RuleAdmin = admin.ModelAdmin

__all__ = [
    "ConditionalRuleAdmin",
    "ConditionalRuleForm",
    "ContentTypeChoiceField",
    "ContentTypeMultipleChoiceField",
    "MethodsField",
    "RefusalFilter",
    "RuleRefusalInline",
    "admin_coverage",
    "answer_counts",
    "catalog_warnings",
    "choosable_content_types",
    "hit_rate",
]

# Paths below an admin site's index that a glob covering the admin matches.
_ADMIN_SAMPLES = ("", "login/", "x/", "x/y/", "x/y/1/change/")
# URL names every admin site has.
_ADMIN_NAMES = ("index", "login", "logout", "app_list")
_SHORT_AUDIENCE = {
    ConditionalRule.Audience.ANONYMOUS: "anonymous",
    ConditionalRule.Audience.PER_USER: "per user",
    ConditionalRule.Audience.EVERYONE: "everyone",
}


# --- Choices -------------------------------------------------------------------------


def choosable_content_types() -> QuerySet[ContentType]:
    """The content types a rule may name: installed concrete models, not this package's own."""
    own = apps.get_app_config("django_conditional")
    models = [
        model
        for model in apps.get_models()
        if not model._meta.proxy and model._meta.app_config is not own
    ]
    found = ContentType.objects.get_for_models(*models)
    return ContentType.objects.filter(pk__in=[ct.pk for ct in found.values()])


def _content_type_label(content_type: ContentType) -> str:
    model = content_type.model_class()
    if model is None:
        return f"{content_type.app_label}.{content_type.model} (no longer installed)"
    return f"{model._meta.label} ({model._meta.verbose_name})"


class ContentTypeChoiceField(_ContentTypeChoiceField):
    """A model chosen by content type, labelled ``demo.Article (article)``."""

    def label_from_instance(self, obj: ContentType) -> str:
        """``app_label.Model (verbose name)``."""
        return _content_type_label(obj)


class ContentTypeMultipleChoiceField(_ContentTypeMultipleChoiceField):
    """Models chosen by content type, labelled ``demo.Article (article)``."""

    def label_from_instance(self, obj: ContentType) -> str:
        """``app_label.Model (verbose name)``."""
        return _content_type_label(obj)


class MethodsField(forms.MultipleChoiceField):
    """GET and HEAD as checkboxes, stored as ``"GET,HEAD"``.

    Any posted value is accepted here, so that ``rules.validate_rule`` says
    in its own words why a method such as POST cannot be answered by a rule.
    """

    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("choices", [(method, method) for method in ALLOWED_METHODS])
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    @staticmethod
    def _split(value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            return [part.strip().upper() for part in value.split(",") if part.strip()]
        return [str(part).strip().upper() for part in value if str(part).strip()]

    def prepare_value(self, value: Any) -> Any:
        """The stored ``"GET,HEAD"`` as the list the checkboxes show."""
        return self._split(value)

    def valid_value(self, value: Any) -> bool:
        """Every value: ``validate_rule`` explains the ones a rule cannot answer."""
        return True

    def has_changed(self, initial: Any, data: Any) -> bool:
        """Whether the chosen methods differ from the stored ones."""
        return set(self._split(initial)) != set(self._split(data))

    def clean(self, value: Any) -> str:
        """The chosen methods as the model stores them: ``"GET,HEAD"``."""
        chosen = super().clean(value)
        return ",".join(dict.fromkeys(self._split(chosen)))


# --- What the URLconf says about a rule's patterns -----------------------------------


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _admin_sites() -> list[tuple[str, str]]:
    """(namespace, index path) of each admin site in the URLconf."""
    found = []
    for site in all_sites:
        prefix = _index_path(site.name)
        if prefix is not None:  # a site that is not routed covers nothing
            found.append((site.name, prefix))
    return sorted(found)


def _index_path(namespace: str) -> str | None:
    try:
        return reverse(f"{namespace}:index")
    except NoReverseMatch:
        return None


def admin_coverage(url_names: str, path_patterns: str) -> dict[str, list[str]]:
    """Which lines of a rule cover an admin site, by field: errors the form shows.

    No rule may answer the admin (the middleware passes it through anyway);
    a rule that says it does is a mistake, so the form refuses it. A path
    pattern covers the admin when it starts with an admin site's prefix or
    matches a page below it; a URL name when it is in an admin site's
    namespace. The URLconf catalog adds admin sites mounted elsewhere. Lines
    that do not parse are left to ``validate_rule``.
    """
    problems: dict[str, list[str]] = {}
    flagged: set[tuple[str, str]] = set()
    sites = _admin_sites()

    def add(field: str, line: str, message: str) -> None:
        if (field, line) not in flagged:
            flagged.add((field, line))
            problems.setdefault(field, []).append(message)

    for line in _lines(path_patterns):
        try:
            glob = PathGlob.parse(line)
        except PatternError:
            continue
        for _name, prefix in sites:
            if glob.text.startswith(prefix) or any(
                glob.matches(prefix + sample) for sample in _ADMIN_SAMPLES
            ):
                add(
                    "path_patterns",
                    line,
                    f"{line!r} covers the admin ({prefix}), which no rule may answer: "
                    f"narrow it to pages outside {prefix}.",
                )
    for line in _lines(url_names):
        try:
            pattern = UrlNamePattern.parse(line)
        except PatternError:
            continue
        for name, _prefix in sites:
            if pattern.namespaces[:1] == (name,) or any(
                pattern.matches((name,), url_name) for url_name in _ADMIN_NAMES
            ):
                add(
                    "url_names",
                    line,
                    f"{line!r} names the admin (the {name!r} namespace), which no rule may "
                    "answer: remove it.",
                )
    for field, text in (("url_names", url_names), ("path_patterns", path_patterns)):
        for line, message in _catalog_admin_lines(field, text):
            add(field, line, message)
    return problems


def _catalog_admin_lines(field: str, text: str) -> list[tuple[str, str]]:
    """(line, message) for admin pages the URLconf catalog finds covered by ``text``."""
    try:
        from django_conditional import url_catalog
    except ImportError:  # pragma: no cover - the catalog ships with the package
        return []
    args = (text, "") if field == "url_names" else ("", text)
    return [
        (
            coverage.pattern,
            f"{coverage.pattern!r} covers the admin at {coverage.entry.describe(coverage.path)}, "
            "which no rule may answer: remove it or narrow it.",
        )
        for coverage in url_catalog.covered_entries(*args)
        if "admin" in coverage.entry.app_names
    ]


def catalog_warnings(url_names: str, path_patterns: str) -> list[str]:
    """Covered views no rule may answer, and URL names that match no URL: not errors.

    The middleware passes the protected views through at run time; a name
    that matches nothing is most likely a typo. Empty when the URLconf
    catalog is not available.
    """
    try:
        from django_conditional import url_catalog
    except ImportError:  # pragma: no cover - the catalog ships with the package
        return []
    return [
        *url_catalog.protected_coverage(url_names, path_patterns),
        *url_catalog.unknown_url_names(url_names),
    ]


# --- Counts ---------------------------------------------------------------------------


def answer_counts(rule: ConditionalRule) -> dict[rule_counts.Kind, int]:
    """How the rule answered: the stored counter plus this process's counts not yet stored.

    Other processes' counts appear once they flush. A flush between the two
    reads can show this process's latest counts twice, for that one page view.
    """
    numbers = rule_counts.pending(rule.pk)
    try:
        counter = rule.counter
    except ConditionalRule.counter.RelatedObjectDoesNotExist:
        return numbers
    stored: dict[rule_counts.Kind, int] = {
        "not_modified": counter.not_modified,
        "full": counter.full,
        "passed": counter.passed,
        "failed": counter.failed,
    }
    return {kind: number + stored[kind] for kind, number in numbers.items()}


def hit_rate(not_modified: int, full: int) -> str:
    """The share of validated answers that were 304s, ``"75%"``; ``"-"`` before any."""
    answered = not_modified + full
    if not answered:
        return "-"
    return f"{100 * not_modified / answered:.0f}%"


# --- The form -------------------------------------------------------------------------


def _help(name: str) -> str:
    field: Any = ConditionalRule._meta.get_field(name)
    return str(field.help_text)


class ConditionalRuleForm(_RuleForm):
    """A rule, validated as the middleware will read it; each error on its field."""

    methods = MethodsField(
        label="Methods",
        help_text=_help("methods"),
        initial=ConditionalRule._meta.get_field("methods").get_default(),
    )

    class Meta:
        model = ConditionalRule
        fields = (
            "name",
            "enabled",
            "priority",
            "url_names",
            "path_patterns",
            "methods",
            "depends_on",
            "object_model",
            "object_field",
            "object_kwarg",
            "audience",
            "tag_strength",
            "max_age",
            "s_maxage",
            "stale_while_revalidate",
            "shared_caches",
            "no_cache",
            "must_revalidate",
            "immutable",
            "vary",
            "require_precondition",
            "notes",
        )
        field_classes: ClassVar[dict[str, type[forms.Field]]] = {
            "depends_on": ContentTypeMultipleChoiceField,
            "object_model": ContentTypeChoiceField,
        }
        labels: ClassVar[dict[str, str]] = {
            "url_names": "URL names",
            "depends_on": "Models shown",
            "object_model": "Object's model",
            "object_field": "Looked up by field",
            "object_kwarg": "From URL argument",
            "tag_strength": "Entity tag",
            "max_age": "max-age",
            "s_maxage": "s-maxage",
            "stale_while_revalidate": "stale-while-revalidate",
            "shared_caches": "public / private",
            "no_cache": "no-cache",
            "must_revalidate": "must-revalidate",
            "vary": "Vary",
            "require_precondition": "Writes must carry If-Match",
        }
        widgets: ClassVar[dict[str, forms.Widget]] = {
            "url_names": forms.Textarea(attrs={"rows": 3, "cols": 60, "class": "vLargeTextField"}),
            "path_patterns": forms.Textarea(
                attrs={"rows": 3, "cols": 60, "class": "vLargeTextField"}
            ),
            "notes": forms.Textarea(attrs={"rows": 3, "cols": 60, "class": "vLargeTextField"}),
            # The admin's filter_horizontal widget, titled "Available models" rather than
            # with the field's verbose name ("depends on").
            "depends_on": FilteredSelectMultiple("models", is_stacked=False),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            # Django shows help texts as HTML; the model's are plain text ('<slug:slug>').
            field.help_text = conditional_escape(field.help_text)
        choosable = choosable_content_types()
        if self.instance.pk is not None:
            # Keep what is stored, even a model no longer installed: clean() names it.
            current = {ct.pk for ct in self.instance.depends_on.all()}
            if self.instance.object_model_id is not None:
                current.add(self.instance.object_model_id)
            choosable = ContentType.objects.filter(
                Q(pk__in=choosable.values("pk")) | Q(pk__in=current)
            )
        choosable = choosable.order_by("app_label", "model")
        for name in ("depends_on", "object_model"):
            field = self.fields[name]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = choosable
        object_model = self.fields["object_model"]
        assert isinstance(object_model, forms.ModelChoiceField)
        object_model.empty_label = "(none: the pages show no single object)"

    def clean(self) -> dict[str, Any]:
        """Every problem ``validate_rule`` and the URLconf find, each on its field."""
        data = super().clean() or {}
        url_names = data.get("url_names") or ""
        path_patterns = data.get("path_patterns") or ""
        object_type: ContentType | None = data.get("object_model")
        object_model = object_type.model_class() if object_type is not None else None
        problems = validate_rule(
            url_names=url_names,
            path_patterns=path_patterns,
            methods=data.get("methods") or "",
            audience=data.get("audience") or "",
            shared_caches=data.get("shared_caches") or "",
            s_maxage=data.get("s_maxage"),
            vary=data.get("vary") or "",
            object_model=object_model,
            object_model_label=(
                f"{object_type.app_label}.{object_type.model}" if object_type else None
            ),
            object_field=data.get("object_field") or "",
            object_kwarg=data.get("object_kwarg") or "",
            tag_strength=data.get("tag_strength") or "",
            require_precondition=bool(data.get("require_precondition")),
        )
        for name, found in admin_coverage(url_names, path_patterns).items():
            problems.setdefault(name, []).extend(found)
        gone = [
            _content_type_label(ct)
            for ct in data.get("depends_on") or ()
            if ct.model_class() is None
        ]
        if gone:
            problems.setdefault("depends_on", []).append(
                f"{', '.join(gone)}: remove it; the pages cannot depend on a model that is gone."
            )
        for name, found in problems.items():
            field = name if name in self.fields else None
            if field is not None and self.has_error(field):
                continue  # its own validation already said what is wrong
            for message in found:
                # Pattern errors come one line per bad line: one message each.
                for line in message.splitlines():
                    self.add_error(field, line)
        return data


# --- The admin ------------------------------------------------------------------------


class RuleRefusalInline(_RefusalInline):
    """The pages the rule learned to leave to their views; shown, never edited.

    Not deletable one by one: saving the rule forgets all of them
    (``rule_safety``), so a delete ticked here would change nothing.
    """

    model = RuleRefusal
    extra = 0
    fields = ("path", "reason", "seen")
    readonly_fields = ("path", "reason", "seen")
    can_delete = False
    verbose_name_plural = "Refused pages (saving the rule tries every one again)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Refusals are learned from responses, never typed in."""
        return False


class RefusalFilter(admin.SimpleListFilter):
    """Rules with or without refused pages."""

    title = "refused pages"
    parameter_name = "refused"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """Yes or no."""
        return [("yes", "Some pages refused"), ("no", "None refused")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """The rules with (or without) refusals."""
        if self.value() == "yes":
            return queryset.filter(refusals__isnull=False).distinct()
        if self.value() == "no":
            return queryset.filter(refusals__isnull=True)
        return queryset


_DESCRIPTIONS = {
    "pages": "The requests the rule covers: URL names, path patterns, or both. "
    "The admin and views that check access or have their own conditional "
    "decorator are never covered.",
    "data": "Everything the pages show. Every write to these models changes the pages' "
    "entity tag. A detail page can name the one object it shows, looked up "
    "from a URL argument: its tag is then strong and its Last-Modified exact.",
    "audience": "Who may be answered from one copy. Anonymous only is the safe default: "
    "logged-in visitors go to the view untouched. A rule that is not per user "
    "learns to leave alone pages that set cookies, are private, or vary on "
    "what its tag lacks.",
    "caching": "The Cache-Control directives and Vary sent with the pages (and their 304s). "
    "Leave them empty to send none.",
    "writes": "Edits (PUT, PATCH, POST, DELETE) of the object a detail page shows: with "
    "the box ticked they must carry If-Match with the page's entity tag (428 without it), "
    "and of edits carrying the same tag one is written and the others get 412, checked "
    "and written as one step. Needs the object lookup above.",
    "answers": "Counted by every process and added up in batches; this process's counts not "
    "yet stored are included. Refused pages are listed below: saving the rule "
    "forgets them, so each is tried again on its next 200.",
}


@admin.register(ConditionalRule)
class ConditionalRuleAdmin(_RuleAdmin):
    """Rules in the admin, organised like django-waffle's flags: list, filters, toggles."""

    form = ConditionalRuleForm
    list_display = (
        "name",
        "enabled",
        "priority",
        "who",
        "matches",
        "not_modified_count",
        "full_count",
        "hit_rate_shown",
        "warnings",
    )
    list_display_links = ("name",)
    list_filter = ("enabled", "audience", "tag_strength", RefusalFilter)
    list_select_related = ("counter",)
    search_fields = ("name", "url_names", "path_patterns", "notes")
    readonly_fields = ("answers", "coverage", "created", "modified")
    inlines = (RuleRefusalInline,)
    actions = ("enable", "disable", "retry_refused")
    save_on_top = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[ConditionalRule]:
        """The rules with their number of refused pages (one query for the changelist)."""
        return super().get_queryset(request).annotate(refusal_count=Count("refusals"))

    def get_fieldsets(
        self, request: HttpRequest, obj: ConditionalRule | None = None
    ) -> _FieldsetSpec:
        """The form in the order a rule is thought through; counts once it exists."""
        pages: tuple[str, ...] = ("url_names", "path_patterns", "methods")
        fieldsets: list[tuple[str | None, _FieldOpts]] = [
            (None, {"fields": ("name", "enabled", "priority")}),
            (
                "Which pages",
                {
                    "fields": (*pages, "coverage") if obj is not None else pages,
                    "description": _DESCRIPTIONS["pages"],
                },
            ),
            (
                "What the pages show",
                {
                    "fields": ("depends_on", "object_model", "object_field", "object_kwarg"),
                    "description": _DESCRIPTIONS["data"],
                },
            ),
            (
                "Who shares a copy",
                {"fields": ("audience", "tag_strength"), "description": _DESCRIPTIONS["audience"]},
            ),
            (
                "Caching headers",
                {
                    "fields": (
                        ("max_age", "s_maxage", "stale_while_revalidate"),
                        "shared_caches",
                        "no_cache",
                        "must_revalidate",
                        "immutable",
                        "vary",
                    ),
                    "description": _DESCRIPTIONS["caching"],
                },
            ),
            (
                "Writes",
                {
                    "fields": ("require_precondition",),
                    "description": _DESCRIPTIONS["writes"],
                },
            ),
            ("Notes", {"fields": ("notes",)}),
        ]
        if obj is not None:
            fieldsets.append(
                (
                    "How the rule answered",
                    {
                        "fields": ("answers", ("created", "modified")),
                        "description": _DESCRIPTIONS["answers"],
                    },
                )
            )
        # A new list: the spec's element type is wider (lazy strings), and lists are invariant.
        return [*fieldsets]

    def get_inlines(self, request: HttpRequest, obj: ConditionalRule | None) -> list[Any]:
        """The refused pages, on the change form only: a new rule has none."""
        return list(self.inlines) if obj is not None else []

    # Columns ----------------------------------------------------------------------

    @admin.display(description="audience", ordering="audience")
    def who(self, obj: ConditionalRule) -> str:
        """The audience in a word or two."""
        return _SHORT_AUDIENCE.get(ConditionalRule.Audience(obj.audience), obj.audience)

    @admin.display(description="matches")
    def matches(self, obj: ConditionalRule) -> str:
        """The first URL names and path patterns, with how many more."""
        lines = [*_lines(obj.url_names), *_lines(obj.path_patterns)]
        shown = ", ".join(lines[:2])
        if len(shown) > 60:
            shown = shown[:59] + "…"
        if len(lines) > 2:
            shown += f" (+{len(lines) - 2} more)"
        return shown or "-"

    @admin.display(description="304s", ordering="counter__not_modified")
    def not_modified_count(self, obj: ConditionalRule) -> int:
        """304s answered, stored and pending."""
        return answer_counts(obj)["not_modified"]

    @admin.display(description="200s", ordering="counter__full")
    def full_count(self, obj: ConditionalRule) -> int:
        """200s sent with validators, stored and pending."""
        return answer_counts(obj)["full"]

    @admin.display(description="hit rate")
    def hit_rate_shown(self, obj: ConditionalRule) -> str:
        """304s out of 304s and 200s."""
        numbers = answer_counts(obj)
        return hit_rate(numbers["not_modified"], numbers["full"])

    @admin.display(description="warnings", ordering="refusal_count")
    def warnings(self, obj: ConditionalRule) -> str:
        """How many pages the rule refused, when it refused any."""
        annotated: int | None = getattr(obj, "refusal_count", None)
        refused = obj.refusals.count() if annotated is None else annotated
        if not refused:
            return ""
        noun = "page" if refused == 1 else "pages"
        return f"⚠ {refused} {noun} refused"

    # Read-only fields of the change form -------------------------------------------

    @admin.display(description="Answers")
    def answers(self, obj: ConditionalRule) -> str:
        """The counts of each kind of answer and the hit rate."""
        numbers = answer_counts(obj)
        rows = [
            ("304 Not Modified", numbers["not_modified"]),
            ("200 with validators", numbers["full"]),
            ("Passed to the view", numbers["passed"]),
            ("412 Precondition Failed", numbers["failed"]),
            ("Hit rate (304 / (304 + 200))", hit_rate(numbers["not_modified"], numbers["full"])),
        ]
        return format_html(
            "<table><tbody>{}</tbody></table>",
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )

    @admin.display(description="Left to their views")
    def coverage(self, obj: ConditionalRule) -> str:
        """Covered views no rule may answer, and names that match no URL."""
        found = catalog_warnings(obj.url_names, obj.path_patterns)
        if not found:
            return "Nothing: every page the patterns cover can be answered by the rule."
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ([w] for w in found)))

    # Saving --------------------------------------------------------------------------

    def save_model(
        self, request: HttpRequest, obj: ConditionalRule, form: Any, change: bool
    ) -> None:
        """Save, warn about covered pages the rule cannot answer, apply here at once."""
        super().save_model(request, obj, form, change)
        for warning in catalog_warnings(obj.url_names, obj.path_patterns):
            self.message_user(request, warning, messages.WARNING)
        _apply_after_commit()

    def delete_model(self, request: HttpRequest, obj: ConditionalRule) -> None:
        """Delete; this process stops applying the rule at once."""
        super().delete_model(request, obj)
        _apply_after_commit()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ConditionalRule]) -> None:
        """Delete; this process stops applying the rules at once."""
        super().delete_queryset(request, queryset)
        _apply_after_commit()

    # Actions -------------------------------------------------------------------------

    @admin.action(description="Enable the selected rules", permissions=("change",))
    def enable(self, request: HttpRequest, queryset: QuerySet[ConditionalRule]) -> None:
        """Turn the rules on (an UPDATE moves the rule table's stamp like a save)."""
        self._set_enabled(request, queryset, enabled=True)

    @admin.action(description="Disable the selected rules", permissions=("change",))
    def disable(self, request: HttpRequest, queryset: QuerySet[ConditionalRule]) -> None:
        """Turn the rules off: their pages go to their views untouched."""
        self._set_enabled(request, queryset, enabled=False)

    @admin.action(description="Try the refused pages again", permissions=("change",))
    def retry_refused(self, request: HttpRequest, queryset: QuerySet[ConditionalRule]) -> None:
        """Forget the selected rules' refused pages without saving the rules."""
        deleted, _ = RuleRefusal.objects.filter(rule__in=queryset.values("pk")).delete()
        _apply_after_commit()
        self.message_user(request, f"{deleted} refused pages will be tried again.")

    def _set_enabled(
        self, request: HttpRequest, queryset: QuerySet[ConditionalRule], *, enabled: bool
    ) -> None:
        selected = queryset.count()
        rules = list(queryset.filter(enabled=not enabled).order_by("pk"))
        ConditionalRule.objects.filter(pk__in=[rule.pk for rule in rules]).update(enabled=enabled)
        verb = "Enabled" if enabled else "Disabled"
        for rule in rules:
            self.log_change(request, rule, f"{verb} by the admin action.")
        _apply_after_commit()
        self.message_user(request, f"{verb} {len(rules)} of {selected} selected rules.")


def _apply_after_commit() -> None:
    """Make this process reload its rules once the change has committed.

    Other processes see the moved stamps within ``CONDITIONAL_RULES_REFRESH``;
    the process that saved need not wait, so the editor sees the change apply.
    """
    transaction.on_commit(forget_rules)
