"""A database aggregate that fingerprints a set of rows in one query.

``RowHashSum`` sums a 64-bit hash of each row's key text (primary key and
version) over the rows a queryset selects. Any insert,
delete or version change among them changes the sum, except with
probability about 2**-64; the order of rows does not matter, which is what
an unsliced set needs. Computed by the database (PostgreSQL, MariaDB/MySQL)
or, on SQLite, by an aggregate function registered on each connection.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.models import Aggregate, CharField, Expression, Value
from django.db.models.functions import Cast, Concat
from django.db.models.sql.compiler import SQLCompiler
from django.dispatch import receiver

__all__ = ["RowHashSum", "row_key_text"]

_SQLITE_FUNCTION = "django_conditional_hash_sum"


def row_key_text(*fields: str) -> Expression:
    """``field1:field2:...`` as text, the input of :class:`RowHashSum`."""
    parts: list[Any] = []
    for index, name in enumerate(fields):
        if index:
            parts.append(Value(":"))
        parts.append(Cast(name, output_field=CharField()))
    if len(parts) == 1:
        return parts[0]  # type: ignore[no-any-return]
    return Concat(*parts, output_field=CharField())


class RowHashSum(Aggregate):
    """The sum of a 64-bit hash of each row's key text (see the module docstring)."""

    name = "RowHashSum"
    function = "SUM"
    output_field = CharField()

    # Django calls as_<vendor>() where one exists: one template per database.
    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> Any:
        # hashtextextended is PostgreSQL's 64-bit text hash; numeric sums exactly.
        template = "SUM(hashtextextended(%(expressions)s, 0)::numeric)::text"
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def as_mysql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> Any:
        # The first 64 bits of MD5 as an unsigned integer; SUM is an exact DECIMAL.
        template = (
            "CAST(SUM(CAST(CONV(SUBSTRING(MD5(%(expressions)s), 1, 16), 16, 10) "
            "AS UNSIGNED)) AS CHAR)"
        )
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> Any:
        template = f"{_SQLITE_FUNCTION}(%(expressions)s)"
        return self.as_sql(compiler, connection, template=template, **extra_context)


class _SQLiteHashSum:
    """SQLite's aggregate: the sum, modulo 2**64, of each value's 64-bit BLAKE2b."""

    def __init__(self) -> None:
        self.total = 0

    def step(self, value: object) -> None:
        digest = hashlib.blake2b(str(value).encode(), digest_size=8).digest()
        self.total = (self.total + int.from_bytes(digest, "big")) % (1 << 64)

    def finalize(self) -> str:
        return str(self.total)


@receiver(connection_created)
def _register_sqlite_function(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate(_SQLITE_FUNCTION, 1, _SQLiteHashSum)
