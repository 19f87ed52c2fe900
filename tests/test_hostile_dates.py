"""Hostile dates through the whole request stack: never a 5xx.

Generated date fields (all three HTTP-date forms, every field in and out of
range, with trailing junk) in If-Modified-Since, If-Unmodified-Since and
If-Range, on every demo page: the Django-compatible ``condition`` (the feed),
``conditional`` (sync and async detail, the tag page) and the class-based
mixins (list, author, about). An invalid date is ignored (RFC 9110 section
13.1.3); a valid one is evaluated; nothing raises.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testproject.demo.factories import ArticleFactory, AuthorFactory, CommentFactory, TagFactory
from tests.conftest import age_stamps
from tests.test_http_properties import date_fields

pytestmark = pytest.mark.django_db

PAGES = [
    "/",
    "/articles/hostile/",
    "/async/articles/hostile/",
    "/authors/eve/",
    "/tags/fuzz/",
    "/about/",
    "/feed.txt",
]
DATE_FIELDS = ["if-modified-since", "if-unmodified-since", "if-range"]
# The year 0 dates that answered 500 on every conditional page before the fix.
YEAR_ZERO = ["Sat, 01 Jan 0000 00:00:00 GMT", "Sat Jan  1 00:00:00 0000"]


@pytest.fixture
def site():
    tag = TagFactory(name="Fuzz", slug="fuzz")
    author = AuthorFactory(name="Eve", slug="eve")
    article = ArticleFactory(author=author, slug="hostile", tags=[tag])
    CommentFactory(article=article)
    age_stamps()  # every page sends its date, so valid ones are really compared


@pytest.mark.parametrize("value", YEAR_ZERO)
@pytest.mark.parametrize("field", DATE_FIELDS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_year_zero_is_ignored_on_every_page(client, site, method, field, value):
    for page in PAGES:
        response = client.generic(method, page, headers={field: value})
        assert response.status_code == 200, (page, field, value)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    page=st.sampled_from(PAGES),
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]),
    fields=st.dictionaries(st.sampled_from(DATE_FIELDS), date_fields(), min_size=1),
    if_none_match=st.sampled_from([None, "*", '"x"', 'W/"x"', "junk"]),
)
def test_generated_dates_never_give_a_5xx(client, site, page, method, fields, if_none_match):
    headers = dict(fields)
    if if_none_match is not None:
        headers["if-none-match"] = if_none_match
    response = client.generic(method, page, headers=headers)
    assert response.status_code < 500, (page, method, headers, response.status_code)
