"""Which database tables hold a model's data, and which stamps a write to a table moves.

Shared by the tracking (what a write moves), the validators (what a view
reads) and the triggers (what raw SQL moves), so the three always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.apps import apps
from django.db import models

__all__ = [
    "TableInfo",
    "clear_registry",
    "deletion_stamp",
    "model_tables",
    "models_by_table",
    "table_info",
    "tables_for_models",
]


@dataclass(frozen=True, slots=True)
class TableInfo:
    """What the tracking needs to know about one table."""

    # Stamps moved by a write to this table: itself and, for a many-to-many
    # through table, the tables of both ends, so that a view depending on
    # either model sees the relation change.
    moves: frozenset[str]
    # Columns the tracking maintains on every UPDATE of this table.
    version_column: str | None = None
    modified_column: str | None = None


def deletion_stamp(table: str) -> str:
    """The name of a table's second stamp, moved by every change row versions cannot show.

    A versioned row is identified by its primary key and version, and a
    primary key used again after a delete (slugs, codes, UUIDs the
    application chooses) starts again at version 1. Validators that
    fingerprint versioned rows one by one therefore also include this stamp.
    It moves on DELETE, TRUNCATE, REPLACE and MERGE above all, and on any
    write whose version increments could not be added (several statements
    in one string, a writable CTE, ``touch()`` of a whole model): rarer than
    updates, so a write that only updates or inserts rows off the page
    still keeps its 304.
    """
    return f"{table}#deleted"


def model_tables(model: type[models.Model]) -> tuple[str, ...]:
    """The tables holding ``model``'s rows: its own and its concrete parents'.

    A proxy model reads its concrete model's table; a multi-table child also
    reads every parent's table, where its inherited fields live.
    """
    concrete = model._meta.concrete_model or model
    tables = [concrete._meta.db_table]
    tables.extend(parent._meta.db_table for parent in concrete._meta.get_parent_list())
    return tuple(dict.fromkeys(tables))


def tables_for_models(
    models_: list[type[models.Model]] | tuple[type[models.Model], ...],
) -> tuple[str, ...]:
    """The tables of several models, each once, in a stable order."""
    tables: dict[str, None] = {}
    for model in models_:
        tables.update(dict.fromkeys(model_tables(model)))
    return tuple(sorted(tables))


def table_info(table: str) -> TableInfo:
    """What a write to ``table`` moves and maintains (tables Django does not know: itself only)."""
    info = _registry().get(table)
    return info if info is not None else TableInfo(moves=frozenset({table}))


def clear_registry() -> None:
    """Forget the registry (after models change, e.g. in tests)."""
    _registry.cache_clear()
    models_by_table.cache_clear()


@lru_cache(maxsize=1)
def models_by_table() -> dict[str, type[models.Model]]:
    """Each table's concrete model (many-to-many through models included)."""
    return {
        model._meta.db_table: model
        for model in apps.get_models(include_auto_created=True)
        if not model._meta.proxy
    }


@lru_cache(maxsize=1)
def _registry() -> dict[str, TableInfo]:
    from django_conditional.models import TimestampedModel, VersionedModel

    moves: dict[str, set[str]] = {}
    version_columns: dict[str, str] = {}
    modified_columns: dict[str, str] = {}
    for model in apps.get_models(include_auto_created=True):
        opts = model._meta
        if opts.proxy:
            continue
        moves.setdefault(opts.db_table, {opts.db_table})
        for m2m in opts.local_many_to_many:
            through: Any = m2m.remote_field.through
            related: Any = m2m.related_model
            ends = {opts.db_table, related._meta.db_table}
            moves.setdefault(through._meta.db_table, {through._meta.db_table}).update(ends)
        if issubclass(model, VersionedModel):
            version: Any = opts.get_field("version")
            version_columns[version.model._meta.db_table] = version.column
        if issubclass(model, TimestampedModel):
            modified: Any = opts.get_field("modified")
            modified_columns[modified.model._meta.db_table] = modified.column
    return {
        table: TableInfo(
            moves=frozenset(moved),
            version_column=version_columns.get(table),
            modified_column=modified_columns.get(table),
        )
        for table, moved in moves.items()
    }
