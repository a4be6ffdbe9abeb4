"""The metadata a caller gives a version: which fields exist, what each may hold, and which a
new version inherits from its parent.

Everything here ends up in canonical JSON and YAML, so values are checked for what those can
hold faithfully: text that is valid Unicode (no lone surrogates), whole numbers that fit in 64
bits (JSON readers elsewhere lose precision past that, and Python refuses to print integers of
more than 4,300 digits), finite floats, and string keys (``1`` and ``"1"`` would collide).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import InvalidInputError, MalformedObjectError

# Fields a caller may set, and the type each must have.
USER_FIELDS: dict[str, type | tuple[type, ...]] = {
    "framework": str,
    "dataset": str,
    "architecture": str,
    "description": str,
    "metrics": dict,
    "params": dict,
    "input_shape": (list, tuple),
}
# What a new version takes from its parent unless given: what the model *is*, not how it
# scored (metrics) or what this version changed (description).
INHERITED = ("framework", "dataset", "architecture", "input_shape", "params")
INT_LIMIT = 2**63
KEY_MAX = 200


def _control(c: str, multiline: bool) -> bool:
    """A character a terminal acts on rather than shows (escape sequences start with one)."""
    code = ord(c)
    if multiline and c in "\n\t":
        return False
    return code < 32 or 0x7F <= code <= 0x9F


def has_control(text: str, multiline: bool = False) -> bool:
    return any(_control(c, multiline) for c in text)


def check_text(what: str, value: str, multiline: bool = False) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(
            f"{what} holds text that is not valid Unicode (a lone surrogate)",
            hint="pass a str decoded from UTF-8",
        ) from None
    bad = next((c for c in value if _control(c, multiline)), None)
    if bad is not None:
        allowed = "; line breaks and tabs are fine" if multiline else ""
        raise InvalidInputError(
            f"{what} holds a control character (U+{ord(bad):04X})",
            hint=f"remove it: terminals would act on it{allowed}",
        )
    return value


def check_int(what: str, value: int) -> int:
    if not -INT_LIMIT < value < INT_LIMIT:
        raise InvalidInputError(
            f"{what} is too large ({value.bit_length()} bits)",
            hint="whole numbers must fit in 64 bits; give a float instead",
        )
    return value


def _check_key(what: str, key: object) -> str:
    if not isinstance(key, str):
        raise InvalidInputError(
            f"{what} name {key!r} is {_a(type(key).__name__)}", hint="names must be strings"
        )
    if not key or len(key) > KEY_MAX or any(_control(c, False) for c in key):
        raise InvalidInputError(
            f"invalid {what} name {key[:60]!r}",
            hint=f"use 1-{KEY_MAX} printable characters",
        )
    if key != key.strip():
        raise InvalidInputError(
            f"{what} name {key!r} starts or ends with a space", hint="remove the spaces"
        )
    return check_text(f"{what} name {key[:60]!r}", key)


def check_metric(key: str, value: object) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        shown = repr(value) if isinstance(value, str) else _a(type(value).__name__)
        hint = f"put text in a param instead (--param {key}=...)"
        if isinstance(value, str) and value.replace(",", "", 1).replace("-", "", 1).isdigit():
            hint = "write decimals with a point, e.g. 0.92"
        raise InvalidInputError(f"metric {key!r} must be a number, not {shown}", hint=hint)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"metric {key!r} is {value}", hint="give a finite number")
    if isinstance(value, int):
        check_int(f"metric {key!r}", value)
    return value


def check_param(key: str, value: object) -> str | int | float | bool:
    if isinstance(value, str):
        return check_text(f"param {key!r}", value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return check_int(f"param {key!r}", value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"param {key!r} is {value}", hint="give a finite number")
        return value
    raise InvalidInputError(
        f"param {key!r} must be text, a number or a bool, not {_a(type(value).__name__)}",
        hint="store structured settings as a JSON string",
    )


def check_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The given fields, checked and normalized; ``None`` means "not given"."""
    out: dict[str, Any] = {}
    for key, given in metadata.items():
        value: Any = given
        if key not in USER_FIELDS:
            raise InvalidInputError(
                f"unknown metadata field {key!r}", hint=f"use one of {', '.join(USER_FIELDS)}"
            )
        if value is None:
            continue
        if not isinstance(given, USER_FIELDS[key]):
            raise InvalidInputError(
                f"metadata field {key!r} must be {_type_name(USER_FIELDS[key])}, "
                f"not {_a(type(value).__name__)}"
            )
        if isinstance(value, str):
            out[key] = check_text(key, value, multiline=key == "description")
        elif key == "metrics":
            out[key] = {_check_key("metric", k): check_metric(k, v) for k, v in value.items()}
        elif key == "params":
            out[key] = {_check_key("param", k): check_param(k, v) for k, v in value.items()}
        elif key == "input_shape":
            if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value):
                raise InvalidInputError(
                    f"input_shape {list(value)!r} must be whole numbers",
                    hint="e.g. 1,3,224,224",
                )
            out[key] = [check_int("an input_shape dimension", d) for d in value]
    return out


def _printable(what: str, text: str, multiline: bool = False) -> None:
    check_text(what, text, multiline)
    if has_control(text, multiline=True):
        raise MalformedObjectError(f"{what} holds a control character")


def check_stored(key: str, value: Any) -> None:
    """One metadata field of a stored record, checked as ``register`` checks what it is given
    (``check_metadata``), except that a metric may be text: modelreg once accepted
    text metrics, so records made then hold them."""
    if value is None:
        return
    if key == "metrics":
        # Text metrics: their names are checked as any metric's, their values as text.
        check_metadata({key: {k: 0 if isinstance(v, str) else v for k, v in value.items()}})
        for k, v in value.items():
            if isinstance(v, str):
                _printable(f"metric {k!r}", v)
        return
    check_metadata({key: value})
    if isinstance(value, str):
        _printable(key, value, multiline=key == "description")  # as check_metadata allows
    elif key == "params":
        for k, v in value.items():
            if isinstance(v, str):
                _printable(f"param {k!r}", v)


def inherit(given: dict[str, Any], parent: Mapping[str, Any] | None) -> dict[str, Any]:
    """``given`` completed with the parent's descriptive fields it does not set."""
    if parent is None:
        return given
    out = dict(given)
    for key in INHERITED:
        if key not in out and parent.get(key) not in (None, {}, []):
            out[key] = parent[key]
    if "params" in given and isinstance(parent.get("params"), dict):
        out["params"] = {**parent["params"], **given["params"]}  # change lr, keep the rest
    return out


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_a(k.__name__) for k in kinds)
