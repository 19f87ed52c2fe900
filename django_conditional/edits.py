"""Forms and class-based views that refuse a stale edit instead of overwriting it.

The form carries the version of the object the user loaded in a hidden field.
Its ``clean()`` claims the row at that version (``guarded_writes``: one UPDATE
that matches only while the row is still at it, and holds the row until the
transaction ends), so the check and the save that follows in the same
transaction are one step: a second user who loaded the same version gets a
form error saying what changed since, with every value they typed still in
the form. The hidden field then carries the current version: saving again,
having seen the other edit, keeps theirs on purpose.

The claim must be in the transaction that saves: ``ConcurrentUpdateMixin``
and ``ConcurrentDeleteMixin`` run the POST in one, as Django's admin runs its
change form (``admin_mixins``); a form validated outside a transaction raises
``ImproperlyConfigured``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connections, router, transaction
from django.db.models import Model
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.text import capfirst

from django_conditional.guarded_writes import SeenRow

__all__ = [
    "VERSION_FIELD",
    "ConcurrentDeleteMixin",
    "ConcurrentUpdateMixin",
    "Conflict",
    "VersionedModelFormMixin",
    "claim_or_conflict",
    "conflict_message",
]

# The hidden field's name: apart from any model field (``version`` is not editable).
VERSION_FIELD = "conditional_version"
_SHOWN_LENGTH = 80


def _version_field() -> forms.IntegerField:
    return forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)


def _shown(value: Any) -> str:
    text = "(empty)" if value in (None, "") else str(value)
    return text if len(text) <= _SHOWN_LENGTH else f"{text[: _SHOWN_LENGTH - 1]}…"


@dataclass(frozen=True, slots=True)
class Conflict:
    """A refused claim: the row as it is now (None: deleted meanwhile)."""

    current: Model | None


def conflict_message(
    model: type[Model],
    conflict: Conflict,
    yours: dict[str, Any],
    labels: dict[str, str],
    *,
    deleting: bool = False,
) -> str:
    """What the user is told: what changed since they loaded it, and that nothing was lost."""
    name = model._meta.verbose_name
    current = conflict.current
    kept = "." if deleting else "; your changes are still in the form."
    if current is None:
        return f"Someone else deleted this {name} after you opened it. Nothing was saved{kept}"
    if deleting:
        return (
            f"Someone else saved this {name} after you opened it, so it was not deleted: "
            "review it as it is now, and confirm again to delete it."
        )
    changed = []
    for field, value in yours.items():
        if field not in labels or not hasattr(current, field):
            continue
        now = getattr(current, field)
        if now != value:
            changed.append(f"{labels[field]} is now {_shown(now)!r}")
    what = "; ".join(changed) if changed else "no field of this form differs from yours"
    return (
        f"Someone else saved this {name} after you opened it: {what}. Nothing was saved{kept} "
        "Save again to replace theirs with yours."
    )


def claim_or_conflict(instance: Model, seen_version: int | None) -> Conflict | None:
    """Claim ``instance``'s row at ``seen_version``: None when claimed, else the conflict.

    Must run inside the transaction that writes (the claim holds the row until it ends).
    """
    using = instance._state.db or router.db_for_write(type(instance))
    if not connections[using].in_atomic_block:
        raise ImproperlyConfigured(
            f"The stale-edit check of a {type(instance).__name__} form must run in the "
            "transaction that saves it: validate and save inside transaction.atomic(), or "
            "use ConcurrentUpdateMixin / ConcurrentEditAdminMixin, which do."
        )
    if SeenRow(type(instance), instance.pk, using, seen_version).claim():
        return None
    rows = type(instance)._base_manager.using(using).filter(pk=instance.pk)
    return Conflict(rows.first())


def _without_version(instance: Model) -> ValidationError:
    return ValidationError(
        f"This form was sent without the version of the {instance._meta.verbose_name} it "
        "changes, so it cannot tell whether someone else saved it meanwhile. Nothing was "
        "saved: reload the page and try again.",
        code="stale",
    )


def _show_current_version(form: Any, conflict: Conflict) -> None:
    """Shown again with the user's values and the current version: a second submission,
    made having seen the other edit, replaces it on purpose."""
    if conflict.current is not None:
        data = form.data.copy()
        data[form.add_prefix(VERSION_FIELD)] = str(getattr(conflict.current, "version", ""))
        form.data = data


class VersionedModelFormMixin:
    """For a ``ModelForm`` of a ``VersionedModel``: refuse a save over an edit the user never saw.

    Put it before ``forms.ModelForm`` in the bases. New objects are saved as
    usual; for an existing one, a submission without its version, or with a
    version the row has left, is a form error (code ``"stale"``).
    """

    # After clean(): why the save was refused (None: it was not).
    conflict: Conflict | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        form: Any = self
        field = form.fields.setdefault(VERSION_FIELD, _version_field())
        if form.instance.pk is not None:
            field.initial = getattr(form.instance, "version", None)

    def clean(self) -> dict[str, Any]:
        form: Any = self
        cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        instance = form.instance
        if instance.pk is None or instance._state.adding:
            return cleaned
        seen = cleaned.get(VERSION_FIELD)
        if seen is None:
            form.add_error(None, _without_version(instance))
            return cleaned
        conflict = claim_or_conflict(instance, seen)
        if conflict is None:
            return cleaned
        self.conflict = conflict
        labels = {name: str(capfirst(field.label or name)) for name, field in form.fields.items()}
        message = conflict_message(type(instance), conflict, cleaned, labels)
        form.add_error(None, ValidationError(message, code="stale"))
        _show_current_version(form, conflict)
        return cleaned


def _versioned_form_class(form_class: type[forms.BaseForm]) -> type[forms.BaseForm]:
    """``form_class`` with the mixin, and the version a declared field (the admin renders
    only the fields its form class declares)."""
    declared = getattr(form_class, "base_fields", {})
    if issubclass(form_class, VersionedModelFormMixin) and VERSION_FIELD in declared:
        return form_class
    bases = (
        (form_class,)
        if issubclass(form_class, VersionedModelFormMixin)
        else (
            VersionedModelFormMixin,
            form_class,
        )
    )
    return type(form_class.__name__, bases, {VERSION_FIELD: _version_field()})


class ConcurrentUpdateMixin:
    """For ``UpdateView``: the form carries the version, and the POST is one transaction.

    The form class (``form_class`` or the one ``UpdateView`` builds from
    ``fields``) gets ``VersionedModelFormMixin``; a stale submission is shown
    again with the conflict as a form error, nothing saved.
    """

    def get_form_class(self) -> type[forms.BaseForm]:
        return _versioned_form_class(super().get_form_class())  # type: ignore[misc]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        view: Any = self
        using = router.db_for_write(view.model or view.get_queryset().model)
        with transaction.atomic(using=using):
            return super().post(request, *args, **kwargs)  # type: ignore[misc, no-any-return]


class _VersionedDeleteForm(forms.Form):
    def __init__(self, *args: Any, instance: Model | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = _version_field()
        field.initial = getattr(instance, "version", None)
        self.fields[VERSION_FIELD] = field


class ConcurrentDeleteMixin:
    """For ``DeleteView``: delete only the version the user confirmed, else a form error."""

    form_class = _VersionedDeleteForm

    def get_form_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = super().get_form_kwargs()  # type: ignore[misc]
        view: Any = self
        kwargs["instance"] = getattr(view, "object", None)
        return kwargs

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        view: Any = self
        using = router.db_for_write(view.model or view.get_queryset().model)
        with transaction.atomic(using=using):
            return super().post(request, *args, **kwargs)  # type: ignore[misc, no-any-return]

    def form_valid(self, form: forms.Form) -> HttpResponseBase:
        view: Any = self
        seen = form.cleaned_data.get(VERSION_FIELD)
        if seen is None:
            form.add_error(None, _without_version(view.object))
            return view.form_invalid(form)  # type: ignore[no-any-return]
        conflict = claim_or_conflict(view.object, seen)
        if conflict is not None:
            message = conflict_message(type(view.object), conflict, {}, {}, deleting=True)
            form.add_error(None, ValidationError(message, code="stale"))
            _show_current_version(form, conflict)
            return view.form_invalid(form)  # type: ignore[no-any-return]
        return super().form_valid(form)  # type: ignore[misc, no-any-return]
