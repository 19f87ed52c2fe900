"""Circuit breakers for the stores pages read: fail safe, fast, and recover by themselves.

When the stamp store or the validator cache does not answer, a page is
served without derived validators (never a 500, never a 304). A breaker
keeps every request from paying a connect timeout meanwhile: after a
failure the store is not asked again until a retry time, one request then
probes it, and the wait doubles while it keeps failing (up to
``MAX_RETRY_SECONDS``). Each outage is logged once when it begins and
once when it ends, with how many reads it cost; ``snapshot()`` gives the
counts of this process.

Standard library only: the stores call it, it calls nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

__all__ = [
    "FIRST_RETRY_SECONDS",
    "MAX_RETRY_SECONDS",
    "Breaker",
    "BreakerSnapshot",
    "breaker",
    "reset_all",
    "snapshot",
]

logger = logging.getLogger("django_conditional")

# The first wait after a failure, doubled after each failed probe up to the maximum.
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 8.0


@dataclass(frozen=True)
class BreakerSnapshot:
    """One breaker's state and counts in this process."""

    name: str
    available: bool
    outages: int
    failures: int
    skipped: int
    down_since: float | None
    last_error: str


class Breaker:
    """The health of one store, as this process has seen it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._down_since: float | None = None  # monotonic time of the outage's first failure
        self._retry_at = 0.0
        self._wait = FIRST_RETRY_SECONDS
        self.outages = 0
        self.failures = 0
        self.skipped = 0
        self._outage_skipped = 0
        self.last_error = ""

    @property
    def available(self) -> bool:
        """Whether the store answered last time it was asked."""
        return self._down_since is None

    def allow(self) -> bool:
        """Whether to ask the store now: always while it answers, else one probe per wait.

        A refused request counts as skipped: it was served without the store.
        """
        if self._down_since is None:
            return True
        with self._lock:
            # Another thread may have ended the outage meanwhile.
            if self.available:
                return True
            now = time.monotonic()
            if now >= self._retry_at:
                # One probe per wait, even one whose answer never comes back here.
                self._retry_at = now + self._wait
                return True
            self.skipped += 1
            self._outage_skipped += 1
            return False

    def succeeded(self) -> None:
        """The store answered: end the outage, if there was one."""
        if self._down_since is None:
            return
        with self._lock:
            down_since, self._down_since = self._down_since, None
            self._wait = FIRST_RETRY_SECONDS
            skipped, self._outage_skipped = self._outage_skipped, 0
        if down_since is not None:
            logger.warning(
                "The %s answers again after %.1f s; %d request(s) were served without it.",
                self.name,
                time.monotonic() - down_since,
                skipped,
            )

    def failed(self, error: BaseException) -> None:
        """The store failed: begin an outage (logged once) or wait longer before the next probe."""
        with self._lock:
            self.failures += 1
            self.last_error = f"{type(error).__name__}: {error}"
            self._outage_skipped += 1
            began = self._down_since is None
            if began:
                self._down_since = time.monotonic()
                self._wait = FIRST_RETRY_SECONDS
                self.outages += 1
            else:
                self._wait = min(self._wait * 2, MAX_RETRY_SECONDS)
            self._retry_at = time.monotonic() + self._wait
        if began:
            logger.error(
                "The %s does not answer (%s); pages that need it are served in full, without "
                "validators, until it does (asked again after %.1f s, then less often).",
                self.name,
                self.last_error,
                FIRST_RETRY_SECONDS,
            )

    def reset(self) -> None:
        """Forget the outage (the settings changed: another store)."""
        with self._lock:
            self._down_since = None
            self._wait = FIRST_RETRY_SECONDS
            self._retry_at = 0.0
            self._outage_skipped = 0

    def snapshot(self) -> BreakerSnapshot:
        """The state and counts of this breaker."""
        return BreakerSnapshot(
            self.name,
            self.available,
            self.outages,
            self.failures,
            self.skipped,
            self._down_since,
            self.last_error,
        )


_breakers: dict[str, Breaker] = {}
_breakers_lock = threading.Lock()


def breaker(name: str) -> Breaker:
    """The breaker named ``name`` (made on first use), e.g. ``"stamp store (cache 'redis')"``."""
    found = _breakers.get(name)
    if found is None:
        with _breakers_lock:
            found = _breakers.setdefault(name, Breaker(name))
    return found


def snapshot() -> list[BreakerSnapshot]:
    """Every breaker's state and counts in this process."""
    return [found.snapshot() for found in list(_breakers.values())]


def reset_all() -> None:
    """End every outage this process knows of."""
    for found in list(_breakers.values()):
        found.reset()
