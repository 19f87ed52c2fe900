"""URLs of the freshness views (``@pytest.mark.urls("tests.freshness.urls")``)."""

from django.urls import path

from tests.freshness import views

urlpatterns = [
    path("all/", views.article_list),
    path("published/", views.published_list),
    path("paged/<int:page>/", views.PagedArticles.as_view()),
    path("detail/<int:pk>/", views.article_detail),
    path("cbv-detail/<int:pk>/", views.ArticleDetail.as_view()),
    path("notes/", views.notes),
    path("notes-cbv/", views.NotesTemplate.as_view()),
    path("newest/", views.newest),
    path("mine/", views.mine),
    path("rule-list/", views.rule_list),
    path("rule-detail/<int:pk>/", views.rule_detail),
    path("rule-mine/", views.rule_mine),
]
