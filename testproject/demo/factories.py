"""factory-boy factories for the demo models, used by the tests and ``seed_demo``.

``skip_postgeneration_save`` because a second ``save()`` after the tags are
added would move the version and ``modified`` of a row just created (adding
the tags moves them once anyway: a many-to-many change is a write to both sides).
Slugs come from sequences so they are unique and predictable.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import factory
from factory.django import DjangoModelFactory

from testproject.demo.models import Article, Author, Comment, Tag

__all__ = ["ArticleFactory", "AuthorFactory", "CommentFactory", "TagFactory"]

# A fixed window, so a seeded Faker gives the same dates on every run.
_EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
_WINDOW_END = datetime(2025, 12, 31, tzinfo=timezone.utc)


class AuthorFactory(DjangoModelFactory):
    class Meta:
        model = Author
        skip_postgeneration_save = True

    name = factory.Faker("name")
    slug = factory.Sequence(lambda n: f"author-{n}")


class TagFactory(DjangoModelFactory):
    class Meta:
        model = Tag
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"tag {n}")
    slug = factory.Sequence(lambda n: f"tag-{n}")


class ArticleFactory(DjangoModelFactory):
    class Meta:
        model = Article
        skip_postgeneration_save = True

    class Params:
        sentence = factory.Faker("sentence", nb_words=6, variable_nb_words=True)
        paragraphs = factory.Faker("paragraphs", nb=4)

    author = factory.SubFactory(AuthorFactory)
    title = factory.LazyAttribute(lambda article: article.sentence.rstrip("."))
    slug = factory.Sequence(lambda n: f"article-{n}")
    body = factory.LazyAttribute(lambda article: "\n\n".join(article.paragraphs))
    published_at = factory.Faker(
        "date_time_between", start_date=_EPOCH, end_date=_WINDOW_END, tzinfo=timezone.utc
    )
    is_published = True

    @factory.post_generation
    def tags(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        """``ArticleFactory(tags=[...])`` adds those tags; none by default."""
        if create and extracted:
            self.tags.add(*extracted)


class CommentFactory(DjangoModelFactory):
    class Meta:
        model = Comment
        skip_postgeneration_save = True

    class Params:
        hours_after_publication = factory.Faker("random_int", min=1, max=24 * 30)

    article = factory.SubFactory(ArticleFactory)
    author_name = factory.Faker("name")
    body = factory.Faker("paragraph", nb_sentences=3)
    created_at = factory.LazyAttribute(
        lambda comment: (
            comment.article.published_at + timedelta(hours=comment.hours_after_publication)
        )
    )
