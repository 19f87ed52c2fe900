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


# --- models for test_triggers ---
# Plain models (no tracking mixins), so that raw SQL writes to them stay short.


class TriggerTag(models.Model):
    name = models.CharField(max_length=50)


class TriggerItem(models.Model):
    """An auto-created many-to-many (``testapp_triggeritem_tags``)."""

    name = models.CharField(max_length=100)
    tags = models.ManyToManyField(TriggerTag, blank=True, related_name="items")


class TriggerItemProxy(TriggerItem):
    class Meta:
        proxy = True


class TriggerGroup(models.Model):
    """A many-to-many with an explicit through model, pointing at ``TriggerItem``."""

    name = models.CharField(max_length=100)
    members = models.ManyToManyField(
        TriggerItem, through="TriggerMembership", blank=True, related_name="groups"
    )


class TriggerMembership(models.Model):
    group = models.ForeignKey(TriggerGroup, on_delete=models.CASCADE)
    item = models.ForeignKey(TriggerItem, on_delete=models.CASCADE)


class TriggerBase(models.Model):
    """A multi-table parent whose many-to-many its child inherits."""

    name = models.CharField(max_length=100)
    tags = models.ManyToManyField(TriggerTag, blank=True, related_name="bases")


class TriggerChild(TriggerBase):
    extra = models.CharField(max_length=100, blank=True)


class TriggerLegacy(models.Model):
    """Unmanaged: a table another service owns (never created by the tests' migrations)."""

    name = models.CharField(max_length=100)

    class Meta:
        managed = False
        db_table = "testapp_trigger_legacy"


class TriggerLongName(models.Model):
    """A table name too long to fit whole in a trigger name (62 characters)."""

    name = models.CharField(max_length=100)

    class Meta:
        db_table = "testapp_a_long_table_name_that_leaves_little_room_for_triggers"


class TriggerMixedCase(models.Model):
    """A quoted, mixed-case table name, as PostgreSQL's TG_TABLE_NAME must report it."""

    name = models.CharField(max_length=100)

    class Meta:
        db_table = "testapp_TriggerMixedCase"


class TriggerVersioned(VersionedModel):
    """Versioned, so its triggers also move the version of rows a raw UPDATE changes."""

    name = models.CharField(max_length=100)
