"""The demo's URLs, and the controls of tests/test_writes_live.py: the same edits, unguarded.

- ``/control/articles/<slug>/edit/``: the demo's edit page as a plain ``UpdateView``.
- ``/control-admin/``: an admin site whose article admin lacks ``ConcurrentEditAdminMixin``.
- ``/control/drf/articles/<id>/``: the demo's DRF viewset without ``ConditionalModelMixin``
  (it ignores If-Match, as DRF does).

Each must lose updates in the same race the guarded ones win once.
"""

from django.contrib import admin
from django.urls import include, path, reverse
from django.views.generic import UpdateView

from testproject.demo.models import Article


class UnguardedEdit(UpdateView):  # type: ignore[type-arg]
    model = Article
    fields = ("title", "body")
    template_name = "demo/article_form.html"

    def get_success_url(self) -> str:
        return reverse("demo:article-detail", kwargs={"slug": self.object.slug})


class UnguardedArticleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """An article admin without the mixin, with the demo's fields (no inline)."""

    fields = ("author", "title", "slug", "body", "published_at", "is_published")


control_admin = admin.AdminSite(name="control-admin")
control_admin.register(Article, UnguardedArticleAdmin)


def _drf_control() -> list[object]:
    from rest_framework import routers, viewsets

    from testproject.demo.drf_api import ArticleSerializer

    class PlainViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
        queryset = Article.objects.all()
        serializer_class = ArticleSerializer
        authentication_classes = ()
        permission_classes = ()

    router = routers.SimpleRouter()
    router.register("articles", PlainViewSet, basename="control-drf-article")
    return list(router.urls)


urlpatterns = [
    path("control/drf/", include(_drf_control())),
    path("control/articles/<slug:slug>/edit/", UnguardedEdit.as_view()),
    path("control-admin/", control_admin.urls),
    path("", include("testproject.urls")),
]
