"""Tests for the change stamp triggers, ``conditional_triggers`` and ``InstallChangeStampTriggers``.

The SQL builders are checked as text for every vendor; everything else runs
for real on the test database (SQLite, PostgreSQL or MariaDB, whichever the
run uses), writing through a second DB-API connection that Django's cursor
wrapper, and so ``tracking``, never sees.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, migrations, models
from django.db.migrations.state import ProjectState
from django.db.migrations.writer import MigrationWriter
from django.db.models import F
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from django_conditional import triggers
from django_conditional.models import ChangeStamp
from django_conditional.operations import InstallChangeStampTriggers
from django_conditional.tables import deletion_stamp, table_info
from django_conditional.triggers import (
    install,
    install_statements,
    installed_tables,
    moved_stamps,
    trigger_names,
    uninstall,
    uninstall_all,
    uninstall_statements,
    version_columns,
    written_tables_for_models,
)
from tests.testapp.models import (
    Restaurant,
    TriggerBase,
    TriggerChild,
    TriggerGroup,
    TriggerItem,
    TriggerItemProxy,
    TriggerLegacy,
    TriggerMembership,
    TriggerTag,
    TriggerVersioned,
)

VENDOR = connection.vendor
ON_POSTGRESQL = VENDOR == "postgresql"

ITEM = "testapp_triggeritem"
ITEM_TAGS = "testapp_triggeritem_tags"
TAG = "testapp_triggertag"
GROUP = "testapp_triggergroup"
MEMBERSHIP = "testapp_triggermembership"
BASE = "testapp_triggerbase"
BASE_TAGS = "testapp_triggerbase_tags"
CHILD = "testapp_triggerchild"
LEGACY = "testapp_trigger_legacy"
LONG = "testapp_a_long_table_name_that_leaves_little_room_for_triggers"
MIXED = "testapp_TriggerMixedCase"
VERSIONED = "testapp_triggerversioned"

QUOTE: dict[str, Callable[[str], str]] = {
    "postgresql": lambda name: f'"{name}"',
    "mysql": lambda name: f"`{name}`",
    "sqlite": lambda name: f'"{name}"',
}
# Tokens dated by the database's clock (milliseconds * 10**6 + a random part).
PG_TOKEN = (
    "(CAST(FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT)) * 1000000"
    " + CAST(FLOOR(random() * 1000000) AS BIGINT)"
)
MYSQL_TOKEN = (
    "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000) * 1000000"
    " + FLOOR(RAND() * 1000000)"
)
SQLITE_TOKEN = (
    "(CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) * 1000000"
    " + ABS(random() / 9223372036855)"
)


def following(old: str, fresh: str) -> str:
    """The token after ``old``: ``fresh`` unless that is not later (stamp_clock.next_token)."""
    return (
        f"CASE WHEN {old} >= {fresh} AND {old} - {fresh} < 1000000000 "
        f"THEN {old} + 1 ELSE {fresh} END"
    )


transactional = pytest.mark.django_db(transaction=True)


# --- Names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "table", "expected"),
    [
        pytest.param(
            "postgresql",
            "blog_post",
            ("dcond_6e339a05_write_blog_post", "dcond_6e339a05_delete_blog_post"),
            id="postgresql-writes-and-deletions",
        ),
        pytest.param(
            "mysql",
            "blog_post",
            (
                "dcond_6e339a05_insert_blog_post",
                "dcond_6e339a05_update_blog_post",
                "dcond_6e339a05_delete_blog_post",
            ),
            id="mysql-one-per-event",
        ),
        pytest.param(
            "sqlite",
            "Blog Post!",
            (
                "dcond_fc803bb2_insert_blog_post",
                "dcond_fc803bb2_update_blog_post",
                "dcond_fc803bb2_delete_blog_post",
            ),
            id="sqlite-folded",
        ),
        pytest.param(
            "postgresql",
            LONG,
            (
                "dcond_48d2c3a3_write_testapp_a_long_table_name_that_leaves_litt",
                "dcond_48d2c3a3_delete_testapp_a_long_table_name_that_leaves_lit",
            ),
            id="long-name-cut",
        ),
        pytest.param(
            "sqlite",
            "___",
            ("dcond_bf295750_insert", "dcond_bf295750_update", "dcond_bf295750_delete"),
            id="nothing-readable",
        ),
    ],
)
def test_trigger_names(vendor, table, expected):
    assert trigger_names(vendor, table) == expected


@given(st.text(min_size=1, max_size=200))
def test_trigger_names_are_short_plain_and_distinct(table):
    for vendor in triggers.SUPPORTED_VENDORS:
        names = trigger_names(vendor, table)
        assert len(set(names)) == len(names)
        for name in names:
            assert len(name) <= 63
            assert re.fullmatch(
                r"dcond_[0-9a-f]{8}_(insert|update|delete|write)(_[a-z0-9_]+)?", name
            )
        assert trigger_names(vendor, table) == names


def test_names_of_tables_cut_to_the_same_readable_part_differ():
    first, second = f"{LONG}_one", f"{LONG}_two"
    assert trigger_names("mysql", first) != trigger_names("mysql", second)
    assert [name[:15] for name in trigger_names("mysql", first)] != [
        name[:15] for name in trigger_names("mysql", second)
    ]


# --- The SQL, as text -------------------------------------------------------------


def blog_post_rows(event: str, token: str) -> str:
    """A deletion also moves the deletion stamp, in name order."""
    stamps = ["blog_post", "blog_post#deleted"] if event == "delete" else ["blog_post"]
    return ", ".join(f"('{stamp}', {token})" for stamp in stamps)


PG_FOLLOWING = following('"public"."django_conditional_changestamp"."token"', 'EXCLUDED."token"')
POSTGRESQL_FUNCTION = f"""\
CREATE OR REPLACE FUNCTION "public"."django_conditional_move_stamp"() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO "public"."django_conditional_changestamp" ("table", "token")
    SELECT moved.name, {PG_TOKEN}
    FROM (
        SELECT DISTINCT unnest(array_append(TG_ARGV, TG_TABLE_NAME::text)) AS name
    ) AS moved
    ORDER BY moved.name COLLATE "C"
    ON CONFLICT ("table") DO UPDATE SET "token" = {PG_FOLLOWING};
    RETURN NULL;
END
$$"""


@pytest.mark.parametrize(
    ("vendor", "expected"),
    [
        pytest.param(
            "postgresql",
            [
                POSTGRESQL_FUNCTION,
                'CREATE OR REPLACE TRIGGER "dcond_6e339a05_write_blog_post"\n'
                'AFTER INSERT OR UPDATE ON "blog_post"\n'
                'FOR EACH STATEMENT EXECUTE FUNCTION "public"."django_conditional_move_stamp"()',
                'CREATE OR REPLACE TRIGGER "dcond_6e339a05_delete_blog_post"\n'
                'AFTER DELETE OR TRUNCATE ON "blog_post"\n'
                "FOR EACH STATEMENT EXECUTE FUNCTION "
                '"public"."django_conditional_move_stamp"(\'blog_post#deleted\')',
            ],
            id="postgresql-statement-level",
        ),
        pytest.param(
            "mysql",
            [
                statement
                for event in ("insert", "update", "delete")
                for statement in (
                    f"DROP TRIGGER IF EXISTS `dcond_6e339a05_{event}_blog_post`",
                    f"CREATE TRIGGER `dcond_6e339a05_{event}_blog_post` AFTER {event.upper()} "
                    "ON `blog_post` FOR EACH ROW INSERT INTO `django_conditional_changestamp` "
                    f"(`table`, `token`) VALUES {blog_post_rows(event, MYSQL_TOKEN)} "
                    "ON DUPLICATE KEY UPDATE `token` = " + following("`token`", "VALUES(`token`)"),
                )
            ],
            id="mysql-row-level",
        ),
        pytest.param(
            "sqlite",
            [
                statement
                for event in ("insert", "update", "delete")
                for statement in (
                    f'DROP TRIGGER IF EXISTS "dcond_6e339a05_{event}_blog_post"',
                    f'CREATE TRIGGER "dcond_6e339a05_{event}_blog_post" AFTER {event.upper()} '
                    'ON "blog_post" FOR EACH ROW BEGIN INSERT INTO '
                    '"django_conditional_changestamp" ("table", "token") '
                    f"VALUES {blog_post_rows(event, SQLITE_TOKEN)} "
                    'ON CONFLICT ("table") DO UPDATE SET "token" = '
                    + following('"token"', 'excluded."token"')
                    + "; END",
                )
            ],
            id="sqlite-row-level",
        ),
    ],
)
def test_install_statements(vendor, expected):
    schema = "public" if vendor == "postgresql" else None
    assert install_statements(vendor, ["blog_post"], QUOTE[vendor], schema=schema) == expected


@pytest.mark.parametrize(
    ("vendor", "fragment"),
    [
        pytest.param(
            "postgresql",
            "EXECUTE FUNCTION \"django_conditional_move_stamp\"('blog_post', 'blog_tag')",
            id="postgresql-trigger-arguments",
        ),
        pytest.param(
            "mysql",
            f"VALUES ('blog_post', {MYSQL_TOKEN}), ('blog_post_tags', {MYSQL_TOKEN}), "
            f"('blog_tag', {MYSQL_TOKEN}) ON DUPLICATE KEY",
            id="mysql-rows-in-table-order",
        ),
        pytest.param(
            "sqlite",
            f"VALUES ('blog_post', {SQLITE_TOKEN}), ('blog_post_tags', {SQLITE_TOKEN}), "
            f"('blog_tag', {SQLITE_TOKEN}) ON CONFLICT",
            id="sqlite-rows-in-table-order",
        ),
    ],
)
def test_a_through_table_moves_both_ends(vendor, fragment):
    moves = {"blog_post_tags": {"blog_tag", "blog_post", "blog_post_tags"}}
    sql = "\n".join(install_statements(vendor, ["blog_post_tags"], QUOTE[vendor], moves=moves))
    assert fragment in sql


@pytest.mark.parametrize(
    ("vendor", "schema", "fragments"),
    [
        pytest.param(
            "postgresql",
            None,
            [
                'CREATE OR REPLACE FUNCTION "django_conditional_move_stamp"()',
                "SECURITY DEFINER SET search_path FROM CURRENT AS",
                'INSERT INTO "django_conditional_changestamp"',
            ],
            id="postgresql-schema-unknown",
        ),
        pytest.param(
            "postgresql",
            "app's",
            [
                'CREATE OR REPLACE FUNCTION "app\'s"."django_conditional_move_stamp"()',
                "SET search_path = pg_catalog, pg_temp AS",
                'INSERT INTO "app\'s"."django_conditional_changestamp"',
            ],
            id="postgresql-schema-qualified",
        ),
    ],
)
def test_postgresql_schema(vendor, schema, fragments):
    sql = "\n".join(install_statements(vendor, ["blog_post"], QUOTE[vendor], schema=schema))
    for fragment in fragments:
        assert fragment in sql


@pytest.mark.parametrize(
    ("vendor", "table", "literal"),
    [
        pytest.param("postgresql", "it's", "'it''s'", id="postgresql-quote"),
        pytest.param("postgresql", "back\\slash", "E'back\\\\slash'", id="postgresql-backslash"),
        pytest.param("mysql", "it's", "'it''s'", id="mysql-quote"),
        pytest.param("sqlite", "it's", "'it''s'", id="sqlite-quote"),
        pytest.param("sqlite", "back\\slash", "'back\\slash'", id="sqlite-backslash-plain"),
    ],
)
def test_table_names_in_string_literals_are_escaped(vendor, table, literal):
    sql = "\n".join(
        install_statements(vendor, ["blog_post"], QUOTE[vendor], moves={"blog_post": {table}})
    )
    assert literal in sql


@pytest.mark.parametrize(
    ("vendor", "expected"),
    [
        pytest.param(
            "postgresql",
            [
                'DROP TRIGGER IF EXISTS "dcond_6e339a05_write_blog_post" ON "blog_post"',
                'DROP TRIGGER IF EXISTS "dcond_6e339a05_delete_blog_post" ON "blog_post"',
                'DROP TRIGGER IF EXISTS "dcond_6e339a05_version_blog_post" ON "blog_post"',
                'DROP FUNCTION IF EXISTS "public"."dcond_6e339a05_version_blog_post"()',
                "DO $$\nBEGIN\n"
                '    IF to_regprocedure(\'"public"."django_conditional_move_stamp"()\') '
                "IS NOT NULL AND NOT EXISTS (\n"
                "        SELECT 1 FROM pg_catalog.pg_trigger\n"
                "        WHERE tgfoid = to_regprocedure("
                '\'"public"."django_conditional_move_stamp"()\')\n'
                "    ) THEN\n"
                '        DROP FUNCTION "public"."django_conditional_move_stamp"();\n'
                "    END IF;\nEND\n$$",
            ],
            id="postgresql-function-dropped-when-unused",
        ),
        pytest.param(
            "mysql",
            [
                "DROP TRIGGER IF EXISTS `dcond_6e339a05_insert_blog_post`",
                "DROP TRIGGER IF EXISTS `dcond_6e339a05_update_blog_post`",
                "DROP TRIGGER IF EXISTS `dcond_6e339a05_delete_blog_post`",
                "DROP TRIGGER IF EXISTS `dcond_6e339a05_version_blog_post`",
            ],
            id="mysql",
        ),
        pytest.param(
            "sqlite",
            [
                'DROP TRIGGER IF EXISTS "dcond_6e339a05_insert_blog_post"',
                'DROP TRIGGER IF EXISTS "dcond_6e339a05_update_blog_post"',
                'DROP TRIGGER IF EXISTS "dcond_6e339a05_delete_blog_post"',
                'DROP TRIGGER IF EXISTS "dcond_6e339a05_version_blog_post"',
            ],
            id="sqlite",
        ),
    ],
)
def test_uninstall_statements(vendor, expected):
    schema = "public" if vendor == "postgresql" else None
    assert uninstall_statements(vendor, ["blog_post"], QUOTE[vendor], schema=schema) == expected


@pytest.mark.parametrize("vendor", triggers.SUPPORTED_VENDORS)
def test_duplicate_tables_get_one_set_of_triggers(vendor):
    once = install_statements(vendor, ["blog_post"], QUOTE[vendor])
    assert install_statements(vendor, ["blog_post", "blog_post"], QUOTE[vendor]) == once


@pytest.mark.parametrize("vendor", triggers.SUPPORTED_VENDORS)
def test_no_tables_no_statements(vendor):
    assert install_statements(vendor, [], QUOTE[vendor]) == []


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(install_statements, id="install"),
        pytest.param(uninstall_statements, id="uninstall"),
    ],
)
@pytest.mark.parametrize("vendor", ["oracle", "microsoft", ""])
def test_unsupported_vendor(build, vendor):
    with pytest.raises(ImproperlyConfigured, match=rf"vendor '{vendor}'.*'postgresql'"):
        build(vendor, ["blog_post"], QUOTE["sqlite"])


@pytest.mark.parametrize("vendor", triggers.SUPPORTED_VENDORS)
def test_never_a_trigger_on_the_stamp_table(vendor):
    with pytest.raises(ValueError, match="stamp table 'django_conditional_changestamp'"):
        install_statements(vendor, ["blog_post", triggers.STAMP_TABLE], QUOTE[vendor])


def test_the_stamp_table_is_never_moved_as_an_end():
    sql = "\n".join(
        install_statements("sqlite", ["x"], QUOTE["sqlite"], moves={"x": {triggers.STAMP_TABLE}})
    )
    assert f"'{triggers.STAMP_TABLE}'" not in sql


def test_stamp_table_constant_matches_the_model():
    assert ChangeStamp._meta.db_table == triggers.STAMP_TABLE


def test_mysql_refuses_a_backslash():
    with pytest.raises(ValueError, match="backslash"):
        install_statements("mysql", ["a\\b"], QUOTE["mysql"])


def test_colliding_trigger_names_are_refused(monkeypatch):
    monkeypatch.setattr(triggers, "_trigger_name", lambda table, event: f"dcond_same_{event}")
    with pytest.raises(ValueError, match="'a' and 'b' would share the trigger name"):
        install_statements("sqlite", ["a", "b"], QUOTE["sqlite"])


def test_sqlite_statements_run_on_an_odd_table_name():
    """Quoting and escaping, end to end, on a throwaway SQLite database."""
    odd, end = 'it\'s "odd"', "other 'end'"

    def quote(name):
        return '"' + name.replace('"', '""') + '"'

    with closing(sqlite3.connect(":memory:", isolation_level=None)) as db:
        db.execute(
            f'CREATE TABLE {quote(triggers.STAMP_TABLE)} ("table" varchar(255) '
            "PRIMARY KEY, token bigint NOT NULL)"
        )
        db.execute(f"CREATE TABLE {quote(odd)} (id integer)")
        for statement in install_statements("sqlite", [odd], quote, moves={odd: {end}}):
            db.execute(statement)
        db.execute(f"INSERT INTO {quote(odd)} VALUES (1)")
        rows = dict(db.execute(f"SELECT * FROM {quote(triggers.STAMP_TABLE)}").fetchall())
        assert set(rows) == {odd, end}
        assert all(0 <= token < 2**63 for token in rows.values())
        for statement in uninstall_statements("sqlite", [odd], quote):
            db.execute(statement)
        assert db.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
        ).fetchone() == (0,)


# --- From models to tables --------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        pytest.param(
            [TriggerItem], [ITEM, ITEM_TAGS, MEMBERSHIP], id="own-m2m-and-reverse-through"
        ),
        pytest.param([TriggerItemProxy], [ITEM, ITEM_TAGS, MEMBERSHIP], id="proxy-concrete"),
        pytest.param([TriggerGroup], [GROUP, MEMBERSHIP], id="explicit-through"),
        pytest.param([TriggerMembership], [MEMBERSHIP], id="through-model-itself"),
        pytest.param([TriggerChild], [CHILD, BASE, BASE_TAGS], id="mti-parent-and-inherited-m2m"),
        pytest.param([TriggerBase], [BASE, BASE_TAGS], id="mti-parent-alone"),
        pytest.param([TriggerTag], [TAG, BASE_TAGS, ITEM_TAGS], id="reverse-m2m-only"),
        pytest.param([TriggerLegacy], [LEGACY], id="unmanaged"),
        pytest.param([ChangeStamp], [], id="never-the-stamp-table"),
        pytest.param(
            [TriggerItem, TriggerItemProxy, TriggerGroup],
            [ITEM, ITEM_TAGS, MEMBERSHIP, GROUP],
            id="each-once",
        ),
        pytest.param([], [], id="none"),
    ],
)
def test_written_tables_for_models(models, expected):
    tables = written_tables_for_models(models)
    assert sorted(tables) == sorted(expected)
    assert len(tables) == len(set(tables))
    if models and expected:
        assert tables[0] == expected[0]


def test_moved_stamps():
    assert moved_stamps([TriggerItem, TriggerChild]) == {
        ITEM: {ITEM},
        ITEM_TAGS: {ITEM_TAGS, ITEM, TAG},
        MEMBERSHIP: {MEMBERSHIP, GROUP, ITEM},
        CHILD: {CHILD},
        BASE: {BASE},
        BASE_TAGS: {BASE_TAGS, BASE, TAG},
    }


def test_moved_stamps_agree_with_the_tracking():
    """The triggers move what ``tracking`` moves for the same write through the ORM."""
    every_model = apps.get_models(include_auto_created=True)
    for table, moved in moved_stamps(every_model).items():
        assert moved == table_info(table).moves, table


def test_moved_stamps_accepts_an_iterator():
    assert moved_stamps(iter([TriggerGroup])) == {
        GROUP: {GROUP},
        MEMBERSHIP: {MEMBERSHIP, GROUP, ITEM},
    }


# --- On the real database ---------------------------------------------------------


class RawConnection:
    """A second DB-API connection to the test database: another service, to Django."""

    def __init__(self) -> None:
        self.db = connection.get_new_connection(connection.get_connection_params())

    def commit(self, *statements: str) -> None:
        self._run(statements)
        self.db.commit()

    def rollback(self, *statements: str) -> None:
        self._run(statements)
        self.db.rollback()

    def _run(self, statements: tuple[str, ...]) -> None:
        cursor = self.db.cursor()
        try:
            for statement in statements:
                cursor.execute(statement)
        finally:
            cursor.close()

    def close(self) -> None:
        self.db.close()


@pytest.fixture
def raw(transactional_db) -> Iterator[RawConnection]:
    raw_connection = RawConnection()
    yield raw_connection
    raw_connection.close()


@pytest.fixture
def no_triggers_left(transactional_db) -> Iterator[None]:
    """Triggers are DDL: no flush removes them, so each test removes its own."""
    yield
    uninstall_all(connection)


def q(name: str) -> str:
    return connection.ops.quote_name(name)


def token(table: str) -> int | None:
    return ChangeStamp.objects.filter(table=table).values_list("token", flat=True).first()


def insert_item(raw: RawConnection, item_id: int, name: str = "x", table: str = ITEM) -> None:
    raw.commit(f"INSERT INTO {q(table)} (id, name) VALUES ({item_id}, '{name}')")


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("INSERT INTO {item} (id, name) VALUES (2, 'b')", id="insert"),
        pytest.param("UPDATE {item} SET name = 'c' WHERE id = 1", id="update"),
        pytest.param("DELETE FROM {item} WHERE id = 1", id="delete"),
        pytest.param("UPDATE {item} SET name = 'd'", id="update-many-rows"),
        pytest.param("DELETE FROM {item}", id="delete-all"),
    ],
)
@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_a_raw_write_moves_the_stamp(raw, statement):
    install(connection, [ITEM])
    insert_item(raw, 1, "a")
    insert_item(raw, 3, "c")
    before = token(ITEM)
    assert before is not None
    raw.commit(statement.format(item=q(ITEM)))
    after = token(ITEM)
    assert after is not None
    assert after != before
    assert 0 <= after < 2**63


@pytest.mark.skipif(not ON_POSTGRESQL, reason="TRUNCATE triggers exist on PostgreSQL only")
@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_truncate_moves_the_stamps_on_postgresql(raw):
    install(connection, [ITEM, ITEM_TAGS, MEMBERSHIP])
    insert_item(raw, 1)
    before = (token(ITEM), token(deletion_stamp(ITEM)))
    raw.commit(f"TRUNCATE {q(ITEM)} CASCADE")
    after = (token(ITEM), token(deletion_stamp(ITEM)))
    assert after[0] != before[0]
    assert after[1] != before[1]


@pytest.mark.parametrize(
    ("statement", "moves_deletion_stamp"),
    [
        pytest.param("INSERT INTO {item} (id, name) VALUES (2, 'b')", False, id="insert"),
        pytest.param("UPDATE {item} SET name = 'c'", False, id="update"),
        pytest.param("DELETE FROM {item} WHERE id = 1", True, id="delete"),
        pytest.param("DELETE FROM {item} WHERE id = 99", ON_POSTGRESQL, id="delete-nothing"),
    ],
)
@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_only_deletions_move_the_deletion_stamp(raw, statement, moves_deletion_stamp):
    """As ``tracking`` does (statement-level triggers fire even for no rows)."""
    install(connection, [ITEM])
    insert_item(raw, 1)
    raw.commit(
        f"DELETE FROM {q(ITEM)} WHERE id = 1", f"INSERT INTO {q(ITEM)} (id, name) VALUES (1, 'a')"
    )
    before = token(deletion_stamp(ITEM))
    assert before is not None
    raw.commit(statement.format(item=q(ITEM)))
    assert (token(deletion_stamp(ITEM)) != before) is moves_deletion_stamp


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_every_write_moves_the_stamp_again(raw):
    install(connection, [ITEM])
    seen = set()
    for item_id in range(1, 6):
        insert_item(raw, item_id)
        seen.add(token(ITEM))
    assert len(seen) == 5


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_a_rolled_back_write_moves_nothing(raw):
    install(connection, [ITEM])
    insert_item(raw, 1)
    before = token(ITEM)
    raw.rollback(
        f"INSERT INTO {q(ITEM)} (id, name) VALUES (2, 'b')",
        f"UPDATE {q(ITEM)} SET name = 'c'",
        f"DELETE FROM {q(ITEM)}",
    )
    assert token(ITEM) == before
    assert list(TriggerItem.objects.values_list("id", flat=True)) == [1]


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_tables_without_triggers_are_left_alone(raw):
    install(connection, [ITEM])
    before = token(TAG)  # the flush between tests may have left one, through tracking
    raw.commit(f"INSERT INTO {q(TAG)} (id, name) VALUES (1, 'a')")
    assert token(TAG) == before


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_a_through_table_write_moves_both_ends(raw):
    install(connection, written_tables_for_models([TriggerItem]))
    insert_item(raw, 1)
    raw.commit(f"INSERT INTO {q(TAG)} (id, name) VALUES (1, 't')")
    before = {table: token(table) for table in (ITEM, TAG, ITEM_TAGS)}
    raw.commit(f"INSERT INTO {q(ITEM_TAGS)} (triggeritem_id, triggertag_id) VALUES (1, 1)")
    after = {table: token(table) for table in (ITEM, TAG, ITEM_TAGS)}
    assert after[ITEM_TAGS] is not None
    assert all(after[table] != before[table] for table in before)


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_a_parent_table_write_moves_the_parent_stamp(raw):
    install(connection, written_tables_for_models([TriggerChild]))
    raw.commit(
        f"INSERT INTO {q(BASE)} (id, name) VALUES (1, 'a')",
        f"INSERT INTO {q(CHILD)} (triggerbase_ptr_id, extra) VALUES (1, '')",
    )
    before = token(BASE)
    raw.commit(f"UPDATE {q(BASE)} SET name = 'b'")
    assert token(BASE) != before


@pytest.mark.parametrize(
    "table", [pytest.param(LONG, id="long-name"), pytest.param(MIXED, id="mixed-case")]
)
@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_awkward_table_names(raw, table):
    install(connection, [table])
    assert installed_tables(connection) == {table}
    insert_item(raw, 1, table=table)
    assert token(table) is not None


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_installing_twice_changes_nothing(raw):
    tables = written_tables_for_models([TriggerItem])
    install(connection, tables)
    install(connection, tables)
    assert installed_tables(connection) == set(tables)
    assert _our_trigger_count() == len(tables) * len(trigger_names(VENDOR, ITEM))
    insert_item(raw, 1)
    assert token(ITEM) is not None


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_uninstall_removes_the_triggers(raw):
    install(connection, [ITEM, TAG])
    uninstall(connection, [ITEM])
    assert installed_tables(connection) == {TAG}
    before = token(ITEM)
    insert_item(raw, 1)
    assert token(ITEM) == before
    uninstall(connection, [TAG])
    uninstall(connection, [TAG])  # twice is fine too
    assert installed_tables(connection) == set()
    assert _our_trigger_count() == 0


@pytest.mark.skipif(not ON_POSTGRESQL, reason="the shared function is PostgreSQL's")
@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_the_shared_function_goes_with_the_last_trigger():
    install(connection, [ITEM, TAG])
    uninstall(connection, [ITEM])
    assert _function_count() == 1
    uninstall(connection, [TAG])
    assert _function_count() == 0


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_a_table_missing_one_trigger_is_not_installed():
    install(connection, [ITEM, TAG])
    with connection.cursor() as cursor:
        on_table = f" ON {q(ITEM)}" if ON_POSTGRESQL else ""
        cursor.execute(f"DROP TRIGGER {q(trigger_names(VENDOR, ITEM)[1])}{on_table}")
    assert installed_tables(connection) == {TAG}
    out = run("status", "testapp.TriggerItem")
    assert f" [~] {ITEM} (incomplete or stale triggers: run install)" in out.splitlines()
    run("install", "testapp.TriggerItem")
    assert ITEM in installed_tables(connection)


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_triggers_named_for_an_old_table_name_are_found_and_removed():
    old, new = "testapp_scratch_old", "testapp_scratch_new"
    with connection.schema_editor() as editor:
        editor.execute(f"CREATE TABLE {q(old)} (id integer)")
    try:
        install(connection, [old, ITEM])
        with connection.schema_editor() as editor:
            editor.execute(editor.sql_rename_table % {"old_table": q(old), "new_table": q(new)})
        assert installed_tables(connection) == {ITEM}
        assert set(triggers.triggers_by_table(connection)[new]) == set(trigger_names(VENDOR, old))
        assert f" [~] {new} (not a table of an installed model)" in run("status").splitlines()
        uninstall(connection, [new])
        assert set(triggers.triggers_by_table(connection)) == {ITEM}
    finally:
        with connection.schema_editor() as editor:
            editor.execute(f"DROP TABLE {q(new)}")


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_uninstall_all_leaves_nothing():
    install(connection, [ITEM, TAG, MIXED])
    uninstall_all(connection)
    assert triggers.triggers_by_table(connection) == {}
    if ON_POSTGRESQL:
        assert _function_count() == 0


@pytest.mark.skipif(VENDOR != "sqlite", reason="only SQLite remakes tables to alter them")
@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_sqlite_loses_the_triggers_when_a_migration_remakes_the_table():
    """The README's caveat: after such a migration, install again."""
    install(connection, [TAG])
    old = TriggerTag._meta.get_field("name")
    new = models.CharField(max_length=80)
    new.set_attributes_from_name("name")
    with connection.schema_editor() as editor:
        editor.alter_field(TriggerTag, old, new)
    try:
        assert installed_tables(connection) == set()
        run("install", "testapp.TriggerTag")
        assert TAG in installed_tables(connection)
    finally:
        with connection.schema_editor() as editor:
            editor.alter_field(TriggerTag, new, old)


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_installing_nothing_runs_nothing():
    assert install(connection, []) == []
    assert installed_tables(connection) == set()


@transactional
def test_install_refuses_without_the_stamp_table(monkeypatch):
    monkeypatch.setattr(triggers, "STAMP_TABLE", "no_such_stamp_table")
    with pytest.raises(ImproperlyConfigured, match="'no_such_stamp_table' does not exist"):
        install(connection, [ITEM])
    assert installed_tables(connection) == set()


@transactional
def test_unsupported_database(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "oracle")
    for call in (
        lambda: install(connection, [ITEM]),
        lambda: uninstall(connection, [ITEM]),
        lambda: installed_tables(connection),
    ):
        with pytest.raises(ImproperlyConfigured, match="vendor 'oracle'"):
            call()


def _our_trigger_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute(triggers._CATALOG_SQL[VENDOR])
        return sum(1 for _, name in cursor.fetchall() if name.startswith(triggers.TRIGGER_PREFIX))


def _function_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_catalog.pg_proc WHERE proname = %s", [triggers.FUNCTION_NAME]
        )
        return int(cursor.fetchone()[0])


# --- manage.py conditional_triggers -----------------------------------------------


def run(*args: str, **options: Any) -> str:
    out = StringIO()
    call_command("conditional_triggers", *args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_command_sql_prints_without_installing():
    out = run("sql", "testapp.TriggerItem")
    for table in (ITEM, ITEM_TAGS, MEMBERSHIP):
        for name in trigger_names(VENDOR, table):
            assert name in out
    assert out.rstrip().endswith(";")
    assert installed_tables(connection) == set()


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_command_sql_output_installs_when_run(raw):
    """What a DBA would run by hand works like ``install``."""
    statements = triggers.install_sql(connection, [ITEM])
    out = run("sql", "testapp.TriggerItem")
    assert all(f"{statement};" in out for statement in statements)
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    assert installed_tables(connection) == {ITEM}


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_command_install_and_uninstall_labels(raw):
    out = run("install", "testapp.TriggerItem")
    assert "Installed change stamp triggers on 3 tables in database 'default'." in out
    assert installed_tables(connection) == {ITEM, ITEM_TAGS, MEMBERSHIP}
    raw.commit(f"INSERT INTO {q(TAG)} (id, name) VALUES (1, 't')")
    insert_item(raw, 1)
    before = token(TAG)
    raw.commit(f"INSERT INTO {q(ITEM_TAGS)} (triggeritem_id, triggertag_id) VALUES (1, 1)")
    assert token(TAG) != before  # the through table moves both ends, as table_info says
    out = run("uninstall", "testapp.TriggerItem")
    assert "Removed change stamp triggers on 3 tables" in out
    assert installed_tables(connection) == set()


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_command_app_label_and_proxy():
    run("install", "testapp.TriggerItemProxy")
    assert installed_tables(connection) == {ITEM, ITEM_TAGS, MEMBERSHIP}
    run("install", "testapp")
    installed = installed_tables(connection)
    assert {ITEM, TAG, GROUP, BASE, CHILD, LONG, MIXED, "testapp_article"} <= installed


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_command_install_lists_tables_when_verbose():
    out = run("install", "testapp.TriggerGroup", verbosity=2)
    assert f"  {GROUP}\n" in out
    assert f"  {MEMBERSHIP}\n" in out


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_command_status():
    run("install", "testapp.TriggerGroup")
    out = run("status", "testapp.TriggerGroup", "testapp.TriggerTag", "testapp.TriggerLegacy")
    lines = out.splitlines()
    assert lines[0] == f"Change stamp triggers in database 'default' ({VENDOR}):"
    assert f" [X] {GROUP}" in lines
    assert f" [X] {MEMBERSHIP}" in lines
    assert f" [ ] {TAG}" in lines
    assert f" [ ] {LEGACY} (no such table)" in lines
    assert lines[-1] == "2 of 6 tables have triggers."


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_command_without_labels_covers_every_model_table():
    out = run("status")
    assert " [ ] auth_user" in out
    assert f" [ ] {ITEM_TAGS}" in out
    for left_out in ("django_session", "django_migrations", triggers.STAMP_TABLE, LEGACY):
        assert f" {left_out}" not in out
    run("install")
    installed = installed_tables(connection)
    assert {"auth_user", "auth_user_groups", ITEM, MIXED} <= installed
    assert not installed & {"django_session", "django_migrations", triggers.STAMP_TABLE}
    assert "0 of" not in run("status")


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_command_uninstall_without_labels_removes_every_trigger():
    with connection.schema_editor() as editor:
        editor.execute(f"CREATE TABLE {q('testapp_orphan')} (id integer)")
    try:
        install(connection, ["testapp_orphan", ITEM])
        out = run("status")
        assert " [X] testapp_orphan (not a table of an installed model)" in out
        run("uninstall")
        assert installed_tables(connection) == set()
    finally:
        with connection.schema_editor() as editor:
            editor.execute(f"DROP TABLE {q('testapp_orphan')}")


@transactional
def test_command_install_refuses_a_missing_table():
    with pytest.raises(CommandError, match=rf"No such table in database 'default': {LEGACY}\."):
        run("install", "testapp.TriggerLegacy")
    assert installed_tables(connection) == set()


@transactional
@override_settings(CONDITIONAL_STAMP_CACHE="default")
def test_command_install_refuses_cached_stamps():
    with pytest.raises(CommandError, match="CONDITIONAL_STAMP_CACHE is 'default'"):
        run("install", "testapp.TriggerItem")


@transactional
def test_command_install_with_only_ignored_tables():
    assert run("install", "sessions") == "No tables selected: nothing to install.\n"
    assert installed_tables(connection) == set()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("status", "nosuchapp"), "No installed app with label 'nosuchapp'.", id="unknown-app"
        ),
        pytest.param(
            ("status", "testapp.Nope"), "App 'testapp' has no model 'Nope'.", id="unknown-model"
        ),
        pytest.param(
            ("status", "testapp.TriggerItem.name"), "is not an app label", id="too-many-dots"
        ),
        pytest.param(
            ("status", "nosuchapp.Item"),
            "No installed app with label 'nosuchapp'.",
            id="unknown-app-of-model",
        ),
        pytest.param(("frobnicate",), "invalid choice: 'frobnicate'", id="unknown-action"),
        pytest.param(
            ("status", "--database", "nope"), "invalid choice: 'nope'", id="unknown-database"
        ),
        pytest.param((), "the following arguments are required: action", id="no-action"),
    ],
)
@transactional
def test_command_errors(args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run(*args)


@transactional
def test_command_unsupported_database(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "oracle")
    with pytest.raises(CommandError, match="Database 'default' is 'oracle'"):
        run("sql")


# --- InstallChangeStampTriggers --------------------------------------------------


def test_operation_deconstructs_and_describes():
    operation = InstallChangeStampTriggers(models=["testapp.TriggerItem", "testapp.TriggerGroup"])
    assert operation.deconstruct() == (
        "InstallChangeStampTriggers",
        [],
        {"models": ["testapp.TriggerItem", "testapp.TriggerGroup"]},
    )
    assert operation.describe() == (
        "Install change stamp triggers for testapp.TriggerItem, testapp.TriggerGroup"
    )
    assert operation.migration_name_fragment == "install_change_stamp_triggers"
    assert operation.reversible is True
    assert operation.reduces_to_sql is False


def test_operation_serializes_in_a_migration():
    migration = type(
        "Migration",
        (migrations.Migration,),
        {
            "dependencies": [
                ("django_conditional", "0001_initial"),
                ("testapp", "0002_trigger_models"),
            ],
            "operations": [InstallChangeStampTriggers(models=["testapp.TriggerItem"])],
        },
    )("0003_install_change_stamp_triggers", "testapp")
    source = MigrationWriter(migration).as_string()
    assert "import django_conditional.operations" in source
    assert (
        "django_conditional.operations.InstallChangeStampTriggers(\n"
        "            models=['testapp.TriggerItem'],\n"
        "        )"
    ) in source


@pytest.mark.parametrize(
    ("models", "error"),
    [
        pytest.param("testapp.TriggerItem", TypeError, id="a-string"),
        pytest.param(["TriggerItem"], ValueError, id="no-app-label"),
        pytest.param(["testapp."], ValueError, id="no-model-name"),
        pytest.param(["a.b.c"], ValueError, id="too-many-dots"),
    ],
)
def test_operation_rejects_bad_labels(models, error):
    with pytest.raises(error, match=r"app_label\.ModelName"):
        InstallChangeStampTriggers(models=models)


def test_operation_changes_no_state():
    state = ProjectState.from_apps(apps)
    before = dict(state.models)
    InstallChangeStampTriggers(models=["testapp.TriggerItem"]).state_forwards("testapp", state)
    assert state.models == before


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_operation_forwards_and_backwards(raw):
    operation = InstallChangeStampTriggers(models=["testapp.TriggerItem", "testapp.TriggerChild"])
    state = ProjectState.from_apps(apps)
    with connection.schema_editor() as editor:
        operation.database_forwards("testapp", editor, state, state)
    expected = {ITEM, ITEM_TAGS, MEMBERSHIP, CHILD, BASE, BASE_TAGS}
    assert installed_tables(connection) == expected
    raw.commit(f"INSERT INTO {q(TAG)} (id, name) VALUES (1, 't')")
    insert_item(raw, 1)
    raw.commit(f"INSERT INTO {q(ITEM_TAGS)} (triggeritem_id, triggertag_id) VALUES (1, 1)")
    assert token(TAG) is not None  # the historical models' ends, not only the through table
    with connection.schema_editor() as editor:
        operation.database_backwards("testapp", editor, state, state)
    assert installed_tables(connection) == set()


@transactional
def test_operation_reads_the_migration_state_not_the_app_registry():
    operation = InstallChangeStampTriggers(models=["testapp.TriggerItem"])
    empty = ProjectState()
    with (
        pytest.raises(LookupError, match=r"no model 'testapp\.TriggerItem' in the migration state"),
        connection.schema_editor() as editor,
    ):
        operation.database_forwards("testapp", editor, empty, empty)


class NoTestappRouter:
    def allow_migrate(self, db, app_label, **hints):
        return app_label != "testapp"


@transactional
@pytest.mark.usefixtures("no_triggers_left")
@override_settings(DATABASE_ROUTERS=[f"{__name__}.NoTestappRouter"])
def test_operation_skips_models_routed_elsewhere():
    operation = InstallChangeStampTriggers(models=["testapp.TriggerItem"])
    state = ProjectState.from_apps(apps)
    with connection.schema_editor() as editor:
        operation.database_forwards("testapp", editor, state, state)
    assert installed_tables(connection) == set()


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_operation_installs_on_an_unmanaged_model():
    with connection.schema_editor() as editor:
        editor.execute(f"CREATE TABLE {q(LEGACY)} (id integer, name varchar(100))")
    try:
        operation = InstallChangeStampTriggers(models=["testapp.TriggerLegacy"])
        state = ProjectState.from_apps(apps)
        with connection.schema_editor() as editor:
            operation.database_forwards("testapp", editor, state, state)
        assert installed_tables(connection) == {LEGACY}
    finally:
        uninstall(connection, [LEGACY])
        with connection.schema_editor() as editor:
            editor.execute(f"DROP TABLE {q(LEGACY)}")


# --- Versions on raw UPDATEs --------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "expected"),
    [
        pytest.param(
            "postgresql",
            (
                "dcond_6e339a05_write_blog_post",
                "dcond_6e339a05_delete_blog_post",
                "dcond_6e339a05_version_blog_post",
            ),
            id="postgresql",
        ),
        pytest.param(
            "mysql",
            (
                "dcond_6e339a05_insert_blog_post",
                "dcond_6e339a05_update_blog_post",
                "dcond_6e339a05_delete_blog_post",
                "dcond_6e339a05_version_blog_post",
            ),
            id="mysql",
        ),
        pytest.param(
            "sqlite",
            (
                "dcond_6e339a05_insert_blog_post",
                "dcond_6e339a05_update_blog_post",
                "dcond_6e339a05_delete_blog_post",
                "dcond_6e339a05_version_blog_post",
            ),
            id="sqlite",
        ),
    ],
)
def test_a_versioned_table_has_a_version_trigger(vendor, expected):
    assert trigger_names(vendor, "blog_post", versioned=True) == expected
    assert trigger_names(vendor, "blog_post") == expected[:-1]


@given(st.text(min_size=1, max_size=200))
def test_version_trigger_names_are_short_plain_and_distinct(table):
    for vendor in triggers.SUPPORTED_VENDORS:
        names = trigger_names(vendor, table, versioned=True)
        assert len(set(names)) == len(names)
        assert len(names[-1]) <= 63
        assert re.fullmatch(r"dcond_[0-9a-f]{8}_version(_[a-z0-9_]+)?", names[-1])
        assert triggers._VERSION_TRIGGER.match(names[-1])
        assert not any(triggers._VERSION_TRIGGER.match(name) for name in names[:-1])


POSTGRESQL_VERSION = [
    'CREATE OR REPLACE FUNCTION "public"."dcond_6e339a05_version_blog_post"() RETURNS trigger\n'
    "LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    '    NEW."version" := OLD."version" + 1;\n'
    "    RETURN NEW;\n"
    "END\n"
    "$$",
    'CREATE OR REPLACE TRIGGER "dcond_6e339a05_version_blog_post"\n'
    'BEFORE UPDATE ON "blog_post"\n'
    'FOR EACH ROW WHEN (NEW."version" IS NOT DISTINCT FROM OLD."version")\n'
    'EXECUTE FUNCTION "public"."dcond_6e339a05_version_blog_post"()',
]


@pytest.mark.parametrize(
    ("vendor", "version_statements"),
    [
        pytest.param("postgresql", POSTGRESQL_VERSION, id="postgresql-before-row-when"),
        pytest.param(
            "mysql",
            [
                "DROP TRIGGER IF EXISTS `dcond_6e339a05_version_blog_post`",
                "CREATE TRIGGER `dcond_6e339a05_version_blog_post` BEFORE UPDATE ON `blog_post` "
                "FOR EACH ROW SET NEW.`version` = IF(NEW.`version` <=> OLD.`version`, "
                "OLD.`version` + 1, NEW.`version`)",
            ],
            id="mysql-before-row-no-semicolon",
        ),
        pytest.param(
            "sqlite",
            [
                'DROP TRIGGER IF EXISTS "dcond_6e339a05_version_blog_post"',
                'CREATE TRIGGER "dcond_6e339a05_version_blog_post" AFTER UPDATE ON "blog_post" '
                'FOR EACH ROW WHEN NEW."version" IS OLD."version" BEGIN UPDATE "blog_post" '
                'SET "version" = OLD."version" + 1 WHERE rowid = NEW.rowid; END',
            ],
            id="sqlite-after-row-update-again",
        ),
    ],
)
def test_install_statements_for_a_versioned_table(vendor, version_statements):
    """The stamp triggers as for any table, then the version trigger."""
    schema = "public" if vendor == "postgresql" else None
    plain = install_statements(vendor, ["blog_post"], QUOTE[vendor], schema=schema)
    versioned = install_statements(
        vendor, ["blog_post"], QUOTE[vendor], versions={"blog_post": "version"}, schema=schema
    )
    assert versioned == plain + version_statements


@pytest.mark.parametrize("vendor", triggers.SUPPORTED_VENDORS)
def test_versions_of_other_tables_are_ignored(vendor):
    once = install_statements(vendor, ["blog_post"], QUOTE[vendor])
    assert install_statements(vendor, ["blog_post"], QUOTE[vendor], versions={"x": "v"}) == once


def test_postgresql_version_function_names_the_column_and_is_no_definer():
    sql = "\n".join(
        install_statements("postgresql", ["t"], QUOTE["postgresql"], versions={"t": "rev"})
    )
    assert 'CREATE OR REPLACE FUNCTION "dcond_8efd86fb_version_t"() RETURNS trigger' in sql
    assert 'NEW."rev" := OLD."rev" + 1;' in sql
    assert "SECURITY DEFINER" not in sql.split("dcond_8efd86fb_version_t", 1)[1]


def test_sqlite_version_trigger_on_an_odd_table_and_column():
    """Quoting end to end, and no loop even with recursive triggers on."""
    odd, column = 'it\'s "odd"', 'the "version"'

    def quote(name):
        return '"' + name.replace('"', '""') + '"'

    with closing(sqlite3.connect(":memory:", isolation_level=None)) as db:
        db.execute(
            f'CREATE TABLE {quote(triggers.STAMP_TABLE)} ("table" varchar(255) '
            "PRIMARY KEY, token bigint NOT NULL)"
        )
        db.execute(f"CREATE TABLE {quote(odd)} (id integer, name text, {quote(column)} integer)")
        db.execute(f"INSERT INTO {quote(odd)} VALUES (1, 'a', 1), (2, 'b', 5)")
        for statement in install_statements("sqlite", [odd], quote, versions={odd: column}):
            db.execute(statement)
        db.execute("PRAGMA recursive_triggers = ON")
        db.execute(f"UPDATE {quote(odd)} SET name = 'c'")
        rows = db.execute(f"SELECT id, {quote(column)} FROM {quote(odd)} ORDER BY id").fetchall()
        assert rows == [(1, 2), (2, 6)]
        for statement in uninstall_statements("sqlite", [odd], quote):
            db.execute(statement)
        assert db.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
        ).fetchone() == (0,)


# --- Which tables are versioned -------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        pytest.param([TriggerVersioned], {VERSIONED: "version"}, id="versioned"),
        pytest.param([Restaurant], {"testapp_place": "version"}, id="mti-parent-table"),
        pytest.param([TriggerItem, TriggerChild], {}, id="not-versioned"),
        pytest.param([], {}, id="none"),
    ],
)
def test_version_columns(models, expected):
    assert version_columns(models) == expected


def test_version_columns_agree_with_the_tracking():
    """For the current models and for the migration state's, which lose ``VersionedModel``."""
    every_model = apps.get_models(include_auto_created=True)
    expected = {
        table: info.version_column
        for table in moved_stamps(every_model)
        if (info := table_info(table)).version_column is not None
    }
    assert VERSIONED in expected
    assert version_columns(every_model) == expected
    historical = ProjectState.from_apps(apps).apps.get_models(include_auto_created=True)
    assert version_columns(historical) == expected


# --- Versions on the real database ----------------------------------------------------


def version(pk: int) -> int:
    return TriggerVersioned.objects.values_list("version", flat=True).get(pk=pk)


@pytest.fixture
def versioned(transactional_db) -> Iterator[list[int]]:
    """Two rows at version 1, and the triggers on their table."""
    rows = [TriggerVersioned.objects.create(name=name).pk for name in ("a", "b")]
    install(connection, [VERSIONED])
    yield rows
    uninstall_all(connection)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        pytest.param("UPDATE {t} SET name = 'c' WHERE id = {a}", (2, 1), id="one-row"),
        pytest.param("UPDATE {t} SET name = 'c'", (2, 2), id="every-row"),
        pytest.param("UPDATE {t} SET name = name", (2, 2), id="no-value-changed"),
        pytest.param("UPDATE {t} SET name = 'c' WHERE id = 0", (1, 1), id="no-row"),
        pytest.param("UPDATE {t} SET version = 7 WHERE id = {a}", (7, 1), id="explicit-version"),
        pytest.param(
            "UPDATE {t} SET name = 'c', version = version + 5", (6, 6), id="explicit-increment"
        ),
        pytest.param(
            "UPDATE {t} SET version = 1 WHERE id = {a}", (2, 1), id="explicit-same-version-moves"
        ),
    ],
)
def test_a_raw_update_moves_the_version_once(raw, versioned, statement, expected):
    a, b = versioned
    raw.commit(statement.format(t=q(VERSIONED), a=a))
    assert (version(a), version(b)) == expected


def test_a_raw_update_still_moves_the_stamp(raw, versioned):
    before = token(VERSIONED)
    raw.commit(f"UPDATE {q(VERSIONED)} SET name = 'c'")
    assert token(VERSIONED) != before


def test_a_raw_upsert_moves_the_version_once(raw, versioned):
    a, _ = versioned
    table = q(VERSIONED)
    if VENDOR == "mysql":
        conflict = "ON DUPLICATE KEY UPDATE name = 'c'"
    else:
        conflict = "ON CONFLICT (id) DO UPDATE SET name = 'c'"
    raw.commit(f"INSERT INTO {table} (id, name, version) VALUES ({a}, 'x', 1) {conflict}")
    assert version(a) == 2


def test_a_rolled_back_raw_update_moves_no_version(raw, versioned):
    a, _ = versioned
    raw.rollback(f"UPDATE {q(VERSIONED)} SET name = 'c'")
    assert version(a) == 1


def save(obj: TriggerVersioned) -> None:
    obj.name = "c"
    obj.save()


def save_update_fields(obj: TriggerVersioned) -> None:
    obj.name = "c"
    obj.save(update_fields=["name"])


def queryset_update(obj: TriggerVersioned) -> None:
    TriggerVersioned.objects.filter(pk=obj.pk).update(name="c")


def queryset_update_version(obj: TriggerVersioned) -> None:
    TriggerVersioned.objects.filter(pk=obj.pk).update(version=F("version") + 1)


def bulk_update(obj: TriggerVersioned) -> None:
    obj.name = "c"
    TriggerVersioned.objects.bulk_update([obj], ["name"])


def django_cursor(obj: TriggerVersioned) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {q(VERSIONED)} SET name = 'c' WHERE id = %s", [obj.pk])


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(save, id="save"),
        pytest.param(save_update_fields, id="save-update-fields"),
        pytest.param(queryset_update, id="queryset-update"),
        pytest.param(queryset_update_version, id="queryset-update-version"),
        pytest.param(bulk_update, id="bulk-update"),
        pytest.param(django_cursor, id="django-cursor"),
    ],
)
def test_django_updates_still_move_the_version_once(versioned, write):
    """The ORM sets the version itself, so the trigger leaves it alone."""
    a, b = versioned
    write(TriggerVersioned.objects.get(pk=a))
    assert (version(a), version(b)) == (2, 1)


def test_save_reads_back_the_version_it_wrote(versioned):
    obj = TriggerVersioned.objects.get(pk=versioned[0])
    save(obj)
    assert obj.version == 2
    save(obj)
    assert obj.version == version(obj.pk) == 3


def test_the_version_trigger_is_installed_and_counted(versioned):
    assert installed_tables(connection) == {VERSIONED}
    names = triggers.triggers_by_table(connection)[VERSIONED]
    assert names == set(trigger_names(VENDOR, VERSIONED, versioned=True))
    assert f" [X] {VERSIONED}" in run("status", "testapp.TriggerVersioned").splitlines()


@pytest.mark.usefixtures("no_triggers_left")
def test_installing_a_versioned_table_twice_still_moves_once(raw):
    TriggerVersioned.objects.create(pk=1, name="a")
    install(connection, [VERSIONED])
    install(connection, [VERSIONED])
    assert _our_trigger_count() == len(trigger_names(VENDOR, VERSIONED, versioned=True))
    raw.commit(f"UPDATE {q(VERSIONED)} SET name = 'c'")
    assert version(1) == 2


def test_a_versioned_table_missing_its_version_trigger_is_incomplete(raw, versioned):
    a, _ = versioned
    install(connection, [VERSIONED], versions={})  # as for a table not versioned (any more)
    assert triggers.triggers_by_table(connection)[VERSIONED] == set(
        trigger_names(VENDOR, VERSIONED)
    )
    assert installed_tables(connection) == set()
    out = run("status", "testapp.TriggerVersioned")
    assert f" [~] {VERSIONED} (incomplete or stale triggers: run install)" in out.splitlines()
    raw.commit(f"UPDATE {q(VERSIONED)} SET name = 'c'")
    assert version(a) == 1
    run("install", "testapp.TriggerVersioned")
    assert installed_tables(connection) == {VERSIONED}
    raw.commit(f"UPDATE {q(VERSIONED)} SET name = 'd'")
    assert version(a) == 2


def test_uninstall_removes_the_version_trigger(raw, versioned):
    a, _ = versioned
    uninstall(connection, [VERSIONED])
    assert _our_trigger_count() == 0
    assert _version_function_count() == 0
    raw.commit(f"UPDATE {q(VERSIONED)} SET name = 'c'")
    assert version(a) == 1


def test_the_command_uninstalls_the_version_trigger(versioned):
    assert "Removed change stamp triggers on 1 table" in run(
        "uninstall", "testapp.TriggerVersioned"
    )
    assert triggers.triggers_by_table(connection) == {}
    assert _version_function_count() == 0


def test_uninstall_all_removes_the_version_trigger(versioned):
    uninstall_all(connection)
    assert triggers.triggers_by_table(connection) == {}
    assert _version_function_count() == 0


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_command_sql_and_install_include_the_version_trigger():
    name = trigger_names(VENDOR, VERSIONED, versioned=True)[-1]
    assert name in run("sql", "testapp.TriggerVersioned")
    run("install", "testapp.TriggerVersioned")
    assert name in triggers.triggers_by_table(connection)[VERSIONED]


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_operation_installs_and_removes_the_version_trigger(raw):
    """From the migration state, whose models keep only ``VersionedModel``'s field."""
    TriggerVersioned.objects.create(pk=1, name="a")
    operation = InstallChangeStampTriggers(models=["testapp.TriggerVersioned"])
    state = ProjectState.from_apps(apps)
    with connection.schema_editor() as editor:
        operation.database_forwards("testapp", editor, state, state)
    assert installed_tables(connection) == {VERSIONED}
    raw.commit(f"UPDATE {q(VERSIONED)} SET name = 'c'")
    assert version(1) == 2
    with connection.schema_editor() as editor:
        operation.database_backwards("testapp", editor, state, state)
    assert triggers.triggers_by_table(connection) == {}
    assert _version_function_count() == 0


@transactional
@pytest.mark.usefixtures("no_triggers_left")
def test_multi_table_inheritance_moves_versions_in_the_parent_table_only(raw):
    """The documented limit: an UPDATE of only the child's table moves no version."""
    restaurant = Restaurant.objects.create(name="a", serves="soup")
    install(connection, written_tables_for_models([Restaurant]))
    assert installed_tables(connection) == {"testapp_place", "testapp_restaurant"}

    def place_version() -> int:
        return Restaurant.objects.values_list("version", flat=True).get(pk=restaurant.pk)

    raw.commit(f"UPDATE {q('testapp_restaurant')} SET serves = 'stew'")
    assert place_version() == 1
    raw.commit(f"UPDATE {q('testapp_place')} SET name = 'b'")
    assert place_version() == 2


SCRATCH = "testapp_scratch_versioned"


@pytest.fixture
def scratch(transactional_db) -> Iterator[str]:
    """A table no model names, with a version column and its version trigger.

    Ask for it before ``raw``, so that the raw connection (and any lock it
    holds) is gone before the teardown drops the triggers.
    """
    with connection.schema_editor() as editor:
        editor.execute(
            f"CREATE TABLE {q(SCRATCH)} (id integer PRIMARY KEY, name varchar(10), "
            "version bigint NOT NULL)"
        )
    try:
        install(connection, [SCRATCH], versions={SCRATCH: "version"})
        yield SCRATCH
    finally:
        uninstall_all(connection)
        with connection.schema_editor() as editor:
            editor.execute(f"DROP TABLE {q(SCRATCH)}")


def test_a_version_trigger_on_a_table_not_versioned_is_stale(scratch):
    assert installed_tables(connection) == set()
    out = run("status")
    assert f" [~] {scratch} (not a table of an installed model)" in out.splitlines()
    statements = install(connection, [scratch])
    assert statements[0].startswith(
        f"DROP TRIGGER IF EXISTS {q(trigger_names(VENDOR, scratch, versioned=True)[-1])}"
    )
    assert installed_tables(connection) == {scratch}
    assert _version_function_count() == 0


@pytest.mark.skipif(VENDOR != "mysql", reason="MariaDB/MySQL keep triggers on dropped columns")
def test_mysql_after_the_version_column_is_dropped_install_repairs_updates(scratch, raw):
    raw.commit(f"INSERT INTO {q(scratch)} (id, name, version) VALUES (1, 'a', 1)")
    with connection.schema_editor() as editor:
        editor.execute(f"ALTER TABLE {q(scratch)} DROP COLUMN version")
    with pytest.raises(connection.Database.OperationalError, match="Unknown column 'version'"):
        raw.commit(f"UPDATE {q(scratch)} SET name = 'b'")
    raw.db.rollback()  # else its open transaction keeps a metadata lock the DROP TRIGGER awaits
    install(connection, [scratch])
    raw.commit(f"UPDATE {q(scratch)} SET name = 'b'")


@pytest.mark.skipif(not ON_POSTGRESQL, reason="PostgreSQL's DROP COLUMN ... CASCADE")
def test_postgresql_dropping_the_version_column_takes_the_trigger(scratch, raw):
    raw.commit(f"INSERT INTO {q(scratch)} (id, name, version) VALUES (1, 'a', 1)")
    with connection.schema_editor() as editor:
        editor.execute(f"ALTER TABLE {q(scratch)} DROP COLUMN version CASCADE")
    raw.commit(f"UPDATE {q(scratch)} SET name = 'b'")
    assert triggers.triggers_by_table(connection)[scratch] == set(trigger_names(VENDOR, scratch))
    assert _version_function_count() == 1  # the function outlives its trigger
    uninstall_all(connection)
    assert _version_function_count() == 0


@pytest.mark.skipif(VENDOR != "sqlite", reason="SQLite checks triggers when dropping a column")
def test_sqlite_refuses_to_drop_the_version_column(scratch):
    with pytest.raises(DatabaseError, match="no such column"), connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {q(scratch)} DROP COLUMN version")


def _version_function_count() -> int:
    if not ON_POSTGRESQL:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_catalog.pg_proc WHERE proname LIKE %s",
            [r"dcond\_%\_version%"],
        )
        return int(cursor.fetchone()[0])
