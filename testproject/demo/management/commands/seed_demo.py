"""``manage.py seed_demo``: fill the demo blog with the same data on every run."""

from __future__ import annotations

import random
from typing import Any

import factory.random
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.text import slugify

from testproject.demo.factories import ArticleFactory, AuthorFactory, CommentFactory
from testproject.demo.models import Article, Author, Comment, Tag

AUTHORS = 8
TAG_NAMES = [
    "Browsers",
    "Caching",
    "Databases",
    "Deployment",
    "Django",
    "HTTP",
    "Performance",
    "Proxies",
    "Python",
    "Security",
    "Testing",
    "Web APIs",
]
MAX_COMMENTS = 5
MAX_TAGS_PER_ARTICLE = 3
# Every tenth article is a draft, so the pages' is_published filter is exercised.
DRAFT_EVERY = 10
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"  # The demo's documented throwaway login.


def _unique_slug(text: str, taken: set[str], max_length: int = 50) -> str:
    base = slugify(text)[:max_length].strip("-") or "item"
    slug, suffix = base, 2
    while slug in taken:
        slug = f"{base[: max_length - len(str(suffix)) - 1]}-{suffix}"
        suffix += 1
    taken.add(slug)
    return slug


class Command(BaseCommand):
    help = (
        "Seed the demo blog with deterministic data (authors, tags, articles, comments) "
        "and an admin/admin superuser. Does nothing if articles exist, unless --reset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--articles", type=int, default=120, help="How many articles (default 120)."
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete the demo's authors, tags, articles and comments first.",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=9110,
            help="Random seed for Faker and every random choice (default 9110).",
        )

    def handle(self, *args: Any, articles: int, reset: bool, seed: int, **options: Any) -> None:
        if articles < 0:
            raise CommandError(f"--articles must be 0 or more, not {articles}.")
        created_rules = self._ensure_rules()
        if created_rules:
            self.stdout.write(f"Created {created_rules} conditional rules (see /admin/).")
        existing = Article.objects.count()
        if existing and not reset:
            self.stdout.write(
                f"The demo already has {existing} articles; nothing to do. "
                "Use --reset to delete them and seed again."
            )
            return
        with transaction.atomic():
            if reset:
                self._delete_demo_data()
            counts = self._seed(articles, seed)
            created_admin = self._ensure_superuser()
        self.stdout.write(
            self.style.SUCCESS(
                "Seeded {authors} authors, {tags} tags, {articles} articles "
                "and {comments} comments.".format(**counts)
            )
        )
        verb = "Created" if created_admin else "Kept"
        self.stdout.write(
            f"{verb} the superuser for /admin/: "
            f"username {ADMIN_USERNAME!r}, password {ADMIN_PASSWORD!r}."
        )

    def _ensure_rules(self) -> int:
        """The rules that make the plain pages conditional; existing ones are left as they are."""
        from django.apps import apps
        from django.contrib.contenttypes.models import ContentType

        from django_conditional.models import ConditionalRule
        from testproject.demo.plain_views import RULES

        created = 0
        for spec in RULES:
            fields = {k: v for k, v in spec.items() if k not in {"depends_on", "object"}}
            if "object" in spec:
                label, field, kwarg = spec["object"]
                fields["object_model"] = ContentType.objects.get_for_model(apps.get_model(label))
                fields["object_field"], fields["object_kwarg"] = field, kwarg
            with transaction.atomic():
                rule, made = ConditionalRule.objects.get_or_create(
                    name=spec["name"], defaults=fields
                )
                if made:
                    rule.depends_on.set(
                        ContentType.objects.get_for_model(apps.get_model(label))
                        for label in spec["depends_on"]
                    )
                    created += 1
        return created

    def _delete_demo_data(self) -> None:
        # QuerySet.delete(), not a raw DELETE: it is a write path the package tracks.
        # Children first, so each cascade finds nothing left to collect.
        for model in (Comment, Article.tags.through, Article, Tag, Author):
            model.objects.all().delete()

    def _seed(self, article_count: int, seed: int) -> dict[str, int]:
        # Seeds the random generator factory-boy and Faker share, and ours.
        factory.random.reseed_random(seed)
        rng = random.Random(seed)

        # Slugs already taken (authors or tags made in the admin) are never reused.
        author_slugs = set(Author.objects.values_list("slug", flat=True))
        new_authors = []
        for _ in range(AUTHORS):
            author = AuthorFactory.build()
            author.slug = _unique_slug(author.name, author_slugs)
            new_authors.append(author)
        Author.objects.bulk_create(new_authors)
        # Not every backend returns primary keys from a bulk insert (MySQL): read them back.
        authors = list(
            Author.objects.filter(slug__in=[author.slug for author in new_authors]).order_by("slug")
        )

        tag_slugs = {slugify(name): name for name in TAG_NAMES}
        existing_tags = set(Tag.objects.filter(slug__in=tag_slugs).values_list("slug", flat=True))
        Tag.objects.bulk_create(
            Tag(name=name, slug=slug)
            for slug, name in tag_slugs.items()
            if slug not in existing_tags
        )
        tags = list(Tag.objects.filter(slug__in=tag_slugs).order_by("slug"))

        article_slugs: set[str] = set()
        unsaved = []
        for index in range(article_count):
            article = ArticleFactory.build(
                author=rng.choice(authors), is_published=(index + 1) % DRAFT_EVERY != 0
            )
            article.slug = _unique_slug(article.title, article_slugs, max_length=80)
            unsaved.append(article)
        Article.objects.bulk_create(unsaved, batch_size=500)
        saved = Article.objects.in_bulk(list(article_slugs), field_name="slug")

        links = []
        comments = []
        for built in unsaved:
            article = saved[built.slug]
            chosen = rng.sample(tags, rng.randint(1, MAX_TAGS_PER_ARTICLE))
            links.extend(Article.tags.through(article=article, tag=tag) for tag in chosen)
            comments.extend(
                CommentFactory.build(article=article) for _ in range(rng.randint(0, MAX_COMMENTS))
            )
        Article.tags.through.objects.bulk_create(links, batch_size=500)
        Comment.objects.bulk_create(comments, batch_size=500)
        return {
            "authors": len(authors),
            "tags": len(tags),
            "articles": len(unsaved),
            "comments": len(comments),
        }

    def _ensure_superuser(self) -> bool:
        user_model = get_user_model()
        if user_model._default_manager.filter(username=ADMIN_USERNAME).exists():
            return False
        user_model._default_manager.create_superuser(
            username=ADMIN_USERNAME, email="admin@example.com", password=ADMIN_PASSWORD
        )
        return True
