"""Abstract model mixins that version rows, and the per-table change stamp model.

``VersionedModel`` keeps a counter that the database increments on every
write, ``TimestampedModel`` a modification time, ``TrackedModel`` both. The
counter moves on every write path, not only ``save()``: ``tracking`` adds
the increment to every UPDATE statement the application sends for a
versioned table (``QuerySet.update()``, ``bulk_update()``, the deletion
collector's ``SET_NULL``, raw SQL through Django's cursor).
"""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.db.models import F
from django.db.models.expressions import Combinable
from django.utils import timezone

__all__ = [
    "ChangeStamp",
    "ConditionalRule",
    "RuleCounter",
    "RuleRefusal",
    "TimestampedModel",
    "TrackedModel",
    "VersionedModel",
    "VersionedQuerySet",
]


class VersionedQuerySet(models.QuerySet[Any]):
    """A queryset whose ``update()`` also moves versions and modification times.

    ``tracking`` adds the same assignments to the SQL of any UPDATE on a
    versioned table; doing it here as well covers multi-table inheritance,
    where an update of a child's own fields must also move the version kept
    in the parent's table, and lets ``update()`` return instances' new
    modification time as Django computed it.
    """

    def update(self, **kwargs: Any) -> int:
        """Update the rows, incrementing ``version`` and setting ``modified``."""
        model = self.model
        if issubclass(model, VersionedModel) and "version" not in kwargs:
            kwargs["version"] = F("version") + 1
        if issubclass(model, TimestampedModel) and "modified" not in kwargs:
            kwargs["modified"] = timezone.now()
        return super().update(**kwargs)

    update.alters_data = True  # type: ignore[attr-defined]


VersionedManager = models.Manager.from_queryset(VersionedQuerySet)


class VersionedModel(models.Model):
    """A row version: 1 on insert, incremented by the database on every update.

    The increment is an ``F()`` expression evaluated by the database, never
    read-modify-write, so concurrent saves cannot lose one. After ``save()``
    the instance holds the value the database wrote.
    """

    version = models.PositiveBigIntegerField(
        default=1,
        editable=False,
        help_text="Incremented by the database on every write.",
    )

    objects = VersionedManager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, incrementing the version in the database; see the class docstring."""
        update_fields = kwargs.get("update_fields")
        is_update = not self._state.adding and not kwargs.get("force_insert")
        if is_update:
            self.version = F("version") + 1
            if update_fields is not None:
                kwargs["update_fields"] = _with_field(update_fields, "version")
        using = kwargs.get("using") or self._state.db or "default"
        if not is_update:
            super().save(*args, **kwargs)
            return
        # One transaction so the version read back is the one this save wrote.
        with transaction.atomic(using=using, savepoint=False):
            super().save(*args, **kwargs)
            written: Any = self.version
            # Django 6 reads expressions back itself on backends with RETURNING.
            if isinstance(written, Combinable):
                self.refresh_from_db(using=using, fields=["version"])


class TimestampedModel(models.Model):
    """A modification time, set on every save and on ``QuerySet.update()``.

    Microsecond precision, taken from the application's clock when the write
    is sent, so never later than now. It is advisory (``Last-Modified``):
    freshness comes from versions and change stamps, not clocks.
    """

    modified = models.DateTimeField(
        default=timezone.now,
        editable=False,
        db_index=True,
        help_text="When the row was last written.",
    )

    objects = VersionedManager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, setting ``modified`` to now (also with ``update_fields``)."""
        self.modified = timezone.now()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = _with_field(update_fields, "modified")
        super().save(*args, **kwargs)


class TrackedModel(TimestampedModel, VersionedModel):
    """Both a version counter and a modification time."""

    class Meta:
        abstract = True


def _with_field(update_fields: Any, name: str) -> list[str]:
    fields = list(update_fields)
    if name not in fields:
        fields.append(name)
    return fields


class ChangeStamp(models.Model):
    """The current stamp of one table in this database (the database stamp store).

    A stamp is a random token replaced after every committed write to its
    table, never a counter or a clock: a token never comes back, so a
    validator cached under an old token can never be mistaken for current,
    even after the row is lost or the table flushed.
    """

    table = models.CharField(max_length=255, primary_key=True)
    token = models.BigIntegerField()

    class Meta:
        verbose_name = "change stamp"
        verbose_name_plural = "change stamps"

    def __str__(self) -> str:
        return f"{self.table}: {self.token}"


class ConditionalRule(models.Model):
    """A rule the middleware applies: which pages, what data they show, who shares a copy.

    Data, never code (DESIGN.md): URL names and safe path globs
    (``rule_patterns``), models by content type, one object looked up from
    a URL argument; no regular expression, no Python path to call. Edited
    in the admin; every process reloads its rules when this table's change
    stamp moves (``rules``). The form and ``rules.validate_rule`` say what
    is wrong with a rule before it is saved.
    """

    class Audience(models.TextChoices):
        ANONYMOUS = "anonymous", "Anonymous visitors only (requests with a session pass through)"
        PER_USER = "per_user", "Per user (each user their own copy; private, Vary: Cookie)"
        EVERYONE = "everyone", "Everyone (one copy for all, logged in or not)"

    class Strength(models.TextChoices):
        AUTO = "auto", "Automatic (strong with an object, weak otherwise)"
        WEAK = "weak", "Weak (pages whose bytes vary, e.g. with CSRF tokens)"
        STRONG = "strong", "Strong (byte-identical representations)"

    class SharedCaches(models.TextChoices):
        UNSAID = "", "Do not say (no public/private directive)"
        PUBLIC = "public", "public"
        PRIVATE = "private", "private"

    name = models.CharField(
        max_length=100, unique=True, help_text="A name for the admin and the logs."
    )
    enabled = models.BooleanField(default=True)
    priority = models.IntegerField(
        default=0,
        help_text="When several enabled rules match a request, the highest priority wins; "
        "ties go to the name, in alphabetical order.",
    )
    url_names = models.TextField(
        blank=True,
        help_text="One URL name per line: 'demo:article-detail', or 'blog:*' for every URL "
        "of a namespace.",
    )
    path_patterns = models.TextField(
        blank=True,
        help_text="One path pattern per line: '/about/', '/articles/*/' (* is any characters "
        "within one segment), '/blog/**' (any number of segments). No regular expressions.",
    )
    methods = models.CharField(
        max_length=40,
        default="GET,HEAD",
        help_text="The methods the rule answers: GET and HEAD (comma separated).",
    )
    depends_on = models.ManyToManyField(
        "contenttypes.ContentType",
        blank=True,
        related_name="+",
        help_text="Models whose every write changes the pages' entity tag: everything the "
        "pages show.",
    )
    object_model = models.ForeignKey(
        "contenttypes.ContentType",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Optional: the one object a detail page shows, looked up from a URL "
        "argument (a strong tag and an exact Last-Modified).",
    )
    object_field = models.CharField(
        max_length=100, blank=True, help_text="The object's field to look up, e.g. 'slug'."
    )
    object_kwarg = models.CharField(
        max_length=100,
        blank=True,
        help_text="The URL argument holding the value, e.g. 'slug' for <slug:slug>.",
    )
    audience = models.CharField(
        max_length=20,
        choices=Audience.choices,
        default=Audience.ANONYMOUS,
        help_text="Who may be answered from the rule. Anonymous only is the safe default.",
    )
    tag_strength = models.CharField(max_length=10, choices=Strength.choices, default=Strength.AUTO)
    max_age = models.PositiveIntegerField(
        null=True, blank=True, help_text="Cache-Control: max-age (seconds)."
    )
    s_maxage = models.PositiveIntegerField(
        null=True, blank=True, help_text="Cache-Control: s-maxage (seconds, shared caches)."
    )
    stale_while_revalidate = models.PositiveIntegerField(
        null=True, blank=True, help_text="Cache-Control: stale-while-revalidate (seconds)."
    )
    shared_caches = models.CharField(
        max_length=10,
        choices=SharedCaches.choices,
        blank=True,
        default=SharedCaches.UNSAID,
        help_text="Cache-Control: public or private (per-user rules are always private).",
    )
    no_cache = models.BooleanField(
        default=False, help_text="Cache-Control: no-cache (caches revalidate every time)."
    )
    must_revalidate = models.BooleanField(
        default=False, help_text="Cache-Control: must-revalidate."
    )
    immutable = models.BooleanField(default=False, help_text="Cache-Control: immutable.")
    vary = models.CharField(
        max_length=200,
        blank=True,
        help_text="Request headers the pages vary on, comma separated (e.g. 'Accept'); "
        "their values go into the entity tag.",
    )
    require_precondition = models.BooleanField(
        default=False,
        help_text="Writes (PUT, PATCH, POST, DELETE) to the object must carry If-Match: 428 "
        "without it, 412 when stale, checked and written as one step. Needs the object lookup.",
    )
    notes = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "conditional rule"
        verbose_name_plural = "conditional rules"
        ordering = ("-priority", "name")

    def __str__(self) -> str:
        return self.name


class RuleRefusal(models.Model):
    """A page a rule no longer gives validators, learned from one of its 200s.

    Written once per rule and path by the process that saw the response
    (``rule_safety``); every process reloads its rules when this table's
    stamp moves. Saving the rule forgets its refusals.
    """

    rule = models.ForeignKey(ConditionalRule, on_delete=models.CASCADE, related_name="refusals")
    path = models.CharField(max_length=500, help_text="The page's path, or '*' for every page.")
    reason = models.CharField(max_length=300)
    seen = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "refused page"
        verbose_name_plural = "refused pages"
        constraints = (
            models.UniqueConstraint(
                fields=("rule", "path"), name="django_conditional_refusal_once"
            ),
        )

    def __str__(self) -> str:
        return f"{self.rule}: {self.path} ({self.reason})"


class RuleCounter(models.Model):
    """How a rule answered: counted in memory by each process, added here in batches."""

    rule = models.OneToOneField(ConditionalRule, on_delete=models.CASCADE, related_name="counter")
    not_modified = models.PositiveBigIntegerField(default=0, help_text="304s answered.")
    full = models.PositiveBigIntegerField(default=0, help_text="200s sent with validators.")
    passed = models.PositiveBigIntegerField(
        default=0, help_text="Requests passed to the view untouched (audience, refusals)."
    )
    failed = models.PositiveBigIntegerField(default=0, help_text="412s answered.")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "rule counter"
        verbose_name_plural = "rule counters"

    def __str__(self) -> str:
        return f"{self.rule}: {self.not_modified} x 304, {self.full} x 200"
