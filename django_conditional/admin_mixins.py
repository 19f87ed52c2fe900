"""A ``ModelAdmin`` mixin: no admin save overwrites an edit its user never saw.

For a model with ``VersionedModel``:

- The change form carries the version the user opened (``edits``); a save
  over a newer one is refused with a form error naming what changed, and the
  user's input stays in the form. The check is a claim of the row in the
  transaction Django's admin saves in, so it cannot race the save.
- ``list_editable`` rows carry their versions too (beside each row's primary
  key); a stale row refuses the whole save, rows and messages as Django
  shows any formset error.
- Actions run only on rows still at the versions the list showed; otherwise
  nothing is done and a message names the rows that changed.
- A change-form POST or a delete that carries ``If-Match`` or
  ``If-Unmodified-Since`` is evaluated against the object's strong ``ETag``
  (sent with the change form): 412 and nothing saved when it fails, the save
  made atomically when it passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.db import router, transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.utils.html import format_html
from django.utils.safestring import SafeString

from django_conditional import engine
from django_conditional.edits import VERSION_FIELD, _versioned_form_class
from django_conditional.engine import ConditionalState, ResponseOptions
from django_conditional.guarded_writes import SeenRow
from django_conditional.unsafe_methods import Fresh, WriteGuard
from django_conditional.validators import Validator, keyed_tag

__all__ = ["ConcurrentEditAdminMixin", "object_tag"]

_SELECTED = "_selected_action"


def object_tag(instance: Model, *, dated: bool = False) -> Validator:
    """The strong validator of one versioned object as the admin edits it.

    ``dated``: with its ``modified`` time, for If-Unmodified-Since. Never sent
    as Last-Modified: it is the application's clock, not an exact date.
    """
    parts = ["admin-object", instance._meta.label, instance.pk, getattr(instance, "version", "")]
    modified = getattr(instance, "modified", None) if dated else None
    return Validator(etag=keyed_tag(parts, weak=False), last_modified=modified)


def _row_version_field(name: str) -> str:
    return f"{VERSION_FIELD}-{name}"


class _PrimaryKeyWithVersion(forms.HiddenInput):
    """The changelist form's hidden primary key, with the row's version beside it.

    Django's changelist renders only the primary key of each editable row's
    hidden fields; the version rides along in its widget.
    """

    def __init__(self, version_name: str, version: int | None) -> None:
        super().__init__()
        self.version_name = version_name
        self.version = version

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> SafeString:
        primary_key = super().render(name, value, attrs, renderer)
        if self.version is None:
            return primary_key
        return format_html(
            '{}<input type="hidden" name="{}" value="{}">',
            primary_key,
            self.version_name,
            self.version,
        )


def _changelist_formset_class(formset_class: Any) -> Any:
    """The list_editable formset, each row's version rendered beside its primary key."""

    def add_fields(self: Any, form: Any, index: int | None) -> None:
        formset_class.add_fields(self, form, index)  # adds the hidden primary key
        pk_name = self.model._meta.pk.name
        if pk_name in form.fields and form.instance.pk is not None:
            form.fields[pk_name].widget = _PrimaryKeyWithVersion(
                form.add_prefix(VERSION_FIELD), getattr(form.instance, "version", None)
            )

    return type(formset_class.__name__, (formset_class,), {"add_fields": add_fields})


class ConcurrentEditAdminMixin:
    """Put it before ``admin.ModelAdmin`` in the bases of a versioned model's admin."""

    def _write_db(self) -> str:
        admin: Any = self
        return str(router.db_for_write(admin.model))

    # --- the change form -----------------------------------------------------------

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        admin: Any = self
        # The form every change form is built from: the version a declared field, so
        # that the admin's fieldsets include (and render) it.
        admin.form = _versioned_form_class(admin.form)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponseBase:
        parent: Any = super()

        def run() -> HttpResponseBase:
            return parent.changeform_view(request, object_id, form_url, extra_context)  # type: ignore[no-any-return]

        if object_id is not None and request.method == "POST" and engine.is_conditional(request):
            return self._preconditioned(request, object_id, run)
        response = run()
        if object_id is not None and request.method == "GET" and response.status_code == 200:
            instance = self._object(request, object_id)
            if instance is not None:
                # For scripts that edit through the admin with If-Match; the admin's
                # own Cache-Control (no-store) stays.
                engine.apply_representation_headers(response, object_tag(instance), now=time.time())
        return response

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponseBase:
        parent: Any = super()

        def run() -> HttpResponseBase:
            return parent.delete_view(request, object_id, extra_context)  # type: ignore[no-any-return]

        if request.method == "POST" and engine.is_conditional(request):
            return self._preconditioned(request, object_id, run)
        return run()

    def _object(self, request: HttpRequest, object_id: str) -> Model | None:
        admin: Any = self
        found: Model | None = admin.get_object(request, unquote(object_id))
        return found

    def _preconditioned(
        self, request: HttpRequest, object_id: str, run: Callable[[], HttpResponseBase]
    ) -> HttpResponseBase:
        """Evaluate If-Match / If-Unmodified-Since, then run the view with the row claimed.

        The guard of ``conditional(object=...)`` (``unsafe_methods``), with the
        object's admin tag as its validator.
        """

        def fresh(_request: HttpRequest, _args: Any, _kwargs: Any) -> Fresh:
            instance = self._object(request, object_id)
            validator = (
                Validator(exists=False) if instance is None else object_tag(instance, dated=True)
            )
            return Fresh(ConditionalState(validator, object=instance), self._write_db())

        guard = WriteGuard(fresh, lambda *_: ConditionalState(), ResponseOptions())
        return guard.answer(request, (), {}, run)

    # --- list_editable -------------------------------------------------------------

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> Any:
        return _versioned_form_class(super().get_changelist_form(request, **kwargs))  # type: ignore[misc]

    def get_changelist_formset(self, request: HttpRequest, **kwargs: Any) -> Any:
        return _changelist_formset_class(super().get_changelist_formset(request, **kwargs))  # type: ignore[misc]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponseBase:
        parent: Any = super()
        if request.method != "POST":
            return parent.changelist_view(request, extra_context)  # type: ignore[no-any-return]
        # Django validates list_editable's formset outside its transaction: the rows'
        # claims (in the forms' clean()) must hold until their saves commit.
        with transaction.atomic(using=self._write_db()):
            return parent.changelist_view(request, extra_context)  # type: ignore[no-any-return]

    # --- actions -------------------------------------------------------------------

    def action_checkbox(self, obj: Model) -> SafeString:
        """The row's checkbox, and the version the list shows it at."""
        parent: Any = super()
        box: SafeString = parent.action_checkbox(obj)
        return format_html(
            '{}<input type="hidden" name="{}" value="{}">',
            box,
            _row_version_field(str(obj.pk)),
            getattr(obj, "version", ""),
        )

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Any], *args: Any, **kwargs: Any
    ) -> Any:
        # Django 6.1 adds action_location (actions on the change form too): passed on.
        parent: Any = super()
        selected = request.POST.getlist(_SELECTED)
        shown = {
            pk: version for pk in selected if (version := request.POST.get(_row_version_field(pk)))
        }
        if not shown:  # the confirmation step of an action, or a list without versions
            return parent.response_action(request, queryset, *args, **kwargs)
        with transaction.atomic(using=self._write_db()):
            changed = self._changed_rows(queryset, shown)
            if changed:
                admin: Any = self
                admin.message_user(
                    request,
                    "Nothing was done: someone else changed "
                    + ", ".join(str(row) for row in changed)
                    + " after the list was loaded. Review them and run the action again.",
                    messages.ERROR,
                )
                return HttpResponseRedirect(request.get_full_path())
            return parent.response_action(request, queryset, *args, **kwargs)

    def _changed_rows(self, queryset: QuerySet[Any], shown: dict[str, str]) -> list[Model]:
        """Claim each shown row at its shown version; the rows that have moved on."""
        admin: Any = self
        changed = []
        using = self._write_db()
        for instance in admin.model._base_manager.using(using).filter(pk__in=list(shown)):
            try:
                seen = int(shown[str(instance.pk)])
            except (KeyError, ValueError):
                changed.append(instance)
                continue
            if not SeenRow(admin.model, instance.pk, using, seen).claim():
                changed.append(instance)
        return changed
