"""Tracking: which statements are writes; every write path moves the stamps after commit."""

from __future__ import annotations

import logging

import pytest
from django.db import connection, transaction
from django.test import override_settings

from django_conditional import store_health
from django_conditional.stamp_errors import StampMoveError, StampsNotMoved
from django_conditional.stamps import read_stamps
from django_conditional.tracking import touch, written_tables
from tests.failing_cache import FAILING, FAILING_CACHES, failing
from tests.testapp.models import Article, Author, Comment, Note, Tag

# --- Recognising writes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "verb", "tables"),
    [
        pytest.param('INSERT INTO "t" ("a") VALUES (%s)', "INSERT", ("t",), id="insert"),
        pytest.param('INSERT OR IGNORE INTO "t" VALUES (1)', "INSERT", ("t",), id="sqlite-ignore"),
        pytest.param("INSERT IGNORE INTO `t` VALUES (1)", "INSERT", ("t",), id="mysql-ignore"),
        pytest.param("REPLACE INTO `t` VALUES (1)", "REPLACE", ("t",), id="replace"),
        pytest.param('UPDATE "t" SET "a" = %s', "UPDATE", ("t",), id="update"),
        pytest.param('DELETE FROM "t" WHERE "id" = 1', "DELETE", ("t",), id="delete"),
        pytest.param(
            "DELETE `t` FROM `t` INNER JOIN `u` ON 1", "DELETE", ("t",), id="mysql-join-delete"
        ),
        pytest.param(
            'TRUNCATE "a", "b" RESTART IDENTITY CASCADE', "TRUNCATE", ("a", "b"), id="pg-truncate"
        ),
        pytest.param("TRUNCATE TABLE `a`", "TRUNCATE", ("a",), id="mysql-truncate"),
        pytest.param('UPDATE "public"."t" SET a = 1', "UPDATE", ("t",), id="schema-qualified"),
        pytest.param("  update t set a = 1", "UPDATE", ("t",), id="lowercase-unquoted"),
        pytest.param('UPDATE "we""ird" SET a = 1', "UPDATE", ('we"ird',), id="escaped-quote"),
        pytest.param("SELECT * FROM t", None, None, id="select"),
        pytest.param("SAVEPOINT s1", None, None, id="savepoint"),
        pytest.param("SET TIME ZONE 'UTC'", None, None, id="set"),
        pytest.param("BEGIN", None, None, id="begin"),
        pytest.param("DROP TABLE t", None, None, id="ddl"),
        pytest.param("", None, None, id="empty"),
    ],
)
def test_written_tables(sql, verb, tables):
    write = written_tables(sql)
    if verb is None:
        assert write is None
    else:
        assert write is not None
        assert (write.verb, write.tables) == (verb, tables)


def test_unquoted_names_fold_to_lowercase_on_postgresql():
    write = written_tables("UPDATE Demo_Article SET a = 1", fold_unquoted=True)
    assert write is not None
    assert write.tables == ("demo_article",)


# --- Stamps move after commit, for every write path -------------------------------------


def stamp(model):
    return read_stamps("default", [model._meta.db_table])[0]


@pytest.fixture
def author(transactional_db):
    return Author.objects.create(name="Ada")


@pytest.fixture
def article(author):
    return Article.objects.create(title="One", author=author)


WRITE_PATHS = [
    pytest.param(Article, lambda a: a.save(), id="save"),
    pytest.param(Article, lambda a: a.delete(), id="delete"),
    pytest.param(Article, lambda a: Article.objects.filter(pk=a.pk).update(title="x"), id="update"),
    pytest.param(Article, lambda a: Article.objects.all().delete(), id="queryset-delete"),
    pytest.param(Comment, lambda a: a.author.delete(), id="cascade"),
    pytest.param(
        Article,
        lambda a: Article.objects.bulk_create([Article(title="b", author=a.author)]),
        id="bulk-create",
    ),
    pytest.param(Article, lambda a: Article.objects.bulk_update([a], ["title"]), id="bulk-update"),
    pytest.param(Tag, lambda a: a.tags.add(Tag.objects.create(name="t")), id="m2m-add"),
    pytest.param(Article, lambda a: a.tags.clear(), id="m2m-clear"),
    pytest.param(Note, lambda a: Note.objects.create(text="n"), id="plain-model"),
    pytest.param(
        Note,
        lambda a: connection.cursor().execute(
            f"INSERT INTO {Note._meta.db_table} (text) VALUES (%s)", ["raw"]
        ),
        id="raw-cursor",
    ),
]


@pytest.mark.parametrize(("model", "write"), WRITE_PATHS)
def test_write_moves_the_stamp(article, model, write):
    Comment.objects.create(article=article, body="c")
    before = stamp(model)
    write(article)
    assert stamp(model) != before


@pytest.mark.parametrize(("model", "write"), WRITE_PATHS)
def test_rolled_back_write_moves_nothing(article, model, write):
    Comment.objects.create(article=article, body="c")
    before = stamp(model)

    def write_and_roll_back():
        with transaction.atomic():
            write(article)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        write_and_roll_back()
    assert stamp(model) == before


def test_stamps_move_only_when_the_transaction_commits(article):
    before = stamp(Article)
    with transaction.atomic():
        article.save()
        assert stamp(Article) == before
    assert stamp(Article) != before


def test_rolled_back_savepoint_moves_only_what_survived(article):
    articles_before, notes_before = stamp(Article), stamp(Note)
    with transaction.atomic():
        Note.objects.create(text="kept")
        try:
            with transaction.atomic():
                article.save()
                raise RuntimeError
        except RuntimeError:
            pass
    assert stamp(Note) != notes_before
    assert stamp(Article) == articles_before


def test_many_to_many_moves_both_ends(article):
    tag = Tag.objects.create(name="t")
    articles_before, tags_before = stamp(Article), stamp(Tag)
    article.tags.add(tag)
    assert stamp(Article) != articles_before
    assert stamp(Tag) != tags_before


def test_ignored_tables_move_nothing(transactional_db):
    with override_settings(CONDITIONAL_IGNORED_TABLES=["testapp_note"]):
        before = stamp(Note)
        Note.objects.create(text="n")
        assert stamp(Note) == before


def test_touch_a_model(transactional_db):
    before = stamp(Note)
    touch(Note)
    assert stamp(Note) != before


def test_touch_an_instance_moves_its_version(article):
    before = stamp(Article)
    touch(article)
    article.refresh_from_db()
    assert article.version == 2
    assert stamp(Article) != before


def test_touch_a_table_name_inside_a_transaction(transactional_db):
    before = stamp(Note)
    with transaction.atomic():
        touch("testapp_note")
        assert stamp(Note) == before
    assert stamp(Note) != before


@pytest.mark.parametrize("in_transaction", [False, True], ids=["autocommit", "atomic"])
def test_a_write_whose_stamps_cannot_move_is_rolled_back(article, in_transaction):
    """The move before the commit fails: nothing is stored, and the caller is told."""
    with override_settings(CACHES=FAILING_CACHES, CONDITIONAL_STAMP_CACHE="stamps"):
        article.title = "Renamed"
        write = transaction.atomic()(article.save) if in_transaction else article.save
        with failing(), pytest.raises(StampsNotMoved, match="was rolled back"):
            write()
    stored = Article.objects.get(pk=article.pk)
    assert (stored.title, stored.version) == ("One", 1)


def test_a_failed_move_after_the_commit_is_logged_and_leaves_the_stamps_in_flight(
    article, caplog, monkeypatch
):
    """The move before the commit worked, the one after it did not: the lease holds."""
    from django_conditional.stamp_errors import StampsInFlight
    from django_conditional.stamps import CacheStampStore

    real_move = CacheStampStore.move

    def cut_off(self, alias, tables):
        FAILING.on = True
        try:
            real_move(self, alias, tables)
        finally:
            FAILING.on = False

    monkeypatch.setattr(CacheStampStore, "move", cut_off)
    with (
        override_settings(CACHES=FAILING_CACHES, CONDITIONAL_STAMP_CACHE="stamps"),
        caplog.at_level(logging.ERROR, logger="django_conditional"),
    ):
        article.title = "Renamed"
        article.save()
        assert Article.objects.get(pk=article.pk).title == "Renamed"
        assert "after a committed write" in caplog.text
        assert "until their lease ends" in caplog.text
        store_health.reset_all()  # the store answers again at once
        with pytest.raises(StampsInFlight):
            stamp(Article)


# --- Raw SQL shapes on a versioned table (through Django's cursor) --------------------

RAW_UPDATES = [
    pytest.param("UPDATE {t} SET title = 'z' WHERE id = %s", {"all"}, id="plain"),
    pytest.param(
        "/* tagged */ UPDATE {t} SET title = 'z' WHERE id = %s", {"all"}, id="block-comment"
    ),
    pytest.param("-- tagged\nUPDATE {t} SET title = 'z' WHERE id = %s", {"all"}, id="line-comment"),
    pytest.param(
        "UPDATE {t} AS a SET title = 'z' WHERE a.id = %s",
        {"postgresql", "sqlite", "mysql"},
        id="alias",
    ),
    pytest.param(
        "WITH x AS (SELECT %s AS id) UPDATE {t} SET title = 'z' WHERE id IN (SELECT id FROM x)",
        {"postgresql", "sqlite"},
        id="with",
    ),
    pytest.param(
        "UPDATE {T} SET title = 'z' WHERE id = %s", {"postgresql", "sqlite"}, id="uppercase"
    ),
    pytest.param(
        "UPDATE {t} SET version = 1, title = 'z' WHERE id = %s", {"all"}, id="sets-version"
    ),
]


@pytest.mark.parametrize(("statement", "vendors"), RAW_UPDATES)
def test_raw_updates_change_the_validator(article, statement, vendors):
    from django_conditional.derivation import Derivation, derive

    if "all" not in vendors and connection.vendor not in vendors:
        pytest.skip(f"{connection.vendor} does not accept this statement")
    Article.objects.filter(pk=article.pk).update(title="a")  # version 2
    table = Article._meta.db_table

    def tag():
        return derive(Derivation(queryset=Article.objects.all)).validator.etag

    before = tag()
    with connection.cursor() as cursor:
        cursor.execute(statement.format(t=table, T=table.upper()), [article.pk])
    assert tag() != before


def test_stamps_move_with_capture_on_commit_callbacks(db, django_capture_on_commit_callbacks):
    """Tests inside a transaction (TestCase, the db fixture) run our callback on request."""
    author = Author.objects.create(name="Ada")
    before = stamp(Author)
    with django_capture_on_commit_callbacks(execute=True):
        author.save()
    assert stamp(Author) != before


def test_stamps_move_before_the_applications_commit_hooks(transactional_db):
    seen = []
    before = stamp(Note)
    with transaction.atomic():
        transaction.on_commit(lambda: seen.append(stamp(Note)))
        Note.objects.create(text="n")
    assert seen
    assert seen[0] != before


# --- touch() when the stamps cannot move ---------------------------------------------


def test_touch_raises_when_the_stamp_table_is_missing(stamp_table_missing):
    with pytest.raises(StampMoveError) as raised:
        touch(Note)
    message = str(raised.value)
    assert message.startswith("Could not move the change stamps of testapp_note")
    assert "Run 'python manage.py migrate'" in message


@pytest.mark.parametrize(
    ("stamp_cache", "advice"),
    [
        pytest.param(None, "Check that database 'default' answers", id="database"),
        pytest.param(
            "default",
            "Check that the stamp cache 'default' (CONDITIONAL_STAMP_CACHE) answers",
            id="cache",
        ),
    ],
)
def test_touch_raises_when_the_stamp_store_is_down(
    transactional_db, monkeypatch, stamp_cache, advice
):
    from django_conditional import stamps

    def refuse(alias, tables):
        raise ConnectionError("Connection refused")

    with override_settings(CONDITIONAL_STAMP_CACHE=stamp_cache):
        monkeypatch.setattr(stamps.get_stamp_store(), "move", refuse)
        with pytest.raises(StampMoveError) as raised:
            touch("legacy_prices")
    assert str(raised.value) == (
        "Could not move the change stamps of legacy_prices in 'default': Connection refused. "
        f"{advice}, then run it again."
    )


def test_a_transaction_whose_stamps_cannot_move_is_rolled_back(stamp_table_missing):
    """The database store moves the stamps in the write's own transaction, before COMMIT."""

    @transaction.atomic
    def write_then_touch():
        Note.objects.create(text="lost?")
        touch(Note)

    with pytest.raises(StampsNotMoved) as raised:
        write_then_touch()
    assert "Run 'python manage.py migrate'" in str(raised.value)
    assert not Note.objects.exists()
