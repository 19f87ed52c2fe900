"""Admin for the demo blog, so edits (and the validators they move) can be tried by hand.

Nothing here knows about django_conditional: the admin writes through the ORM,
and the models' mixins see every write. Each change page shows the row's
``version``, which the database increments on every write.
"""

from collections.abc import Sequence
from typing import ClassVar

from django import forms
from django.contrib import admin
from django.db import models

from testproject.demo.models import Article, Author, Comment, Tag


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "version", "modified")
    search_fields = ("name", "slug")
    prepopulated_fields: ClassVar[dict[str, Sequence[str]]] = {"slug": ("name",)}
    readonly_fields = ("version", "modified")


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
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
class ArticleAdmin(admin.ModelAdmin):
    list_display = ("title", "author", "is_published", "published_at", "version", "modified")
    list_filter = ("is_published", "tags")
    list_select_related = ("author",)
    search_fields = ("title", "slug", "body")
    prepopulated_fields: ClassVar[dict[str, Sequence[str]]] = {"slug": ("title",)}
    autocomplete_fields = ("author",)
    filter_horizontal = ("tags",)
    date_hierarchy = "published_at"
    readonly_fields = ("version", "modified")
    inlines = (CommentInline,)


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ("author_name", "article", "created_at", "version")
    list_select_related = ("article",)
    search_fields = ("author_name", "body", "article__title")
    autocomplete_fields = ("article",)
    date_hierarchy = "created_at"
    readonly_fields = ("version", "modified")
