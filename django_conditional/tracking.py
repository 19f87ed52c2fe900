"""Every write path that must move versions and stamps.

One database execute wrapper sees every statement the application sends,
whatever produced it: ``save()``, ``delete()``, ``QuerySet.update()`` and
``delete()`` (cascades and fast deletes included), ``bulk_create()``,
``bulk_update()``, many-to-many changes, the deletion collector's
``SET_NULL``, raw SQL through ``connection.cursor()``. For each INSERT,
UPDATE, DELETE, REPLACE or TRUNCATE it notes the tables written, and moves
their stamps once the transaction commits (``on_commit``), so a rolled-back
transaction or savepoint moves nothing. With a shared stamp store the
stamps also move just before the commit (``prepare``, see ``stamps``): if
that fails, the commit does not happen, the transaction rolls back and
the caller gets ``StampsNotMoved``. A statement outside a transaction is
given one of its own for this. For an UPDATE of a versioned table
it also adds ``version = version + 1`` (and ``modified``) to the statement
when the statement does not set them itself.

Writes that bypass Django (another service, psql) need the opt-in triggers
(``triggers``) or an explicit :func:`touch`.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import wraps
from typing import Any
from weakref import WeakKeyDictionary

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.models import F, Model, QuerySet
from django.db.models.signals import m2m_changed, post_migrate, pre_migrate
from django.dispatch import receiver
from django.utils import timezone

from django_conditional.conf import conf
from django_conditional.stamp_clock import MAX_RATE_ERROR
from django_conditional.stamp_errors import StampMoveError, StampsNotMoved, advice
from django_conditional.stamps import DatabaseStampStore, get_stamp_store, note_statement
from django_conditional.tables import deletion_stamp, model_tables, models_by_table, table_info

__all__ = ["install", "touch", "written_tables"]

logger = logging.getLogger("django_conditional")

# --- Recognising writes -------------------------------------------------------

_NAME = r'(?:"(?:[^"]|"")+"|`(?:[^`]|``)+`|\[[^\]]+\]|[A-Za-z_][\w$]*)'
_QUALIFIED = rf"{_NAME}(?:\s*\.\s*{_NAME})*"
# Comments before the statement (query tagging tools add them).
_LEADING_COMMENTS = re.compile(r"(?:\s+|/\*.*?\*/|--[^\n]*(?:\n|\Z))*", re.DOTALL)
_WRITE = re.compile(
    rf"""(?P<verb>
        (?:INSERT|REPLACE)(?:\s+(?:OR\s+\w+|IGNORE|LOW_PRIORITY|DELAYED|HIGH_PRIORITY))*\s+INTO
      | MERGE\s+INTO
      | UPDATE(?:\s+(?:OR\s+\w+|IGNORE|LOW_PRIORITY|ONLY))*
      | DELETE(?:\s+(?:LOW_PRIORITY|QUICK|IGNORE))*(?:\s+FROM)?(?:\s+ONLY)?
      | TRUNCATE(?:\s+TABLE)?(?:\s+ONLY)?
    )\s+(?P<names>{_QUALIFIED}(?:\s*,\s*{_QUALIFIED})*)""",
    re.IGNORECASE | re.VERBOSE,
)
# Any write target anywhere in a statement: for WITH ... (writable CTEs).
_ANY_WRITE = re.compile(
    rf"\b(?:(?:INSERT|REPLACE)(?:\s+(?:OR\s+\w+|IGNORE))*\s+INTO|MERGE\s+INTO|UPDATE|DELETE\s+FROM"
    rf"|TRUNCATE(?:\s+TABLE)?)\s+(?P<name>{_QUALIFIED})",
    re.IGNORECASE,
)
# A statement followed by another in the same execute() (MySQL allows it).
_NEXT_STATEMENT = re.compile(r";\s*\S")
_ONE_NAME = re.compile(_QUALIFIED)
_NAME_PART = re.compile(_NAME)
# The SET after an UPDATE's table name, past an optional alias (UPDATE t AS a SET).
_SET = re.compile(
    rf"(?:\s+(?:AS\s+)?(?!SET\b){_NAME})?\s+SET\s+",
    re.IGNORECASE,
)
# Statements worth a regular expression start with one of these characters
# (W for WITH, / and - for comments); SELECT, SAVEPOINT, SET, BEGIN, COMMIT...
# leave after one comparison.
_WRITE_INITIALS = frozenset("IiUuDdRrTtMmWw/-")


@dataclass(frozen=True, slots=True)
class _Write:
    verb: str  # INSERT, UPDATE, DELETE, REPLACE or TRUNCATE
    tables: tuple[str, ...]
    end: int  # where the table name ends in the statement


def written_tables(sql: str, *, fold_unquoted: bool = False) -> _Write | None:
    """The write a statement makes, or ``None`` for reads and anything else.

    ``fold_unquoted`` lowercases unquoted names, as PostgreSQL and SQLite
    compare them. A ``WITH`` statement (a writable CTE) yields verb
    ``WITH``, several statements in one string ``MULTI``, each with every
    table written anywhere in it.
    """
    stripped = sql.lstrip()
    several = ";" in sql and _NEXT_STATEMENT.search(sql) is not None
    if not stripped or (stripped[0] not in _WRITE_INITIALS and not several):
        return None
    start = _LEADING_COMMENTS.match(sql).end()  # type: ignore[union-attr]
    is_with = sql[start : start + 4].upper() == "WITH"
    if is_with or several:
        # A writable CTE or several statements: every table written anywhere
        # (a ";" inside a literal only makes this count more tables).
        names = [match["name"] for match in _ANY_WRITE.finditer(sql, start)]
        if not names:
            return None
        verb = "WITH" if is_with else "MULTI"
        return _Write(verb, tuple(_unquote(_last_part(n), fold_unquoted) for n in names), -1)
    match = _WRITE.match(sql, start)
    if match is None:
        return None
    verb = match["verb"].split(None, 1)[0].upper()
    if verb == "TRUNCATE":
        names = _split_names(match["names"])
        end = match.end("names")
    else:
        # Only TRUNCATE lists tables; after any other verb a comma starts something else.
        first = _ONE_NAME.match(match["names"])
        assert first is not None  # the names group starts with a name
        names = [first[0]]
        end = match.start("names") + first.end()
        if verb == "UPDATE":
            joined = _joined_update_tables(sql, end, fold_unquoted)
            if joined:
                # MySQL's UPDATE a, b SET ... / UPDATE a JOIN b ...: several tables.
                first_table = _unquote(_last_part(names[0]), fold_unquoted)
                return _Write("MULTI", (first_table, *joined), -1)
    return _Write(verb, tuple(_unquote(_last_part(name), fold_unquoted) for name in names), end)


_JOIN_OR_COMMA = re.compile(r",|\bJOIN\b", re.IGNORECASE)


def _joined_update_tables(sql: str, end: int, fold_unquoted: bool) -> tuple[str, ...]:
    """The other Django tables a multi-table UPDATE names before its SET, if any."""
    set_position = re.search(r"\bSET\b", sql[end:], re.IGNORECASE)
    segment = sql[end : end + set_position.start()] if set_position else ""
    if not _JOIN_OR_COMMA.search(segment):
        return ()
    known = models_by_table()
    names = (_unquote(name, fold_unquoted) for name in _NAME_PART.findall(segment))
    return tuple(dict.fromkeys(name for name in names if name in known))


def _split_names(names: str) -> list[str]:
    return [match[0] for match in _ONE_NAME.finditer(names)]


def _last_part(name: str) -> str:
    parts = _NAME_PART.findall(name)
    return parts[-1] if parts else name


def _unquote(name: str, fold_unquoted: bool) -> str:
    if name[:1] == '"':
        return name[1:-1].replace('""', '"')
    if name[:1] == "`":
        return name[1:-1].replace("``", "`")
    if name[:1] == "[":
        return name[1:-1]
    return name.lower() if fold_unquoted else name


# --- Maintaining versions on every UPDATE ---------------------------------------


def _add_version_assignments(
    sql: str,
    params: Any,
    many: bool,
    write: _Write,
    connection: BaseDatabaseWrapper,
) -> tuple[str, Any, bool]:
    """Prefix the SET list with ``version = version + 1`` and ``modified = now``.

    Only for a versioned table, and only the assignments the statement does
    not make itself (``save()`` and ``VersionedQuerySet.update()`` already
    set them). The new assignments go first in the SET list, where no
    placeholder precedes them, so the parameter for ``modified`` is
    prepended to the parameters. The flag is False when the table is
    versioned but the statement could not be understood well enough to add
    the increment: the caller then treats it as a write versions cannot show.
    While ``migrate`` runs, historical models may lack the columns: nothing
    is added, and the write counts as one versions cannot show.
    """
    info = table_info(write.tables[0])
    if info.version_column is None and info.modified_column is None:
        return sql, params, True
    if _migrating:
        return sql, params, False
    set_match = _SET.match(sql, write.end)
    if set_match is None:
        return sql, params, info.version_column is None
    quote = connection.ops.quote_name
    assignments: list[str] = []
    new_params = params
    if info.version_column is not None and not _assigns(sql, quote(info.version_column)):
        column = quote(info.version_column)
        assignments.append(f"{column} = {column} + 1")
    # Without parameters a statement's "%" are literal: add no placeholder to it.
    if (
        info.modified_column is not None
        and params is not None
        and not _assigns(sql, quote(info.modified_column))
    ):
        assignments.append(f"{quote(info.modified_column)} = %s")
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        new_params = [[now, *row] for row in params] if many else [now, *params]
    if not assignments:
        return sql, params, True
    position = set_match.end()
    return f"{sql[:position]}{', '.join(assignments)}, {sql[position:]}", new_params, True


_UPSERT_SET = re.compile(
    r"\bON\s+CONFLICT\b.*?\bDO\s+UPDATE\s+SET\s+|\bON\s+DUPLICATE\s+KEY\s+UPDATE\s+",
    re.IGNORECASE | re.DOTALL,
)


def _add_upsert_version_assignment(sql: str, write: _Write, connection: BaseDatabaseWrapper) -> str:
    """Increment the version of rows an upsert updates (``bulk_create(update_conflicts=True)``).

    Without this an upsert would change a row and keep its version. The
    existing row's column is qualified with the table, as PostgreSQL and
    SQLite need in ``DO UPDATE``.
    """
    info = table_info(write.tables[0])
    if info.version_column is None or _migrating:
        return sql
    upsert = _UPSERT_SET.search(sql, write.end)
    if upsert is None:
        return sql
    quote = connection.ops.quote_name
    column = quote(info.version_column)
    if _assigns(sql[upsert.start() :], column, after_set=False):
        return sql
    position = upsert.end()
    # INSERT INTO t AS a ...: the alias hides the table's name.
    alias = _INSERT_ALIAS.match(sql, write.end)
    owner = alias["alias"] if alias else quote(write.tables[0])
    return f"{sql[:position]}{column} = {owner}.{column} + 1, {sql[position:]}"


_INSERT_ALIAS = re.compile(rf"\s+AS\s+(?P<alias>{_NAME})", re.IGNORECASE)


def _assigns(sql: str, quoted_column: str, *, after_set: bool = True) -> bool:
    """Whether the statement's SET list assigns the column, quoted or not.

    WHERE clauses qualify column names (``"t"."version" = %s``), so only an
    assignment right after SET or a comma counts.
    """
    lead = r"(?:\bSET\s+|,\s*)" if after_set else r"(?:\bSET\s+|\bUPDATE\s+|,\s*)"
    bare = quoted_column[1:-1]
    names = rf"(?:{re.escape(quoted_column)}|\b{re.escape(bare)}\b)"
    return re.search(rf"{lead}{names}\s*=", sql, re.IGNORECASE) is not None


# --- Moving stamps after commit ---------------------------------------------------


@dataclass(eq=False)
class _PendingStamps:
    """Tables written inside one transaction (or savepoint), moved when it commits."""

    alias: str
    savepoints: frozenset[str]
    tables: set[str] = field(default_factory=set)
    done: bool = False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            move_stamps(self.alias, self.tables)


def move_stamps(alias: str, tables: Iterable[str], *, strict: bool = False) -> None:
    """Move stamps now, after a commit. A failure is logged, not raised: the write has committed.

    Nothing stale is left by a failure: the move before the commit changed
    the stamps already (``prepare_stamps``), and left them in flight in a
    cache until its lease ends. With ``strict`` (``touch()`` outside a
    transaction, whose only job is the move) it raises
    :class:`~django_conditional.stamp_errors.StampMoveError`, saying what to
    do, and returns only once every process's mirror must have seen the move.
    """
    tables = set(tables)
    if not tables:
        return
    store = get_stamp_store()
    try:
        store.move(alias, tables)
    except Exception as error:
        if strict:
            raise StampMoveError(
                f"Could not move the change stamps of {_describe_tables(tables)} in "
                f"{alias!r}: {error}. {advice(error, alias)}"
            ) from error
        if isinstance(store, DatabaseStampStore):
            # Its failure says nothing of the next read (see prepare_stamps).
            consequence = (
                "they moved in the write's transaction, so validators are current, but pages "
                "built from them send no Last-Modified until the next write to them"
            )
        else:
            store.health.failed(error)
            consequence = (
                "pages built from them are served without validators until their lease ends "
                f"(CONDITIONAL_STAMP_LEASE, {conf.stamp_lease:g} s), then from the committed data"
            )
        logger.error(
            "Could not move the change stamps of %s in %r after a committed write (%s); %s.",
            ", ".join(sorted(tables)),
            alias,
            error,
            consequence,
        )
        return
    if strict:
        _wait_until(_deadline(store.commit_delay()))


def prepare_stamps(alias: str, tables: set[str]) -> float:
    """Move stamps just before a commit; raise ``StampsNotMoved`` if they cannot be.

    Returns how long after now the commit must not return before
    (``StampStore.commit_delay``).
    """
    store = get_stamp_store()
    if not store.prepares or not tables:
        return 0.0
    # The database store's move is a statement in the write's own transaction:
    # what fails it says nothing of the next write, so no breaker opens for it.
    health = None if isinstance(store, DatabaseStampStore) else store.health
    if health is not None and not health.allow():
        # Not a new failure: the breaker's wait goes on as it was.
        raise _not_moved(alias, tables, ConnectionError(f"the {health.name} did not answer"))
    try:
        store.prepare(alias, tables)
    except Exception as error:
        if health is not None:
            health.failed(error)
        raise _not_moved(alias, tables, error) from error
    if health is not None:
        health.succeeded()
    return store.commit_delay()


def _not_moved(alias: str, tables: set[str], error: BaseException) -> StampsNotMoved:
    return StampsNotMoved(
        f"The write to {_describe_tables(tables)} in {alias!r} was rolled back: its change "
        f"stamps could not be moved before its commit ({error}), and a write the stamps "
        f"miss could be answered 304 for good. Nothing of it was stored; retry it once the "
        f"stamp store answers. {advice(error, alias)}"
    )


def _deadline(delay: float) -> float:
    """The monotonic time ``delay`` seconds from now, as another machine may measure them."""
    return time.monotonic() + delay * (1 + MAX_RATE_ERROR)


def _wait_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


# Per connection: when its last commit may return (``StampStore.commit_delay``).
_mirror_deadlines: WeakKeyDictionary[BaseDatabaseWrapper, float] = WeakKeyDictionary()


def _describe_tables(tables: set[str]) -> str:
    # The tables a user named; their deletion stamps go with them.
    names = sorted(tables - {deletion_stamp(table) for table in tables}) or sorted(tables)
    shown = ", ".join(names[:5])
    return shown if len(names) <= 5 else f"{shown} and {len(names) - 5} more table(s)"


def note_write(
    connection: BaseDatabaseWrapper,
    tables: Iterable[str],
    *,
    deletes: bool = False,
    strict: bool = False,
) -> None:
    """Record a write to ``tables``; their stamps move when it is committed.

    ``deletes`` also moves the tables' deletion stamps (see ``tables``).
    ``strict`` raises when a move made right away (autocommit) fails.
    """
    ignored = conf.ignored_tables
    moved: set[str] = set()
    for table in tables:
        if table not in ignored:
            moved |= table_info(table).moves
            if deletes:
                moved.add(deletion_stamp(table))
    moved -= ignored
    if not moved:
        return
    if _migrating:
        # The stamp table may not exist yet; post_migrate moves these.
        _written_while_migrating.setdefault(connection.alias, set()).update(moved)
        return
    if not connection.in_atomic_block:
        # Autocommit: the statement has committed. (Under manual transaction
        # management, set_autocommit(False), the commit is out of sight and
        # this is too early; the README says to touch() after such commits.)
        move_stamps(connection.alias, moved, strict=strict)
        return
    pending = _current_pending(connection)
    pending.tables |= moved


def _current_pending(connection: BaseDatabaseWrapper) -> _PendingStamps:
    """The pending set registered for the current savepoint level, or a new one.

    Django drops the ``on_commit`` callbacks registered inside a savepoint
    that rolls back, and with them the tables noted there.
    """
    savepoints = frozenset(connection.savepoint_ids)
    # Only the newest callback may be extended: one registered before others
    # (or before a captureOnCommitCallbacks() block began) must not grow.
    if connection.run_on_commit:
        registered_savepoints, callback = connection.run_on_commit[-1][:2]
        if isinstance(callback, _PendingStamps) and registered_savepoints == savepoints:
            return callback
    pending = _PendingStamps(connection.alias, savepoints)
    transaction.on_commit(pending, using=connection.alias)
    return pending


def _pending_tables(connection: BaseDatabaseWrapper) -> set[str]:
    """The tables whose stamps the transaction about to commit must move."""
    tables: set[str] = set()
    for entry in connection.run_on_commit:
        callback = entry[1]
        if isinstance(callback, _PendingStamps) and not callback.done:
            tables |= callback.tables
    return tables


def _move_committed(hooks: list[Any]) -> None:
    """After COMMIT, before any other commit callback: move the pending stamps.

    The application's own callbacks registered before our first write
    (a cache warmer, a CDN purge) would otherwise run between the commit
    and the move and see the old stamps; one that raises would stop Django
    from running ours at all. Our callback stays registered, and does
    nothing when Django runs it.
    """
    for entry in hooks:
        callback = entry[1]
        if isinstance(callback, _PendingStamps):
            callback()


_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)

# While ``migrate`` runs, the stamp table may not exist yet.
_migrating = False
_written_while_migrating: dict[str, set[str]] = {}


@receiver(pre_migrate)
def _on_pre_migrate(**kwargs: Any) -> None:
    global _migrating
    _migrating = True


@receiver(post_migrate)
def _on_post_migrate(using: str, **kwargs: Any) -> None:
    global _migrating
    _migrating = False
    move_stamps(using, _written_while_migrating.pop(using, set()))


# --- The execute wrapper -----------------------------------------------------------


# Writes whose effect on rows their versions cannot show: rows gone (a
# primary key may come back at version 1), or statements not rewritten.
_VERSIONS_CANNOT_SHOW = frozenset({"DELETE", "TRUNCATE", "REPLACE", "MERGE", "WITH", "MULTI"})
# Backends that compare unquoted identifiers case-insensitively.
_FOLDING_VENDORS = frozenset({"postgresql", "sqlite"})


def _track_writes(
    execute: Callable[..., Any],
    sql: Any,
    params: Any,
    many: bool,
    context: dict[str, Any],
) -> Any:
    connection: BaseDatabaseWrapper = context["connection"]
    if not isinstance(sql, str):
        # psycopg's sql.Composed and the like: read, never rewritten.
        return _track_composed(execute, sql, params, many, context)
    note_statement(connection, sql)
    write = written_tables(sql, fold_unquoted=connection.vendor in _FOLDING_VENDORS)
    if write is None:
        return execute(sql, params, many, context)
    versions_show_it = write.verb not in _VERSIONS_CANNOT_SHOW
    if write.verb == "UPDATE":
        sql, params, versions_show_it = _add_version_assignments(
            sql, params, many, write, connection
        )
    elif write.verb == "INSERT":
        sql = _add_upsert_version_assignment(sql, write, connection)
    deletes = not versions_show_it
    if connection.in_atomic_block:
        result = execute(sql, params, many, context)
        note_write(connection, write.tables, deletes=deletes)
        return result
    if connection.get_autocommit() and _moves_prepared_stamps(write.tables):
        # A transaction of its own, so that its stamps move before its commit too.
        with transaction.atomic(using=connection.alias):
            result = execute(sql, params, many, context)
            _free_connection(connection, write, sql, context)
            note_write(connection, write.tables, deletes=deletes)
        return result
    result = execute(sql, params, many, context)
    # The stamps move right away: first free the connection.
    _free_connection(connection, write, sql, context)
    note_write(connection, write.tables, deletes=deletes)
    return result


def _moves_prepared_stamps(tables: Iterable[str]) -> bool:
    """Whether a write to ``tables`` moves stamps of a store that moves them before commits."""
    if _migrating or not get_stamp_store().prepares:
        return False
    ignored = conf.ignored_tables
    return any(table not in ignored for table in tables)


def _free_connection(
    connection: BaseDatabaseWrapper, write: _Write, sql: str, context: dict[str, Any]
) -> None:
    """Read a statement's pending results, so the connection may run the next one (or COMMIT)."""
    if write.verb == "MULTI" and connection.vendor == "mysql":
        _prefetch_results(context["cursor"], all_sets=True)
    elif connection.vendor == "sqlite" and _RETURNING.search(sql) is not None:
        _prefetch_results(context["cursor"], all_sets=False)


@dataclass
class _ResultSet:
    description: Any
    rowcount: int
    rows: deque[Any]


def _track_composed(
    execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """A statement that is not a string: note its writes as ones versions cannot show."""
    connection: BaseDatabaseWrapper = context["connection"]
    as_string = getattr(sql, "as_string", None)
    try:
        text = as_string(connection.connection) if as_string is not None else None
    except Exception:  # an object we cannot render: nothing to learn from it
        text = None
    result = execute(sql, params, many, context)
    write = written_tables(text, fold_unquoted=True) if isinstance(text, str) else None
    if write is not None:
        note_write(connection, write.tables, deletes=True)
    return result


class _PrefetchedCursor:
    """A DB-API cursor whose pending result sets were already read into memory.

    Serves those sets (rows, ``description``, ``rowcount``, ``nextset()``)
    until the next ``execute``, then is the plain cursor again.
    """

    def __init__(self, cursor: Any, sets: list[_ResultSet]) -> None:
        self._cursor = cursor
        self._sets: deque[_ResultSet] | None = deque(sets)

    def _current(self) -> _ResultSet | None:
        return self._sets[0] if self._sets else None

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._sets = None
        return self._cursor.execute(*args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        self._sets = None
        return self._cursor.executemany(*args, **kwargs)

    def nextset(self) -> bool | None:
        if self._sets is None:
            return self._cursor.nextset()  # type: ignore[no-any-return]
        if len(self._sets) > 1:
            self._sets.popleft()
            return True
        return None

    def fetchone(self) -> Any:
        if self._sets is None:
            return self._cursor.fetchone()
        current = self._current()
        return current.rows.popleft() if current and current.rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        if self._sets is None:
            return self._cursor.fetchmany(*(() if size is None else (size,)))  # type: ignore[no-any-return]
        current = self._current()
        if current is None:
            return []
        count = self._cursor.arraysize if size is None else size
        return [current.rows.popleft() for _ in range(min(count, len(current.rows)))]

    def fetchall(self) -> list[Any]:
        if self._sets is None:
            return self._cursor.fetchall()  # type: ignore[no-any-return]
        current = self._current()
        if current is None:
            return []
        rows = list(current.rows)
        current.rows.clear()
        return rows

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row

    def __getattr__(self, name: str) -> Any:
        current = self._current() if self._sets is not None else None
        if current is not None and name in {"description", "rowcount"}:
            return getattr(current, name)
        return getattr(self._cursor, name)


def _prefetch_results(cursor_wrapper: Any, *, all_sets: bool) -> None:
    """Read the statement's pending results so the connection is free for the stamp move.

    SQLite commits a RETURNING statement only once its rows are read, and
    MySQL refuses another statement while results of several are pending.
    """
    raw = cursor_wrapper.cursor
    sets = []
    while True:
        rows = deque(raw.fetchall()) if raw.description is not None else deque()
        sets.append(_ResultSet(raw.description, raw.rowcount, rows))
        if not all_sets or not raw.nextset():
            break
    cursor_wrapper.cursor = _PrefetchedCursor(raw, sets)


def install(connection: BaseDatabaseWrapper) -> None:
    """Watch a connection's writes and commits (idempotent)."""
    if _track_writes not in connection.execute_wrappers:
        connection.execute_wrappers.append(_track_writes)
    run_hooks = connection.run_and_clear_commit_hooks
    if not getattr(run_hooks, "django_conditional", False):

        @wraps(run_hooks)
        def move_stamps_then_run_hooks() -> None:
            # The stamp move may commit a statement of its own, which would
            # run the waiting hooks from inside it: set them aside meanwhile.
            hooks = connection.run_on_commit
            connection.run_on_commit = []
            try:
                _move_committed(hooks)
            finally:
                connection.run_on_commit = hooks
            # Until every mirror of the stamps has heard of the move before the
            # commit (stamp_tracking); after the move that ends it, so that the
            # pages of the tables are in flight no longer than the COMMIT took.
            deadline = _mirror_deadlines.pop(connection, None)
            if deadline is not None:
                _wait_until(deadline)
            run_hooks()

        move_stamps_then_run_hooks.django_conditional = True  # type: ignore[attr-defined]
        connection.run_and_clear_commit_hooks = move_stamps_then_run_hooks  # type: ignore[method-assign]
    commit = connection.commit
    if not getattr(commit, "django_conditional", False):

        @wraps(commit)
        def prepare_stamps_then_commit() -> None:
            # atomic() rolls back when commit() raises a DatabaseError, as
            # StampsNotMoved is: then nothing of the write is stored.
            delay = prepare_stamps(connection.alias, _pending_tables(connection))
            if delay:
                _mirror_deadlines[connection] = _deadline(delay)
            try:
                commit()
            except BaseException:
                _mirror_deadlines.pop(connection, None)  # rolled back: nothing to wait for
                raise

        prepare_stamps_then_commit.django_conditional = True  # type: ignore[attr-defined]
        connection.commit = prepare_stamps_then_commit  # type: ignore[method-assign]


@receiver(connection_created)
def _install_on_connect(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    install(connection)


def install_on_open_connections() -> None:
    """Watch connections opened before the app was ready (called from ``ready()``)."""
    for connection in connections.all(initialized_only=True):
        install(connection)


# --- Many-to-many changes move both sides' versions ----------------------------------

_CLEARED: WeakKeyDictionary[Model, list[Any]] = WeakKeyDictionary()


@receiver(m2m_changed)
def _on_m2m_changed(
    sender: type[Model],
    instance: Model,
    action: str,
    reverse: bool,
    model: type[Model],
    pk_set: set[Any] | None,
    using: str,
    **kwargs: Any,
) -> None:
    """Move the versions of the objects on both sides of a relation change.

    The through table's write already moves the stamps of both models; this
    also moves the version of each object whose relation changed, so an
    object's own validator (pk and version) sees it.
    """
    from django_conditional.models import VersionedModel

    if not (isinstance(instance, VersionedModel) or issubclass(model, VersionedModel)):
        return
    if action == "pre_clear":
        _CLEARED[instance] = list(_related_pks(sender, instance, model, reverse))
        return
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    related = _CLEARED.pop(instance, []) if action == "post_clear" else list(pk_set or ())
    if action != "post_clear" and not related:
        return
    _bump_versions(type(instance), [instance.pk], using)
    _bump_versions(model, related, using)


def _related_pks(
    through: type[Model], instance: Model, model: type[Model], reverse: bool
) -> Iterable[Any]:
    owner = model if reverse else type(instance)
    for candidate in owner._meta.many_to_many:
        m2m: Any = candidate
        if m2m.remote_field.through is through:
            source = m2m.m2m_reverse_field_name() if reverse else m2m.m2m_field_name()
            target = m2m.m2m_field_name() if reverse else m2m.m2m_reverse_field_name()
            target_attname = through._meta.get_field(target).attname
            rows = through._base_manager.filter(**{source: instance.pk})
            return list(rows.values_list(target_attname, flat=True))
    return ()


def _bump_versions(model: type[Model], pks: list[Any], using: str) -> None:
    from django_conditional.models import VersionedModel

    if pks and issubclass(model, VersionedModel):
        QuerySet(model, using=using).filter(pk__in=pks).update(version=F("version") + 1)


# --- touch() ------------------------------------------------------------------------


def touch(*targets: type[Model] | Model | str, using: str | None = None) -> None:
    """Move validators for a write the ORM cannot see.

    ``targets`` are models (their tables' stamps move), instances (their
    version moves too, when versioned) or table names.

    Outside a transaction the stamps move now, and a stamp store that cannot
    move them (down, or its table never migrated) raises
    :class:`~django_conditional.stamp_errors.StampMoveError` naming the fix.
    Inside a transaction they move when it commits, as every write's do:
    with a shared stamp store, a store that cannot move them makes the
    commit fail (``StampsNotMoved``, a ``DatabaseError``; the transaction
    rolls back).
    """
    from django_conditional.models import VersionedModel

    # Unknown changes to a model or table: versions cannot show them. An
    # instance's own version moves, which shows its change exactly.
    unknown: dict[str, set[str]] = {}
    versioned: dict[str, set[str]] = {}
    for target in targets:
        alias = using
        if isinstance(target, Model):
            alias = using or target._state.db or "default"
            if isinstance(target, VersionedModel):
                _bump_versions(type(target), [target.pk], alias)
                versioned.setdefault(alias, set()).update(model_tables(type(target)))
                continue
            tables: tuple[str, ...] = model_tables(type(target))
        elif isinstance(target, str):
            tables = (target,)
        else:
            tables = model_tables(target)
        unknown.setdefault(alias or "default", set()).update(tables)
    for alias, tables_ in unknown.items():
        note_write(connections[alias], tables_, deletes=True, strict=True)
    for alias, tables_ in versioned.items():
        note_write(connections[alias], tables_, strict=True)
