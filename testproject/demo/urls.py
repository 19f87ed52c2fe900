"""URLs of the demo blog, namespaced ``demo``."""

from django.urls import path

from testproject.demo import views

app_name = "demo"

urlpatterns = [
    path("", views.ArticleListView.as_view(), name="article-list"),
    path("articles/<slug:slug>/", views.article_detail, name="article-detail"),
    path("async/articles/<slug:slug>/", views.async_article_detail, name="async-article-detail"),
    path("authors/<slug:slug>/", views.AuthorDetailView.as_view(), name="author-detail"),
    path("tags/<slug:slug>/", views.tag_detail, name="tag-detail"),
    path("about/", views.AboutView.as_view(), name="about"),
    path("feed.txt", views.feed, name="feed"),
    path("healthz", views.healthz, name="healthz"),
]
