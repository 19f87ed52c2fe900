"""How often each rule answered 304, 200, 412 or let a request pass: counted cheaply.

Each process counts in memory and adds its counts to ``RuleCounter`` in one
UPDATE per rule when ``CONDITIONAL_RULES_COUNT_BATCH`` requests were counted or
``CONDITIONAL_RULES_COUNT_INTERVAL`` seconds passed (and at exit): never a
write per request. Counts that cannot be written are kept for the next try.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import Counter
from typing import Literal

from django.db import DatabaseError, transaction
from django.db.models import F

from django_conditional.conf import conf

__all__ = ["Kind", "count", "discard", "flush", "pending"]

logger = logging.getLogger("django_conditional")

Kind = Literal["not_modified", "full", "passed", "failed"]
KINDS: tuple[Kind, ...] = ("not_modified", "full", "passed", "failed")

_pending: Counter[tuple[int, Kind]] = Counter()
_lock = threading.Lock()
_total = 0
_last_flush = time.monotonic()


def count(rule_pk: int, kind: Kind) -> None:
    """Count one request for a rule; adds the counts to the database when a batch is full."""
    global _total
    with _lock:
        _pending[(rule_pk, kind)] += 1
        _total += 1
        due = (
            _total >= conf.rules_count_batch
            or time.monotonic() - _last_flush >= conf.rules_count_interval
        )
    if due:
        flush()


def pending(rule_pk: int) -> dict[Kind, int]:
    """This process's counts for a rule not yet added to the database."""
    with _lock:
        return {kind: _pending[(rule_pk, kind)] for kind in KINDS}


def flush() -> None:
    """Add this process's counts to ``RuleCounter`` (one UPDATE or INSERT per rule)."""
    global _total, _last_flush
    from django_conditional.models import ConditionalRule, RuleCounter

    with _lock:
        taken = dict(_pending)
        _pending.clear()
        _total = 0
        _last_flush = time.monotonic()
    by_rule: dict[int, dict[Kind, int]] = {}
    for (rule_pk, kind), number in taken.items():
        by_rule.setdefault(rule_pk, {})[kind] = number
    try:
        with transaction.atomic():
            existing = set(
                ConditionalRule.objects.filter(pk__in=by_rule).values_list("pk", flat=True)
            )
            for rule_pk, numbers in by_rule.items():
                if rule_pk not in existing:
                    continue  # deleted since: its counts go with it
                updated = RuleCounter.objects.filter(rule_id=rule_pk).update(
                    **{kind: F(kind) + number for kind, number in numbers.items()}
                )
                if not updated:
                    RuleCounter.objects.create(rule_id=rule_pk, **numbers)
    except DatabaseError as error:
        logger.warning("Rule counts could not be written (%s); kept for the next try.", error)
        with _lock:
            for key, number in taken.items():
                _pending[key] += number
                _total += number


def discard() -> None:
    """Forget this process's counts without writing them (tests)."""
    global _total
    with _lock:
        _pending.clear()
        _total = 0


def _flush_at_exit() -> None:
    if _pending:
        try:
            flush()
        except Exception:
            logger.debug("Rule counts lost at exit", exc_info=True)


atexit.register(_flush_at_exit)
