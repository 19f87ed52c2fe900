"""Migration operations: install the change stamp triggers as part of ``migrate``.

Integration layer over ``triggers``; reads only the migration state, never
the current models or settings, so a migration does the same thing whenever
it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps.registry import Apps
from django.db import models, router
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation, OperationCategory
from django.db.migrations.state import ProjectState

from django_conditional import triggers

__all__ = ["InstallChangeStampTriggers"]


class InstallChangeStampTriggers(Operation):
    """Install the triggers that move these models' change stamps on writes from outside Django.

    Add it to a migration of your own that depends on the migrations creating
    the models and on ``("django_conditional", "0001_initial")`` (the stamp
    table)::

        from django_conditional.operations import InstallChangeStampTriggers

        operations = [
            InstallChangeStampTriggers(models=["shop.Product", "shop.Category"]),
        ]

    Each model brings the tables ``triggers.written_tables_for_models`` lists: its own,
    its multi-table parents' and its many-to-many through tables. A table
    holding a ``VersionedModel`` version (``triggers.version_columns``) also
    gets the trigger that moves the version of rows a raw UPDATE changes.
    Unapplying the migration removes the triggers again. Models the database routers
    keep off the database are skipped; unmanaged models are not, since a
    table another service owns is what triggers are for.

    It cannot be written as SQL (``sqlmigrate``) because it looks up the
    stamp table in the database first; ``manage.py conditional_triggers sql``
    prints the statements instead.
    """

    reduces_to_sql = False
    reversible = True
    category = OperationCategory.SQL

    def __init__(self, models: Sequence[str]) -> None:
        """Take ``"app_label.ModelName"`` labels, resolved later in the migration state."""
        if isinstance(models, str):
            raise TypeError(
                f"InstallChangeStampTriggers(models={models!r}) needs a list of "
                '"app_label.ModelName" labels, not a single string.'
            )
        labels = list(models)
        for label in labels:
            app_label, _, model_name = str(label).partition(".")
            if not app_label or not model_name or "." in model_name:
                raise ValueError(
                    f'InstallChangeStampTriggers: {label!r} is not an "app_label.ModelName" label.'
                )
        self.models = labels

    def deconstruct(self) -> tuple[str, Sequence[Any], dict[str, Any]]:
        """Serialize as ``InstallChangeStampTriggers(models=[...])``."""
        return (self.__class__.__qualname__, [], {"models": self.models})

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        """Change nothing: triggers are not part of the model state."""

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        """Install the triggers, taking the models from the state after this operation."""
        connection = schema_editor.connection
        chosen = self._models(to_state.apps, connection.alias)
        triggers.install(
            connection,
            triggers.written_tables_for_models(chosen),
            moves=triggers.moved_stamps(chosen),
            versions=triggers.version_columns(chosen),
        )

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        """Remove the triggers that ``database_forwards`` installed.

        The models come from ``from_state``, the state in which the triggers
        were installed, as Django's own operations do when unapplying; the
        operation changes no state, so both states hold the same models.
        """
        connection = schema_editor.connection
        chosen = self._models(from_state.apps, connection.alias)
        triggers.uninstall(connection, triggers.written_tables_for_models(chosen))

    def describe(self) -> str:
        """The line ``migrate`` and ``makemigrations`` print."""
        return f"Install change stamp triggers for {', '.join(self.models)}"

    @property
    def migration_name_fragment(self) -> str:
        """Suggests ``NNNN_install_change_stamp_triggers`` as the migration's name."""
        return "install_change_stamp_triggers"

    def _models(self, state_apps: Apps, alias: str) -> list[type[models.Model]]:
        """The historical models, minus those the routers keep off this database."""
        chosen: list[type[models.Model]] = []
        for label in self.models:
            try:
                model = state_apps.get_model(label)
            except LookupError as exc:
                raise LookupError(
                    f"InstallChangeStampTriggers: no model {label!r} in the migration state. "
                    "Make this migration depend on the migration that creates it."
                ) from exc
            # router, not self.allow_migrate_model(), which refuses unmanaged models.
            if router.allow_migrate_model(alias, model):
                chosen.append(model)
        return chosen
