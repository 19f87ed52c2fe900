"""Django REST framework: ETags and 304s on reads, atomic If-Match on writes, 428 when required.

An optional part (``pip install "django-conditional[drf]"``): importing this
module needs DRF; nothing else in the package imports it.

``ConditionalModelMixin`` goes before DRF's generic views or viewsets in the
bases::

    class ArticleViewSet(ConditionalModelMixin, viewsets.ModelViewSet):
        queryset = Article.objects.all()
        serializer_class = ArticleSerializer
        conditional_depends_on = [Author]
        conditional_require_precondition = True

- ``retrieve``: the object's strong ``ETag`` (its version, the models in
  ``conditional_depends_on``, the user unless ``conditional_public``, the
  negotiated format), and 304 for a matching ``If-None-Match`` before the
  serializer runs. The object is fetched through ``get_object()``, so its
  permissions are checked first.
- ``list``: an ``ETag`` of the filtered queryset's rows (and its page, since
  the query string is part of the variant); 304 likewise.
- ``update``, ``partial_update``, ``destroy``: ``If-Match`` and
  ``If-Unmodified-Since`` are checked and written as one step
  (``guarded_writes``): 412 with the current tag for a stale or lost write, the
  new tag on a success; 428 without a precondition when
  ``conditional_require_precondition`` (or ``CONDITIONAL_REQUIRE_PRECONDITION``).

DRF's authentication, permissions, throttling, content negotiation and
exception handling all run as usual: a serializer's ``ValidationError`` inside
a guarded write rolls the claim back, and the client's tag stays valid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from rest_framework.request import Request

from django_conditional import engine
from django_conditional.dependencies import ModelReference, ViewConfig
from django_conditional.derivation import Derivation, derive
from django_conditional.engine import ConditionalState, ResponseOptions
from django_conditional.stamp_errors import StampsUnavailable
from django_conditional.unsafe_methods import Fresh, WriteGuard, fresh_derivation
from django_conditional.validators import Validator

__all__ = ["ConditionalModelMixin"]


class ConditionalModelMixin:
    """ETag, 304, 412 and 428 for a DRF generic view or viewset of a model."""

    # Models the representation shows besides the object (or rows) itself.
    conditional_depends_on: Sequence[ModelReference] = ()
    # The same representation for every user (False: each user's tag is their own).
    conditional_public = False
    # 428 for an unsafe request without a precondition; None: the setting.
    conditional_require_precondition: bool | None = None
    # Rules in the admin leave the view to its own validators (rules.protection_of).
    conditional_guarded = True

    # --- what the tag is made of -----------------------------------------------------

    def _conditional_identity(self) -> str:
        return f"{type(self).__module__}.{type(self).__qualname__}"

    def _conditional_models(self) -> tuple[type[Model], ...]:
        config = ViewConfig(self._conditional_identity(), tuple(self.conditional_depends_on))
        return config.resolve()

    def _conditional_salts(self, request: Request) -> tuple[str, ...]:
        # DRF's request: its user is the one DRF authenticated (a token, a session).
        salts = engine.request_salts(request, public=self.conditional_public)
        renderer = getattr(request, "accepted_renderer", None)
        media_type = getattr(renderer, "media_type", "")
        return (self._conditional_identity(), *salts, f"format:{media_type}")

    def _conditional_options(self) -> ResponseOptions:
        options = ResponseOptions(None, None)
        if self.conditional_public:
            return options
        per_user = options.per_user()
        # Tokens authenticate API clients as often as cookies do.
        return ResponseOptions(per_user.cache_control, [*(per_user.vary or ()), "Authorization"])

    def _derivation(
        self, request: Request, queryset: Callable[[], QuerySet[Any]], *, single: bool
    ) -> Derivation:
        return Derivation(
            queryset=queryset,
            single=single,
            depends_on=self._conditional_models(),
            salts=self._conditional_salts(request),
            weak=False,
        )

    def _object_rows(self) -> Callable[[], QuerySet[Any]]:
        view: Any = self
        instance = view.get_object()  # the object's permissions, checked as DRF does
        return lambda: view.get_queryset().filter(pk=instance.pk)

    # --- reads -----------------------------------------------------------------------

    def _read(
        self,
        request: Request,
        rows: Callable[[], QuerySet[Any]],
        single: bool,
        call_view: Callable[[], HttpResponseBase],
    ) -> HttpResponseBase:
        django_request: HttpRequest = request._request
        options = self._conditional_options()
        salts = self._conditional_salts(request)
        try:
            derived = derive(
                self._derivation(request, rows, single=single),
                cache_key=engine.variant_key(django_request, self._conditional_identity(), salts),
            )
        except StampsUnavailable:
            return engine.finish_without_validators(django_request, call_view(), options)
        early = engine.check_preconditions(django_request, derived.validator, options)
        if early is not None and not early.must_run_view_first(django_request):
            return early.response
        response = call_view()
        if early is not None:
            return early.instead_of(response)
        return engine.finish_response(django_request, response, derived.validator, options)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        parent: Any = super()
        return self._read(
            request, self._object_rows(), True, lambda: parent.retrieve(request, *args, **kwargs)
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        view: Any = self
        parent: Any = super()
        return self._read(
            request,
            lambda: view.filter_queryset(view.get_queryset()),
            False,
            lambda: parent.list(request, *args, **kwargs),
        )

    # --- writes ----------------------------------------------------------------------

    def _write_guard(self, request: Request) -> WriteGuard:
        def fresh(_request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Fresh:
            try:
                rows = self._object_rows()
            except Http404:
                return Fresh(ConditionalState(Validator(exists=False)), "default")
            derivation = self._derivation(request, rows, single=True)
            return fresh_derivation(partial(derive, derivation), rows().db)

        return WriteGuard(
            fresh,
            lambda _request, args, kwargs: ConditionalState(),
            self._conditional_options(),
            self.conditional_require_precondition,
        )

    def _write(
        self, request: Request, args: tuple[Any, ...], kwargs: dict[str, Any], handler: str
    ) -> HttpResponseBase:
        parent: Any = super()
        guard = self._write_guard(request)
        response: HttpResponseBase = guard.answer(
            request._request,
            args,
            kwargs,
            lambda: getattr(parent, handler)(request, *args, **kwargs),
        )
        return response

    def update(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return self._write(request, args, kwargs, "update")

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # As DRF's own: through update(), which the guard wraps once.
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return self._write(request, args, kwargs, "destroy")
