"""The demo blog's models: authors, tagged articles and their comments.

Each uses one of django_conditional's mixins, so every write to it (``save()``,
``QuerySet.update()``, the admin, raw SQL through Django's cursor...) moves the
version and the change stamps the pages' validators are derived from:
``TrackedModel`` (a version and a modification time) for authors, articles and
comments, ``VersionedModel`` (a version only) for tags. ``published_at`` and
``created_at`` are content shown on the pages, not validators.
"""

from __future__ import annotations

from django.db import models
from django.urls import reverse
from django.utils import timezone

from django_conditional.models import TrackedModel, VersionedModel


class Author(TrackedModel):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ("name", "pk")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("demo:author-detail", kwargs={"slug": self.slug})


class Tag(VersionedModel):
    name = models.CharField(max_length=50)
    slug = models.SlugField(max_length=50, unique=True)

    class Meta:
        ordering = ("name", "pk")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("demo:tag-detail", kwargs={"slug": self.slug})


class Article(TrackedModel):
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="articles")
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    body = models.TextField()
    published_at = models.DateTimeField(default=timezone.now)
    is_published = models.BooleanField(default=True)
    tags = models.ManyToManyField(Tag, related_name="articles", blank=True)

    class Meta:
        ordering = ("-published_at", "-pk")

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("demo:article-detail", kwargs={"slug": self.slug})


class Comment(TrackedModel):
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="comments")
    author_name = models.CharField(max_length=100)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created_at", "pk")

    def __str__(self) -> str:
        return f"{self.author_name} on {self.article}"

    def get_absolute_url(self) -> str:
        return f"{self.article.get_absolute_url()}#comment-{self.pk}"
