"""Derive validators from data: an object, a queryset, the models a view depends on.

One family of functions used by every way in. The order is always: read
the stamps, then compute, then cache the result under the stamps that were
read (DESIGN.md); a validator found in the cache is used only while every
stamp it was computed under is unchanged, so a write since, in any process,
means one recomputation. Reads the ORM, never writes it (except a stamp
row the first time a table is read), never reads a request.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Page
from django.db import connections
from django.db.models import Count, Model, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import Http404

from django_conditional import validator_cache
from django_conditional.aggregates import RowHashSum, row_key_text
from django_conditional.stamp_errors import StampsUnavailable
from django_conditional.stamps import date_is_settled, read_stamps, stamps_date
from django_conditional.tables import (
    deletion_stamp,
    model_tables,
    models_by_table,
    tables_for_models,
)
from django_conditional.validators import Validator, keyed_tag

__all__ = [
    "Derivation",
    "Derived",
    "derive",
    "is_versioned",
    "last_changed",
]

logger = logging.getLogger("django_conditional")

QuerysetFactory = Callable[[], "QuerySet[Any]"]


@dataclass(frozen=True)
class Derivation:
    """What one validator is derived from.

    Exactly the things a page shows must be named: the ``queryset`` (its
    rows, or one row when ``single`` is true) and the models in
    ``depends_on`` (any write to them changes the tag). ``salts`` are the
    request-independent strings that distinguish variants of a page (view,
    user, language, deploy): the caller computes them.
    """

    queryset: QuerysetFactory | None = None
    single: bool = False
    # Paginates the queryset (after the stamps are read); the page's rows and
    # the total count are fingerprinted, since both show on the page.
    paginate: Callable[[QuerySet[Any]], Page[Any]] | None = None
    depends_on: tuple[type[Model], ...] = ()
    salts: tuple[str, ...] = ()
    weak: bool | None = None
    using: str | None = None


@dataclass
class Derived:
    """A derived validator and what was fetched to compute it, for the view to reuse."""

    validator: Validator
    object: Model | None = None
    rows: list[Model] | None = None
    queryset: QuerySet[Any] | None = None
    page: Page[Any] | None = None
    cached: bool = False
    # The stamps read to compute it, by table (empty when it came from the cache).
    stamps: dict[str, int] = field(default_factory=dict)


def is_versioned(model: type[Model]) -> bool:
    """Whether ``model`` keeps a version counter (``VersionedModel``)."""
    from django_conditional.models import VersionedModel

    return issubclass(model, VersionedModel)


def derive(derivation: Derivation, *, cache_key: Sequence[str] | None = None) -> Derived:
    """The validator for ``derivation``, kept while its stamps are unchanged.

    ``cache_key`` identifies the request's variant (view, URL, salts);
    without it nothing is kept. Inside a transaction nothing is kept either:
    its reads may come from a snapshot older than the stamps (MySQL's
    REPEATABLE READ) or see its own uncommitted writes.

    Raises ``StampsUnavailable`` when the stamps cannot be read now: the
    caller serves the page without validators.
    """
    variant = None if cache_key is None else tuple(cache_key)
    # A validator from stamps alone costs one stamp read and a hash: kept in
    # this process only, where it saves the hash (validator_cache).
    shared = derivation.queryset is not None
    previous: Validator | None = None
    if variant is not None:
        validator = validator_cache.lookup(variant, shared=shared)
        if validator is not None:
            return Derived(validator=validator, cached=True)
        previous = validator_cache.kept(variant)
    queryset = derivation.queryset() if derivation.queryset is not None else None
    alias = derivation.using or (queryset.db if queryset is not None else "default")
    tables, tagged_tables = _stamped_tables(derivation, queryset)
    stamps = read_stamps(alias, tables)
    # Settled now, right after the read: what _compute reads comes after it.
    last_modified = stamps_date(alias, stamps)
    settled = last_modified is not None and date_is_settled(alias, last_modified)
    stamp_of = dict(zip(tables, stamps, strict=True))
    derived = _compute(derivation, queryset, [(t, stamp_of[t]) for t in tagged_tables])
    derived.stamps = stamp_of
    etag = derived.validator.etag
    if previous is not None and previous.etag == etag and previous.last_modified is not None:
        # The stamps moved for rows the page does not show: the tag is the same, so
        # is the page, and so is its date (the stamps' newest move would be later,
        # and clients revalidating by date alone would be sent the page again).
        derived.validator = validator_cache.settle(alias, previous)
    else:
        derived.validator = Validator(
            etag=etag, last_modified=_as_datetime(last_modified), last_modified_settled=settled
        )
    kept = False
    if variant is not None and not connections[alias].in_atomic_block:
        entry = validator_cache.Entry(alias, tables, stamps, derived.validator)
        validator_cache.store(variant, entry, shared=shared)
        kept = True
    logger.debug(
        "Derived %s from %s (%s)", derived.validator.etag, tables, "kept" if kept else "not kept"
    )
    return derived


def last_changed(*models: type[Model], using: str = "default") -> dt.datetime | None:
    """When any of ``models`` last changed: an exact date for Django-style ``condition``.

    The newest move of the models' change stamps (every write path moves
    them, deletions included), as an aware UTC datetime, or None while it
    cannot be sent: within the second it names, inside a transaction whose
    snapshot may be older, with a stamp store that has no clock every
    process shares, or while the stamps cannot be read (the store is down
    or a write to the models is in flight). One stamp read (none from a
    mirror or local memory)::

        @condition(last_modified_func=lambda request: last_changed(Article))
    """
    tables = tuple(sorted({table for model in models for table in _all_stamps(model)}))
    try:
        stamps = read_stamps(using, tables)
    except StampsUnavailable:
        return None
    last_modified = stamps_date(using, stamps)
    if last_modified is None or not date_is_settled(using, last_modified):
        return None
    return _as_datetime(last_modified)


def _as_datetime(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


def _all_stamps(model: type[Model]) -> tuple[str, ...]:
    """A model's tables' stamps and their deletion stamps (what its rows' changes move)."""
    own = model_tables(model)
    return (*own, *(deletion_stamp(table) for table in own))


def _stamped_tables(
    derivation: Derivation, queryset: QuerySet[Any] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The stamps to read, and those of them that go into the tag itself.

    All of them guard the cached validator. Only the stamps of what is not
    fingerprinted row by row go into the tag: ``depends_on`` models, related
    models the queryset brings along, a model without versions, and the
    deletion stamps of a versioned model (see ``tables.deletion_stamp``).
    """
    tagged = set(tables_for_models(derivation.depends_on))
    read = set(tagged)
    if queryset is not None:
        own = model_tables(queryset.model)
        related = tables_for_models(_joined_models(queryset))
        read.update(own, related)
        tagged.update(related)
        if is_versioned(queryset.model):
            deletions = {deletion_stamp(table) for table in own}
            read |= deletions
            tagged |= deletions
        else:
            tagged.update(own)
    return tuple(sorted(read)), tuple(sorted(tagged))


def _compute(
    derivation: Derivation,
    queryset: QuerySet[Any] | None,
    tagged_stamps: list[tuple[str, int]],
) -> Derived:
    """Compute the entity tag from the data (after the stamps were read).

    The validator returned holds the tag only: its date is the stamps' (``derive``).
    """
    parts: list[object] = ["salts", *derivation.salts]
    derived = Derived(validator=Validator())
    weak = True if derivation.weak is None else derivation.weak
    if queryset is not None:
        model = queryset.model
        if derivation.single:
            obj = _fetch_one(queryset)
            derived.object = obj
            parts += ["object", *_row_key(obj)]
            weak = False if derivation.weak is None else derivation.weak
        elif derivation.paginate is not None:
            page = derivation.paginate(queryset)
            rows = list(page.object_list)
            page.object_list = rows
            derived.page, derived.rows = page, rows
            parts += ["page", page.paginator.count, page.number]
            _fingerprint_rows(rows, parts)
        elif queryset.query.is_sliced:
            rows = list(queryset)
            derived.rows = rows
            _fingerprint_rows(rows, parts)
        elif is_versioned(model):
            fingerprint = _aggregate(queryset)
            derived.queryset = queryset
            parts += ["set", *fingerprint]
        else:
            derived.queryset = queryset
            parts += ["table", model._meta.label]
    for table, stamp in tagged_stamps:
        parts += [table, stamp]
    derived.validator = Validator(etag=keyed_tag(parts, weak=weak))
    return derived


def _fingerprint_rows(rows: list[Model], parts: list[object]) -> None:
    """Add each row's key, in order, to ``parts``."""
    parts += ["rows", len(rows)]
    for row in rows:
        parts.extend(_row_key(row))


def _row_key(row: Model) -> tuple[object, ...]:
    """What identifies one row's current state: its primary key and version.

    A primary key used again after a delete starts again at version 1; the
    table's deletion stamp, also in the tag, tells those apart.
    """
    if is_versioned(type(row)):
        return (row.pk, row.version)  # type: ignore[attr-defined]
    return (row.pk,)


def _fetch_one(queryset: QuerySet[Any]) -> Model:
    try:
        return queryset.get()  # type: ignore[no-any-return]
    except queryset.model.DoesNotExist as error:
        raise Http404(f"No {queryset.model._meta.object_name} matches the given query.") from error


def _aggregate(queryset: QuerySet[Any]) -> tuple[object, ...]:
    """Count and row-hash sum of an unsliced queryset: one query."""
    values = queryset.order_by().aggregate(
        count=Count("pk"), fingerprint=RowHashSum(row_key_text("pk", "version"))
    )
    count = values["count"]
    fingerprint = values["fingerprint"] if count else "0"
    return (count, str(fingerprint))


def _joined_models(queryset: QuerySet[Any]) -> list[type[Model]]:
    """Models besides its own whose rows the queryset reads or brings along.

    Joins made by filters across relations, ``select_related`` and
    ``prefetch_related`` (many-to-many through models included): what they
    bring along shows on the page as surely as the queryset's own rows.
    """
    query = queryset.query
    base_model = queryset.model
    found: dict[type[Model], None] = {}
    select_related = query.select_related
    if select_related is True:
        # select_related() with no fields: only compiling tells which joins it makes.
        query = query.clone()
        query.get_compiler(queryset.db).as_sql()
    elif isinstance(select_related, dict):
        _walk_select_related(base_model, select_related, found)
    by_table = models_by_table()
    base_table = base_model._meta.db_table
    for join in query.alias_map.values():
        table = getattr(join, "table_name", None)
        if table and table != base_table and table in by_table:
            found[by_table[table]] = None
    for lookup in queryset._prefetch_related_lookups:  # type: ignore[attr-defined]
        path = getattr(lookup, "prefetch_through", lookup)
        _walk_path(base_model, str(path).split(LOOKUP_SEP), found)
        inner = getattr(lookup, "queryset", None)
        if inner is not None:
            found[inner.model] = None
            found.update(dict.fromkeys(_joined_models(inner)))
    found.pop(base_model, None)
    return list(found)


def _walk_select_related(
    model: type[Model], fields: dict[str, Any], found: dict[type[Model], None]
) -> None:
    for name, nested in fields.items():
        related = _related_model(model, name, found)
        if related is not None and nested:
            _walk_select_related(related, nested, found)


def _walk_path(model: type[Model] | None, parts: list[str], found: dict[type[Model], None]) -> None:
    for part in parts:
        if model is None:
            return
        model = _related_model(model, part, found)


def _related_model(
    model: type[Model], name: str, found: dict[type[Model], None]
) -> type[Model] | None:
    """The model across relation ``name`` (recorded in ``found``, with any through model)."""
    try:
        field: Any = model._meta.get_field(name)
    except FieldDoesNotExist:
        return None  # a prefetch to a GenericForeignKey or a property: not a table we know
    related: Any = getattr(field, "related_model", None)
    if related is None or isinstance(related, str):
        return None
    found[related] = None
    through = getattr(getattr(field, "remote_field", None), "through", None)
    if through is not None and not isinstance(through, str):
        found[through] = None
    return related  # type: ignore[no-any-return]
