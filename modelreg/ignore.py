"""``.modelregignore``: which files of a folder model are left out, in gitignore syntax.

Supported as in Git: ``#`` comments, blank lines, ``!`` to re-include, a trailing ``/`` for
folders only, a ``/`` at the start or in the middle anchoring the pattern to the folder's top
(otherwise it matches a name at any depth), ``*`` and ``?`` within one path segment,
``[...]`` classes, ``**`` across segments, and ``\\`` escapes. The last matching line wins, and
as in Git nothing inside an ignored folder can be re-included (the folder is never entered).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

FILENAME = ".modelregignore"


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _class(pattern: str, i: int) -> tuple[str, int] | None:
    """A ``[...]`` class starting at ``pattern[i]`` as regex text, and the index after it."""
    j = i + 1
    if j < len(pattern) and pattern[j] in "!^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 1
    if j >= len(pattern):
        return None
    body = pattern[i + 1 : j]
    if body[:1] in ("!", "^"):
        body = "^" + body[1:]
    return "[" + body.replace("\\", "\\\\") + "]", j + 1


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        at_segment_start = i == 0 or pattern[i - 1] == "/"
        if pattern.startswith("**", i) and at_segment_start:
            if i + 2 == n:
                out.append(".*")
                i += 2
                continue
            if pattern[i + 2] == "/":
                out.append("(?:.*/)?")
                i += 3
                continue
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (found := _class(pattern, i)) is not None:
            text, i = found
            out.append(text)
            continue
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _rule(line: str) -> _Rule | None:
    text = line.rstrip("\n").rstrip("\r")
    while text.endswith(" ") and not text.endswith("\\ "):
        text = text[:-1]
    if not text or text.startswith("#"):
        return None
    negate = text.startswith("!")
    if negate or text.startswith("\\!") or text.startswith("\\#"):
        text = text[1:]
    dir_only = text.endswith("/")
    text = text.rstrip("/")
    if not text:
        return None
    anchored = "/" in text
    body = _translate(text.lstrip("/"))
    try:
        regex = re.compile(("" if anchored else "(?:.*/)?") + body)
    except re.error:
        return None  # Git skips a pattern it cannot read, too
    return _Rule(regex, negate, dir_only)


@dataclass
class IgnoreRules:
    rules: list[_Rule] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> IgnoreRules:
        return cls([r for r in map(_rule, text.splitlines()) if r is not None])

    @classmethod
    def of_folder(cls, folder: Path) -> IgnoreRules:
        try:
            text = (folder / FILENAME).read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            return cls()
        return cls.parse(text)

    def ignored(self, relpath: str, is_dir: bool) -> bool:
        """Whether ``relpath`` (posix, relative to the folder's top) is left out."""
        verdict = False
        for rule in self.rules:
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.fullmatch(relpath):
                verdict = not rule.negate
        return verdict
