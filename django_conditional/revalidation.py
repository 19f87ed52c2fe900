"""The warm 304: a revalidation answered from a validator this process kept.

Browsers and caches revalidate with the entity tag they hold. When this
process kept the page variant's validator and none of its stamps moved
since, the answer is a 304 built from ready-made header values: no
queryset, no query (stamps in a cache), no shared-cache round trip.
Everything else takes the full path (``derivation``, ``engine``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from django_conditional import engine, validator_cache
from django_conditional.engine import ResponseOptions
from django_conditional.stamps import get_stamp_store

__all__ = ["answer_from_kept", "reads_stamps_from_memory"]


def answer_from_kept(
    request: HttpRequest,
    variant_of: Callable[[HttpRequest], validator_cache.VariantKey],
    options: ResponseOptions,
) -> HttpResponseBase | None:
    """The 304 when ``request`` sends back the kept, current tag of its variant; else None.

    ``variant_of`` is called only for a revalidation: other requests pay
    nothing for this.
    """
    if not engine.is_revalidation(request):
        return None
    validator = validator_cache.lookup(variant_of(request), shared=False)
    if validator is None:
        return None
    # The view does not run: nothing needs request.conditional.
    return engine.not_modified_if_current(request, validator, options)


def reads_stamps_from_memory() -> bool:
    """Whether reading stamps needs no I/O (so an async view may do it on the event loop)."""
    return get_stamp_store().reads_from_memory
