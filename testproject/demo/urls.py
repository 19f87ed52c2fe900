"""URLs of the demo blog, namespaced ``demo``."""

from django.urls import include, path

from testproject.demo import api_views, edit_views, plain_views, views

app_name = "demo"

urlpatterns = [
    path("", views.ArticleListView.as_view(), name="article-list"),
    path("articles/<slug:slug>/", views.article_detail, name="article-detail"),
    path("articles/<slug:slug>/edit/", edit_views.ArticleEditView.as_view(), name="article-edit"),
    path("async/articles/<slug:slug>/", views.async_article_detail, name="async-article-detail"),
    path("authors/<slug:slug>/", views.AuthorDetailView.as_view(), name="author-detail"),
    path("tags/<slug:slug>/", views.tag_detail, name="tag-detail"),
    path("about/", views.AboutView.as_view(), name="about"),
    path("feed.txt", views.feed, name="feed"),
    path("healthz", views.healthz, name="healthz"),
    # Plain views: only the rules seed_demo creates make them conditional.
    path("plain/articles/<slug:slug>/", plain_views.plain_article, name="plain-article"),
    path("plain/authors/", plain_views.plain_authors, name="plain-authors"),
    path("plain/me/", plain_views.plain_me, name="plain-me"),
    # A JSON API whose edits must carry If-Match (api_views).
    path("api/articles/", api_views.articles, name="api-articles"),
    path("api/articles/<int:pk>/", api_views.article, name="api-article"),
    path(
        "api/unguarded/articles/<int:pk>/",
        api_views.unguarded_article,
        name="api-unguarded-article",
    ),
]

try:  # Django REST framework is optional (the drf extra)
    from testproject.demo.drf_api import router
except ImportError:  # pragma: no cover - the test extra installs it
    pass
else:
    urlpatterns.append(path("api/drf/", include(router.urls)))
