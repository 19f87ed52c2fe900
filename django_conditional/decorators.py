"""View decorators: Django-compatible ``condition``/``etag``/``last_modified``, and ``conditional``.

``condition``, ``etag`` and ``last_modified`` keep Django's signatures and
behaviour except where Django deviates from RFC 9110 (listed in the README),
and add: sync and async views and validator functions, no validator work for
unsafe requests without a precondition, the computed validator on
``request.conditional``, and ``cache_control`` / ``vary`` that the 304
carries as the 200 does.

``conditional`` derives the validator from data instead of functions: a
queryset, one object, or the models the page depends on (``derivation``).

Importable, and applicable, before ``django.setup()`` (from a settings
module or an early ``urls.py``), like Django's own decorators: what needs
the models is imported on first use.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial, wraps
from typing import TYPE_CHECKING, Any, TypeVar, cast

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.apps import apps
from django.db import DatabaseError
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404

from django_conditional import engine
from django_conditional.dependencies import ModelReference, ViewConfig
from django_conditional.engine import ConditionalState, ResponseOptions
from django_conditional.revalidation import answer_from_kept, reads_stamps_from_memory
from django_conditional.stamp_errors import StampsUnavailable, raise_if_unmigrated
from django_conditional.unsafe_methods import Fresh, WriteGuard, fresh_derivation, is_write
from django_conditional.validators import Validator

if TYPE_CHECKING:
    from django_conditional.derivation import Derivation, Derived

__all__ = ["condition", "conditional", "etag", "last_modified"]

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., Any])
EtagFunc = Callable[..., "str | Awaitable[str | None] | None"]
LastModifiedFunc = Callable[..., "dt.datetime | Awaitable[dt.datetime | None] | None"]
# Computes the request's state from (request, args, kwargs).
_Compute = Callable[[HttpRequest, tuple[Any, ...], dict[str, Any]], ConditionalState]
# The page variant a request asks for (validator_cache.VariantKey).
_VariantOf = Callable[[HttpRequest], tuple[str, ...]]
_AsyncCompute = Callable[
    [HttpRequest, tuple[Any, ...], dict[str, Any]], Awaitable[ConditionalState]
]


def _guard(
    view: ViewFunc,
    *,
    compute: _Compute,
    acompute: _AsyncCompute,
    idle: _Compute,
    options: ResponseOptions,
    variant_of: _VariantOf | None = None,
    writes: WriteGuard | None = None,
) -> ViewFunc:
    """Wrap ``view``: compute the state, answer 304/412 early, or run the view and finish.

    ``idle`` gives the state of a request that needs no validator (an unsafe
    request without a precondition, OPTIONS): nothing is computed for it.
    ``variant_of`` names the request's page variant, whose kept validator
    answers a matching revalidation before anything else is worked out
    (the warm 304, the package's hot path). ``writes`` answers unsafe
    requests instead (a view of one object: 428, and atomic preconditions).
    """

    def revalidated(request: HttpRequest) -> HttpResponseBase | None:
        if variant_of is None:
            return None
        return answer_from_kept(request, variant_of, options)

    if iscoroutinefunction(view):

        @wraps(view)
        async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if writes is not None and is_write(request):

                async def run_view() -> Any:
                    return await view(request, *args, **kwargs)

                # One thread for the claim's transaction and the view's ORM calls:
                # sync_to_async inside async_to_sync comes back to this thread.
                return await sync_to_async(writes.answer)(
                    request, args, kwargs, async_to_sync(run_view)
                )
            # On the event loop only when stamps are read from memory (a Redis
            # stamp not mirrored yet, just after a write, is one read); with
            # stamps in the database, the worker thread below looks it up.
            if reads_stamps_from_memory():
                early_response = revalidated(request)
                if early_response is not None:
                    return early_response
            if not engine.needs_validator(request):
                request.conditional = idle(request, args, kwargs)  # type: ignore[attr-defined]
                return await view(request, *args, **kwargs)
            state = await acompute(request, args, kwargs)
            request.conditional = state  # type: ignore[attr-defined]
            if state.validator is None:  # the stamps cannot be read now
                refused = engine.unverifiable_response(request)
                if refused is not None:
                    return refused
                response = await view(request, *args, **kwargs)
                return engine.finish_without_validators(request, response, options)
            early = engine.check_preconditions(request, state.validator, options)
            if early is not None and not early.must_run_view_first(request):
                return early.response
            if state.needs_fetch:
                # What a cached validator left unfetched, fetched in a worker
                # thread: the async view must not query synchronously.
                await sync_to_async(state.fetch)()
            response = await view(request, *args, **kwargs)
            if early is not None:
                return early.instead_of(response)
            return engine.finish_response(request, response, state.validator, options)

        # The middleware's rules leave views with their own validators alone.
        async_view.conditional_guarded = True  # type: ignore[attr-defined]
        return cast("ViewFunc", async_view)

    @wraps(view)
    def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if writes is not None and is_write(request):
            return writes.answer(request, args, kwargs, partial(view, request, *args, **kwargs))
        early_response = revalidated(request)
        if early_response is not None:
            return early_response
        if not engine.needs_validator(request):
            request.conditional = idle(request, args, kwargs)  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)
        state = compute(request, args, kwargs)
        request.conditional = state  # type: ignore[attr-defined]
        if state.validator is None:  # the stamps cannot be read now
            refused = engine.unverifiable_response(request)
            if refused is not None:
                return refused
            response = view(request, *args, **kwargs)
            return engine.finish_without_validators(request, response, options)
        early = engine.check_preconditions(request, state.validator, options)
        if early is not None and not early.must_run_view_first(request):
            return early.response
        response = view(request, *args, **kwargs)
        if early is not None:
            return early.instead_of(response)
        return engine.finish_response(request, response, state.validator, options)

    sync_view.conditional_guarded = True  # type: ignore[attr-defined]
    return cast("ViewFunc", sync_view)


# --- Django-compatible decorators -------------------------------------------------


def condition(
    etag_func: EtagFunc | None = None,
    last_modified_func: LastModifiedFunc | None = None,
    *,
    cache_control: engine.CacheControl | None = None,
    vary: Sequence[str] | None = None,
) -> Callable[[ViewFunc], ViewFunc]:
    """Answer conditional requests from the validators the functions compute.

    ``etag_func`` and ``last_modified_func`` take the view's arguments and
    return an entity tag (quoted or not, ``W/`` for weak) and a datetime, or
    ``None``. Either may be a coroutine function. Each is called at most once
    per request, and not at all for an unsafe request without a precondition
    or for OPTIONS. A validator function that raises ``Http404`` (for example
    through ``get_object_or_404``) gives the 404, which takes precedence over
    any precondition (RFC 9110 section 13.2.1).

    On GET and HEAD the 304 is returned before the view runs; other methods
    get 412 when a precondition fails. ``cache_control`` (keyword arguments
    of ``patch_cache_control``) and ``vary`` (header names) go on the 200 and
    the 304 alike. The view finds the computed validator on
    ``request.conditional`` (a :class:`~django_conditional.engine.ConditionalState`).
    """
    options = ResponseOptions(cache_control, vary)

    def compute(
        request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> ConditionalState:
        etag_value = _call_sync(etag_func, request, args, kwargs)
        last_modified_value = _call_sync(last_modified_func, request, args, kwargs)
        return ConditionalState(Validator.from_values(etag_value, last_modified_value))

    async def acompute(
        request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> ConditionalState:
        # Sync functions run through sync_to_async so an ORM query inside them
        # does not raise SynchronousOnlyOperation; async ones are awaited.
        etag_value = await _call_async(etag_func, request, args, kwargs)
        last_modified_value = await _call_async(last_modified_func, request, args, kwargs)
        return ConditionalState(Validator.from_values(etag_value, last_modified_value))

    def decorator(view: ViewFunc) -> ViewFunc:
        return _guard(view, compute=compute, acompute=acompute, idle=_idle, options=options)

    return decorator


def etag(
    etag_func: EtagFunc,
    *,
    cache_control: engine.CacheControl | None = None,
    vary: Sequence[str] | None = None,
) -> Callable[[ViewFunc], ViewFunc]:
    """:func:`condition` with an entity tag only."""
    return condition(etag_func=etag_func, cache_control=cache_control, vary=vary)


def last_modified(
    last_modified_func: LastModifiedFunc,
    *,
    cache_control: engine.CacheControl | None = None,
    vary: Sequence[str] | None = None,
) -> Callable[[ViewFunc], ViewFunc]:
    """:func:`condition` with a modification time only."""
    return condition(last_modified_func=last_modified_func, cache_control=cache_control, vary=vary)


def _idle(request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ConditionalState:
    return ConditionalState()


def _call_sync(
    func: Callable[..., Any] | None,
    request: HttpRequest,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    if func is None:
        return None
    if iscoroutinefunction(func):
        return async_to_sync(func)(request, *args, **kwargs)
    result = func(request, *args, **kwargs)
    if inspect.isawaitable(result):  # a plain function that returned a coroutine
        return async_to_sync(_await)(result)
    return result


async def _call_async(
    func: Callable[..., Any] | None,
    request: HttpRequest,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    if func is None:
        return None
    if iscoroutinefunction(func):
        return await func(request, *args, **kwargs)
    result = await sync_to_async(func)(request, *args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


# --- Validators derived from data ----------------------------------------------------

QuerysetSource = QuerySet[Any] | Callable[..., QuerySet[Any]]


def conditional(
    *,
    queryset: QuerysetSource | None = None,
    object: Callable[..., QuerySet[Any]] | None = None,
    depends_on: Iterable[ModelReference] = (),
    public: bool = False,
    weak: bool | None = None,
    salt: Callable[[HttpRequest], object] | None = None,
    cache_control: engine.CacheControl | None = None,
    vary: Sequence[str] | None = None,
    using: str | None = None,
    require_precondition: bool | None = None,
) -> Callable[[ViewFunc], ViewFunc]:
    """Derive the view's validator from the data it shows; answer 304/412 before it runs.

    Name what the page shows:

    - ``queryset``: a queryset, or a function of the view's arguments
      returning one. Its rows are fingerprinted exactly (primary keys and
      versions for ``VersionedModel``; a sliced page row by row, in order),
      so writes to rows it does not select keep the tag.
    - ``object``: a function of the view's arguments returning a queryset
      that selects one row, e.g. ``lambda request, slug:
      Article.objects.filter(slug=slug)``; a missing row gives ``Http404``.
      Its tag is strong (``weak=True`` for pages whose bytes vary, such as
      ones with CSRF tokens, that are not edited with If-Match).
    - ``depends_on``: models (or ``"app_label.Model"``) whose every write
      changes the tag: everything else the template shows.

    The tag is per user (``Cache-Control: private``, ``Vary: Cookie``)
    unless ``public=True``, and always per language and deploy version.
    ``salt`` adds anything else the page varies on. The view finds the
    fetched object or rows on ``request.conditional.object`` /
    ``.object_list``, fetched only if the validator came from the cache.
    Sync and async views alike; async views compute in a worker thread.

    Unsafe requests to an ``object`` view (PUT, PATCH, POST, DELETE) that
    carry ``If-Match`` or ``If-Unmodified-Since`` are checked and written as
    one step: the view runs with the row claimed at the version the client
    saw, so of concurrent requests with the same tag one runs and the others
    get 412 (``guarded_writes``); a success carries the object's new
    ``ETag``. ``If-None-Match: *`` creates only what does not exist (a PUT).
    ``require_precondition=True`` answers 428 to unsafe requests without a
    precondition (default: ``CONDITIONAL_REQUIRE_PRECONDITION``).

    ``depends_on`` is checked when the decorator is applied (or on first use
    if the app registry is not ready yet, and by check E005): an entry that
    is not an installed model raises ``ImproperlyConfigured`` naming the
    view. A ``queryset`` or ``object`` function that returns anything but a
    ``QuerySet`` raises ``TypeError``.
    """
    if queryset is not None and object is not None:
        raise TypeError("conditional() takes queryset or object, not both.")
    if object is not None and not callable(object):
        raise TypeError(
            f"conditional(object=...) takes a function of the view's arguments returning a "
            f"QuerySet that selects one row, not {object!r}; for example "
            "object=lambda request, slug: Article.objects.filter(slug=slug)."
        )
    if queryset is not None and not (isinstance(queryset, QuerySet) or callable(queryset)):
        raise TypeError(
            f"conditional(queryset=...) takes a QuerySet or a function of the view's "
            f"arguments returning one, not {type(queryset).__name__} {queryset!r}."
        )
    if isinstance(depends_on, (str, type)):
        raise TypeError(
            f"conditional(depends_on=...) takes a list of models or 'app_label.ModelName' "
            f"strings, not one alone: write depends_on=[{_name(depends_on)}]."
        )
    if salt is not None and not callable(salt):
        raise TypeError(
            f"conditional(salt=...) takes a function of the request, not {salt!r}; for "
            "example salt=lambda request: request.COOKIES.get('theme')."
        )
    if require_precondition is not None and object is None:
        raise TypeError(
            "conditional(require_precondition=...) guards writes to one object: it needs "
            "object=..., the query of the row the precondition is checked against."
        )
    options = ResponseOptions(cache_control, vary)
    if not public:
        options = options.per_user()
    source = object if object is not None else queryset
    references = tuple(depends_on)

    def _state(
        validator: Validator | None,
        make_queryset: Callable[[], QuerySet[Any]] | None,
        fetched_object: Model | None,
        rows: list[Model] | None,
        unevaluated: QuerySet[Any] | None,
        *,
        from_cache: bool = False,
    ) -> ConditionalState:
        fetch_object = fetch_list = None
        if make_queryset is not None and object is not None:
            fetch_object = partial(_get_or_404, make_queryset)
        elif make_queryset is not None:
            fetch_list = make_queryset
        return ConditionalState(
            validator,
            object=fetched_object,
            object_list=rows if rows is not None else unevaluated,
            fetch_object=fetch_object,
            fetch_object_list=fetch_list,
            from_cache=from_cache,
        )

    def decorator(view: ViewFunc) -> ViewFunc:
        identity = f"{view.__module__}.{view.__qualname__}"
        config = ViewConfig(identity, references)
        # Resolved now when the app registry is ready (a typo fails at import,
        # naming the view), else on first use; then reused by every request.
        resolve_depends_on = functools.cache(config.resolve)
        if apps.ready:
            resolve_depends_on()

        def factory(
            request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Callable[[], QuerySet[Any]] | None:
            if source is None:
                return None
            if isinstance(source, QuerySet):
                return source.all
            return partial(
                _call_queryset_function, source, identity, object is not None, request, args, kwargs
            )

        def variant_of(request: HttpRequest) -> tuple[str, ...]:
            return engine.variant_key(
                request, identity, engine.request_salts(request, public=public, salt=salt)
            )

        def derivation_of(
            request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> tuple[Derivation, Callable[[], QuerySet[Any]] | None, tuple[str, ...]]:
            from django_conditional.derivation import Derivation

            salts = engine.request_salts(request, public=public, salt=salt)
            make_queryset = factory(request, args, kwargs)
            derivation = Derivation(
                queryset=make_queryset,
                single=object is not None,
                depends_on=resolve_depends_on(),
                salts=(identity, *salts),
                weak=weak,
                using=using,
            )
            return derivation, make_queryset, salts

        def compute(
            request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> ConditionalState:
            derivation, make_queryset, salts = derivation_of(request, args, kwargs)
            try:
                derived = _derive(derivation, engine.variant_key(request, identity, salts))
            except StampsUnavailable:
                # Served without validators; the view fetches what it shows.
                return _state(None, make_queryset, None, None, None)
            return _state(
                derived.validator,
                make_queryset,
                derived.object,
                derived.rows,
                derived.queryset,
                from_cache=derived.cached,
            )

        def idle(
            request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> ConditionalState:
            return _state(None, factory(request, args, kwargs), None, None, None)

        def derive_fresh(
            request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Fresh:
            # Never a kept validator: the write is checked against the version read here.
            derivation, make_queryset, _salts = derivation_of(request, args, kwargs)
            assert make_queryset is not None  # object=... views only
            return fresh_derivation(
                partial(_derive, derivation, None),
                using or make_queryset().db,
                # A missing row: request.conditional.object raises Http404 again.
                make_state=lambda validator, found: _state(
                    validator, make_queryset, found, None, None
                ),
            )

        writes = None
        if object is not None:
            writes = WriteGuard(derive_fresh, idle, options, require_precondition)

        async def acompute(
            request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> ConditionalState:
            return await sync_to_async(compute)(request, args, kwargs)

        guarded = _guard(
            view,
            compute=compute,
            acompute=acompute,
            idle=idle,
            options=options,
            variant_of=variant_of,
            writes=writes,
        )
        # For check E005, which walks the URLconf.
        guarded.conditional_config = config  # type: ignore[attr-defined]
        return guarded

    return decorator


def _derive(derivation: Derivation, cache_key: Sequence[str] | None) -> Derived:
    """``derivation.derive``, imported on first use, with a never-migrated stamp table explained."""
    from django_conditional.derivation import derive

    try:
        return derive(derivation, cache_key=cache_key)
    except DatabaseError as error:
        raise_if_unmigrated(error, derivation.using)
        raise


def _call_queryset_function(
    function: Callable[..., Any],
    view: str,
    single: bool,
    request: HttpRequest,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> QuerySet[Any]:
    """Call a ``queryset``/``object`` function; a ``TypeError`` when it returns no QuerySet."""
    result = function(request, *args, **kwargs)
    if isinstance(result, QuerySet):
        return result
    name = getattr(function, "__qualname__", repr(function))
    returned = f"returned {type(result).__name__} {result!r}"[:200]
    if single:
        raise TypeError(
            f"@conditional(object=...) on {view}: {name} {returned}; expected a QuerySet that "
            "selects one row, such as Article.objects.filter(slug=slug), not the object "
            "itself. A missing row is then a 404, and the view finds the object on "
            "request.conditional.object."
        )
    raise TypeError(
        f"@conditional(queryset=...) on {view}: {name} {returned}; expected a QuerySet, "
        "such as Article.objects.filter(...)[:50], not a list of its rows. The validator "
        "is derived from the query, and the view finds the rows on "
        "request.conditional.object_list."
    )


def _name(reference: object) -> str:
    return reference.__name__ if isinstance(reference, type) else repr(reference)


def _get_or_404(make_queryset: Callable[[], QuerySet[Any]]) -> Model:
    found: Model = get_object_or_404(make_queryset())
    return found
