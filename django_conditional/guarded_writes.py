"""The write behind a passed precondition, made one step with its check.

A precondition of an unsafe request (If-Match, If-Unmodified-Since) is
evaluated against the row the validator was derived from. Evaluating it and
then running the view would be check-then-write: two clients holding the
same tag would both pass, and the second would silently overwrite the
first. Instead the view runs in a transaction that first *claims* the row
with one statement, atomic on every database:

    UPDATE t SET version = version WHERE pk = <pk> AND version = <seen>

It matches only while the row is still at the version whose tag the client
sent, and it holds the row's write lock until the transaction ends, so a
concurrent claim waits and then finds the version moved (PostgreSQL
re-evaluates the WHERE on the new row, InnoDB's UPDATE reads the latest
committed row, SQLite has one writer at a time). Zero rows means someone else
won: nothing is written and the answer is 412. When the view succeeds without
moving the version itself (it wrote only related rows, or nothing the
version shows), the version is moved before the commit, so that no one
holding the old tag can follow.

A model without a version counter is claimed with a lock of its row (an
UPDATE that changes nothing), after which the caller derives the validator
again and evaluates the precondition a second time, under the lock.

``If-None-Match: *`` (create only if absent) runs the view in a transaction
too: a row created meanwhile makes the view's INSERT fail on its unique key,
which is rolled back and answered 412.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Model
from django.http.response import HttpResponseBase

__all__ = ["ClaimedWrite", "SeenRow", "create_only", "run_claimed"]


@dataclass(frozen=True, slots=True)
class SeenRow:
    """The row a passed precondition was evaluated against."""

    model: type[Model]
    pk: Any
    using: str
    # Its version then; None for a model without a version counter.
    version: int | None

    @classmethod
    def of(cls, instance: Model) -> SeenRow:
        """The row ``instance`` was read from, at the version it was read at."""
        # Imported on first use: the decorators import this module before setup().
        from django_conditional.derivation import is_versioned

        model = type(instance)
        version = getattr(instance, "version", None) if is_versioned(model) else None
        return cls(model, instance.pk, instance._state.db or "default", version)

    def _rows(self) -> Any:
        return self.model._base_manager.using(self.using).filter(pk=self.pk)

    def claim(self) -> bool:
        """Lock the row if it is still as seen: one UPDATE that changes nothing."""
        # Assigning the tracked columns to themselves: tracking then adds no
        # increment, and VersionedQuerySet's update is not this manager's.
        pk_name = self.model._meta.pk.name
        assignments: dict[str, Any] = {pk_name: F(pk_name)}
        rows = self._rows()
        if self.version is not None:
            assignments = {"version": F("version")}
            rows = rows.filter(version=self.version)
        from django_conditional.models import TimestampedModel

        if issubclass(self.model, TimestampedModel):
            assignments["modified"] = F("modified")
        return bool(rows.update(**assignments))

    def current_version(self) -> int | None:
        """The row's version now (inside the claim's transaction), None once deleted."""
        version: int | None = self._rows().values_list("version", flat=True).first()
        return version

    def move_version(self) -> None:
        """Increment the version (tracking moves ``modified`` with it)."""
        self._rows().update(version=F("version") + 1)


@dataclass(frozen=True, slots=True)
class ClaimedWrite:
    """The view's response after a claimed write, and the version it left (None: deleted)."""

    response: HttpResponseBase
    version: int | None


def run_claimed(
    seen: SeenRow,
    call_view: Callable[[], HttpResponseBase],
    *,
    recheck: Callable[[], bool] | None = None,
) -> ClaimedWrite | None:
    """Run ``call_view`` with the row claimed; None (nothing written) when it changed.

    ``recheck``, for a row without a version: evaluate the precondition
    again once the row is locked (True: it still passes). An exception from
    the view rolls everything back; a response is committed whatever its
    status, as Django's ``ATOMIC_REQUESTS`` would, but only a success (below
    400) moves a version the view left unmoved: a refused edit (a form
    error, a 400) leaves the client's tag valid for its corrected retry.
    """
    with transaction.atomic(using=seen.using):
        if not seen.claim() or (recheck is not None and not recheck()):
            return None
        response = call_view()
        if seen.version is None:
            return ClaimedWrite(response, None)
        version = seen.current_version()
        if version == seen.version and response.status_code < 400:
            seen.move_version()
            version += 1  # the row is ours until the commit: no one else moved it
        return ClaimedWrite(response, version)


def create_only(using: str, call_view: Callable[[], HttpResponseBase]) -> HttpResponseBase | None:
    """Run ``call_view`` for ``If-None-Match: *``; None: its INSERT met a row created meanwhile."""
    try:
        with transaction.atomic(using=using):
            return call_view()
    except IntegrityError:
        return None
