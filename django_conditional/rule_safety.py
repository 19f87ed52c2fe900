"""What a rule learns from the 200s it sees: pages that must never get shared validators.

A rule that is not per user gives validators only to a response that is the
same for every request its tag cannot tell apart. A 200 that sets a cookie,
writes the session, shows messages, says ``private`` or ``no-store``, carries
validators of its own, or varies on a header the tag lacks is sent as the
view made it, and its page is left to its view until the rule is saved
again: remembered in this process at once, and in ``RuleRefusal`` for the
admin and every other process (whose rules reload when that table's stamp
moves). Never raises into the request: a refusal that cannot be written is
logged and kept in this process.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from django_conditional.rules import EVERYONE, PER_USER, Rule, RuleSet

__all__ = ["MAX_REFUSED_PAGES", "reason_to_refuse", "refuse"]

logger = logging.getLogger("django_conditional")

# How Django's own utils.cache splits Cache-Control and Vary.
_LIST_DELIMITER = re.compile(r"\s*,\s*")
# Beyond this many refused pages, the whole rule is refused ('*'): a rule
# whose pages keep failing is misconfigured, and the table stays small.
MAX_REFUSED_PAGES = 50


def reason_to_refuse(request: HttpRequest, response: HttpResponseBase, rule: Rule) -> str | None:
    """Why ``response`` must not get ``rule``'s validators, or None when it may."""
    headers = response.headers
    if "ETag" in headers or "Last-Modified" in headers:
        return "the view sends validators of its own"
    directives = {
        part.strip().split("=", 1)[0].lower()
        for part in _LIST_DELIMITER.split(headers.get("Cache-Control", ""))
        if part.strip()
    }
    if "no-store" in directives:
        return "the response says Cache-Control: no-store"
    for header in _LIST_DELIMITER.split(headers.get("Vary", "")):
        name = header.strip().lower()
        if name and name not in rule.covered_vary:
            return f"the response varies on {header.strip()}, which the rule's tag lacks"
    if rule.audience == PER_USER:
        return None
    if "private" in directives:
        return "the response says Cache-Control: private (make the rule per user)"
    if response.cookies:
        return f"the response sets the cookie {sorted(response.cookies)[0]!r}"
    meta = request.META
    if meta.get("CSRF_COOKIE_NEEDS_UPDATE"):
        return "the page uses a CSRF token, which sets the CSRF cookie"
    session: Any = getattr(request, "session", None)
    if session is not None:
        if getattr(session, "modified", False):
            return "the view writes the session"
        if rule.audience == EVERYONE and getattr(session, "accessed", False):
            return "the view reads the session (request.user): pages differ per user"
    messages: Any = getattr(request, "_messages", None)
    if messages is not None and (getattr(messages, "used", False) or messages.added_new):
        return "the page shows or stores messages"
    return None


def refuse(rules: RuleSet, rule: Rule, path: str, reason: str) -> None:
    """Leave ``path`` to its view from now on, here at once and in every process soon."""
    from django_conditional.models import RuleRefusal

    stored = "*" if rules.refusal_count(rule) >= MAX_REFUSED_PAGES else path[:500]
    rules.refuse(rule, stored)
    logger.warning(
        "Conditional rule %r gives no validators to %s from now on: %s. Fix the page or the "
        "rule, then save the rule in the admin to try again.",
        rule.name,
        "any page" if stored == "*" else path,
        reason,
    )
    try:
        # Its own transaction, outside any the view left open.
        with transaction.atomic():
            RuleRefusal.objects.get_or_create(
                rule_id=rule.pk, path=stored, defaults={"reason": reason[:300]}
            )
    except IntegrityError:
        pass  # another process recorded it first
    except DatabaseError as error:
        logger.warning("The refusal could not be recorded (%s); this process keeps it.", error)


@receiver(post_save, sender="django_conditional.ConditionalRule")
def _forget_refusals(instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """A rule saved again is tried again on every page (fixtures load as they are)."""
    if not raw:
        instance.refusals.all().delete()
