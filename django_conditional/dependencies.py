"""A view's ``depends_on``: resolved to models, with errors that name the view and the fix.

Used by the ``conditional`` decorator, the class-based mixins and check
E005, which walks the URLconf for the configuration each view exposes.
Reads the app registry only; never imports the package's models.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model

__all__ = [
    "DependencyError",
    "ModelReference",
    "ViewConfig",
    "configured_views",
    "resolve_models",
]

ModelReference = type[Model] | str


class DependencyError(ImproperlyConfigured):
    """A ``depends_on`` entry that is not an installed model."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"{message} {hint}")
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class ViewConfig:
    """What a view derives its validator from, for the checks.

    The ``conditional`` decorator puts one on the view it returns as
    ``conditional_config``; the class-based mixins give one from
    ``get_conditional_config()``.
    """

    view: str  # the view's dotted name
    depends_on: Any  # as the view gives it: checked by resolve()

    def resolve(self) -> tuple[type[Model], ...]:
        """The models ``depends_on`` names; :class:`DependencyError` for one that is not."""
        return resolve_models(self.depends_on, self.view)


def resolve_models(references: Iterable[Any] | type[Model], view: str) -> tuple[type[Model], ...]:
    """The models ``references`` name (classes or ``"app_label.ModelName"``).

    Needs the app registry (``django.setup()``). Raises
    :class:`DependencyError` naming ``view``, the entry and the fix.
    """
    if isinstance(references, (str, type)):
        # A lone model or label where a list belongs (a string would be read letter by letter).
        shown = references.__name__ if isinstance(references, type) else repr(references)
        raise DependencyError(
            f"{view}: depends_on is {shown} alone; expected a list of models.",
            hint=f"Write depends_on = [{shown}].",
        )
    models: list[type[Model]] = []
    for reference in references:
        if isinstance(reference, type) and issubclass(reference, Model):
            models.append(reference)
        elif isinstance(reference, str):
            models.append(_get_model(reference, view))
        else:
            raise DependencyError(
                f"{view}: depends_on holds {reference!r}, which is neither a model class nor "
                "an 'app_label.ModelName' string.",
                hint="List model classes or 'app_label.ModelName' strings in depends_on.",
            )
    return tuple(models)


def _get_model(label: str, view: str) -> type[Model]:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError) as error:
        # ValueError: a label without a dot ("Author").
        reason = str(error) if isinstance(error, LookupError) else "no app label"
        raise DependencyError(
            f"{view}: depends_on names {label!r}, which is not an installed model ({reason}).",
            hint=f"{_suggestion(label)}Use 'app_label.ModelName' of an installed model, "
            "or the model class itself.",
        ) from error


def _suggestion(label: str) -> str:
    models = apps.get_models()
    if "." in label:
        labels = {model._meta.label_lower: model._meta.label for model in models}
        found = [labels[close] for close in difflib.get_close_matches(label.lower(), labels, n=1)]
    else:
        found = sorted(m._meta.label for m in models if m._meta.model_name == label.lower())
    return f"Did you mean {' or '.join(map(repr, found))}? " if found else ""


def configured_views(patterns: Sequence[Any]) -> Iterator[ViewConfig]:
    """The configuration of each django_conditional view in a URLconf, once per view."""
    seen: set[str] = set()
    for callback in _callbacks(patterns):
        config = getattr(callback, "conditional_config", None)
        if config is None:
            view_class = getattr(callback, "view_class", None)
            get_config = getattr(view_class, "get_conditional_config", None)
            config = get_config() if get_config is not None else None
        if isinstance(config, ViewConfig) and config.view not in seen:
            seen.add(config.view)
            yield config


def _callbacks(patterns: Sequence[Any]) -> Iterator[Any]:
    for pattern in patterns:
        nested = getattr(pattern, "url_patterns", None)
        if nested is not None:  # an include()
            yield from _callbacks(nested)
        else:
            yield pattern.callback
