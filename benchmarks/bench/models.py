"""The benchmark's data: a front page's articles, and tables of 1 thousand to 1 million rows."""

from __future__ import annotations

from django.db import models

from django_conditional.models import TrackedModel

__all__ = ["SCALE_MODELS", "Article", "Author", "ScaleRow"]


class Author(TrackedModel):
    """Who wrote an article: each card on the front page shows the name."""

    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Article(TrackedModel):
    """One article: a card or a title link on the front page."""

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200)
    summary = models.TextField()
    published_at = models.DateTimeField()
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="articles")

    class Meta:
        indexes = (models.Index(fields=["published_at", "id"], name="bench_article_newest"),)

    def __str__(self) -> str:
        return self.title


class ScaleRow(TrackedModel):
    """A row of a scaling table; ``grp`` (``id % 100``) selects a 1% subset through an index."""

    title = models.CharField(max_length=60)
    grp = models.SmallIntegerField(db_index=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.title


class Rows1K(ScaleRow):
    """1 thousand rows."""


class Rows10K(ScaleRow):
    """10 thousand rows."""


class Rows100K(ScaleRow):
    """100 thousand rows."""


class Rows1M(ScaleRow):
    """1 million rows."""


# Table size -> model.
SCALE_MODELS: dict[int, type[ScaleRow]] = {
    1_000: Rows1K,
    10_000: Rows10K,
    100_000: Rows100K,
    1_000_000: Rows1M,
}
