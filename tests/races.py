"""Staging the race a guarded write exists for, at the one moment it matters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from django_conditional import guarded_writes


def before_claim(monkeypatch: pytest.MonkeyPatch, another_request: Callable[[Any], object]) -> None:
    """Run ``another_request(row)`` between a precondition's evaluation and the row's claim.

    As a concurrent request's write landing there would; ``row`` is the
    ``SeenRow`` about to be claimed (its ``pk``, its ``version``).
    """
    real_claim = guarded_writes.SeenRow.claim

    def claim_after_it(self: guarded_writes.SeenRow) -> bool:
        another_request(self)
        return real_claim(self)

    monkeypatch.setattr(guarded_writes.SeenRow, "claim", claim_after_it)
