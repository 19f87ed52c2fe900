"""App configuration of the benchmark's models."""

from __future__ import annotations

from django.apps import AppConfig


class BenchConfig(AppConfig):
    """The benchmark's app (no migrations: ``migrate --run-syncdb`` creates its tables)."""

    name = "benchmarks.bench"
    label = "bench"
    default_auto_field = "django.db.models.BigAutoField"
