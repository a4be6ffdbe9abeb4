"""Model cards: the README a version carries, stored as an object of its own.

A card is UTF-8 Markdown, stored once under the hash of its bytes (the same card on a hundred
versions is one object) and named from the version record as ``card``. A Hugging Face card
starts with YAML front matter between ``---`` lines; what it says about the model fills the
fields a register was not given:

==================================  ==========================================
front matter                        version field
==================================  ==========================================
``datasets: [a, b]``                ``dataset: "a, b"`` (``dataset:`` as text too)
``library_name: transformers``      ``framework``
``license``, ``tags``,              ``params`` of the same names (lists joined
``pipeline_tag``, ``base_model``    with ", ")
``model-index`` results' metrics    ``metrics`` (each ``type`` (else ``name``):
                                    ``value``, numbers only; the first of a type)
``metrics: {name: number}``         ``metrics`` (HF's list of metric names is
                                    not a value and is left out)
==================================  ==========================================

The YAML is read with the safe loader and without aliases (``refs.yaml_load``); a front
matter that is not a mapping or not YAML is refused with the line to fix. Values of another
type than the table expects are left out, never guessed at.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .errors import InvalidInputError, NotFoundError
from .metadata import check_text
from .refs import YamlRefusedError, yaml_load

MAX_CARD_BYTES = 1 << 20
PARAM_KEYS = ("license", "tags", "pipeline_tag", "base_model")


def read(path: str | os.PathLike[str]) -> str:
    """The card at ``path`` as text, refused with what to do when it cannot be one."""
    p = Path(path)
    try:
        data = p.read_bytes() if p.stat().st_size <= MAX_CARD_BYTES else None
    except FileNotFoundError:
        raise NotFoundError(f"no such model card: {p}", hint="check the path") from None
    except IsADirectoryError:
        raise InvalidInputError(
            f"model card {p} is a folder", hint="give a Markdown file"
        ) from None
    if data is None:
        raise InvalidInputError(
            f"model card {p} is larger than {MAX_CARD_BYTES >> 20} MiB",
            hint="a card is a README; keep large files in the model's folder",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(
            f"model card {p} is not UTF-8 text", hint="save it as UTF-8 Markdown"
        ) from None


def normalize(text: str) -> str:
    """Windows line ends as ``\n`` (as Git's autocrlf does): a card is text to show."""
    if not isinstance(text, str):
        raise InvalidInputError(f"a model card must be text, not {type(text).__name__}")
    return text.replace("\r\n", "\n")


def check(text: str) -> bytes:
    """The card's bytes as stored: valid, printable UTF-8 of at most ``MAX_CARD_BYTES``."""
    data = check_text("the model card", normalize(text), multiline=True).encode("utf-8")
    if len(data) > MAX_CARD_BYTES:
        raise InvalidInputError(
            f"the model card is larger than {MAX_CARD_BYTES >> 20} MiB",
            hint="a card is a README; keep large files in the model's folder",
        )
    return data


def front_matter(text: str) -> dict[str, Any]:
    """The YAML between a leading ``---`` line and the next one; {} when there is none."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
    if end is None:
        raise InvalidInputError(
            "the model card's front matter has no closing '---' line",
            hint="end the YAML block with a line holding only ---",
        )
    try:
        data = yaml_load("\n".join(lines[1:end]))
    except YamlRefusedError as e:
        raise InvalidInputError(f"the model card's front matter: {e}", hint="remove them") from None
    except Exception as e:  # yaml.YAMLError: the loader is PyYAML's; its message names the line
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 2})" if where is not None else ""
        raise InvalidInputError(
            f"the model card's front matter is not valid YAML{at}",
            hint="fix the YAML between the --- lines",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInputError(
            "the model card's front matter is not a mapping of keys to values",
            hint="write it as 'key: value' lines, e.g. license: mit",
        )
    return data


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return None


def _number(value: object) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def _metrics(front: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    given = front.get("metrics")
    if isinstance(given, dict):
        found.update({str(k): v for k, v in given.items() if _number(v) is not None})
    index = front.get("model-index")
    for entry in index if isinstance(index, list) else []:
        results = entry.get("results") if isinstance(entry, dict) else None
        for result in results if isinstance(results, list) else []:
            metrics = result.get("metrics") if isinstance(result, dict) else None
            for m in metrics if isinstance(metrics, list) else []:
                if not isinstance(m, dict):
                    continue
                key = m.get("type") or m.get("name")
                if isinstance(key, str) and key.strip() and _number(m.get("value")) is not None:
                    found.setdefault(key.strip(), m["value"])
    return found


def fields_from(front: dict[str, Any]) -> dict[str, Any]:
    """The version fields the front matter gives (see the module docstring)."""
    out: dict[str, Any] = {}
    dataset = _text(front.get("datasets")) or _text(front.get("dataset"))
    if dataset:
        out["dataset"] = dataset
    framework = _text(front.get("library_name"))
    if framework:
        out["framework"] = framework
    params = {key: _text(front.get(key)) for key in PARAM_KEYS}
    if any(params.values()):
        out["params"] = {k: v for k, v in params.items() if v}
    metrics = _metrics(front)
    if metrics:
        out["metrics"] = metrics
    return out


def fill(given: dict[str, Any], card: str) -> dict[str, Any]:
    """``given`` with what the card's front matter says where ``given`` says nothing; in
    ``metrics`` and ``params`` a key given explicitly wins over the card's."""
    out = dict(given)
    for key, value in fields_from(front_matter(card)).items():
        if isinstance(value, dict):
            out[key] = {**value, **(given.get(key) or {})}
        elif given.get(key) is None:
            out[key] = value
    return out
