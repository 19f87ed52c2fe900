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
