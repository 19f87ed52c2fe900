"""What to say when the stamp store cannot be used: the table never migrated, a store down.

Shared by ``touch()``, ``manage.py conditional_touch``, the views' first use
and the system checks, so each failure names its fix the same way. Imports
the ORM's connections only, never the models.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from django_conditional.conf import conf

__all__ = [
    "STAMP_TABLE",
    "StampMoveError",
    "StampsInFlight",
    "StampsNotMoved",
    "StampsUnavailable",
    "advice",
    "is_missing_stamp_table",
    "missing_stamp_table",
    "raise_if_unmigrated",
    "stamp_table_exists",
]

# Created by django_conditional's migration 0001 (models.ChangeStamp).
STAMP_TABLE = "django_conditional_changestamp"

logger = logging.getLogger("django_conditional")

MIGRATE_HINT = "Run 'python manage.py migrate' (django_conditional's migration creates it)."


class StampMoveError(RuntimeError):
    """``touch()`` could not move the stamps; the message says why and what to do."""


class StampsNotMoved(StampMoveError, DatabaseError):
    """A write's stamps could not be moved before its commit: the write was rolled back.

    A ``DatabaseError``, so that ``atomic()`` rolls the transaction back as
    for any failed commit; nothing of the write is stored. Retry it once
    the stamp store answers.
    """


class StampsUnavailable(Exception):
    """The stamps cannot be read now: the page is served without derived validators.

    The store does not answer (``store_health`` counts it), or a write to
    one of the tables is between its two stamp moves (``StampsInFlight``).
    """


class StampsInFlight(StampsUnavailable):
    """A write to one of the tables has moved its stamps before its commit, not yet after it."""


def is_missing_stamp_table(error: BaseException) -> bool:
    """Whether ``error`` is the database saying the stamp table does not exist.

    Every backend names the table in that message ("no such table", "relation
    ... does not exist", "Table ... doesn't exist"); an error merely about the
    table (a lock timeout) names it too, so the caller's advice stays true.
    """
    return isinstance(error, DatabaseError) and STAMP_TABLE in str(error)


def advice(error: BaseException, alias: str) -> str:
    """What to do after the stamp store failed with ``error`` for database ``alias``."""
    if is_missing_stamp_table(error):
        return f"The table {STAMP_TABLE} is missing in database {alias!r}. {MIGRATE_HINT}"
    if conf.stamp_cache is not None:
        return (
            f"Check that the stamp cache {conf.stamp_cache!r} (CONDITIONAL_STAMP_CACHE) "
            "answers, then run it again."
        )
    return f"Check that database {alias!r} answers, then run it again."


def missing_stamp_table(alias: str) -> ImproperlyConfigured:
    """The error a page raises when its stamps cannot be read because ``migrate`` never ran."""
    return ImproperlyConfigured(
        f"django_conditional cannot read its change stamps: the table {STAMP_TABLE} does not "
        f"exist in database {alias!r}. {MIGRATE_HINT}"
    )


def raise_if_unmigrated(error: DatabaseError, alias: str | None) -> None:
    """Raise (and log) :func:`missing_stamp_table` if ``error`` says the stamp table is missing.

    Any other error is the caller's to re-raise. (Failing safe, serving the
    page without validators, is for a stamp store that is down; a database
    never migrated is a mistake to fix, so it is not hidden.)
    """
    if is_missing_stamp_table(error):
        explained = missing_stamp_table(alias or DEFAULT_DB_ALIAS)
        logger.error("%s", explained)
        raise explained from error


def stamp_table_exists(alias: str) -> bool:
    """Whether the stamp table exists in database ``alias`` (one introspection query)."""
    with connections[alias].cursor() as cursor:
        return STAMP_TABLE in connections[alias].introspection.table_names(cursor)
