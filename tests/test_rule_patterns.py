"""The rules' pattern language: globs and URL names as tables; matcher and index as properties."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_conditional.rule_patterns import (
    MAX_PATTERNS,
    PathGlob,
    PatternError,
    PatternIndex,
    UrlNamePattern,
    parse_path_globs,
    parse_url_names,
)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        pytest.param("/about/", "/about/", True, id="literal"),
        pytest.param("/about/", "/about", False, id="trailing-slash-missing"),
        pytest.param("/about", "/about/", False, id="trailing-slash-extra"),
        pytest.param("/About/", "/about/", False, id="case-sensitive"),
        pytest.param("/articles/*/", "/articles/a/", True, id="star"),
        pytest.param("/articles/*/", "/articles//", True, id="star-empty"),
        pytest.param("/articles/*/", "/articles/a/b/", False, id="star-one-segment"),
        pytest.param("/files/*.txt", "/files/a.txt", True, id="star-prefix"),
        pytest.param("/files/*.txt", "/files/a.txt.gz", False, id="star-prefix-no"),
        pytest.param("/files/a*", "/files/abc", True, id="star-suffix"),
        pytest.param("/f/*a*b*", "/f/xaybz", True, id="stars"),
        pytest.param("/f/*a*b*", "/f/xbya", False, id="stars-order"),
        pytest.param("/blog/**", "/blog/", True, id="globstar-empty"),
        pytest.param("/blog/**", "/blog/a/b/c", True, id="globstar-deep"),
        pytest.param("/blog/**", "/blog", False, id="globstar-not-parent"),
        pytest.param("/**/edit/", "/a/b/edit/", True, id="globstar-start"),
        pytest.param("/**/edit/", "/edit/", True, id="globstar-start-none"),
        pytest.param("/a/**/z/", "/a/z/", True, id="globstar-middle-none"),
        pytest.param("/a/**/z/", "/a/b/c/z/", True, id="globstar-middle"),
        pytest.param("/a/**/z/", "/a/b/c/y/", False, id="globstar-middle-no"),
        pytest.param("/caf%C3%A9/", "/café/", True, id="percent-pattern"),
        pytest.param("/café/", "/café/", True, id="non-ascii"),
        pytest.param("/a%20b/", "/a b/", True, id="encoded-space"),
        pytest.param("/about/", "about/", False, id="relative-path"),
    ],
)
def test_glob_matching(pattern: str, path: str, matches: bool) -> None:
    assert PathGlob.parse(pattern).matches(path) is matches


@pytest.mark.parametrize(
    ("pattern", "phrase"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("about/", "start with '/'", id="relative"),
        pytest.param("/a/?b=1", "query string", id="query"),
        pytest.param("/a/#top", "fragment", id="fragment"),
        pytest.param("/a/[0-9]/", "'['", id="class"),
        pytest.param("/a/{b,c}/", "'{'", id="braces"),
        pytest.param("/a\\b/", "backslash", id="backslash"),
        pytest.param("/a/\x01/", "control", id="control"),
        pytest.param("/a b/", "space", id="space"),
        pytest.param("/a/../b/", "'..'", id="dot-dot"),
        pytest.param("/a/./b/", "'.'", id="dot"),
        pytest.param("/a**/", "whole segment", id="globstar-in-segment"),
        pytest.param("/**/**/", "one ** is enough", id="two-globstars"),
        pytest.param("/" + "*/" * 9, "more than 8", id="too-many-stars"),
        pytest.param("/" + "a" * 300, "longer than", id="too-long"),
        pytest.param("/a%2Fb/", "%2F", id="encoded-slash"),
        pytest.param("/a%2a/", "%2A", id="encoded-star"),
        pytest.param("/%C3/", "UTF-8", id="bad-utf8"),
    ],
)
def test_glob_errors_say_what_to_fix(pattern: str, phrase: str) -> None:
    with pytest.raises(PatternError, match=re.escape(phrase)):
        PathGlob.parse(pattern)


@pytest.mark.parametrize(
    ("pattern", "namespaces", "name", "matches"),
    [
        pytest.param("article-detail", [], "article-detail", True, id="bare"),
        pytest.param("article-detail", ["demo"], "article-detail", False, id="bare-vs-ns"),
        pytest.param("demo:article-detail", ["demo"], "article-detail", True, id="ns"),
        pytest.param("demo:article-detail", ["demo"], "article-list", False, id="ns-other"),
        pytest.param("demo:*", ["demo"], "article-list", True, id="ns-star"),
        pytest.param("demo:*", ["demo", "inner"], "x", True, id="ns-star-nested"),
        pytest.param("demo:*", ["blog"], "x", False, id="ns-star-other"),
        pytest.param("demo:inner:x", ["demo", "inner"], "x", True, id="nested"),
        pytest.param("demo:inner:x", ["demo"], "x", False, id="nested-short"),
        pytest.param("demo:*", ["demo"], None, False, id="unnamed"),
    ],
)
def test_url_name_matching(
    pattern: str, namespaces: list[str], name: str | None, matches: bool
) -> None:
    assert UrlNamePattern.parse(pattern).matches(namespaces, name) is matches


@pytest.mark.parametrize(
    ("pattern", "phrase"),
    [
        pytest.param("*", "admin included", id="star"),
        pytest.param("demo::x", "empty part", id="double-colon"),
        pytest.param(":x", "empty part", id="leading-colon"),
        pytest.param("demo:", "empty part", id="trailing-colon"),
        pytest.param("de mo:x", "letters, digits", id="space"),
        pytest.param("demo:*:x", "letters, digits", id="star-not-last"),
        pytest.param("demo:x*", "letters, digits", id="partial-star"),
    ],
)
def test_url_name_errors_say_what_to_fix(pattern: str, phrase: str) -> None:
    with pytest.raises(PatternError, match=re.escape(phrase)):
        UrlNamePattern.parse(pattern)


def test_lists_skip_blanks_drop_duplicates_and_report_every_line() -> None:
    globs = parse_path_globs("\n /a/ \n\n/b/\n/a/\n")
    assert [str(glob) for glob in globs] == ["/a/", "/b/"]
    assert [str(name) for name in parse_url_names("demo:x\ndemo:*\n")] == ["demo:x", "demo:*"]
    with pytest.raises(PatternError) as raised:
        parse_path_globs("/ok/\n/[a]/\n/b?/")
    assert str(raised.value).splitlines()[0].startswith("line 2:")
    assert str(raised.value).splitlines()[1].startswith("line 3:")
    with pytest.raises(PatternError, match=f"At most {MAX_PATTERNS}"):
        parse_url_names("\n".join(f"n{i}" for i in range(MAX_PATTERNS + 1)))


def test_a_hostile_path_is_matched_without_blowing_up() -> None:
    glob = PathGlob.parse("/" + "*a" * 3 + "*b/" + "**/" + "*a*b*/")
    assert glob.matches("/" + "a" * 10_000 + "/x/") is False
    assert glob.matches("/" + "a" * 5000 + "b/c/ab/") is True


# --- Properties ---------------------------------------------------------------------

SEGMENT = st.text(alphabet="ab*", min_size=0, max_size=4).filter(lambda s: "**" not in s)
PATTERN_SEGMENTS = st.lists(st.one_of(SEGMENT, st.just("**")), min_size=1, max_size=4).filter(
    lambda parts: all(not (x == y == "**") for x, y in itertools.pairwise(parts))
)
PATHS = st.lists(st.text(alphabet="ab", max_size=4), min_size=1, max_size=5).map(
    lambda parts: "/" + "/".join(parts)
)


def reference(segments: list[str]) -> re.Pattern[str]:
    """The glob as a regular expression (fine in a test, on short strings)."""
    out = []
    for index, segment in enumerate(segments):
        if segment == "**":
            # Zero or more whole segments, each followed by its slash unless last.
            out.append("(?:[^/]*(?:/[^/]*)*)?" if index == len(segments) - 1 else "(?:[^/]*/)*")
            continue
        out.append("".join("[^/]*" if char == "*" else re.escape(char) for char in segment))
        if index != len(segments) - 1:
            out.append("/")
    return re.compile("/" + "".join(out))


@given(PATTERN_SEGMENTS, PATHS)
def test_the_matcher_agrees_with_a_regular_expression(segments: list[str], path: str) -> None:
    glob = PathGlob.parse("/" + "/".join(segments))
    assert glob.matches(path) is bool(reference(segments).fullmatch(path))


@given(st.lists(PATTERN_SEGMENTS, min_size=1, max_size=12), st.lists(PATHS, max_size=6))
def test_the_index_finds_what_a_scan_finds(patterns: list[list[str]], paths: list[str]) -> None:
    globs = [PathGlob.parse("/" + "/".join(parts)) for parts in patterns]
    index = PatternIndex((position, [glob], []) for position, glob in enumerate(globs))
    for path in paths:
        scanned = [position for position, glob in enumerate(globs) if glob.matches(path)]
        assert index.by_path(path) == scanned


def test_the_index_tests_only_the_globs_that_could_match() -> None:
    globs = [PathGlob.parse(f"/section-{i}/*/") for i in range(1000)]
    everywhere = PathGlob.parse("/*/feed/")
    entries = [(i, [glob], []) for i, glob in enumerate(globs)]
    index = PatternIndex([*entries, (1000, [everywhere], [])])
    assert index.candidate_count("/section-17/x/") == 2
    assert index.by_path("/section-17/x/") == [17]
    assert index.by_path("/section-17/feed/") == [17, 1000]


def test_the_index_looks_names_up_by_namespace() -> None:
    names = [
        (0, [], [UrlNamePattern.parse("demo:a")]),
        (1, [], [UrlNamePattern.parse("demo:*")]),
        (2, [], [UrlNamePattern.parse("blog:a")]),
        (3, [], [UrlNamePattern.parse("demo:inner:*")]),
    ]
    index = PatternIndex(names)
    assert index.has_name_patterns
    assert not index.has_path_patterns
    assert index.by_name(["demo"], "a") == [0, 1]
    assert index.by_name(["demo", "inner"], "a") == [1, 3]
    assert index.by_name(["blog"], "a") == [2]
    assert index.by_name(["demo"], None) == []
