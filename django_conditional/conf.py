"""The package's settings: the only module that reads ``django.conf.settings``.

Each setting is one typed property, read once and cached; the cache is
cleared when a ``CONDITIONAL_*`` setting changes (``override_settings`` in
tests).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

__all__ = ["DEFAULTS", "PREFIX", "conf"]

PREFIX = "CONDITIONAL_"

DEFAULTS: dict[str, Any] = {
    # Adds an ``X-Conditional`` header naming each decision and its reason.
    "CONDITIONAL_DEBUG_HEADER": False,
}


class Settings:
    """Typed, cached access to the ``CONDITIONAL_*`` settings."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        try:
            return self._cache[name]
        except KeyError:
            value = getattr(settings, name, DEFAULTS[name])
            self._cache[name] = value
            return value

    def clear(self) -> None:
        """Forget cached values; the next read sees the current settings."""
        self._cache.clear()

    @property
    def debug_header(self) -> bool:
        """``CONDITIONAL_DEBUG_HEADER``: explain each decision in an ``X-Conditional`` header."""
        return bool(self._get("CONDITIONAL_DEBUG_HEADER"))


conf = Settings()


@receiver(setting_changed)
def _clear_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith(PREFIX):
        conf.clear()
