"""Class-based view mixins: 304/412 before ``get()`` runs, validators derived from the view's data.

``ConditionalListMixin`` for ``ListView`` (the page's rows and the total
count), ``ConditionalDetailMixin`` for ``DetailView`` (one object, a strong
tag), ``ConditionalTemplateMixin`` for anything else (``depends_on`` only).
What computing the validator fetched is what the view renders: no query
runs twice. Importable before ``django.setup()``: the derivation (which
imports the models) is imported on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.paginator import InvalidPage, Page, Paginator
from django.db import DatabaseError
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _

from django_conditional import engine
from django_conditional.dependencies import ViewConfig, resolve_models
from django_conditional.engine import ConditionalState, ResponseOptions
from django_conditional.revalidation import answer_from_kept
from django_conditional.stamp_errors import StampsUnavailable, raise_if_unmigrated

if TYPE_CHECKING:
    from django_conditional.derivation import Derivation, Derived

__all__ = [
    "ConditionalDetailMixin",
    "ConditionalListMixin",
    "ConditionalTemplateMixin",
    "ConditionalViewMixin",
]


class ConditionalViewMixin:
    """The shared machinery: derive, evaluate, answer early or dispatch and finish.

    Attributes mirror the ``conditional`` decorator's arguments.
    """

    depends_on: ClassVar[Sequence[type[Model] | str]] = ()
    public: ClassVar[bool] = False
    weak: ClassVar[bool | None] = None
    cache_control: ClassVar[engine.CacheControl | None] = None
    vary: ClassVar[Sequence[str] | None] = None

    request: HttpRequest
    args: Any
    kwargs: Any
    _derived: Derived | None = None

    def get_conditional_salt(self) -> object | None:
        """Anything else this view's output varies on (a format, a theme); None for nothing."""
        return None

    def get_derivation(self, salts: tuple[str, ...]) -> Derivation:
        """What the validator is derived from; override to derive from something else.

        ``salts`` name the page's variant (view, language, deploy, user):
        pass them on. Return a ``django_conditional.derivation.Derivation``.
        """
        from django_conditional.derivation import Derivation

        return Derivation(depends_on=self._depends_on(), salts=salts, weak=self.weak)

    @classmethod
    def get_conditional_config(cls) -> ViewConfig:
        """What check E005 validates: the view's dotted name and its ``depends_on``."""
        return ViewConfig(_identity(cls), cls.depends_on)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Answer 304/412 before the handler runs; otherwise run it and add the validators."""
        per_class = _per_class(type(self))
        method = (request.method or "GET").lower()
        has_handler = method in self.http_method_names and hasattr(self, method)  # type: ignore[attr-defined]
        # Without a handler the answer is 405 whatever the preconditions say
        # (RFC 9110 section 13.2.1): nothing to compute.
        if not has_handler or not engine.needs_validator(request):
            request.conditional = ConditionalState()  # type: ignore[attr-defined]
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc,no-any-return]
        extra = self.get_conditional_salt()
        salts = engine.request_salts(
            request, public=self.public, salt=None if extra is None else (lambda _: extra)
        )
        variant = engine.variant_key(request, per_class.identity, salts)
        revalidated = answer_from_kept(request, lambda _request: variant, per_class.options)
        if revalidated is not None:
            return revalidated
        from django_conditional.derivation import derive

        derivation = self.get_derivation((per_class.identity, *salts))
        try:
            self._derived = derive(derivation, cache_key=variant)
        except StampsUnavailable:
            return self._dispatch_without_validators(request, *args, **kwargs)
        except DatabaseError as error:
            raise_if_unmigrated(error, derivation.using)
            raise
        validator = self._derived.validator
        request.conditional = ConditionalState(  # type: ignore[attr-defined]
            validator,
            object=self._derived.object,
            object_list=self._derived.rows,
            from_cache=self._derived.cached,
        )
        options = per_class.options
        early = engine.check_preconditions(request, validator, options)
        if early is not None and not early.must_run_view_first(request):
            return early.response
        response: HttpResponseBase = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        if early is not None:
            return early.instead_of(response)
        return engine.finish_response(request, response, validator, options)

    def _dispatch_without_validators(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        """The stamps cannot be read now: the page without validators, or 503 for a precondition."""
        refused = engine.unverifiable_response(request)
        if refused is not None:
            return refused
        request.conditional = ConditionalState()  # type: ignore[attr-defined]
        response: HttpResponseBase = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        return engine.finish_without_validators(request, response, _per_class(type(self)).options)

    @classmethod
    def _depends_on(cls) -> tuple[type[Model], ...]:
        return _per_class(cls).depends_on

    def _get_checked_queryset(self) -> QuerySet[Any]:
        """``get_queryset()``, which must be a QuerySet: the validator is derived from the query."""
        queryset = self.get_queryset()  # type: ignore[attr-defined]
        if not isinstance(queryset, QuerySet):
            raise TypeError(
                f"{_identity(type(self))}.get_queryset() returned {type(queryset).__name__}; "
                f"{type(self).__name__} derives its validator from a QuerySet. Set queryset "
                "or model, or return a QuerySet from get_queryset(), not a list."
            )
        return queryset


@dataclass(frozen=True, slots=True)
class _ClassSettings:
    options: ResponseOptions
    depends_on: tuple[type[Model], ...]
    identity: str  # names the view in its tags and cache keys


# Worked out once per view class, not on every request (the 304 path).
_class_settings: dict[type[ConditionalViewMixin], _ClassSettings] = {}


def _per_class(cls: type[ConditionalViewMixin]) -> _ClassSettings:
    settings = _class_settings.get(cls)
    if settings is None:
        options = ResponseOptions(cls.cache_control, cls.vary)
        identity = _identity(cls)
        settings = _ClassSettings(
            options=options if cls.public else options.per_user(),
            depends_on=resolve_models(cls.depends_on, identity),
            identity=identity,
        )
        _class_settings[cls] = settings
    return settings


def _identity(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class ConditionalTemplateMixin(ConditionalViewMixin):
    """For pages built from whole models: list them in ``depends_on``."""


class ConditionalDetailMixin(ConditionalViewMixin):
    """For ``DetailView``: the object's version gives a strong tag; it is fetched once."""

    def get_derivation(self, salts: tuple[str, ...]) -> Derivation:
        """Derive from the one row ``get_object()`` would select."""
        from django_conditional.derivation import Derivation

        return Derivation(
            queryset=self._object_queryset,
            single=True,
            depends_on=self._depends_on(),
            salts=salts,
            weak=self.weak,
        )

    def _object_queryset(self) -> QuerySet[Any]:
        """The queryset ``SingleObjectMixin.get_object`` filters, filtered the same way."""
        queryset = self._get_checked_queryset()
        pk = self.kwargs.get(self.pk_url_kwarg)  # type: ignore[attr-defined]
        slug = self.kwargs.get(self.slug_url_kwarg)  # type: ignore[attr-defined]
        if pk is not None:
            queryset = queryset.filter(pk=pk)
        if slug is not None and (pk is None or self.query_pk_and_slug):  # type: ignore[attr-defined]
            queryset = queryset.filter(**{self.get_slug_field(): slug})  # type: ignore[attr-defined]
        if pk is None and slug is None:
            raise AttributeError(
                f"Generic detail view {type(self).__name__} must be called with either an "
                "object pk or a slug in the URLconf."
            )
        return queryset

    def get_object(self, queryset: QuerySet[Any] | None = None) -> Any:
        """The object fetched for the validator, when it was; otherwise fetch it now."""
        if queryset is None and self._derived is not None and self._derived.object is not None:
            return self._derived.object
        return super().get_object(queryset)  # type: ignore[misc]


class ConditionalListMixin(ConditionalViewMixin):
    """For ``ListView``: the current page's rows and the total count, fetched once."""

    def get_derivation(self, salts: tuple[str, ...]) -> Derivation:
        """Derive from the page of ``get_queryset()`` being shown (or all of it)."""
        from django_conditional.derivation import Derivation

        page_size = self.get_paginate_by(None)  # type: ignore[attr-defined]
        return Derivation(
            queryset=self._get_checked_queryset,
            paginate=None if not page_size else self._paginate,
            depends_on=self._depends_on(),
            salts=salts,
            weak=self.weak,
        )

    def _paginate(self, queryset: QuerySet[Any]) -> Page[Any]:
        page_size = self.get_paginate_by(queryset)  # type: ignore[attr-defined]
        paginator: Paginator[Any] = self.get_paginator(  # type: ignore[attr-defined]
            queryset,
            page_size,
            orphans=self.get_paginate_orphans(),  # type: ignore[attr-defined]
            allow_empty_first_page=self.get_allow_empty(),  # type: ignore[attr-defined]
        )
        page_kwarg = self.page_kwarg  # type: ignore[attr-defined]
        page = self.kwargs.get(page_kwarg) or self.request.GET.get(page_kwarg) or 1
        try:
            number = paginator.num_pages if page == "last" else int(page)
        except ValueError as error:
            raise Http404(_("Page is not “last”, nor can it be converted to an int.")) from error
        try:
            return paginator.page(number)
        except InvalidPage as error:
            raise Http404(
                _("Invalid page (%(page_number)s): %(message)s")
                % {"page_number": number, "message": str(error)}
            ) from error

    def paginate_queryset(
        self, queryset: QuerySet[Any], page_size: int
    ) -> tuple[Paginator[Any], Page[Any], Any, bool]:
        """The page fetched for the validator, when it was; otherwise paginate now."""
        derived = self._derived
        if derived is not None and derived.page is not None:
            page = derived.page
            return page.paginator, page, page.object_list, page.has_other_pages()
        return super().paginate_queryset(queryset, page_size)  # type: ignore[misc,no-any-return]
