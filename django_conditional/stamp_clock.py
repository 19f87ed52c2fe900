"""When stamps moved: tokens that carry the time of their move, and bounds of the store's clock.

Standard library only. A stamp token is ``milliseconds * TOKEN_SPAN + r``:
the time of the move on the stamp store's clock (the database's, Redis's,
or this process's for local memory) and ``r`` drawn at random or counted
up, so tokens of one table only grow and never repeat. A page's
``Last-Modified`` is the newest move of the stamps it reads.

Why that date is exact (README, "Last-Modified"): the stamps of a write move
after its commit, so a move's time is later, on the store's clock, than any
read that missed the write's data. A stamp is also moved once *before* the
commit (``stamps``, failing safe): that token is negative, the mark of a
move whose commit may come later than its date, and a page that reads one
sends no date until the move after the commit replaces it. A reader sends
a date only when the store's clock had already passed the end of that
date's second before its stamps were read (``is_settled``); any write the page missed then moves the
date to a later second, so ``If-Modified-Since`` with the date sent is
answered 304 only when nothing changed.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable

__all__ = [
    "MAX_RATE_ERROR",
    "TOKEN_SPAN",
    "ClockSample",
    "is_dated",
    "is_settled",
    "next_token",
    "token_from_millis",
    "token_seconds",
]

# Tokens are milliseconds * TOKEN_SPAN + r, 0 <= r < TOKEN_SPAN: with 13-digit
# milliseconds (2001 to 2286) a token has 19 digits and fits a signed BIGINT.
TOKEN_SPAN = 1_000_000
# How much faster this machine's monotonic clock may run than the store's
# (NTP slews each by at most 500 ppm): elapsed time is discounted by it.
MAX_RATE_ERROR = 1e-3


def token_from_millis(millis: int) -> int:
    """A fresh token for a move at ``millis`` milliseconds since the epoch."""
    return millis * TOKEN_SPAN + secrets.randbelow(TOKEN_SPAN)


def next_token(previous: int | None, millis: int) -> int:
    """The token for a move at ``millis`` after ``previous``: later than it, never equal.

    A previous token more than a second ahead of ``millis`` (a clock stepped
    back, or garbage) is not followed, so one bad value cannot pin every
    later date in the future.
    """
    fresh = token_from_millis(millis)
    if previous is None:
        return fresh
    previous = abs(previous)  # a move before a commit is followed like any other
    if previous < fresh or previous // TOKEN_SPAN > millis + 1000:
        return fresh
    return previous + 1


def is_dated(token: int) -> bool:
    """Whether ``token`` dates its move exactly (a move before its commit does not)."""
    return token > 0


def token_seconds(token: int) -> float:
    """When the move that made ``token`` happened, in seconds since the epoch."""
    return (abs(token) // TOKEN_SPAN) / 1000


def is_settled(last_modified: float, clock_bound: float | None) -> bool:
    """Whether a date may be sent: the store's clock passed the end of its second.

    ``clock_bound`` is a time the store's clock had reached before the
    stamps were read; None when unknown (the date is then never sent).
    """
    return clock_bound is not None and math.floor(last_modified) < math.floor(clock_bound)


class ClockSample:
    """A lower bound of a remote clock from its last reading and this process's monotonic clock.

    The reading was taken by the server before the reply arrived, so the
    server's clock is at least the reading plus the time elapsed here since
    the reply, discounted by ``MAX_RATE_ERROR``. ``ask`` reads the server's
    clock (one round trip) when the bound is too old to settle a date.
    """

    def __init__(
        self, ask: Callable[[], float] | None = None, *, min_ask_interval: float = 0.05
    ) -> None:
        self._ask = ask
        self._min_ask_interval = min_ask_interval
        self._reading: float | None = None
        self._received = 0.0
        self._asked = -math.inf
        self._lock = threading.Lock()

    def observe(self, reading: float, received: float | None = None) -> None:
        """Record the server's clock ``reading``, whose reply arrived at monotonic ``received``."""
        received = time.monotonic() if received is None else received
        with self._lock:
            # The newest reading: the least discounted by the rate error.
            if received >= self._received:
                self._reading, self._received = reading, received

    def lower_bound(self) -> float | None:
        """A time the server's clock has certainly reached; None before any reading."""
        reading = self._reading
        if reading is None:
            return None
        elapsed = max(0.0, time.monotonic() - self._received)
        return reading + elapsed * (1 - MAX_RATE_ERROR)

    def bound_settling(self, last_modified: float) -> float | None:
        """``lower_bound()``, read again from the server if it does not settle ``last_modified``.

        Asks at most once per ``min_ask_interval`` (a date within the
        current second cannot be settled by asking again at once).
        """
        bound = self.lower_bound()
        if is_settled(last_modified, bound) or self._ask is None:
            return bound
        now = time.monotonic()
        if now - self._asked < self._min_ask_interval:
            return bound
        self._asked = now
        self.observe(self._ask(), time.monotonic())
        return self.lower_bound()

    def forget(self) -> None:
        """Drop the reading (a reconnect, another server, a fork)."""
        with self._lock:
            self._reading = None
            self._asked = -math.inf
