"""The pattern language of rules: safe path globs and URL-name patterns, and their index.

Site owners type these in the admin, so nothing here can be made slow: no
regular expressions, matching linear in the path for a bounded pattern.
Imports only the standard library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import unquote

__all__ = [
    "MAX_PATTERNS",
    "PathGlob",
    "PatternError",
    "PatternIndex",
    "UrlNamePattern",
    "parse_path_globs",
    "parse_url_names",
]

MAX_PATTERN_LENGTH = 300
MAX_STARS = 8
MAX_PATTERNS = 50
_FORBIDDEN = {
    "?": "the query string is not part of the path",
    "#": "a fragment is never sent to the server",
    "[": "character classes are not supported",
    "]": "character classes are not supported",
    "{": "alternatives are not supported",
    "}": "alternatives are not supported",
    "\\": "backslashes are not part of URL paths",
}
_HOW = "use * for any characters within one segment and ** for any number of segments"


class PatternError(ValueError):
    """A pattern that cannot be used; the message says what to fix."""


def _segment_matches(pattern: str, text: str) -> bool:
    """Whether ``text`` (one segment) matches ``pattern`` with ``*`` wildcards.

    The greedy algorithm with one backtrack point: O(len(pattern) * len(text))
    at worst, never exponential.
    """
    p = t = 0
    star = -1
    resume = 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "*":
            star, resume = p, t
            p += 1
        elif p < len(pattern) and pattern[p] == text[t]:
            p += 1
            t += 1
        elif star >= 0:
            p = star + 1
            resume += 1
            t = resume
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


@dataclass(frozen=True, slots=True)
class PathGlob:
    """A path pattern: ``/about/``, ``/articles/*/``, ``/blog/**``.

    Matched against the percent-decoded path (``request.path_info``); the
    pattern's own percent escapes are decoded when parsed, so
    ``/caf%C3%A9/`` and ``/café/`` are one pattern. Within a segment ``*``
    matches any characters but ``/`` (none included); a segment that is
    exactly ``**`` matches any number of whole segments, none included:
    ``/blog/**`` matches ``/blog/`` and everything below it, not ``/blog``.
    A trailing slash is significant: ``/about/`` does not match ``/about``.
    Case-sensitive, as URL paths are.
    """

    text: str
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> PathGlob:
        """The glob ``text`` describes; :class:`PatternError` saying what to fix."""
        raw = text.strip()
        if not raw:
            raise PatternError("An empty path pattern matches nothing; write one like '/about/'.")
        if len(raw) > MAX_PATTERN_LENGTH:
            raise PatternError(
                f"Path pattern {raw[:40]!r}... is longer than {MAX_PATTERN_LENGTH} characters."
            )
        if not raw.startswith("/"):
            raise PatternError(f"Path pattern {raw!r} must start with '/', e.g. '/{raw}'.")
        if "%2a" in raw.lower():
            raise PatternError(f"Path pattern {raw!r}: write * itself, not %2A.")
        if "%2f" in raw.lower():
            raise PatternError(
                f"Path pattern {raw!r}: %2F (an encoded '/') is ambiguous; write '/' for a "
                "segment boundary."
            )
        try:
            decoded = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise PatternError(
                f"Path pattern {raw!r} has percent escapes that are not UTF-8 text."
            ) from None
        if any(char.isspace() for char in raw):
            raise PatternError(
                f"Path pattern {raw!r} contains a space; write %20 if the path has one."
            )
        for char in decoded:
            if char in _FORBIDDEN:
                raise PatternError(
                    f"Path pattern {raw!r}: {char!r} is not allowed ({_FORBIDDEN[char]}); {_HOW}."
                )
            if ord(char) < 32 or ord(char) == 127:
                raise PatternError(f"Path pattern {raw!r} contains a control character; {_HOW}.")
        segments = tuple(decoded[1:].split("/"))
        if sum(segment.count("*") for segment in segments if segment != "**") > MAX_STARS:
            raise PatternError(f"Path pattern {raw!r} has more than {MAX_STARS} '*'.")
        previous = ""
        for segment in segments:
            if segment in {".", ".."}:
                raise PatternError(f"Path pattern {raw!r}: '{segment}' segments never reach views.")
            if "**" in segment and segment != "**":
                raise PatternError(
                    f"Path pattern {raw!r}: ** must be a whole segment ('/a/**/b/'); {_HOW}."
                )
            if segment == "**" and previous == "**":
                raise PatternError(f"Path pattern {raw!r}: one ** is enough ('/a/**').")
            previous = segment
        return cls(text=decoded, segments=segments)

    def __str__(self) -> str:
        return self.text

    @property
    def literal_prefix(self) -> str:
        """The characters before the first ``*``."""
        return self.text.split("*", 1)[0]

    @property
    def specificity(self) -> tuple[int, int]:
        """Literal characters, then fewer wildcards: larger is more specific."""
        return (len(self.text.replace("*", "")), -self.text.count("*"))

    def matches(self, path: str) -> bool:
        """Whether the decoded ``path`` matches (O(len(path) * len(pattern)) at worst)."""
        if not path.startswith("/"):
            return False
        parts = path[1:].split("/")
        pattern = self.segments
        # reachable[j]: the first i pattern segments can match the first j path segments.
        reachable = [True] + [False] * len(parts)
        last = len(pattern) - 1
        for position, segment in enumerate(pattern):
            if segment == "**":
                # Whole segments: any number in the middle, at least one at the end
                # (so '/blog/**' covers '/blog/' and below, never '/blog').
                following = []
                seen = False
                for value in reachable:
                    following.append(seen or (value and position != last))
                    seen = seen or value
                reachable = following
                continue
            following = [False] * (len(parts) + 1)
            for j in range(len(parts)):
                if reachable[j] and _segment_matches(segment, parts[j]):
                    following[j + 1] = True
            reachable = following
            if not any(reachable):
                return False
        return reachable[len(parts)]


@dataclass(frozen=True, slots=True)
class UrlNamePattern:
    """A URL name: ``name``, ``ns:name``, ``ns:inner:name``, or ``ns:*``.

    ``ns:*`` matches every URL name of the namespace and of namespaces
    nested in it. A lone ``*`` is refused: it would cover the admin too.
    """

    text: str
    namespaces: tuple[str, ...]
    name: str | None  # None for '*'

    @classmethod
    def parse(cls, text: str) -> UrlNamePattern:
        """The pattern ``text`` describes; :class:`PatternError` saying what to fix."""
        raw = text.strip()
        if raw == "*":
            raise PatternError(
                "A URL name '*' would cover every page, the admin included; name a namespace "
                "('blog:*') or use a path pattern."
            )
        parts = raw.split(":")
        for position, part in enumerate(parts):
            last = position == len(parts) - 1
            if part == "*" and last and len(parts) > 1:
                continue
            if not part:
                raise PatternError(
                    f"URL name {raw!r} has an empty part; write 'namespace:name' or 'namespace:*'."
                )
            if len(part) > 100 or not all(c.isalnum() or c in "_-." for c in part):
                raise PatternError(
                    f"URL name {raw!r}: {part!r} may hold letters, digits, '_', '-' and '.' "
                    "only ('*' only as the whole last part)."
                )
        star = parts[-1] == "*"
        return cls(text=raw, namespaces=tuple(parts[:-1]), name=None if star else parts[-1])

    def __str__(self) -> str:
        return self.text

    def matches(self, namespaces: Sequence[str], url_name: str | None) -> bool:
        """Whether a resolved URL (``ResolverMatch.namespaces``, ``.url_name``) matches."""
        if url_name is None:
            return False
        if self.name is None:
            return tuple(namespaces[: len(self.namespaces)]) == self.namespaces
        return url_name == self.name and tuple(namespaces) == self.namespaces


Parsed = TypeVar("Parsed", PathGlob, UrlNamePattern)


def _parse_lines(text: str, parse: Callable[[str], Parsed], what: str) -> tuple[Parsed, ...]:
    found: dict[str, Parsed] = {}
    errors: list[str] = []
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            pattern = parse(line)
        except PatternError as error:
            errors.append(f"line {number}: {error}")
            continue
        found.setdefault(pattern.text, pattern)
    if len(found) > MAX_PATTERNS:
        errors.append(f"At most {MAX_PATTERNS} {what} per rule; split it into several rules.")
    if errors:
        raise PatternError("\n".join(errors))
    return tuple(found.values())


def parse_path_globs(text: str) -> tuple[PathGlob, ...]:
    """One :class:`PathGlob` per non-blank line; every line's error at once."""
    return _parse_lines(text, PathGlob.parse, "path patterns")


def parse_url_names(text: str) -> tuple[UrlNamePattern, ...]:
    """One :class:`UrlNamePattern` per non-blank line; every line's error at once."""
    return _parse_lines(text, UrlNamePattern.parse, "URL names")


Key = TypeVar("Key")


class PatternIndex(Generic[Key]):
    """The entries whose patterns match a path or a URL name, without testing every pattern.

    Globs are bucketed by their first segment when it is literal (those with
    a wildcard there are always tested); exact URL names are looked up in a
    dict, ``ns:*`` patterns by namespace prefix. Results keep the entries'
    order (the caller gives them best first).
    """

    def __init__(
        self, entries: Iterable[tuple[Key, Sequence[PathGlob], Sequence[UrlNamePattern]]]
    ) -> None:
        self._keys: list[Key] = []
        self._buckets: dict[str, list[tuple[int, PathGlob]]] = {}
        self._everywhere: list[tuple[int, PathGlob]] = []
        self._names: dict[tuple[tuple[str, ...], str], list[int]] = {}
        self._namespaces: dict[tuple[str, ...], list[int]] = {}
        for position, (key, globs, names) in enumerate(entries):
            self._keys.append(key)
            for glob in globs:
                first = glob.segments[0]
                if "*" in first:
                    self._everywhere.append((position, glob))
                else:
                    self._buckets.setdefault(first, []).append((position, glob))
            for name in names:
                if name.name is None:
                    self._namespaces.setdefault(name.namespaces, []).append(position)
                else:
                    self._names.setdefault((name.namespaces, name.name), []).append(position)
        self.has_path_patterns = bool(self._buckets or self._everywhere)
        self.has_name_patterns = bool(self._names or self._namespaces)

    def _candidates(self, path: str) -> list[tuple[int, PathGlob]]:
        first = path[1:].split("/", 1)[0] if path.startswith("/") else None
        bucket = self._buckets.get(first, []) if first is not None else []
        return [*bucket, *self._everywhere]

    def candidate_count(self, path: str) -> int:
        """How many globs a lookup of ``path`` tests."""
        return len(self._candidates(path))

    def by_path(self, path: str) -> list[Key]:
        """The keys of entries with a glob matching ``path``, in entry order."""
        positions = {position for position, glob in self._candidates(path) if glob.matches(path)}
        return [self._keys[position] for position in sorted(positions)]

    def by_name(self, namespaces: Sequence[str], url_name: str | None) -> list[Key]:
        """The keys of entries with a URL name pattern matching, in entry order."""
        if url_name is None:
            return []
        spaces = tuple(namespaces)
        positions = set(self._names.get((spaces, url_name), ()))
        for length in range(1, len(spaces) + 1):
            positions.update(self._namespaces.get(spaces[:length], ()))
        return [self._keys[position] for position in sorted(positions)]
