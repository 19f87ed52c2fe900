"""Views for the freshness state machine (``tests/test_freshness.py``).

Each view renders every byte from the data it names to the package, and each has a
``truth`` twin that renders the same bytes from a plain ORM read, never through the
package: "the content changed" is then a byte comparison against an independent source.
The first line of every page names the page (and the user), so an entity tag that
matched on another page or for another user could never pass for current.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.paginator import InvalidPage, Paginator
from django.db.models import Count, QuerySet
from django.http import Http404, HttpResponse
from django.views.generic import DetailView, ListView, TemplateView

from django_conditional.decorators import conditional
from django_conditional.views import (
    ConditionalDetailMixin,
    ConditionalListMixin,
    ConditionalTemplateMixin,
)
from tests.testapp.models import Article, Author, Comment, Note, Tag

PAGE_SIZE = 3
NEWEST = 4


def articles() -> QuerySet[Article]:
    """Articles with what a line shows, in two queries (the truths and most views)."""
    return Article.objects.select_related("author", "reviewer").prefetch_related("tags")


def article_line(article: Article) -> str:
    """One article as the list pages show it: everything that can change, nothing else."""
    # Names can repeat, so sort the names themselves, not the primary keys.
    tags = ",".join(sorted(tag.name for tag in article.tags.all()))
    reviewer = article.reviewer.name if article.reviewer_id is not None else "-"
    state = "published" if article.published else "draft"
    return f"{article.pk}|{article.title}|{state}|{article.author.name}|{reviewer}|{tags}"


def render_list(heading: str, rows: Iterable[Article]) -> str:
    return "\n".join([heading, *(article_line(article) for article in rows)])


def render_detail(heading: str, article: Article) -> str:
    comments = [f"  {comment.pk}: {comment.body}" for comment in article.comments.order_by("id")]
    return "\n".join([heading, article_line(article), *comments])


def render_page(heading: str, paginator: Paginator, number: int) -> str:
    page = paginator.page(number)
    title = f"{heading} {page.number}/{paginator.num_pages} of {paginator.count}"
    return render_list(title, page.object_list)


def render_notes() -> str:
    notes = [f"{note.pk}: {note.text}" for note in Note.objects.order_by("id")]
    counts = Comment.objects.values("article_id").annotate(n=Count("id")).order_by("article_id")
    comments = [f"article {row['article_id']}: {row['n']} comments" for row in counts]
    return "\n".join(["notes", *notes, *comments])


def text(body: str) -> HttpResponse:
    return HttpResponse(body, content_type="text/plain; charset=utf-8")


# --- 1. every article ------------------------------------------------------------------


# The decorator's plainest form, a queryset object: relations are then read row by row.
@conditional(queryset=Article.objects.all(), depends_on=[Author, Tag], public=True)
def article_list(request):
    return text(render_list("all", request.conditional.object_list))


def article_list_truth(user: str) -> str:
    return render_list("all", articles())


# --- 2. a filtered subset --------------------------------------------------------------


@conditional(
    # The joins of select_related put the authors' table among the stamps read too.
    queryset=lambda request: articles().filter(published=True),
    depends_on=[Author, Tag],
    public=True,
)
def published_list(request):
    return text(render_list("published", request.conditional.object_list))


def published_list_truth(user: str) -> str:
    return render_list("published", articles().filter(published=True))


# --- 3. one page of a paginated ListView --------------------------------------------------


class PagedArticles(ConditionalListMixin, ListView):
    paginate_by = PAGE_SIZE
    depends_on = [Author, Tag]
    public = True

    def get_queryset(self):
        return articles()

    def render_to_response(self, context, **response_kwargs):
        page = context["page_obj"]
        paginator = page.paginator
        title = f"paged {page.number}/{paginator.num_pages} of {paginator.count}"
        return text(render_list(title, context["object_list"]))


def paged_truth(user: str, number: int = 2) -> str:
    try:
        return render_page("paged", Paginator(articles(), PAGE_SIZE), number)
    except InvalidPage as error:
        raise Http404 from error


# --- 4. one article, by the decorator and by DetailView --------------------------------------


@conditional(
    object=lambda request, pk: Article.objects.filter(pk=pk),
    depends_on=[Author, Tag, Comment],
    public=True,
)
def article_detail(request, pk):
    return text(render_detail("detail", request.conditional.object))


class ArticleDetail(ConditionalDetailMixin, DetailView):
    model = Article
    depends_on = [Author, Tag, Comment]
    public = True

    def render_to_response(self, context, **response_kwargs):
        return text(render_detail("cbv-detail", context["object"]))


def detail_truth(heading: str, pk: int) -> str:
    article = articles().filter(pk=pk).first()
    if article is None:
        raise Http404
    return render_detail(heading, article)


# --- 5. models only: notes and comment counts --------------------------------------------


@conditional(depends_on=[Note, Comment], public=True)
def notes(request):
    return text(render_notes())


class NotesTemplate(ConditionalTemplateMixin, TemplateView):
    """The same page through the template mixin; ``depends_on`` names models by label."""

    depends_on = ["testapp.Note", "testapp.Comment"]
    public = True

    def get(self, request, *args, **kwargs):
        return text(render_notes().replace("notes", "notes-cbv", 1))


def notes_truth(user: str) -> str:
    return render_notes()


def notes_cbv_truth(user: str) -> str:
    return render_notes().replace("notes", "notes-cbv", 1)


# --- 6. a sliced queryset ----------------------------------------------------------------


@conditional(
    queryset=lambda request: articles().order_by("-id")[:NEWEST],
    depends_on=[Author, Tag],
    public=True,
)
def newest(request):
    return text(render_list("newest", request.conditional.object_list))


def newest_truth(user: str) -> str:
    return render_list("newest", articles().order_by("-id")[:NEWEST])


# --- per user --------------------------------------------------------------------------


@conditional(queryset=lambda request: articles(), depends_on=[Author, Tag])
def mine(request):
    heading = f"mine for {request.user.get_username() or 'anonymous'}"
    return text(render_list(heading, request.conditional.object_list))


def mine_truth(user: str) -> str:
    return render_list(f"mine for {user or 'anonymous'}", articles())


# --- 7. plain views that only rules cover (the middleware) ---------------------------------

# The rules the state machine keeps in the database for these views (ConditionalRule
# fields; models by name in this app). Every write path must move what they name.
RULES = (
    {
        "name": "rule-list",
        "path_patterns": "/rule-list/",
        "audience": "everyone",
        "depends_on": ("Article", "Author", "Tag"),
    },
    {
        "name": "rule-detail",
        "path_patterns": "/rule-detail/*/",
        "audience": "everyone",
        "depends_on": ("Author", "Tag", "Comment"),
        "object": ("Article", "pk", "pk"),
    },
    {
        "name": "rule-mine",
        "path_patterns": "/rule-mine/",
        "audience": "per_user",
        "depends_on": ("Article", "Author", "Tag"),
    },
)


def rule_list(request):
    return text(render_list("rule-list", articles().order_by("id")))


def rule_list_truth(user: str) -> str:
    return render_list("rule-list", articles().order_by("id"))


def rule_detail(request, pk):
    article = articles().filter(pk=pk).first()
    if article is None:
        raise Http404
    return text(render_detail("rule-detail", article))


def rule_mine(request):
    heading = f"rule-mine for {request.user.get_username() or 'anonymous'}"
    return text(render_list(heading, articles().order_by("id")))


def rule_mine_truth(user: str) -> str:
    return render_list(f"rule-mine for {user or 'anonymous'}", articles().order_by("id"))
