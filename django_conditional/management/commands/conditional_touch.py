"""``manage.py conditional_touch``: move change stamps by hand.

For writes Django did not see (a data import, another service without the
triggers) and after an outage of the stamp store: every validator derived
from the named models changes, so no client keeps a stale copy. Exits
non-zero, saying what to do, when the stamps could not be moved.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Model

from django_conditional.stamp_errors import StampMoveError
from django_conditional.tables import model_tables
from django_conditional.tracking import touch


class Command(BaseCommand):
    """Move the stamps of the named models, apps or all models."""

    help = (
        "Move the change stamps of models whose data changed behind Django's back, "
        "so that no revalidation of pages built from them is answered 304."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "labels",
            nargs="*",
            metavar="app_label[.ModelName]",
            help="Models or whole apps to touch.",
        )
        parser.add_argument("--all", action="store_true", help="Touch every installed model.")
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="The database alias (default: default)."
        )

    def handle(self, *args: str, **options: Any) -> None:
        labels: list[str] = options["labels"]
        if options["all"] == bool(labels):
            raise CommandError("Name app_label or app_label.ModelName arguments, or use --all.")
        models = (
            list(apps.get_models(include_auto_created=True))
            if options["all"]
            else [model for label in labels for model in _models_for(label)]
        )
        tables = {table for model in models for table in model_tables(model)}
        # touch() also moves what versions cannot show: the change is unknown.
        try:
            touch(*sorted(tables), using=options["database"])
        except StampMoveError as error:
            # A non-zero exit: this command is what the README says to run after
            # an outage, so "done" must mean done.
            raise CommandError(str(error)) from error
        self.stdout.write(f"Moved the stamps of {len(tables)} table(s) in {options['database']!r}.")


def _models_for(label: str) -> list[type[Model]]:
    try:
        if "." in label:
            return [apps.get_model(label)]
        return list(apps.get_app_config(label).get_models(include_auto_created=True))
    except LookupError as error:
        raise CommandError(f"{label!r} is not an installed app or model: {error}") from error
