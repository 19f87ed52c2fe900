"""Move rules between databases as JSON: the logic behind ``manage.py conditional_rules``.

Models are named by label (``"demo.Author"``), never by content-type id,
which differs between databases; rules are matched by name. An import is
checked whole before anything is written and then written in one
transaction. Never imports the middleware.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Model

from django_conditional.rules import validate_rule

__all__ = [
    "FORMAT",
    "VERSION",
    "ImportResult",
    "RuleData",
    "TransferError",
    "dump_document",
    "export_document",
    "import_rules",
    "parse_document",
    "rule_fields",
]

FORMAT = "django-conditional-rules"
VERSION = 1
# Not exported: the row's identity and bookkeeping (ids differ between databases).
_EXCLUDED = frozenset({"id", "created", "modified"})
_TOP_LEVEL = ("format", "version", "rules")


class TransferError(ValueError):
    """A file that cannot be imported, or names that cannot be exported; every problem found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def rule_fields() -> dict[str, models.Field[Any, Any]]:
    """The fields of ``ConditionalRule`` a file carries, by name, in the model's order."""
    from django_conditional.models import ConditionalRule

    meta = ConditionalRule._meta
    found: dict[str, models.Field[Any, Any]] = {}
    for model_field in [*meta.concrete_fields, *meta.many_to_many]:
        if model_field.name not in _EXCLUDED and not model_field.primary_key:
            found[model_field.name] = model_field
    return found


def _label_of(content_type: Any) -> str:
    model = content_type.model_class()
    if model is None:  # no longer installed: the import will say so
        return f"{content_type.app_label}.{content_type.model}"
    return str(model._meta.label)


def _row_values(row: Any) -> dict[str, Any]:
    """One stored rule as the file has it."""
    values: dict[str, Any] = {}
    for name, model_field in rule_fields().items():
        if model_field.many_to_many:
            values[name] = sorted(_label_of(ct) for ct in getattr(row, name).all())
        elif model_field.is_relation:
            related = getattr(row, name)
            values[name] = None if related is None else _label_of(related)
        else:
            values[name] = getattr(row, name)
    return values


def export_document(names: Sequence[str] = ()) -> dict[str, Any]:
    """The rules called ``names`` (all when empty), highest priority first, as a document.

    Raises :class:`TransferError` naming the rules that do not exist.
    """
    from django_conditional.models import ConditionalRule

    rows = ConditionalRule.objects.order_by("-priority", "name").prefetch_related("depends_on")
    rows = rows.select_related("object_model")
    if names:
        rows = rows.filter(name__in=names)
    found = list(rows)
    missing = sorted(set(names) - {row.name for row in found})
    if missing:
        raise TransferError(
            [
                f"No rule named {name!r}: 'manage.py conditional_rules list' shows them."
                for name in missing
            ]
        )
    return {"format": FORMAT, "version": VERSION, "rules": [_row_values(row) for row in found]}


def dump_document(document: Mapping[str, Any]) -> str:
    """The document as the JSON text ``export`` writes."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- Reading a file ---------------------------------------------------------------------


@dataclass(frozen=True)
class RuleData:
    """One rule of a file, checked: its values with models as classes, as the import writes them."""

    name: str
    # Every plain field (defaults filled in for those the file leaves out).
    values: dict[str, Any]
    depends_on: tuple[type[Model], ...] = ()
    object_model: type[Model] | None = None

    def as_file_values(self) -> dict[str, Any]:
        """The rule as ``export`` would write it (to compare with a stored rule)."""
        return {
            **self.values,
            "depends_on": sorted(model._meta.label for model in self.depends_on),
            "object_model": None if self.object_model is None else self.object_model._meta.label,
        }


def parse_document(text: str) -> list[RuleData]:
    """The rules of a file's text, checked; :class:`TransferError` lists every problem."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise TransferError(
            [f"The file is not JSON: {error.msg} at line {error.lineno}, column {error.colno}."]
        ) from error
    if not isinstance(document, dict):
        raise TransferError(
            [
                f"The file holds a JSON {_json_type(document)}, not an object "
                f'{{"format": "{FORMAT}", "version": {VERSION}, "rules": [...]}}.'
            ]
        )
    problems: list[str] = []
    if document.get("format") != FORMAT:
        problems.append(
            f"format is {document.get('format')!r}, not {FORMAT!r}: this is not a rules file "
            "written by 'manage.py conditional_rules export'."
        )
    version = document.get("version")
    if version != VERSION or isinstance(version, bool):
        problems.append(
            f"version {version!r} is not supported: this django-conditional reads version "
            f"{VERSION} (export the rules with the same version as this one)."
        )
    unknown = sorted(set(document) - set(_TOP_LEVEL))
    if unknown:
        problems.append(
            f"Unknown key(s) {', '.join(map(repr, unknown))}: a file has only "
            f"{', '.join(map(repr, _TOP_LEVEL))}."
        )
    entries = document.get("rules")
    if not isinstance(entries, list):
        problems.append(f"rules is a JSON {_json_type(entries)}, not a list of rules.")
        raise TransferError(problems)
    parsed: list[RuleData] = []
    seen: dict[str, int] = {}
    for position, entry in enumerate(entries, start=1):
        rule, found = _parse_rule(position, entry)
        problems.extend(found)
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str):
            if name in seen:
                problems.append(
                    f"rule {position} ({name!r}): the name is also rule {seen[name]}'s: "
                    "names are unique, give each rule its own."
                )
            else:
                seen[name] = position
        if rule is not None:
            parsed.append(rule)
    if problems:
        raise TransferError(problems)
    return parsed


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), ((int, float), "number"), (str, "string")):
        if isinstance(value, kind):
            return name
    return "list" if isinstance(value, list) else "object" if isinstance(value, dict) else "value"


def _parse_rule(position: int, entry: Any) -> tuple[RuleData | None, list[str]]:
    """One rule of the file, and every problem with it."""
    if not isinstance(entry, dict):
        return None, [f"rule {position}: a JSON {_json_type(entry)}, not an object of fields."]
    name = entry.get("name")
    where = f"rule {position} ({name!r})" if isinstance(name, str) else f"rule {position}"
    problems: list[str] = []

    def add(message: str) -> None:
        problems.append(f"{where}: {message}")

    fields = rule_fields()
    for key in sorted(set(entry) - set(fields)):
        if key in _EXCLUDED:
            add(f"{key!r} is not imported: ids and dates belong to each database; remove it.")
        else:
            add(f"unknown field {key!r}; the fields are {', '.join(fields)}.")
    if "name" not in entry:
        add("it has no name (rules are matched by name).")
    values: dict[str, Any] = {}
    depends_on: list[type[Model]] = []
    object_model: type[Model] | None = None
    typed = True
    for field_name, model_field in fields.items():
        if field_name not in entry:
            if not model_field.many_to_many and not model_field.is_relation:
                values[field_name] = model_field.get_default()
            continue
        value = entry[field_name]
        if model_field.many_to_many:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                add(f"depends_on is a JSON {_json_type(value)}, not a list of model labels.")
                typed = False
                continue
            for label in dict.fromkeys(value):
                model, why = _model(label)
                if model is None:
                    add(f"depends_on: {why}")
                elif model not in depends_on:
                    depends_on.append(model)
        elif model_field.is_relation:
            if value is None:
                continue
            if not isinstance(value, str):
                add(f"{field_name} is a JSON {_json_type(value)}, not a model label or null.")
                typed = False
                continue
            object_model, why = _model(value)
            if object_model is None:
                add(f"{field_name}: {why}")
        else:
            expected = _type_problem(model_field, value)
            if expected is not None:
                add(f"{field_name} is {json.dumps(value)}; expected {expected}.")
                typed = False
                continue
            values[field_name] = value
    if not typed or "name" not in entry:
        return None, problems
    problems.extend(
        f"{where}: {message}" for message in _rule_problems(values, object_model, entry)
    )
    if problems:
        return None, problems
    return RuleData(values["name"], values, tuple(depends_on), object_model), []


def _model(label: str) -> tuple[type[Model] | None, str]:
    try:
        return apps.get_model(label), ""
    except (LookupError, ValueError):
        return None, (
            f"{label!r} is not an installed model; name models by label, app_label.ModelName "
            "(e.g. 'demo.Author')."
        )


def _type_problem(model_field: models.Field[Any, Any], value: Any) -> str | None:
    """What a value of this field must be, when ``value`` is not that (JSON types, strictly)."""
    if value is None:
        return None if model_field.null else "a value, not null"
    if isinstance(model_field, models.BooleanField):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(model_field, models.IntegerField):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "a whole number" + (" or null" if model_field.null else "")
    if isinstance(model_field, models.CharField | models.TextField):
        return None if isinstance(value, str) else "a string"
    return None  # pragma: no cover - ConditionalRule has no other kind of field


def _rule_problems(
    values: Mapping[str, Any], object_model: type[Model] | None, entry: Mapping[str, Any]
) -> Iterable[str]:
    """``validate_rule``'s problems, and the model's own checks (choices, lengths, ranges)."""
    from django_conditional.models import ConditionalRule

    label = entry.get("object_model")
    messages = validate_rule(
        url_names=str(values["url_names"]),
        path_patterns=str(values["path_patterns"]),
        methods=str(values["methods"]),
        audience=str(values["audience"]),
        shared_caches=str(values["shared_caches"]),
        s_maxage=values["s_maxage"],
        vary=str(values["vary"]),
        object_model=object_model,
        object_model_label=label if isinstance(label, str) else None,
        object_field=str(values["object_field"]),
        object_kwarg=str(values["object_kwarg"]),
        tag_strength=str(values["tag_strength"]),
        require_precondition=bool(values["require_precondition"]),
    )
    if object_model is None and label is not None:
        messages.pop("object_model", None)  # already said: the label names no installed model
    try:
        ConditionalRule(**values).full_clean(
            exclude=["object_model", "depends_on"],
            validate_unique=False,
            validate_constraints=False,
        )
    except ValidationError as error:
        for name, found in error.message_dict.items():
            # validate_rule's messages name the fix: the model's only where it is silent.
            messages.setdefault(name, found)
    return [f"{name}: {message}" for name, found in messages.items() for message in found]


# --- Writing --------------------------------------------------------------------------


@dataclass
class ImportResult:
    """What an import wrote (or, for a dry run, would write), by rule name in file order."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    # Already stored exactly as in the file: left alone (saving would forget their refusals).
    unchanged: list[str] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> list[str]:
        """Lines saying exactly what was written (``Created 2 rules, updated 1: a, b, c``)."""
        created, updated = len(self.created), len(self.updated)
        names = [*self.created, *self.updated]
        if self.dry_run:
            text = f"Would create {_rules(created)}, update {updated}"
        else:
            text = f"Created {_rules(created)}, updated {updated}"
        if names:
            text += f": {', '.join(names)}"
        lines = [text + (" (dry run: nothing written)" if self.dry_run else "" if names else ".")]
        if self.unchanged:
            verb = "Would leave" if self.dry_run else "Left"
            lines.append(
                f"{verb} {_rules(len(self.unchanged))} unchanged (stored as in the file): "
                f"{', '.join(self.unchanged)}"
            )
        return lines


def _rules(count: int) -> str:
    return f"{count} rule" if count == 1 else f"{count} rules"


def import_rules(
    rules: Sequence[RuleData], *, replace: bool = False, dry_run: bool = False
) -> ImportResult:
    """Create the rules, and with ``replace`` update those whose names exist, in one transaction.

    Without ``replace``, any name already stored is a :class:`TransferError`
    and nothing is written. A stored rule identical to the file's is left
    alone. With ``dry_run`` nothing is written: the result says what would be.
    """
    from django.contrib.contenttypes.models import ContentType

    from django_conditional.models import ConditionalRule

    result = ImportResult(dry_run=dry_run)
    with transaction.atomic():
        # No select_related: PostgreSQL refuses FOR UPDATE on the nullable side of
        # the outer join that the optional object_model would add.
        stored = {
            row.name: row
            for row in ConditionalRule.objects.select_for_update().filter(
                name__in=[rule.name for rule in rules]
            )
        }
        if stored and not replace:
            names = ", ".join(repr(rule.name) for rule in rules if rule.name in stored)
            raise TransferError(
                [
                    f"These rules already exist: {names}. Nothing was written: import with "
                    "--replace to update them, or remove them from the file."
                ]
            )
        for rule in rules:
            row = stored.get(rule.name)
            if row is None:
                result.created.append(rule.name)
            elif _row_values(row) == rule.as_file_values():
                result.unchanged.append(rule.name)
                continue
            else:
                result.updated.append(rule.name)
            if dry_run:
                continue
            if row is None:
                row = ConditionalRule(**rule.values)
            else:
                for name, value in rule.values.items():
                    setattr(row, name, value)
            row.object_model = (
                None
                if rule.object_model is None
                else ContentType.objects.get_for_model(rule.object_model, for_concrete_model=False)
            )
            row.save()
            row.depends_on.set(
                ContentType.objects.get_for_model(model, for_concrete_model=False)
                for model in rule.depends_on
            )
    return result
