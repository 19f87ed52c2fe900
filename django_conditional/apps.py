"""The Django app: registers the system checks."""

from __future__ import annotations

from django.apps import AppConfig


class DjangoConditionalConfig(AppConfig):
    """App configuration for ``django_conditional``."""

    name = "django_conditional"
    verbose_name = "Conditional requests"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported for its @register side effect.
        from django_conditional import checks  # noqa: F401
