"""The Django app: registers the system checks and starts tracking writes."""

from __future__ import annotations

from django.apps import AppConfig


class DjangoConditionalConfig(AppConfig):
    """App configuration for ``django_conditional``."""

    name = "django_conditional"
    verbose_name = "Conditional requests"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported for their side effects: system checks, signal receivers.
        from django_conditional import aggregates, checks, rule_safety, tracking  # noqa: F401

        tracking.install_on_open_connections()
