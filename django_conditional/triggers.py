"""Opt-in database triggers that move change stamps for writes Django never sees.

Builds the SQL for PostgreSQL, MariaDB/MySQL and SQLite, runs it, and reads
the catalogs to say which tables have the triggers. Tracking layer: imports the
ORM and ``tables``, never the integration layer.

A write from another service, ``psql`` or a cron job bypasses the execute
wrapper in ``tracking``, so without a trigger its table's stamp would not move
and a page built from the old rows could still be answered 304. Each trigger
upserts a fresh random token into ``django_conditional_changestamp`` (the
database stamp store) inside the writing transaction: the stamp moves exactly
when the rows do, and a rolled-back write moves nothing. The stamps moved
are those ``tracking`` moves for the same write through the ORM: a through
table's also moves the stamps of the tables at both ends (``tables.table_info``),
and a DELETE (or TRUNCATE) also moves the table's deletion stamp
(``tables.deletion_stamp``).

A versioned table (``tables.table_info(table).version_column``) gets one more
trigger, so that a raw UPDATE moves each row's version as ``tracking`` does for
the ORM's: a row-level trigger adds 1 to the version of each updated row whose
UPDATE left the version as it was. An UPDATE that sets the version itself (the
ORM's ``version = version + 1``) keeps its value, so nothing is counted twice;
no trigger can see an UPDATE's SET list, so setting the version to the value it
already has counts as leaving it alone and moves it all the same. Limits:

- Multi-table inheritance: the version lives in the parent's table, so a raw
  UPDATE of only a child's table moves the stamps but no version (as for raw
  SQL through Django's own cursor).
- The trigger names the version column. Before a migration drops or renames
  it, run ``conditional_triggers uninstall`` on the model (and install again
  after a rename): MariaDB/MySQL would otherwise fail every later UPDATE of the
  table, PostgreSQL every UPDATE after a rename (a drop removes the trigger with
  the column), and SQLite refuses to drop the column.

Costs, per backend:

- PostgreSQL: two statement-level triggers per table (INSERT or UPDATE;
  DELETE or TRUNCATE) calling one shared function, so a bulk write moves
  each stamp once, whatever the number of rows. A versioned table's
  row-level trigger compares the versions in its WHEN clause, so the ORM's
  updates never call its function.
- MariaDB/MySQL and SQLite have no statement-level triggers: three row-level
  triggers per table, so a statement writing N rows upserts N times. On
  SQLite, which cannot assign to NEW, each row a raw UPDATE leaves at its
  version is updated a second time, which upserts its stamp again.

Everywhere the upsert locks the table's stamp row until the writing
transaction ends, so concurrent transactions writing the same table queue on
it, and two that write two tables in opposite orders can deadlock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from django_conditional.stamps import following_token_sql, token_sql
from django_conditional.tables import deletion_stamp, model_tables, table_info

__all__ = [
    "FUNCTION_NAME",
    "STAMP_TABLE",
    "SUPPORTED_VENDORS",
    "TRIGGER_PREFIX",
    "VERSION_EVENT",
    "install",
    "install_sql",
    "install_statements",
    "installed_tables",
    "moved_stamps",
    "trigger_names",
    "triggers_by_table",
    "uninstall",
    "uninstall_all",
    "uninstall_statements",
    "version_columns",
    "written_tables_for_models",
]

QuoteName = Callable[[str], str]

# The ChangeStamp model's table. A literal rather than ChangeStamp._meta.db_table
# so that building SQL never needs the app registry; a test keeps them equal.
STAMP_TABLE = "django_conditional_changestamp"

# Every trigger name starts with this, so the catalog queries can tell ours apart.
TRIGGER_PREFIX = "dcond_"

# PostgreSQL's shared trigger function.
FUNCTION_NAME = "django_conditional_move_stamp"

SUPPORTED_VENDORS = ("postgresql", "mysql", "sqlite")

# PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1), MySQL refuses
# more than 64 characters; names are ASCII, so 63 suits all three.
MAX_NAME_LENGTH = 63

# Trigger name suffix -> the SQL events it fires on. PostgreSQL's statement-level
# triggers can share one for several events; the others need one per event.
# Deletions get their own, since they also move the table's deletion stamp.
_EVENTS: dict[str, dict[str, str]] = {
    "postgresql": {"write": "INSERT OR UPDATE", "delete": "DELETE OR TRUNCATE"},
    "mysql": {"insert": "INSERT", "update": "UPDATE", "delete": "DELETE"},
    "sqlite": {"insert": "INSERT", "update": "UPDATE", "delete": "DELETE"},
}

# The name suffix of the row-level trigger that moves a versioned table's versions.
VERSION_EVENT = "version"

_VERSION_TRIGGER = re.compile(rf"{TRIGGER_PREFIX}[0-9a-f]{{8}}_{VERSION_EVENT}(?:_|\Z)")

# Tokens dated by the database's clock when the writing statement runs (see
# stamps.token_sql): a trigger fires before its transaction commits, so an
# outside transaction that commits in a later second than its statement ran
# dates its change that much early (README, "Writes from outside Django").
_TOKEN_SQL: dict[str, str] = {
    vendor: token_sql(vendor) for vendor in ("postgresql", "mysql", "sqlite")
}


# (table, trigger name) for every trigger in the connection's current database.
_CATALOG_SQL: dict[str, str] = {
    # pg_table_is_visible: only tables the search path finds, as Django does.
    "postgresql": (
        "SELECT c.relname, t.tgname FROM pg_catalog.pg_trigger t "
        "JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid "
        "WHERE NOT t.tgisinternal AND pg_catalog.pg_table_is_visible(c.oid)"
    ),
    "mysql": (
        "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME FROM information_schema.TRIGGERS "
        "WHERE TRIGGER_SCHEMA = DATABASE()"
    ),
    "sqlite": "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'",
}


# --- Names ------------------------------------------------------------------------


def trigger_names(vendor: str, table: str, *, versioned: bool = False) -> tuple[str, ...]:
    """The names of ``table``'s triggers on ``vendor``: one per event, two on PostgreSQL.

    A ``versioned`` table has one more, last, that moves its versions (event
    ``version``). ``dcond_<8 hex digits of the name's SHA-1>_<event>_<table>``,
    the table part lowercased, reduced to letters, digits and underscores, and
    cut to keep the whole within 63 characters. Deterministic, so uninstalling
    needs no state; the hash keeps names of different tables apart even when
    the readable part is cut or folded (MySQL and SQLite scope trigger names to
    the whole database, not to a table).
    """
    events = [*_EVENTS[_check_vendor(vendor)], *([VERSION_EVENT] if versioned else [])]
    return tuple(_trigger_name(table, event) for event in events)


def _trigger_name(table: str, event: str) -> str:
    digest = hashlib.sha1(table.encode(), usedforsecurity=False).hexdigest()[:8]
    name = f"{TRIGGER_PREFIX}{digest}_{event}"
    readable = re.sub(r"[^a-z0-9]+", "_", table.lower()).strip("_")
    room = MAX_NAME_LENGTH - len(name) - 1
    readable = readable[:room].rstrip("_")
    return f"{name}_{readable}" if readable else name


# --- Building the SQL -------------------------------------------------------------


def install_statements(
    vendor: str,
    tables: Iterable[str],
    quote_name: QuoteName,
    *,
    moves: Mapping[str, Collection[str]] | None = None,
    versions: Mapping[str, str] | None = None,
    schema: str | None = None,
) -> list[str]:
    """The SQL that installs (or replaces) the triggers on ``tables``, in order.

    ``quote_name`` is the backend's ``connection.ops.quote_name``. ``moves``
    maps a table to the stamps a write to it moves (besides its own), such as
    a through table's two ends; a DELETE or TRUNCATE also moves the table's
    deletion stamp. ``versions`` maps each versioned table to its version
    column, which then also gets the trigger that moves it on raw UPDATEs.
    ``schema`` is where the stamp table lives on PostgreSQL (see ``install``,
    which finds all three). Running the result again replaces the triggers,
    so installing twice is harmless.

    Raises ``ImproperlyConfigured`` for a database other than PostgreSQL,
    MariaDB/MySQL and SQLite, and ``ValueError`` for the stamp table itself.
    """
    vendor = _check_vendor(vendor)
    tables = _check_tables(vendor, tables)
    if not tables:
        return []
    moved = {table: _moved(table, moves) for table in tables}
    columns = {table: versions[table] for table in tables if versions and table in versions}
    if vendor == "postgresql":
        return _postgresql_install(tables, moved, columns, quote_name, schema)
    return _row_trigger_install(vendor, tables, moved, columns, quote_name)


def uninstall_statements(
    vendor: str,
    tables: Iterable[str],
    quote_name: QuoteName,
    *,
    schema: str | None = None,
) -> list[str]:
    """The SQL that drops the triggers on ``tables``; those not there are skipped.

    Versioned or not, each table's version trigger is dropped too. On
    PostgreSQL it also drops the version triggers' functions, and the shared
    function once no trigger uses it any more, so uninstalling every table
    leaves nothing behind.
    """
    vendor = _check_vendor(vendor)
    tables = _check_tables(vendor, tables)
    pairs = [
        (table, name) for table in tables for name in trigger_names(vendor, table, versioned=True)
    ]
    return _drop_statements(vendor, pairs, quote_name, schema)


def _drop_statements(
    vendor: str,
    pairs: Iterable[tuple[str, str]],
    quote_name: QuoteName,
    schema: str | None,
) -> list[str]:
    """Drop each (table, trigger name), then the shared function if no trigger uses it."""
    statements = _drop_triggers(vendor, pairs, quote_name, schema)
    if vendor != "postgresql":
        return statements
    function = _qualified(FUNCTION_NAME, quote_name, schema)
    signature = _postgresql_literal(f"{function}()")
    statements.append(
        "DO $$\nBEGIN\n"
        f"    IF to_regprocedure({signature}) IS NOT NULL AND NOT EXISTS (\n"
        "        SELECT 1 FROM pg_catalog.pg_trigger\n"
        f"        WHERE tgfoid = to_regprocedure({signature})\n"
        "    ) THEN\n"
        f"        DROP FUNCTION {function}();\n"
        "    END IF;\n"
        "END\n$$"
    )
    return statements


def _drop_triggers(
    vendor: str,
    pairs: Iterable[tuple[str, str]],
    quote_name: QuoteName,
    schema: str | None,
) -> list[str]:
    """Drop each (table, trigger name); PostgreSQL scopes trigger names to a table.

    On PostgreSQL a version trigger's function, named as the trigger, goes too.
    """
    if vendor != "postgresql":
        return [f"DROP TRIGGER IF EXISTS {quote_name(name)}" for _, name in pairs]
    statements: list[str] = []
    for table, name in pairs:
        statements.append(f"DROP TRIGGER IF EXISTS {quote_name(name)} ON {quote_name(table)}")
        if _VERSION_TRIGGER.match(name):
            statements.append(f"DROP FUNCTION IF EXISTS {_qualified(name, quote_name, schema)}()")
    return statements


def _postgresql_install(
    tables: list[str],
    moved: dict[str, list[str]],
    versions: dict[str, str],
    quote_name: QuoteName,
    schema: str | None,
) -> list[str]:
    stamp_table = _qualified(STAMP_TABLE, quote_name, schema)
    function = _qualified(FUNCTION_NAME, quote_name, schema)
    # SECURITY DEFINER: the function runs as its owner (the role that installed
    # it), so other services need no privilege on the stamp table, as with
    # MySQL's DEFINER. A definer function must pin its search path: with the
    # schema known, pg_temp goes last so that no session's temporary table can
    # stand in for the stamp table; without it, the installing session's path.
    setting = "SET search_path = pg_catalog, pg_temp" if schema else "SET search_path FROM CURRENT"
    column, token = quote_name("table"), quote_name("token")
    # TG_ARGV carries the other stamps a write moves (a through table's ends,
    # the deletion stamp); DISTINCT because ON CONFLICT DO UPDATE may not touch
    # a row twice; ORDER BY in code point order, as tracking sorts in Python, so
    # that concurrent movers lock stamp rows in the same order.
    function_sql = (
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger\n"
        f"LANGUAGE plpgsql SECURITY DEFINER {setting} AS $$\n"
        "BEGIN\n"
        f"    INSERT INTO {stamp_table} ({column}, {token})\n"
        f"    SELECT moved.name, {_TOKEN_SQL['postgresql']}\n"
        "    FROM (\n"
        "        SELECT DISTINCT unnest(array_append(TG_ARGV, TG_TABLE_NAME::text)) AS name\n"
        "    ) AS moved\n"
        '    ORDER BY moved.name COLLATE "C"\n'
        f"    ON CONFLICT ({column}) DO UPDATE SET {token} = "
        f"{following_token_sql('postgresql', f'{stamp_table}.{token}', f'EXCLUDED.{token}')};\n"
        "    RETURN NULL;\n"
        "END\n"
        "$$"
    )
    statements = [function_sql]
    events = _EVENTS["postgresql"]
    for table in tables:
        for event, name in zip(events, trigger_names("postgresql", table), strict=True):
            arguments = ", ".join(
                _postgresql_literal(other)
                for other in _moved_by(table, event, moved)
                if other != table
            )
            # CREATE OR REPLACE TRIGGER (PostgreSQL 14, Django 5.2's minimum) takes
            # a weaker lock than DROP TRIGGER and leaves no moment without it.
            statements.append(
                f"CREATE OR REPLACE TRIGGER {quote_name(name)}\n"
                f"AFTER {events[event]} ON {quote_name(table)}\n"
                f"FOR EACH STATEMENT EXECUTE FUNCTION {function}({arguments})"
            )
        if table in versions:
            statements.extend(
                _postgresql_version_install(table, versions[table], quote_name, schema)
            )
    return statements


def _postgresql_version_install(
    table: str, column: str, quote_name: QuoteName, schema: str | None
) -> list[str]:
    """A function per table, named as its trigger, since plpgsql cannot name a column by value.

    A shared function taking the column in TG_ARGV would have to turn every
    updated row into jsonb (detoasting it) to read and set one field.
    """
    name = _trigger_name(table, VERSION_EVENT)
    function = _qualified(name, quote_name, schema)
    version = quote_name(column)
    # Not SECURITY DEFINER: it reads and writes no table, only the row being updated.
    # The test lives in the trigger's WHEN clause rather than the function: the
    # ORM's updates (which set the version) then never call the function, and the
    # trigger depends on the column, so Django's DROP COLUMN ... CASCADE removes it
    # with the column instead of leaving every later UPDATE failing.
    return [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger\n"
        "LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        f"    NEW.{version} := OLD.{version} + 1;\n"
        "    RETURN NEW;\n"
        "END\n"
        "$$",
        f"CREATE OR REPLACE TRIGGER {quote_name(name)}\n"
        f"BEFORE UPDATE ON {quote_name(table)}\n"
        f"FOR EACH ROW WHEN (NEW.{version} IS NOT DISTINCT FROM OLD.{version})\n"
        f"EXECUTE FUNCTION {function}()",
    ]


def _row_trigger_install(
    vendor: str,
    tables: list[str],
    moved: dict[str, list[str]],
    versions: dict[str, str],
    quote_name: QuoteName,
) -> list[str]:
    column, token = quote_name("table"), quote_name("token")
    random_token = _TOKEN_SQL[vendor]
    if vendor == "mysql":
        # VALUES(token), deprecated by MySQL 8.0.20, since MariaDB lacks its
        # replacement (a row alias); drawing the token again in each branch
        # could make it go down.
        following = following_token_sql(vendor, token, f"VALUES({token})")
        on_conflict = f"ON DUPLICATE KEY UPDATE {token} = {following}"
        literal = _mysql_literal
    else:
        following = following_token_sql(vendor, token, f"excluded.{token}")
        on_conflict = f"ON CONFLICT ({column}) DO UPDATE SET {token} = {following}"
        literal = _sqlite_literal
    statements: list[str] = []
    events = _EVENTS[vendor]
    for table in tables:
        for event, name in zip(events, trigger_names(vendor, table), strict=True):
            # Rows in name order, so that concurrent writers lock stamp rows in the same order.
            rows = ", ".join(
                f"({literal(stamp)}, {random_token})" for stamp in _moved_by(table, event, moved)
            )
            upsert = (
                f"INSERT INTO {quote_name(STAMP_TABLE)} ({column}, {token}) "
                f"VALUES {rows} {on_conflict}"
            )
            # A MySQL trigger body of one statement needs no BEGIN ... END, and so
            # no DELIMITER change in the mysql client; SQLite requires the block.
            body = upsert if vendor == "mysql" else f"BEGIN {upsert}; END"
            statements.append(f"DROP TRIGGER IF EXISTS {quote_name(name)}")
            statements.append(
                f"CREATE TRIGGER {quote_name(name)} AFTER {events[event]} ON {quote_name(table)} "
                f"FOR EACH ROW {body}"
            )
        if table in versions:
            name = _trigger_name(table, VERSION_EVENT)
            statements.append(f"DROP TRIGGER IF EXISTS {quote_name(name)}")
            statements.append(
                _row_version_trigger(vendor, name, table, versions[table], quote_name)
            )
    return statements


def _row_version_trigger(
    vendor: str, name: str, table: str, column: str, quote_name: QuoteName
) -> str:
    version, quoted_table = quote_name(column), quote_name(table)
    if vendor == "mysql":
        # IF() rather than an IF statement: a body without ";" needs no DELIMITER
        # change in the mysql client. <=> is NULL-safe equality.
        return (
            f"CREATE TRIGGER {quote_name(name)} BEFORE UPDATE ON {quoted_table} FOR EACH ROW "
            f"SET NEW.{version} = IF(NEW.{version} <=> OLD.{version}, OLD.{version} + 1, "
            f"NEW.{version})"
        )
    # SQLite cannot assign to NEW, so the trigger updates the row again, after.
    # That UPDATE sets the version, so this trigger's WHEN is false for it: it
    # cannot loop, even with PRAGMA recursive_triggers on (off by default, which
    # already keeps a trigger from firing itself). It does fire the table's other
    # triggers, the stamp upsert included; changes() and rowcount ignore it.
    # rowid: every table Django creates has one (none is WITHOUT ROWID).
    return (
        f"CREATE TRIGGER {quote_name(name)} AFTER UPDATE ON {quoted_table} FOR EACH ROW "
        f"WHEN NEW.{version} IS OLD.{version} BEGIN UPDATE {quoted_table} "
        f"SET {version} = OLD.{version} + 1 WHERE rowid = NEW.rowid; END"
    )


def _moved_by(table: str, event: str, moved: dict[str, list[str]]) -> list[str]:
    """The stamps one event moves: a deletion also moves the table's deletion stamp."""
    if event != "delete":
        return moved[table]
    return sorted({*moved[table], deletion_stamp(table)})


def _check_vendor(vendor: str) -> str:
    if vendor not in SUPPORTED_VENDORS:
        raise ImproperlyConfigured(
            f"Change stamp triggers are not available for the database vendor {vendor!r}; "
            f"expected one of {', '.join(map(repr, SUPPORTED_VENDORS))}. Writes that bypass "
            "Django must call django_conditional.tracking.touch() instead."
        )
    return vendor


def _check_tables(vendor: str, tables: Iterable[str]) -> list[str]:
    """Deduplicated tables, in order; refuses the stamp table and colliding names."""
    unique = list(dict.fromkeys(tables))
    if STAMP_TABLE in unique:
        raise ValueError(
            f"No trigger may be installed on the stamp table {STAMP_TABLE!r}: "
            "it would fire on its own writes."
        )
    owners: dict[str, str] = {}
    for table in unique:
        if vendor == "mysql" and "\\" in table:
            # A backslash means different things with and without NO_BACKSLASH_ESCAPES.
            raise ValueError(f"Table {table!r}: a name with a backslash is not supported on MySQL.")
        for name in trigger_names(vendor, table, versioned=True):
            other = owners.setdefault(name, table)
            if other != table:  # a 32-bit hash collision and the same readable part
                raise ValueError(
                    f"Tables {other!r} and {table!r} would share the trigger name {name!r}."
                )
    return unique


def _moved(table: str, moves: Mapping[str, Collection[str]] | None) -> list[str]:
    others = set(moves.get(table, ())) if moves is not None else set()
    return sorted((others | {table}) - {STAMP_TABLE})


def _qualified(name: str, quote_name: QuoteName, schema: str | None) -> str:
    return f"{quote_name(schema)}.{quote_name(name)}" if schema else quote_name(name)


def _postgresql_literal(value: str) -> str:
    # E'...' reads backslashes the same whatever standard_conforming_strings says.
    escaped = value.replace("'", "''")
    if "\\" in value:
        return "E'" + escaped.replace("\\", "\\\\") + "'"
    return f"'{escaped}'"


def _mysql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sqlite_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --- Running it -------------------------------------------------------------------


def install(
    connection: BaseDatabaseWrapper,
    tables: Iterable[str],
    *,
    moves: Mapping[str, Collection[str]] | None = None,
    versions: Mapping[str, str] | None = None,
) -> list[str]:
    """Install (or replace) the triggers on ``tables`` in ``connection``'s database.

    ``moves`` and ``versions`` (see ``install_statements``) default to what
    ``tables.table_info`` says for the current models, the same stamps and
    versions ``tracking`` moves for the ORM's writes; the migration operation
    passes its own, from the historical models. A version trigger the catalog
    shows on a table that is not versioned (any more) is dropped. Returns
    the statements run. Atomic where the database can roll back DDL
    (PostgreSQL, SQLite); on MySQL each statement commits on its own.

    Raises ``ImproperlyConfigured`` when the stamp table is missing: a trigger
    writing to a table that does not exist would make every write fail.
    """
    statements = _install_sql(connection, tables, moves, versions, required=True)
    _execute(connection, statements)
    return statements


def install_sql(
    connection: BaseDatabaseWrapper,
    tables: Iterable[str],
    *,
    moves: Mapping[str, Collection[str]] | None = None,
    versions: Mapping[str, str] | None = None,
) -> list[str]:
    """The statements ``install`` would run, for review or for a DBA to run by hand.

    Unlike ``install`` it works before the stamp table exists (on
    PostgreSQL the names are then left to the search path).
    """
    return _install_sql(connection, tables, moves, versions, required=False)


def _install_sql(
    connection: BaseDatabaseWrapper,
    tables: Iterable[str],
    moves: Mapping[str, Collection[str]] | None,
    versions: Mapping[str, str] | None,
    *,
    required: bool,
) -> list[str]:
    vendor = _check_vendor(connection.vendor)
    tables = _check_tables(vendor, tables)
    if not tables:
        return []
    if moves is None:
        moves = {table: table_info(table).moves for table in tables}
    if versions is None:
        versions = _current_versions(tables)
    schema = _stamp_table_schema(connection, required=required)
    quote_name = connection.ops.quote_name
    # A version trigger left on a table no longer versioned would still name the
    # column, which a migration may have dropped (MySQL then fails every UPDATE).
    found = triggers_by_table(connection)
    unversioned = [
        (table, _trigger_name(table, VERSION_EVENT)) for table in tables if table not in versions
    ]
    stale = [(table, name) for table, name in unversioned if name in found.get(table, ())]
    return [
        *_drop_triggers(vendor, stale, quote_name, schema),
        *install_statements(
            vendor, tables, quote_name, moves=moves, versions=versions, schema=schema
        ),
    ]


def _current_versions(tables: Iterable[str]) -> dict[str, str]:
    """Each versioned table's version column, as ``tracking`` sees the current models."""
    return {
        table: column
        for table in tables
        if (column := table_info(table).version_column) is not None
    }


def uninstall(connection: BaseDatabaseWrapper, tables: Iterable[str]) -> list[str]:
    """Drop the triggers on ``tables``, skipping those not installed; returns the statements.

    Also drops any other trigger of ours the catalog shows on these tables,
    such as one named for the table's name before a rename.
    """
    vendor = _check_vendor(connection.vendor)
    tables = _check_tables(vendor, tables)
    found = triggers_by_table(connection)
    pairs = {
        (table, name) for table in tables for name in trigger_names(vendor, table, versioned=True)
    }
    pairs |= {(table, name) for table in tables for name in found.get(table, ())}
    return _drop(connection, sorted(pairs))


def uninstall_all(connection: BaseDatabaseWrapper) -> list[str]:
    """Drop every trigger of ours in ``connection``'s database, whatever table it is on.

    For a clean slate: it also finds triggers left on renamed tables and on
    tables no model names any more, and on PostgreSQL the functions of
    version triggers that are gone (a DROP COLUMN ... CASCADE of the version
    column takes the trigger, not its function). Returns the statements run.
    """
    _check_vendor(connection.vendor)
    found = triggers_by_table(connection)
    pairs = sorted((t, name) for t, names in found.items() for name in names)
    return _drop(connection, pairs, orphans=True)


def _drop(
    connection: BaseDatabaseWrapper, pairs: list[tuple[str, str]], *, orphans: bool = False
) -> list[str]:
    schema = _stamp_table_schema(connection, required=False)
    quote_name = connection.ops.quote_name
    statements = _drop_statements(connection.vendor, pairs, quote_name, schema)
    if orphans and connection.vendor == "postgresql":
        dropped = {name for _, name in pairs}
        statements[-1:-1] = [
            f"DROP FUNCTION IF EXISTS {_qualified(name, quote_name, schema)}()"
            for name in _unused_version_functions(connection, schema)
            if name not in dropped
        ]
    _execute(connection, statements)
    return statements


def _unused_version_functions(connection: BaseDatabaseWrapper, schema: str | None) -> list[str]:
    """PostgreSQL: our version triggers' functions that no trigger uses, in the stamp schema."""
    where = "p.pronamespace = to_regnamespace(%s)" if schema else "pg_function_is_visible(p.oid)"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.proname FROM pg_catalog.pg_proc p "
            f"WHERE {where} AND p.prorettype = 'pg_catalog.trigger'::pg_catalog.regtype "
            "AND p.pronargs = 0 AND NOT EXISTS "
            "(SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgfoid = p.oid)",
            [connection.ops.quote_name(schema)] if schema else [],
        )
        names = [str(name) for (name,) in cursor.fetchall()]
    return sorted(name for name in names if _VERSION_TRIGGER.match(name))


def installed_tables(connection: BaseDatabaseWrapper) -> set[str]:
    """The tables of ``connection``'s database that have all of their triggers.

    Read from the catalog (``pg_trigger``, ``information_schema.TRIGGERS``,
    ``sqlite_master``), so it also sees triggers installed by a migration, by
    another process or from ``manage.py conditional_triggers sql`` output.
    A table missing one of its row-level triggers, carrying only triggers
    named for another table (renamed since), versioned (``tables.table_info``)
    without its version trigger, or not versioned with one, is not counted.
    """
    vendor = _check_vendor(connection.vendor)
    installed: set[str] = set()
    for table, names in triggers_by_table(connection).items():
        versioned = table_info(table).version_column is not None
        expected = set(trigger_names(vendor, table, versioned=versioned))
        if expected <= names and (versioned or _trigger_name(table, VERSION_EVENT) not in names):
            installed.add(table)
    return installed


def triggers_by_table(connection: BaseDatabaseWrapper) -> dict[str, set[str]]:
    """Every trigger of ours (named ``dcond_...``) in the catalog, by the table it is on."""
    vendor = _check_vendor(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(_CATALOG_SQL[vendor])
        rows = cursor.fetchall()
    found: dict[str, set[str]] = {}
    for table, name in rows:
        if name.startswith(TRIGGER_PREFIX):
            found.setdefault(table, set()).add(name)
    return found


def _stamp_table_schema(connection: BaseDatabaseWrapper, *, required: bool) -> str | None:
    """PostgreSQL: the stamp table's schema; elsewhere ``None``. Checks the table exists."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT n.nspname FROM pg_catalog.pg_class c "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.oid = to_regclass(%s)",
                [connection.ops.quote_name(STAMP_TABLE)],
            )
            row = cursor.fetchone()
            exists, schema = row is not None, (str(row[0]) if row else None)
        else:
            exists = STAMP_TABLE in connection.introspection.table_names(cursor)
            schema = None
    if required and not exists:
        raise ImproperlyConfigured(
            f"The stamp table {STAMP_TABLE!r} does not exist in database "
            f"{connection.alias!r}; run 'manage.py migrate django_conditional' first "
            "(a trigger writing to a missing table would make every write fail)."
        )
    return schema


def _execute(connection: BaseDatabaseWrapper, statements: Sequence[str]) -> None:
    # No parameters, so that drivers leave any "%" in a table name alone.
    atomic: AbstractContextManager[Any] = (
        transaction.atomic(using=connection.alias)
        if connection.features.can_rollback_ddl
        else nullcontext()
    )
    with atomic, connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


# --- From models to tables --------------------------------------------------------


def written_tables_for_models(models_: Iterable[type[models.Model]]) -> list[str]:
    """Every table whose writes change what these models show, each once, in order.

    For each model: its own table (a proxy's concrete model's), the tables of
    its concrete multi-table parents, where its inherited fields live, and the
    through table of each many-to-many relation it takes part in, declared on
    it or pointing at it, auto-created or not: ``tracking`` moves both ends'
    stamps on a through table write, so either end's views depend on it.
    Unmanaged models are included (a table another service owns is what
    triggers are for); the stamp table never is.

    Unlike ``tables.tables_for_models`` (the tables a view reads the stamps
    of), this lists where the triggers must go.
    """
    tables: dict[str, None] = {}
    for model in models_:
        tables.update(dict.fromkeys(model_tables(model)))
        for field in _many_to_many_fields(model):
            tables[_through(field)._meta.db_table] = None
    tables.pop(STAMP_TABLE, None)
    return list(tables)


def moved_stamps(models_: Iterable[type[models.Model]]) -> dict[str, frozenset[str]]:
    """For each of ``written_tables_for_models(models_)``, the stamps a write to it moves.

    A table moves its own stamp; a through table also moves the tables of
    both its ends, by the same rule as ``tables.table_info``. Computed from
    the model classes given, so that a migration can pass historical models.
    """
    models_ = list(models_)
    moves: dict[str, set[str]] = {table: {table} for table in written_tables_for_models(models_)}
    for model in models_:
        for field in _many_to_many_fields(model):
            through = _through(field)._meta.db_table
            if through in moves:
                moves[through] |= {field.model._meta.db_table, field.related_model._meta.db_table}
    return {table: frozenset(moved - {STAMP_TABLE}) for table, moved in moves.items()}


def version_columns(models_: Iterable[type[models.Model]]) -> dict[str, str]:
    """The version column of each versioned table among these models' tables, by table.

    A multi-table child's version lives in its parent's table. Like
    ``moved_stamps`` it works on historical models, which keep none of
    ``VersionedModel`` but its field (migrations flatten abstract bases away),
    so the field is what is recognised: named ``version``, a
    ``PositiveBigIntegerField``, not editable, defaulting to 1. A test keeps
    this in agreement with ``tables.table_info`` for the current models.
    """
    columns: dict[str, str] = {}
    for model in models_:
        concrete = model._meta.concrete_model or model
        for owner in (concrete, *concrete._meta.get_parent_list()):
            for field in owner._meta.local_concrete_fields:
                if _is_version_field(field) and field.column:
                    columns[owner._meta.db_table] = field.column
    columns.pop(STAMP_TABLE, None)
    return columns


def _is_version_field(field: Any) -> bool:
    return (
        field.name == "version"
        and isinstance(field, models.PositiveBigIntegerField)
        and not field.editable
        and field.default == 1
    )


def _many_to_many_fields(model: type[models.Model]) -> list[Any]:
    """The forward many-to-many fields of both ends' relations, inherited ones included."""
    opts = (model._meta.concrete_model or model)._meta
    fields: list[Any] = list(opts.many_to_many)
    fields.extend(rel.field for rel in opts.related_objects if rel.many_to_many)
    return fields


def _through(field: Any) -> type[models.Model]:
    through: type[models.Model] = field.remote_field.through
    return through
