"""What the browser tests share: Chromium's flags, skipping without it, the server's log.

The fixtures (``chromium_executable``, ``sync_playwright``, ``server_log``) are in
``tests/conftest.py``; Debian's ``chromium`` is driven through Playwright with that
executable, never a downloaded browser.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TIMEOUT_MS = 15_000


def skip_or_fail(reason: str) -> None:
    """Skip, or fail when CI requires the browser tests (CONDITIONAL_REQUIRE_BROWSER=1)."""
    if os.environ.get("CONDITIONAL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; CONDITIONAL_REQUIRE_BROWSER=1 requires the browser tests to run.")
    pytest.skip(reason)


@dataclass(frozen=True)
class Seen:
    """One exchange as the server saw it: what the browser sent, what it got."""

    path: str
    if_none_match: str | None
    status: int
