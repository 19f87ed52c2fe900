"""What the browser tests share: Chromium's flags, skipping without it, the server's log.

The fixtures (``chromium_executable``, ``sync_playwright``, ``server_log``) are in
``tests/conftest.py``; Debian's ``chromium`` is driven through Playwright with that
executable, never a downloaded browser.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

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


@contextmanager
def fresh_pages(
    sync_playwright: Any, executable: str, base_url: str, **context_options: Any
) -> Iterator[Callable[[], Any]]:
    """Make pages, each in a fresh context (its own cookies and HTTP cache) of one Chromium.

    Every context and the browser are closed afterwards.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        contexts: list[Any] = []

        def make() -> Any:
            context = browser.new_context(base_url=base_url, **context_options)
            context.set_default_timeout(TIMEOUT_MS)
            contexts.append(context)
            return context.new_page()

        try:
            yield make
        finally:
            for context in contexts:
                context.close()
            browser.close()
