"""Concrete models for the tests: every mixin, every relation kind the tracking must see."""

from __future__ import annotations

from django.db import models

from django_conditional.models import TimestampedModel, TrackedModel, VersionedModel


class Author(TrackedModel):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Tag(VersionedModel):
    name = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.name


class Article(TrackedModel):
    title = models.CharField(max_length=200)
    published = models.BooleanField(default=True)
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="articles")
    # SET_NULL: the deletion collector updates these rows with its own UPDATE.
    reviewer = models.ForeignKey(
        Author, on_delete=models.SET_NULL, null=True, blank=True, related_name="reviews"
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="articles")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title


class PublishedArticle(Article):
    """A proxy: same table, same stamps."""

    class Meta:
        proxy = True


class Comment(TrackedModel):
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="comments")
    body = models.TextField()

    class Meta:
        ordering = ["id"]


class Note(models.Model):
    """A model without mixins: tracked by its table's stamp only."""

    text = models.CharField(max_length=100)

    class Meta:
        ordering = ["id"]


class Place(TrackedModel):
    name = models.CharField(max_length=100)


class Restaurant(Place):
    """Multi-table inheritance: the version lives in the parent's table."""

    serves = models.CharField(max_length=100)


class Code(VersionedModel):
    """A non-integer primary key."""

    code = models.CharField(max_length=20, primary_key=True)
    label = models.CharField(max_length=100)


class Event(TimestampedModel):
    """Modification time only."""

    name = models.CharField(max_length=100)
