"""``list --where EXPR --sort [-]FIELD --limit N``: choosing and ordering versions.

An expression is ``FIELD OP VALUE`` with OP one of ``= == != > >= < <=``, parsed here by
hand (never ``eval``). FIELD is ``metrics.KEY``, ``params.KEY``, ``inspect.KEY`` or a bare
name, which means, for each version, its metric of that name when it records one, else the
recorded field of that name (``dataset``, ``size``, ``version``, ``tags``...), else its param
of that name. docs/cli.md gives the rules for comparing; in short: numbers compare as numbers
(a param's text too, when it is a number), ``version`` by its number, ``size`` takes units
(``size>100M``), ``registered_at`` by date (``=`` matches a prefix, ``registered_at=2026-11``),
``tags`` by membership, ``*`` and ``?`` in VALUE match as in a file glob, and a version that
does not have the field never matches.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .checkout import parse_size
from .errors import InvalidInputError
from .names import VERSION_RE
from .schema import FIELDS

Row = dict[str, Any]

OPERATORS = (">=", "<=", "!=", "==", ">", "<", "=")
SECTIONS = ("metrics", "params", "inspect")
NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_BOOLS = {"true": True, "yes": True, "false": False, "no": False}
_MISSING = object()

EXAMPLES = "e.g. accuracy>=0.9, dataset=ImageNet, params.optimizer=adamw"


class QueryError(InvalidInputError):
    """An expression that cannot be read or applied."""


@dataclass(frozen=True)
class Field:
    """A name as written (``accuracy``, ``params.lr``) and how it is looked up."""

    text: str
    section: str | None  # metrics / params / inspect, or None for a bare name
    key: str

    @classmethod
    def parse(cls, text: str) -> Field:
        text = text.strip()
        if not text:
            raise QueryError("a field name is missing", hint=EXAMPLES)
        head, dot, rest = text.partition(".")
        if dot and head in SECTIONS:
            if not rest:
                raise QueryError(f"{text!r} names no key after {head}.", hint=EXAMPLES)
            return cls(text, head, rest)
        return cls(text, None, text)

    def lookup(self, row: Row) -> Any:
        """The value in ``row``, or ``_MISSING``."""
        if self.section is not None:
            found = (row.get(self.section) or {}).get(self.key, _MISSING)
            return _MISSING if found is None else found
        metrics = row.get("metrics") or {}
        if self.key in metrics:
            return metrics[self.key]
        if self.key in FIELDS:
            value = row.get(self.key)
            return _MISSING if value is None else value
        params = row.get("params") or {}
        return params.get(self.key, _MISSING)

    def known(self, row: Row) -> bool:
        """Whether this name means anything for ``row``, set or not."""
        if self.section is None and self.key in FIELDS:
            return True
        return self.lookup(row) is not _MISSING


@dataclass(frozen=True)
class Condition:
    text: str
    field: Field
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Condition:
        if not isinstance(text, str):
            raise QueryError(f"a --where expression must be text, not {type(text).__name__}")
        at = min((i for i in (text.find(c) for c in "<>=!") if i >= 0), default=-1)
        if at < 0:
            raise QueryError(
                f"{text!r} has no comparison (one of {' '.join(OPERATORS)})", hint=EXAMPLES
            )
        op = next((o for o in OPERATORS if text.startswith(o, at)), None)
        if op is None:
            raise QueryError(f"{text!r}: '!' must be followed by '=' (!=)", hint=EXAMPLES)
        field = Field.parse(text[:at])
        value = text[at + len(op) :].strip()
        if not value:
            raise QueryError(f"{text!r} has no value after {op}", hint=EXAMPLES)
        if value[0] in "<>=!":
            raise QueryError(f"{text!r}: {value[0]!r} after {op} is not a value", hint=EXAMPLES)
        cond = cls(text.strip(), field, "=" if op == "==" else op, value)
        if op in (">", ">=", "<", "<=") and _ordered_value(cond) is None:
            raise QueryError(
                f"{text!r}: {op} compares numbers, versions (v3) or dates, and {value!r} is "
                "none of them",
                hint="use = or != to compare text",
            )
        return cond

    def matches(self, row: Row) -> bool:
        actual = self.field.lookup(row)
        if actual is _MISSING:
            return False
        if self.op in ("=", "!="):
            return _equal(self, actual) == (self.op == "=")
        mine, wanted = _ordered(self, actual), _ordered_value(self)
        if mine is None or wanted is None or type(mine) is not type(wanted):
            return False
        if self.op == ">":
            return mine > wanted  # type: ignore[operator]
        if self.op == ">=":
            return mine >= wanted  # type: ignore[operator]
        if self.op == "<":
            return mine < wanted  # type: ignore[operator]
        return mine <= wanted  # type: ignore[operator]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and NUMBER_RE.fullmatch(value.strip()):
        return float(value)
    return None


def _version_number(value: Any) -> float | None:
    text = str(value).strip()
    match = VERSION_RE.fullmatch(text)
    if match:
        return float(match.group(1))
    return float(text) if text.isdigit() else None


def _is_plain(cond: Condition, name: str) -> bool:
    return cond.field.section is None and cond.field.key == name


def _ordered_value(cond: Condition) -> float | str | None:
    """VALUE as something to compare in order: a number, or text for dates."""
    if _is_plain(cond, "version"):
        return _version_number(cond.value)
    if _is_plain(cond, "size"):
        size = parse_size(cond.value)
        return None if size is None else float(size)
    if _is_plain(cond, "registered_at"):
        return cond.value
    return _number(cond.value)


def _ordered(cond: Condition, actual: Any) -> float | str | None:
    if _is_plain(cond, "version"):
        return _version_number(actual)
    if _is_plain(cond, "registered_at") and isinstance(actual, str):
        return actual
    return _number(actual)


def _equal(cond: Condition, actual: Any) -> bool:
    value = cond.value
    if isinstance(actual, (list, tuple)):
        if _is_plain(cond, "input_shape"):
            return ",".join(str(x) for x in actual) == value.replace(" ", "")
        return any(_equal(cond, item) for item in actual)
    if isinstance(actual, dict):
        return False
    if isinstance(actual, bool):
        return _BOOLS.get(value.lower()) is actual
    if _is_plain(cond, "version"):
        return _version_number(actual) == _version_number(value)
    if _is_plain(cond, "size"):
        size = parse_size(value)
        return size is not None and _number(actual) == size
    if _is_plain(cond, "registered_at") and isinstance(actual, str):
        return actual.startswith(value)
    mine, wanted = _number(actual), _number(value)
    if mine is not None and wanted is not None:
        return mine == wanted
    text = str(actual)
    if any(c in value for c in "*?["):
        return fnmatch.fnmatchcase(text, value)
    return text == value


def parse_where(where: str | Sequence[str] | None) -> list[Condition]:
    """Each expression parsed; several combine with AND."""
    if where is None:
        return []
    exprs = [where] if isinstance(where, str) else list(where)
    return [Condition.parse(e) for e in exprs]


def parse_sort(sort: str | None) -> tuple[Field, bool] | None:
    """(field, descending) from ``[-]FIELD``."""
    if sort is None:
        return None
    if not isinstance(sort, str):
        raise QueryError(f"sort must be a field name, not {type(sort).__name__}")
    text = sort.strip()
    descending = text.startswith("-")
    text = text.removeprefix("-").removeprefix("+")
    if any(c in text for c in "<>=!"):
        raise QueryError(f"sort {sort!r} is an expression; give a field name, e.g. -accuracy")
    return Field.parse(text), descending


def _check_known(fields: Iterable[Field], rows: list[Row]) -> None:
    """A name no version knows is most likely a typo: say so rather than match nothing."""
    if not rows:
        return
    for field in fields:
        if not any(field.known(r) for r in rows):
            metrics = sorted({k for r in rows for k in (r.get("metrics") or {})})
            known = f"; metrics here: {', '.join(metrics)}" if metrics else ""
            raise QueryError(
                f"no version has a metric, field or param named {field.text!r}",
                hint=f"check the spelling{known}",
            )


def _sort_key(field: Field, row: Row) -> tuple[int, Any]:
    value = field.lookup(row)
    if field.section is None and field.key == "version":
        value = _version_number(value)
    if value is _MISSING or value is None:
        return (2, 0)
    number = _number(value)
    if number is not None:
        return (0, number)
    return (1, str(value))


def select(
    rows: Iterable[Row],
    where: str | Sequence[str] | None = None,
    sort: str | None = None,
    limit: int | None = None,
) -> list[Row]:
    """The rows matching every ``where`` expression, ordered by ``sort`` (a leading ``-``:
    largest first; versions without the field last either way), at most ``limit`` of them.
    Every expression is checked before any row is read."""
    conditions = parse_where(where)
    order = parse_sort(sort)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise QueryError(f"limit must be a whole number of at least 1, not {limit!r}")
    rows = list(rows)
    fields = [c.field for c in conditions] + ([order[0]] if order else [])
    _check_known(fields, rows)
    chosen = [r for r in rows if all(c.matches(r) for c in conditions)]
    if order is not None:
        field, descending = order
        present = [r for r in chosen if _sort_key(field, r)[0] < 2]
        absent = [r for r in chosen if _sort_key(field, r)[0] == 2]
        present.sort(key=lambda r: _sort_key(field, r), reverse=descending)
        chosen = present + absent
    return chosen[:limit] if limit is not None else chosen
