"""The URLconf as rules see it: one entry per URL pattern, its sample path, why rules must leave it.

The admin form and the system checks ask it which pages a rule's URL names
and path patterns cover. Reads the URLconf, never the database or requests.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.converters import IntConverter, UUIDConverter
from django.urls.exceptions import Resolver404
from django.urls.resolvers import LocalePrefixPattern, RegexPattern, ResolverMatch, RoutePattern
from django.utils.translation import get_language

from django_conditional.rule_patterns import PathGlob, PatternError, UrlNamePattern
from django_conditional.rules import protection_of

__all__ = [
    "MAX_LINES",
    "SAMPLE_UUID",
    "CatalogEntry",
    "Coverage",
    "catalog",
    "covered_entries",
    "entries_matching",
    "forget_catalog",
    "known_url_names",
    "protected_coverage",
    "unknown_url_name_patterns",
    "unknown_url_names",
]

# protected_coverage() lists this many covered views, then says how many more.
MAX_LINES = 10
# Tried in order for a converter this module does not know: the first its regex accepts.
SAMPLE_UUID = "00000000-0000-4000-8000-000000000000"
_CANDIDATES = ("x", "1", SAMPLE_UUID)
_SAMPLES: dict[type[Any], str] = {IntConverter: "1", UUIDConverter: SAMPLE_UUID}
# The same syntax as django.urls.resolvers' (private) _PATH_PARAMETER_COMPONENT_RE.
_PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<parameter>[^>]+)>")
_REGEX_SPECIAL = frozenset(".^$*+?{}[]|()")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One URL pattern of the URLconf, as far as rules are concerned."""

    # "ns:inner:name", or None for a pattern without a name.
    name: str | None
    namespaces: tuple[str, ...]
    app_names: tuple[str, ...]
    url_name: str | None
    # The route as ResolverMatch.route spells it: "articles/<slug:slug>/".
    route: str
    # A path that resolves by this route ("/articles/x/"); None when it cannot be
    # derived simply (a regular expression with more than literal text).
    sample_path: str | None
    callback: Callable[..., Any]
    # The keyword arguments the view is called with: converters, named groups, extra kwargs.
    kwargs: frozenset[str]
    # Why no rule may answer for the view (rules.protection_of); None when one may.
    protected: str | None
    # Whether the sample path reaches this pattern (an earlier one may shadow it).
    reachable: bool = False

    def describe(self, path: str | None = None) -> str:
        """The path and name a message shows: ``/admin/ (admin:index)``."""
        where = path or self.sample_path or self.route or "/"
        return f"{where} ({self.name})" if self.name else where


@dataclass(frozen=True, slots=True)
class Coverage:
    """One catalog entry a rule covers: by which of its patterns, shown at which path."""

    entry: CatalogEntry
    pattern: str
    path: str | None


def catalog(urlconf: Any = None) -> tuple[CatalogEntry, ...]:
    """Every URL pattern of ``urlconf`` (the ROOT_URLCONF by default), in resolution order.

    Kept per URLconf and active language (``i18n_patterns`` prefixes depend on
    it); forgotten when ROOT_URLCONF changes (``forget_catalog``).
    """
    return _catalog(settings.ROOT_URLCONF if urlconf is None else urlconf, get_language())


def known_url_names(urlconf: Any = None) -> set[str]:
    """The qualified names of the URLconf's patterns (``demo:article-detail``)."""
    return {entry.name for entry in catalog(urlconf) if entry.name is not None}


def entries_matching(pattern: UrlNamePattern, urlconf: Any = None) -> list[CatalogEntry]:
    """The entries a rule's URL name pattern covers (empty: the name is a typo)."""
    return [
        entry
        for entry in catalog(urlconf)
        if entry.url_name is not None and pattern.matches(entry.namespaces, entry.url_name)
    ]


def covered_entries(url_names: str, path_patterns: str, urlconf: Any = None) -> list[Coverage]:
    """The entries a rule's texts cover, each once, in URLconf order.

    A path pattern covers an entry when it matches the entry's sample path, or
    when a path it matches (its own ``*`` and ``**`` filled in) resolves to the
    entry: ``/articles/hello/`` covers ``articles/<slug:slug>/``. Lines that do
    not parse are skipped (the admin form reports them).
    """
    entries = catalog(urlconf)
    names = list(_parsed(url_names, UrlNamePattern.parse))
    globs = list(_parsed(path_patterns, PathGlob.parse))
    found: dict[int, Coverage] = {}
    for position, entry in enumerate(entries):
        for text, name in names:
            if entry.url_name is not None and name.matches(entry.namespaces, entry.url_name):
                found[position] = Coverage(entry, text, entry.sample_path)
                break
        else:
            for text, glob in globs:
                if entry.reachable and entry.sample_path and glob.matches(entry.sample_path):
                    found[position] = Coverage(entry, text, entry.sample_path)
                    break
    if globs:
        positions: dict[tuple[str, str | None, tuple[str, ...]], int] = {}
        for position, entry in enumerate(entries):
            positions.setdefault(_key(entry), position)
        for text, glob in globs:
            path = _glob_sample(glob.text)
            match = _resolve(path, urlconf) if glob.matches(path) else None
            reached = positions.get(_key(match)) if match is not None else None
            if reached is not None and reached not in found:
                found[reached] = Coverage(entries[reached], text, path)
    return [found[position] for position in sorted(found)]


def protected_coverage(url_names: str, path_patterns: str, urlconf: Any = None) -> list[str]:
    """One line per view a rule's texts cover that no rule may answer (at most ``MAX_LINES``).

    ``'/admin/**' covers /admin/ (admin:index): the admin is never covered by
    rules``. The middleware passes those requests through at run time; the
    admin form and W016 say so before the rule is saved or applied.
    """
    lines = [
        f"{coverage.pattern!r} covers {coverage.entry.describe(coverage.path)}: "
        f"{coverage.entry.protected}"
        for coverage in covered_entries(url_names, path_patterns, urlconf)
        if coverage.entry.protected is not None
    ]
    if len(lines) > MAX_LINES:
        return [*lines[:MAX_LINES], f"and {len(lines) - MAX_LINES} more"]
    return lines


def unknown_url_name_patterns(url_names: str, urlconf: Any = None) -> list[tuple[str, str | None]]:
    """The name patterns of a rule's text that match no URL, each with a close match or None."""
    entries = [entry for entry in catalog(urlconf) if entry.name is not None]
    candidates = sorted(
        {entry.name for entry in entries if entry.name is not None}
        | {
            ":".join((*entry.namespaces[:depth], "*"))
            for entry in entries
            for depth in range(1, len(entry.namespaces) + 1)
        }
    )
    unknown: list[tuple[str, str | None]] = []
    for text, pattern in _parsed(url_names, UrlNamePattern.parse):
        if not any(
            entry.url_name is not None and pattern.matches(entry.namespaces, entry.url_name)
            for entry in entries
        ):
            close = difflib.get_close_matches(text, candidates, n=1)
            unknown.append((text, close[0] if close else None))
    return unknown


def unknown_url_names(url_names: str, urlconf: Any = None) -> list[str]:
    """One line per name pattern that matches no URL (most likely a typo), with a close match."""
    return [
        f"{text!r} matches no URL name in the URLconf"
        + (f"; did you mean {close!r}?" if close else ".")
        for text, close in unknown_url_name_patterns(url_names, urlconf)
    ]


def forget_catalog() -> None:
    """Drop the kept catalogs: the next call walks the URLconf again."""
    _catalog.cache_clear()


@receiver(setting_changed)
def _forget_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "ROOT_URLCONF":
        forget_catalog()


# --- Building the catalog ---------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _catalog(urlconf: Any, language: str | None) -> tuple[CatalogEntry, ...]:
    entries: list[CatalogEntry] = []
    for walked in _walk(get_resolver(urlconf).url_patterns, _Level()):
        match = _resolve(walked.sample_path, urlconf) if walked.sample_path else None
        reachable = match is not None and _key(match) == _key(walked)
        if not reachable:
            # No path reaches it (or an earlier pattern shadows it): the same question
            # asked of the match a path to it would resolve to.
            match = ResolverMatch(
                walked.callback,
                (),
                {},
                walked.url_name,
                list(walked.app_names),
                list(walked.namespaces),
                walked.route,
            )
        assert match is not None
        entries.append(
            CatalogEntry(
                name=walked.name,
                namespaces=walked.namespaces,
                app_names=walked.app_names,
                url_name=walked.url_name,
                route=walked.route,
                sample_path=walked.sample_path,
                callback=walked.callback,
                kwargs=walked.kwargs,
                protected=protection_of(match),
                reachable=reachable,
            )
        )
    return tuple(entries)


@dataclass(frozen=True, slots=True)
class _Level:
    """What the resolvers above a pattern contribute to it."""

    namespaces: tuple[str, ...] = ()
    app_names: tuple[str, ...] = ()
    route: str = ""
    # None once a level's sample cannot be derived.
    sample: str | None = "/"
    kwargs: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class _Walked:
    name: str | None
    namespaces: tuple[str, ...]
    app_names: tuple[str, ...]
    url_name: str | None
    route: str
    sample_path: str | None
    callback: Callable[..., Any]
    kwargs: frozenset[str]


def _walk(patterns: Sequence[URLPattern | URLResolver], level: _Level) -> Iterator[_Walked]:
    for pattern in patterns:
        route = _join_route(level.route, str(pattern.pattern))
        sample = _sample(pattern.pattern)
        path = None if sample is None or level.sample is None else level.sample + sample
        extra = pattern.default_kwargs if isinstance(pattern, URLResolver) else pattern.default_args
        kwargs = level.kwargs | _captured(pattern.pattern) | set(extra)
        if isinstance(pattern, URLResolver):
            yield from _walk(
                pattern.url_patterns,
                _Level(
                    namespaces=(*level.namespaces, *filter(None, [pattern.namespace])),
                    app_names=(*level.app_names, *filter(None, [pattern.app_name])),
                    route=route,
                    sample=path,
                    kwargs=kwargs,
                ),
            )
            continue
        url_name = pattern.name
        yield _Walked(
            name=":".join((*level.namespaces, url_name)) if url_name else None,
            namespaces=level.namespaces,
            app_names=level.app_names,
            url_name=url_name,
            route=route,
            sample_path=path,
            callback=pattern.callback,
            kwargs=frozenset(kwargs),
        )


def _join_route(route: str, more: str) -> str:
    # As URLResolver._join_route: a nested regex's "^" is dropped.
    return more if not route else route + more.removeprefix("^")


def _captured(pattern: Any) -> frozenset[str]:
    if isinstance(pattern, RoutePattern):
        return frozenset(pattern.converters)
    if isinstance(pattern, RegexPattern):
        return frozenset(pattern.regex.groupindex)
    return frozenset()


def _sample(pattern: Any) -> str | None:
    """A path segment this pattern matches, or None when it cannot be derived simply."""
    if isinstance(pattern, RoutePattern):
        route = str(pattern)
        parts: list[str] = []
        end = 0
        for found in _PARAMETER.finditer(route):
            value = _converter_sample(pattern.converters.get(found["parameter"]))
            if value is None:
                return None
            parts += [route[end : found.start()], value]
            end = found.end()
        return "".join([*parts, route[end:]])
    if isinstance(pattern, LocalePrefixPattern):
        return pattern.language_prefix
    if isinstance(pattern, RegexPattern):
        return _literal_regex(str(pattern))
    return None


def _converter_sample(converter: Any) -> str | None:
    if converter is None:
        return None
    preferred = _SAMPLES.get(type(converter))
    for candidate in (preferred, *_CANDIDATES) if preferred else _CANDIDATES:
        if re.fullmatch(converter.regex, candidate):
            try:
                converter.to_python(candidate)
            except ValueError:
                continue
            return candidate
    return None


def _literal_regex(regex: str) -> str | None:
    """The one string a regex of literal text matches (``^about/$`` -> ``about/``), else None."""
    body = regex.removeprefix("^")
    body = body.removesuffix(r"\Z") if body.endswith(r"\Z") else body.removesuffix("$")
    literal: list[str] = []
    escaped = False
    for char in body:
        if escaped:
            if char.isalnum():
                return None  # \d, \w, \b...: a class, not a character
            literal.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in _REGEX_SPECIAL:
            return None
        else:
            literal.append(char)
    return None if escaped else "".join(literal)


def _resolve(path: str, urlconf: Any) -> ResolverMatch | None:
    try:
        return get_resolver(urlconf).resolve(path)
    except Resolver404:
        return None


def _key(found: ResolverMatch | _Walked | CatalogEntry) -> tuple[str, str | None, tuple[str, ...]]:
    if isinstance(found, ResolverMatch):
        return (found.route, found.url_name, tuple(found.namespaces))
    return (found.route, found.url_name, found.namespaces)


# --- Reading a rule's texts ---------------------------------------------------------------


def _parsed(text: str, parse: Callable[[str], _T]) -> Iterator[tuple[str, _T]]:
    """Each line that parses, with its text; the others are the form's to report."""
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            parsed = parse(line)
        except PatternError:
            continue
        yield str(parsed), parsed


def _glob_sample(text: str) -> str:
    """A path the glob matches: each ``*`` and ``**`` filled in with one segment's text."""
    return text.replace("**", "x").replace("*", "x")
