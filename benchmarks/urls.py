"""The benchmark's URLs: one path per way in, and the scaling views.

Every path resolves through the same single pattern and a dictionary, so
no configuration pays for the URL patterns listed before its own (with a
list of patterns, the last of 40 would pay for 39 failed matches, which
is a tenth of an empty request).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.urls import URLPattern, re_path

from benchmarks.bench import views

_VIEWS: dict[str, Callable[[HttpRequest], HttpResponseBase]] = {
    "empty/": views.empty,
    "full/": views.front_page,
    "django/middleware/": views.django_middleware_page,
    "django/condition/": views.django_condition_page,
    "ours/queryset/": views.ours_queryset_page,
    "ours/mixin/": views.FrontPageListView.as_view(),
    "ours/depends-on/": views.ours_depends_on_page,
    "rule/": views.rule_page,
}
for (size, subset), scale in views.SCALE_VIEWS.items():
    part = "subset" if subset else "whole"
    _VIEWS.update({f"scale/{size}/{part}/{way}/": view for way, view in scale.items()})


def route(request: HttpRequest, path: str, **kwargs: Any) -> HttpResponseBase:
    """The view of ``path``, found in one dictionary lookup."""
    view = _VIEWS.get(path)
    if view is None:
        raise Http404(path)
    return view(request)


urlpatterns: list[URLPattern] = [re_path(r"^(?P<path>.*)$", route)]
