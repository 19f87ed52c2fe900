"""The demo's articles through Django REST framework, beside the plain API (when DRF is installed).

``/api/drf/articles/`` and ``/api/drf/articles/<id>/``: a ``ModelViewSet`` with
``ConditionalModelMixin``: ETag and 304 on list and retrieve, If-Match required
on PUT, PATCH and DELETE, written atomically with its check.
"""

from __future__ import annotations

from rest_framework import routers, serializers, viewsets

from django_conditional.drf import ConditionalModelMixin
from testproject.demo.models import Article, Author

__all__ = ["ArticleSerializer", "ArticleViewSet", "router"]


class ArticleSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    author = serializers.StringRelatedField()

    class Meta:
        model = Article
        fields = ("id", "title", "body", "author")
        read_only_fields = ("id", "author")


class ArticleViewSet(ConditionalModelMixin, viewsets.ModelViewSet):  # type: ignore[type-arg]
    queryset = Article.objects.select_related("author").order_by("-pk")
    serializer_class = ArticleSerializer
    conditional_depends_on = (Author,)
    conditional_public = True
    conditional_require_precondition = True
    # A demo: anyone may edit (with If-Match); creating needs an author, so it is left out.
    http_method_names = ("get", "head", "put", "patch", "delete", "options")
    authentication_classes = ()
    permission_classes = ()


router = routers.SimpleRouter()
router.register("articles", ArticleViewSet, basename="drf-article")
