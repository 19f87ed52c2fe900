"""System checks for the ``CONDITIONAL_*`` settings. Ids are listed in the README."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from django_conditional.conf import DEFAULTS, PREFIX

__all__ = ["check_setting_types", "check_unknown_settings"]


@register(Tags.compatibility)
def check_unknown_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W001: a ``CONDITIONAL_*`` setting this package does not know (most likely a typo)."""
    messages: list[CheckMessage] = []
    for name in sorted(dir(settings)):
        if name.startswith(PREFIX) and name not in DEFAULTS:
            close = difflib.get_close_matches(name, DEFAULTS, n=1)
            hint = f"Did you mean {close[0]}?" if close else "Remove it or fix its name."
            messages.append(
                Warning(
                    f"{name} is not a django-conditional setting.",
                    hint=hint,
                    id="django_conditional.W001",
                )
            )
    return messages


@register(Tags.compatibility)
def check_setting_types(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E001: a ``CONDITIONAL_*`` setting of the wrong type."""
    messages: list[CheckMessage] = []
    value = getattr(settings, "CONDITIONAL_DEBUG_HEADER", False)
    if not isinstance(value, bool):
        messages.append(
            Error(
                f"CONDITIONAL_DEBUG_HEADER is {value!r}; expected True or False.",
                hint="Set CONDITIONAL_DEBUG_HEADER = True to add an X-Conditional header.",
                id="django_conditional.E001",
            )
        )
    return messages
