"""Admin for the demo blog, so edits (and the validators they move) can be tried by hand."""

from collections.abc import Sequence
from typing import ClassVar

from django.contrib import admin

from testproject.demo.models import Article, Author, Comment, Tag


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields: ClassVar[dict[str, Sequence[str]]] = {"slug": ("name",)}


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields: ClassVar[dict[str, Sequence[str]]] = {"slug": ("name",)}


class CommentInline(admin.TabularInline):
    model = Comment
    extra = 0
    fields = ("author_name", "body", "created_at")


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ("title", "author", "is_published", "published_at", "updated_at")
    list_filter = ("is_published", "tags")
    list_select_related = ("author",)
    search_fields = ("title", "slug", "body")
    prepopulated_fields: ClassVar[dict[str, Sequence[str]]] = {"slug": ("title",)}
    autocomplete_fields = ("author",)
    filter_horizontal = ("tags",)
    date_hierarchy = "published_at"
    readonly_fields = ("updated_at",)
    inlines = (CommentInline,)


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ("author_name", "article", "created_at")
    list_select_related = ("article",)
    search_fields = ("author_name", "body", "article__title")
    autocomplete_fields = ("article",)
    date_hierarchy = "created_at"
