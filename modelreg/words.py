"""Numbers, times and values as words for people: no Python reprs in what modelreg prints."""

from __future__ import annotations

import datetime as dt
from typing import Any


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def between(value: float, low: float, high: float) -> float:
    """Where ``value`` sits from ``low`` (0) to ``high`` (1); halved first so that
    ``high - low`` cannot overflow to infinity (-1e308 to 1e308), 0.5 when they are equal."""
    if high == low:
        return 0.5
    return (value / 2 - low / 2) / (high / 2 - low / 2)


def plural(n: int, word: str) -> str:
    """'1 family', '2 families', '0 versions'."""
    if n == 1:
        return f"1 {word}"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return f"{n:,} {word[:-1]}ies"
    return f"{n:,} {word}{'es' if word.endswith(('s', 'x', 'ch', 'sh')) else 's'}"


def utc_time(iso: str | None) -> str:
    """An ISO timestamp as 'YYYY-MM-DD HH:MM:SS UTC' (records are written in UTC)."""
    if not iso:
        return "unknown"
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def value(v: Any, width: int = 60) -> str:
    """A recorded value in a line of text: ``(none)`` for unset, lists and mappings written
    out, long text cut."""
    if v is None or v == {} or v == []:
        return "(none)"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, dict):
        text = ", ".join(f"{k}={value(x, width)}" for k, x in v.items())
    elif isinstance(v, (list, tuple)):
        text = ",".join(value(x, width) for x in v)
    else:
        text = str(v)
    text = clean(" ".join(text.split()))
    return text if len(text) <= width else text[: width - 3] + "..."


def clean(text: str) -> str:
    """Text safe to print: a control character (the start of a terminal escape sequence, in
    a record from an older modelreg or a remote) is shown as ``\\xNN``, never sent."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\t" else f"\\x{ord(c):02x}" for c in text)
