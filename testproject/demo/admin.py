"""Admin for the demo blog, so edits (and the validators they move) can be tried by hand.

The admin writes through the ORM, and the models' mixins see every write. Each
change page shows the row's ``version``, which the database increments on every
write; ``ConcurrentEditAdminMixin`` makes sure no save overwrites an edit its user
never saw (change forms, the article list's editable column, actions, If-Match).
"""

from collections.abc import Sequence
from typing import ClassVar

from django import forms
from django.contrib import admin
from django.db import models

from django_conditional.admin_mixins import ConcurrentEditAdminMixin
from testproject.demo.models import Article, Author, Comment, Tag


@admin.register(Author)
class AuthorAdmin(ConcurrentEditAdminMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "version", "modified")
    search_fields = ("name", "slug")
    prepopulated_fields: ClassVar[dict[str, Sequence[str]]] = {"slug": ("name",)}
    readonly_fields = ("version", "modified")


@admin.register(Tag)
class TagAdmin(ConcurrentEditAdminMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "version")
    search_fields = ("name", "slug")
    prepopulated_fields: ClassVar[dict[str, Sequence[str]]] = {"slug": ("name",)}
    readonly_fields = ("version",)


class CommentInline(admin.TabularInline):
    model = Comment
    extra = 0
    fields = ("author_name", "body", "created_at")
    # The admin's large textarea (48em) makes the inline's table wider than the
    # form above it; a few rows of 40 columns fit beside the other fields.
    formfield_overrides = {
        models.TextField: {"widget": forms.Textarea(attrs={"rows": 3, "cols": 40})},
    }


@admin.register(Article)
class ArticleAdmin(ConcurrentEditAdminMixin, admin.ModelAdmin):
    list_display = ("title", "author", "is_published", "published_at", "version", "modified")
    list_filter = ("is_published", "tags")
    list_select_related = ("author",)
    search_fields = ("title", "slug", "body")
    prepopulated_fields: ClassVar[dict[str, Sequence[str]]] = {"slug": ("title",)}
    autocomplete_fields = ("author",)
    filter_horizontal = ("tags",)
    date_hierarchy = "published_at"
    readonly_fields = ("version", "modified")
    list_editable = ("is_published",)
    actions = ("publish",)
    inlines = (CommentInline,)

    @admin.action(description="Publish the selected articles")
    def publish(self, request, queryset):  # type: ignore[no-untyped-def]
        for article in queryset:
            article.is_published = True
            article.save(update_fields=["is_published"])


@admin.register(Comment)
class CommentAdmin(ConcurrentEditAdminMixin, admin.ModelAdmin):
    list_display = ("author_name", "article", "created_at", "version")
    list_select_related = ("article",)
    search_fields = ("author_name", "body", "article__title")
    autocomplete_fields = ("article",)
    date_hierarchy = "created_at"
    readonly_fields = ("version", "modified")
