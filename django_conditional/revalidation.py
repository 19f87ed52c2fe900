"""The warm 304: a revalidation answered from a validator this process kept.

Browsers and caches revalidate with the entity tag they hold. When this
process kept the page variant's validator and none of its stamps moved
since, the answer is a 304 built from ready-made header values: no
queryset, no query (stamps in a cache), no shared-cache round trip.
Everything else takes the full path (``derivation``, ``engine``).

Importable before ``django.setup()``: the validator cache and the stamps
(which import the models) are bound on the first request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from django_conditional import engine
from django_conditional.engine import ResponseOptions, logger
from django_conditional.stamp_errors import StampsUnavailable
from django_conditional.validators import Validator

if TYPE_CHECKING:
    from django_conditional.stamps import StampStore
    from django_conditional.validator_cache import VariantKey

__all__ = ["answer_from_kept", "reads_stamps_from_memory"]

_Lookup = Callable[..., "Validator | None"]
# Bound by _bind() on first use; read on every revalidation.
_lookup: _Lookup | None = None
_get_stamp_store: Callable[[], StampStore] | None = None


def _bind() -> tuple[_Lookup, Callable[[], StampStore]]:
    global _lookup, _get_stamp_store
    from django_conditional.stamps import get_stamp_store
    from django_conditional.validator_cache import lookup

    _lookup, _get_stamp_store = lookup, get_stamp_store
    return lookup, get_stamp_store


def answer_from_kept(
    request: HttpRequest,
    variant_of: Callable[[HttpRequest], VariantKey],
    options: ResponseOptions,
) -> HttpResponseBase | None:
    """The 304 when ``request`` sends back the kept, current tag of its variant; else None.

    ``variant_of`` is called only for a revalidation: other requests pay
    nothing for this.
    """
    if not engine.is_revalidation(request):
        return None
    lookup = _lookup or _bind()[0]
    try:
        validator = lookup(variant_of(request), shared=False)
    except StampsUnavailable:
        return None  # the full path serves the page without validators
    if validator is None:
        return None
    # The view does not run: nothing needs request.conditional.
    response = engine.not_modified_if_current(request, validator, options)
    # isEnabledFor is logging's own cached answer, cleared whenever the
    # logging configuration changes: the message is built only when wanted.
    if response is not None and logger.isEnabledFor(logging.DEBUG):
        engine.log_revalidated(request, validator, kept=True)
    return response


def reads_stamps_from_memory() -> bool:
    """Whether reading stamps needs no I/O (so an async view may do it on the event loop)."""
    get_stamp_store = _get_stamp_store or _bind()[1]
    return get_stamp_store().reads_from_memory
