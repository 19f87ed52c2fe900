"""URLs for the decorated views under test (``@pytest.mark.urls("tests.testapp.urls")``)."""

from django.urls import path

from tests.testapp import views, write_views

urlpatterns = [
    path("condition/", views.index),
    path("condition/last_modified/", views.last_modified_view1),
    path("condition/last_modified2/", views.last_modified_view2),
    path("condition/etag/", views.etag_view1),
    path("condition/etag2/", views.etag_view2),
    path("condition/unquoted_etag/", views.etag_view_unquoted),
    path("condition/weak_etag/", views.etag_view_weak),
    path("condition/no_etag/", views.etag_view_none),
    path("async/sync-funcs/", views.async_view_sync_funcs),
    path("async/async-funcs/", views.async_view_async_funcs),
    path("sync/async-funcs/", views.sync_view_async_funcs),
    path("cached/", views.cached),
    path("reuse/", views.reuse),
    path("async/reuse/", views.async_reuse),
    path("missing/validator/", views.missing_in_validator),
    path("missing/view/", views.missing_in_view),
    path("redirecting/", views.redirecting),
    path("own-headers/", views.sets_own_headers),
    path("future/", views.future_last_modified),
    path("dated/", views.dated_response),
    path("aware/", views.aware_last_modified),
    path("data/articles/", views.article_list),
    path("data/published/", views.published_list),
    path("data/newest/", views.newest),
    path("data/articles/<int:pk>/", views.article_detail),
    path("data/async/articles/<int:pk>/", views.async_article_detail),
    path("data/notes/", views.notes),
    path("data/my-notes/", views.my_notes),
    path("cbv/articles/", views.ArticleListView.as_view()),
    path("cbv/articles/<int:pk>/", views.ArticleDetailView.as_view()),
    path("cbv/stats/", views.StatsView.as_view()),
    path("w/articles/<int:pk>/", write_views.article),
    path("w/required/articles/<int:pk>/", write_views.article_required),
    path("w/comment/articles/<int:pk>/", write_views.comment_on),
    path("w/notes/<int:pk>/", write_views.note),
    path("w/async/articles/<int:pk>/", write_views.async_article),
]

try:  # the test extra installs Django REST framework
    from rest_framework.routers import SimpleRouter

    from tests.testapp import drf_views
except ImportError:  # pragma: no cover
    pass
else:
    router = SimpleRouter()
    router.register("drf/articles", drf_views.ArticleViewSet, basename="drf-article")
    urlpatterns += [
        *router.urls,
        path("drf/required/articles/<int:pk>/", drf_views.RequiredArticleView.as_view()),
    ]
