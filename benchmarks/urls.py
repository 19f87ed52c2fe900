"""The benchmark's URLs: one path per way in, and the scaling views."""

from __future__ import annotations

from django.urls import URLPattern, path

from benchmarks.bench import views

urlpatterns: list[URLPattern] = [
    path("empty/", views.empty),
    path("full/", views.front_page),
    path("django/middleware/", views.django_middleware_page),
    path("django/condition/", views.django_condition_page),
    path("ours/queryset/", views.ours_queryset_page),
    path("ours/mixin/", views.FrontPageListView.as_view()),
    path("ours/depends-on/", views.ours_depends_on_page),
]

for (size, subset), scale in views.SCALE_VIEWS.items():
    part = "subset" if subset else "whole"
    urlpatterns.extend(
        path(f"scale/{size}/{part}/{way}/", view, name=f"scale-{size}-{part}-{way}")
        for way, view in scale.items()
    )
