"""The benchmark's views: one page served every way the benchmark compares.

Every view that renders serves the same front page (50 article cards and
1,000 title links, over 10,000 rows) with the same two queries, so that a
difference in cost is the cost of the way in, not of the page.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import condition as django_condition
from django.views.decorators.http import conditional_page
from django.views.generic import ListView

from benchmarks.bench.models import SCALE_MODELS, Article, Author, ScaleRow
from django_conditional.decorators import conditional
from django_conditional.views import ConditionalListMixin

__all__ = [
    "PAGE_CARDS",
    "PAGE_LINKS",
    "FrontPageListView",
    "django_aggregate_etag",
    "django_condition_page",
    "django_middleware_page",
    "empty",
    "front_page",
    "ours_depends_on_page",
    "ours_queryset_page",
    "rule_page",
    "rule_page_runs",
    "scale_views",
]

PAGE_CARDS = 50
PAGE_LINKS = 1000
TEMPLATE = "bench/front_page.html"


def empty(request: HttpRequest) -> HttpResponse:
    """The floor: an empty Django view."""
    return HttpResponse(b"ok", content_type="text/plain")


def newest_articles(request: HttpRequest | None = None) -> QuerySet[Article]:
    """Every article, newest first, with the author each card names."""
    return Article.objects.select_related("author").order_by("-published_at", "-id")


def page_context(rows: list[Article], total: int) -> dict[str, Any]:
    """The template's context: the first rows as cards, the rest as title links."""
    return {"cards": rows[:PAGE_CARDS], "links": rows[PAGE_CARDS:], "total": total}


def front_page(request: HttpRequest) -> HttpResponse:
    """The full render: two queries (the page's rows, the count) and the template."""
    rows = list(newest_articles()[: PAGE_CARDS + PAGE_LINKS])
    return render(request, TEMPLATE, page_context(rows, Article.objects.count()))


# Django's own ways -------------------------------------------------------------------

# ConditionalGetMiddleware, on this view only: it renders, then hashes the body.
django_middleware_page = conditional_page(front_page)


def django_aggregate_etag(request: HttpRequest) -> str:
    """The hand-written validator Django's documentation suggests: one Count+Max query."""
    values = Article.objects.aggregate(count=Count("id"), newest=Max("modified"))
    newest = values["newest"]
    return f"{values['count']}-{newest.timestamp() if newest is not None else 0}"


django_condition_page = django_condition(etag_func=django_aggregate_etag)(front_page)


# Ours --------------------------------------------------------------------------------

# The queryset the page shows (unsliced: its count shows too); the author's table
# comes in through select_related.
ours_queryset_page = conditional(queryset=newest_articles, public=True)(front_page)

# Every write to either model changes the tag: one stamp read per request.
ours_depends_on_page = conditional(depends_on=[Article, Author], public=True)(front_page)


# Through a rule: a plain view, no decorator; a ConditionalRule on Article and Author
# (built by benchmarks.data) covers its path, and ConditionalRulesMiddleware answers
# its revalidations before it runs.
_rule_page_runs = [0]


def rule_page(request: HttpRequest) -> HttpResponse:
    """The front page, as a site without this package's decorators serves it."""
    _rule_page_runs[0] += 1
    return front_page(request)


def rule_page_runs() -> int:
    """How many times ``rule_page`` ran in this process (a 304 from the rule never runs it)."""
    return _rule_page_runs[0]


# misc: the mixin's paginate_queryset takes a QuerySet; django-stubs' any _SupportsPagination.
class FrontPageListView(ConditionalListMixin, ListView):  # type: ignore[type-arg,misc]
    """The class-based way: a ListView whose one page holds the cards and the links."""

    template_name = TEMPLATE
    paginate_by = PAGE_CARDS + PAGE_LINKS
    public = True
    http_method_names = ("get", "head")

    def get_queryset(self) -> QuerySet[Article]:
        """The articles, newest first."""
        return newest_articles()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """Cards, links and the total, as the function views give them."""
        context = super().get_context_data(**kwargs)
        page = context["page_obj"]
        context.update(page_context(list(page.object_list), page.paginator.count))
        return context


# Scaling: the validator alone, over tables of 1 thousand to 1 million rows -------------


def _ok(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


def scale_queryset(model: type[ScaleRow], subset: bool) -> QuerySet[ScaleRow]:
    """The whole table, or the 1% of it with ``grp = 0`` (through an index)."""
    queryset: QuerySet[ScaleRow] = model.objects.all()
    return queryset.filter(grp=0) if subset else queryset


def scale_views(model: type[ScaleRow], subset: bool) -> dict[str, Any]:
    """The scaling views for one table and subset: ours, Django's aggregate, depends_on."""

    def rows(request: HttpRequest) -> QuerySet[ScaleRow]:
        return scale_queryset(model, subset)

    def aggregate_etag(request: HttpRequest) -> str:
        values = scale_queryset(model, subset).aggregate(count=Count("id"), newest=Max("modified"))
        newest = values["newest"]
        return f"{values['count']}-{newest.timestamp() if newest is not None else 0}"

    return {
        "ours": conditional(queryset=rows, public=True)(_ok),
        "django": django_condition(etag_func=aggregate_etag)(_ok),
        "depends_on": conditional(depends_on=[model], public=True)(_ok),
    }


SCALE_VIEWS = {
    (size, subset): scale_views(model, subset)
    for size, model in SCALE_MODELS.items()
    for subset in (False, True)
}
