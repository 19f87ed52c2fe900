"""``manage.py conditional_triggers``: install, remove, print or list change stamp triggers.

A thin command over ``django_conditional.triggers``; it chooses the tables
from app and model labels and reports, and builds no SQL itself.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper

from django_conditional import triggers
from django_conditional.conf import conf

ACTIONS = ("install", "uninstall", "sql", "status")


class Command(BaseCommand):
    """Manage the opt-in triggers that move change stamps for writes from outside Django."""

    help = (
        "Install, uninstall, print (sql) or list (status) the database triggers that move "
        "change stamps when something other than Django writes to a table (raw SQL from "
        "another service, psql, a cron job); on a versioned model's table they also "
        "increment the version of each row such an UPDATE changes. Without labels: every "
        "installed model's table that exists in the database, except "
        "CONDITIONAL_IGNORED_TABLES; 'uninstall' without labels removes every trigger of ours."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the action, the labels and ``--database``."""
        parser.add_argument("action", choices=ACTIONS, help="What to do.")
        parser.add_argument(
            "labels",
            nargs="*",
            metavar="app_label[.ModelName]",
            help="Apps or models whose tables to act on (default: all of them).",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            choices=tuple(connections),
            help='The database to act on (default: "default").',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Resolve the labels to tables and run the action on them."""
        action: str = options["action"]
        labels: list[str] = options["labels"]
        self.verbosity: int = options["verbosity"]
        connection = connections[options["database"]]
        if connection.vendor not in triggers.SUPPORTED_VENDORS:
            raise CommandError(
                f"Database {connection.alias!r} is {connection.vendor!r}: change stamp triggers "
                "exist for PostgreSQL, MariaDB/MySQL and SQLite only. Writes that bypass Django "
                "there must call django_conditional.tracking.touch()."
            )
        tables = self._select_tables(connection, labels)
        try:
            getattr(self, f"_{action}")(connection, tables, bool(labels))
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc

    # --- Actions ----------------------------------------------------------------

    def _install(self, connection: BaseDatabaseWrapper, tables: list[str], labelled: bool) -> None:
        if conf.stamp_cache is not None:
            raise CommandError(
                f"CONDITIONAL_STAMP_CACHE is {conf.stamp_cache!r}: stamps are kept in that "
                "cache, where no trigger can reach, so triggers would move stamps nobody "
                "reads. Unset it to keep stamps in the database, or have the other writers "
                "call django_conditional.tracking.touch()."
            )
        if not tables:
            self.stdout.write("No tables selected: nothing to install.")
            return
        missing = sorted(set(tables) - _existing_tables(connection))
        if missing:
            raise CommandError(
                f"No such table in database {connection.alias!r}: {', '.join(missing)}. "
                "Run migrate first, or leave these models out."
            )
        triggers.install(connection, tables)
        self._report("Installed", connection, tables)

    def _uninstall(
        self, connection: BaseDatabaseWrapper, tables: list[str], labelled: bool
    ) -> None:
        if labelled:
            triggers.uninstall(connection, tables)
        else:
            # Every trigger of ours, also those on renamed tables or tables of removed models.
            tables = sorted(triggers.triggers_by_table(connection))
            triggers.uninstall_all(connection)
        self._report("Removed", connection, tables)

    def _sql(self, connection: BaseDatabaseWrapper, tables: list[str], labelled: bool) -> None:
        for statement in triggers.install_sql(connection, tables):
            self.stdout.write(f"{statement};")

    def _status(self, connection: BaseDatabaseWrapper, tables: list[str], labelled: bool) -> None:
        found = triggers.triggers_by_table(connection)
        installed = triggers.installed_tables(connection)
        existing = _existing_tables(connection)
        self.stdout.write(
            f"Change stamp triggers in database {connection.alias!r} ({connection.vendor}):"
        )
        for table in sorted(tables):
            if table in installed:
                self.stdout.write(f" [X] {table}")
            elif table in found:
                self.stdout.write(f" [~] {table} (incomplete or stale triggers: run install)")
            elif table not in existing:
                self.stdout.write(f" [ ] {table} (no such table)")
            else:
                self.stdout.write(f" [ ] {table}")
        if not labelled:
            for table in sorted(set(found) - set(tables)):
                mark = "X" if table in installed else "~"
                self.stdout.write(f" [{mark}] {table} (not a table of an installed model)")
        count = len(installed & set(tables))
        self.stdout.write(f"{count} of {len(tables)} tables have triggers.")

    def _report(self, verb: str, connection: BaseDatabaseWrapper, tables: list[str]) -> None:
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} change stamp triggers on {len(tables)} "
                f"table{'s' if len(tables) != 1 else ''} in database {connection.alias!r}."
            )
        )
        if self.verbosity >= 2:
            for table in tables:
                self.stdout.write(f"  {table}")

    # --- Choosing tables --------------------------------------------------------

    def _select_tables(self, connection: BaseDatabaseWrapper, labels: list[str]) -> list[str]:
        """The tables of the labelled models, or of every model when there are no labels.

        A model named by ``app_label.ModelName`` is taken at its word: its
        tables must exist to install. Models taken in bulk (an app label, or
        no labels, which also asks the routers) contribute only the tables
        that exist, so unmanaged models over views or over tables not created
        yet are passed over. Ignored tables are always left out.
        """
        named: list[type[models.Model]] = []
        bulk: list[type[models.Model]] = []
        for label in labels:
            (named if "." in label else bulk).extend(_models_for_label(label))
        if not labels:
            bulk = [
                model
                for model in apps.get_models()
                if router.allow_migrate_model(connection.alias, model)
            ]
        tables = triggers.written_tables_for_models(named)
        if bulk:
            existing = _existing_tables(connection)
            tables += [
                table for table in triggers.written_tables_for_models(bulk) if table in existing
            ]
        return [table for table in dict.fromkeys(tables) if table not in conf.ignored_tables]


def _models_for_label(label: str) -> list[type[models.Model]]:
    app_label, _, model_name = label.partition(".")
    try:
        app_config = apps.get_app_config(app_label)
    except LookupError as exc:
        raise CommandError(f"No installed app with label {app_label!r}.") from exc
    if not model_name:
        return list(app_config.get_models())
    if "." in model_name:
        raise CommandError(f"{label!r} is not an app label or an app_label.ModelName label.")
    try:
        return [app_config.get_model(model_name)]
    except LookupError as exc:
        raise CommandError(f"App {app_label!r} has no model {model_name!r}.") from exc


def _existing_tables(connection: BaseDatabaseWrapper) -> set[str]:
    """Base tables only: views cannot carry these triggers."""
    with connection.cursor() as cursor:
        return {
            info.name
            for info in connection.introspection.get_table_list(cursor)
            if info.type == "t"
        }
