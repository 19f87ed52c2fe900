"""DRF views with ConditionalModelMixin: a viewset and a generic view, per user and public."""

from __future__ import annotations

from rest_framework import generics, serializers, viewsets
from rest_framework.permissions import AllowAny

from django_conditional.drf import ConditionalModelMixin
from tests.testapp.models import Article, Author


class ArticleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Article
        fields = ("id", "title", "published")

    def validate_title(self, value):
        if value == "invalid":
            raise serializers.ValidationError("not this title")
        return value


class ArticleViewSet(ConditionalModelMixin, viewsets.ModelViewSet):
    queryset = Article.objects.order_by("pk")
    serializer_class = ArticleSerializer
    conditional_depends_on = (Author,)
    permission_classes = (AllowAny,)
    authentication_classes = ()


class RequiredArticleView(ConditionalModelMixin, generics.RetrieveUpdateDestroyAPIView):
    queryset = Article.objects.all()
    serializer_class = ArticleSerializer
    conditional_public = True
    conditional_require_precondition = True
    permission_classes = (AllowAny,)
    authentication_classes = ()
