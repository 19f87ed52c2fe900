"""Views decorated with django_conditional's Django-compatible decorators."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse

from django_conditional.decorators import condition, etag, last_modified

FULL_RESPONSE = "Test conditional get response"
LAST_MODIFIED = dt.datetime(2007, 10, 21, 23, 21, 47)
LAST_MODIFIED_STR = "Sun, 21 Oct 2007 23:21:47 GMT"
ETAG = '"b4246ffc4f62314ca13147c9d4f76974"'
WEAK_ETAG = 'W/"b4246ffc4f62314ca13147c9d4f76974"'

# How often each validator function ran, by name; tests reset it.
calls: Counter[str] = Counter()


def etag_func(request, *args, **kwargs):
    calls["etag"] += 1
    return ETAG


def last_modified_func(request, *args, **kwargs):
    calls["last_modified"] += 1
    return LAST_MODIFIED


async def async_etag_func(request, *args, **kwargs):
    calls["async_etag"] += 1
    return ETAG


async def async_last_modified_func(request, *args, **kwargs):
    calls["async_last_modified"] += 1
    return LAST_MODIFIED


def full_response(request, *args, **kwargs):
    return HttpResponse(FULL_RESPONSE)


async def async_full_response(request, *args, **kwargs):
    return HttpResponse(FULL_RESPONSE)


index = condition(etag_func, last_modified_func)(full_response)
last_modified_view1 = condition(last_modified_func=last_modified_func)(full_response)
last_modified_view2 = last_modified(last_modified_func)(full_response)
etag_view1 = condition(etag_func=etag_func)(full_response)
etag_view2 = etag(etag_func)(full_response)
etag_view_unquoted = condition(etag_func=lambda r: ETAG.strip('"'))(full_response)
etag_view_weak = condition(etag_func=lambda r: WEAK_ETAG)(full_response)
etag_view_none = condition(etag_func=lambda r: None)(full_response)

async_view_sync_funcs = condition(etag_func, last_modified_func)(async_full_response)
async_view_async_funcs = condition(async_etag_func, async_last_modified_func)(async_full_response)
sync_view_async_funcs = condition(async_etag_func, async_last_modified_func)(full_response)

cached = condition(
    etag_func,
    last_modified_func,
    cache_control={"max_age": 60, "private": True},
    vary=["Cookie", "Accept-Language"],
)(full_response)


@condition(etag_func, last_modified_func)
def reuse(request):
    state = request.conditional
    return JsonResponse(
        {
            "etag": None if state.etag is None else str(state.etag),
            "last_modified": None
            if state.last_modified is None
            else state.last_modified.isoformat(),
        }
    )


@condition(etag_func, last_modified_func)
async def async_reuse(request):
    return JsonResponse({"etag": str(request.conditional.etag)})


def _missing(request, *args, **kwargs):
    raise Http404("No such thing")


missing_in_validator = condition(etag_func=_missing)(full_response)


@condition(etag_func=etag_func)
def missing_in_view(request):
    raise Http404("No such thing")


@condition(etag_func=etag_func)
def redirecting(request):
    return HttpResponseRedirect("/elsewhere/")


@condition(etag_func=etag_func, last_modified_func=last_modified_func)
def sets_own_headers(request):
    response = HttpResponse(FULL_RESPONSE)
    response["ETag"] = '"from-the-view"'
    response["Last-Modified"] = "Mon, 01 Jan 2001 00:00:00 GMT"
    return response


def _future(request):
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=365)


future_last_modified = condition(last_modified_func=_future)(full_response)


@condition(last_modified_func=last_modified_func)
def dated_response(request):
    response = HttpResponse(FULL_RESPONSE)
    response["Date"] = "Sat, 20 Oct 2007 00:00:00 GMT"
    return response


aware_last_modified = condition(
    last_modified_func=lambda r: dt.datetime(
        2007, 10, 22, 1, 21, 47, tzinfo=dt.timezone(dt.timedelta(hours=2))
    )
)(full_response)


# --- Validators derived from data (``conditional`` and the class-based mixins) --------

from django.views.generic import DetailView, ListView, TemplateView  # noqa: E402

from django_conditional.decorators import conditional  # noqa: E402
from django_conditional.views import (  # noqa: E402
    ConditionalDetailMixin,
    ConditionalListMixin,
    ConditionalTemplateMixin,
)
from tests.testapp.models import Article, Author, Comment, Note, Tag  # noqa: E402


def _render_articles(articles):
    return HttpResponse("\n".join(f"{a.pk}:{a.title}:{a.author.name}" for a in articles))


@conditional(queryset=Article.objects.select_related("author"), depends_on=[Author], public=True)
def article_list(request):
    return _render_articles(request.conditional.object_list)


@conditional(
    queryset=lambda request: Article.objects.filter(published=True).select_related("author"),
    public=True,
)
def published_list(request):
    return _render_articles(request.conditional.object_list)


@conditional(queryset=lambda request: Article.objects.order_by("-id")[:3], public=True)
def newest(request):
    return HttpResponse(",".join(str(a.pk) for a in request.conditional.object_list))


@conditional(
    object=lambda request, pk: Article.objects.filter(pk=pk),
    depends_on=["testapp.Comment"],
    public=True,
)
def article_detail(request, pk):
    article = request.conditional.object
    views_calls["article_detail"] += 1
    return HttpResponse(f"{article.title} ({article.comments.count()} comments)")


@conditional(object=lambda request, pk: Article.objects.filter(pk=pk), public=True)
async def async_article_detail(request, pk):
    return HttpResponse(f"async {request.conditional.etag}")


@conditional(depends_on=[Note], public=True)
def notes(request):
    return HttpResponse(",".join(note.text for note in Note.objects.all()))


@conditional(depends_on=[Note])
def my_notes(request):
    return HttpResponse(f"{request.user}:" + ",".join(n.text for n in Note.objects.all()))


views_calls: Counter[str] = Counter()


class ArticleListView(ConditionalListMixin, ListView):
    model = Article
    paginate_by = 2
    depends_on = [Author]
    public = True

    def get_queryset(self):
        return Article.objects.select_related("author").order_by("id")

    def render_to_response(self, context, **kwargs):
        page = context["page_obj"]
        titles = ",".join(a.title for a in context["object_list"])
        return HttpResponse(f"page {page.number}/{page.paginator.num_pages}: {titles}")


class ArticleDetailView(ConditionalDetailMixin, DetailView):
    model = Article
    depends_on = [Comment]

    def render_to_response(self, context, **kwargs):
        return HttpResponse(f"{self.object.title} v{self.object.version}")


class StatsView(ConditionalTemplateMixin, TemplateView):
    depends_on = [Tag, "testapp.Note"]
    public = True

    def get(self, request, *args, **kwargs):
        return HttpResponse(f"{Tag.objects.count()} tags, {Note.objects.count()} notes")
