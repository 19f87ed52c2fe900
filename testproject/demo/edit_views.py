"""The demo's HTML edit page: an ``UpdateView`` that never overwrites an edit unseen.

``/articles/<slug>/edit/``, for staff. The form carries the version of the
article the user opened; a save over a newer one is shown again with what
changed and the user's text intact (``django_conditional.edits``).
"""

from __future__ import annotations

from django.contrib.auth.mixins import UserPassesTestMixin
from django.urls import reverse
from django.views.generic import UpdateView

from django_conditional.edits import ConcurrentUpdateMixin
from testproject.demo.models import Article

__all__ = ["ArticleEditView"]


class ArticleEditView(UserPassesTestMixin, ConcurrentUpdateMixin, UpdateView):  # type: ignore[type-arg]
    model = Article
    fields = ("title", "body")
    template_name = "demo/article_form.html"

    def test_func(self) -> bool:
        return bool(self.request.user.is_staff)

    def get_success_url(self) -> str:
        return reverse("demo:article-detail", kwargs={"slug": self.object.slug})
