"""Abstract model mixins that version rows, and the per-table change stamp model.

``VersionedModel`` keeps a counter that the database increments on every
write, ``TimestampedModel`` a modification time, ``TrackedModel`` both. The
counter moves on every write path, not only ``save()``: ``tracking`` adds
the increment to every UPDATE statement the application sends for a
versioned table (``QuerySet.update()``, ``bulk_update()``, the deletion
collector's ``SET_NULL``, raw SQL through Django's cursor).
"""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.db.models import F
from django.db.models.expressions import Combinable
from django.utils import timezone

__all__ = [
    "ChangeStamp",
    "TimestampedModel",
    "TrackedModel",
    "VersionedModel",
    "VersionedQuerySet",
]


class VersionedQuerySet(models.QuerySet[Any]):
    """A queryset whose ``update()`` also moves versions and modification times.

    ``tracking`` adds the same assignments to the SQL of any UPDATE on a
    versioned table; doing it here as well covers multi-table inheritance,
    where an update of a child's own fields must also move the version kept
    in the parent's table, and lets ``update()`` return instances' new
    modification time as Django computed it.
    """

    def update(self, **kwargs: Any) -> int:
        """Update the rows, incrementing ``version`` and setting ``modified``."""
        model = self.model
        if issubclass(model, VersionedModel) and "version" not in kwargs:
            kwargs["version"] = F("version") + 1
        if issubclass(model, TimestampedModel) and "modified" not in kwargs:
            kwargs["modified"] = timezone.now()
        return super().update(**kwargs)

    update.alters_data = True  # type: ignore[attr-defined]


VersionedManager = models.Manager.from_queryset(VersionedQuerySet)


class VersionedModel(models.Model):
    """A row version: 1 on insert, incremented by the database on every update.

    The increment is an ``F()`` expression evaluated by the database, never
    read-modify-write, so concurrent saves cannot lose one. After ``save()``
    the instance holds the value the database wrote.
    """

    version = models.PositiveBigIntegerField(
        default=1,
        editable=False,
        help_text="Incremented by the database on every write.",
    )

    objects = VersionedManager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, incrementing the version in the database; see the class docstring."""
        update_fields = kwargs.get("update_fields")
        is_update = not self._state.adding and not kwargs.get("force_insert")
        if is_update:
            self.version = F("version") + 1
            if update_fields is not None:
                kwargs["update_fields"] = _with_field(update_fields, "version")
        using = kwargs.get("using") or self._state.db or "default"
        if not is_update:
            super().save(*args, **kwargs)
            return
        # One transaction so the version read back is the one this save wrote.
        with transaction.atomic(using=using, savepoint=False):
            super().save(*args, **kwargs)
            written: Any = self.version
            # Django 6 reads expressions back itself on backends with RETURNING.
            if isinstance(written, Combinable):
                self.refresh_from_db(using=using, fields=["version"])


class TimestampedModel(models.Model):
    """A modification time, set on every save and on ``QuerySet.update()``.

    Microsecond precision, taken from the application's clock when the write
    is sent, so never later than now. It is advisory (``Last-Modified``):
    freshness comes from versions and change stamps, not clocks.
    """

    modified = models.DateTimeField(
        default=timezone.now,
        editable=False,
        db_index=True,
        help_text="When the row was last written.",
    )

    objects = VersionedManager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, setting ``modified`` to now (also with ``update_fields``)."""
        self.modified = timezone.now()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = _with_field(update_fields, "modified")
        super().save(*args, **kwargs)


class TrackedModel(TimestampedModel, VersionedModel):
    """Both a version counter and a modification time."""

    class Meta:
        abstract = True


def _with_field(update_fields: Any, name: str) -> list[str]:
    fields = list(update_fields)
    if name not in fields:
        fields.append(name)
    return fields


class ChangeStamp(models.Model):
    """The current stamp of one table in this database (the database stamp store).

    A stamp is a random token replaced after every committed write to its
    table, never a counter or a clock: a token never comes back, so a
    validator cached under an old token can never be mistaken for current,
    even after the row is lost or the table flushed.
    """

    table = models.CharField(max_length=255, primary_key=True)
    token = models.BigIntegerField()

    class Meta:
        verbose_name = "change stamp"
        verbose_name_plural = "change stamps"

    def __str__(self) -> str:
        return f"{self.table}: {self.token}"
