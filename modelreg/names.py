"""Validation of every user-given name before it becomes part of a path."""

from __future__ import annotations

import re

from .errors import InvalidNameError

FAMILY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# Up to 18 digits (it fits an int64); a version chosen by hand (--version) has at most 9, so a
# typo such as v999999999 can never use up the numbers after it.
VERSION_RE = re.compile(r"v([1-9][0-9]{0,17})")
CHOSEN_MAX = 999_999_999
VERSION_LIKE_RE = re.compile(r"[vV][0-9]+")  # reserved for versions, valid or not
TAG_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")
LATEST = "latest"


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def check_family(name: str) -> str:
    if not isinstance(name, str) or not FAMILY_RE.fullmatch(name):
        raise InvalidNameError(
            f"invalid model name {_shown(str(name))}",
            hint="use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


def check_version(version: str) -> str:
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        zero = isinstance(version, str) and re.fullmatch(r"v?0+", version) is not None
        raise InvalidNameError(
            f"invalid version {_shown(str(version))}",
            hint="versions start at v1" if zero else "versions look like v1, v2, ...",
        )
    return version


def version_number(version: str) -> int:
    return int(check_version(version)[1:])


def check_chosen_version(version: str) -> str:
    """A version given by hand: valid, and not so high that it uses up the numbers after it."""
    if version_number(version) > CHOSEN_MAX:
        raise InvalidNameError(
            f"version {version} is too high to choose by hand",
            hint=f"choose at most v{CHOSEN_MAX}, or leave the version out to get the next one",
        )
    return version


def check_tag(tag: str) -> str:
    if (
        not isinstance(tag, str)
        or not TAG_RE.fullmatch(tag)
        or tag == LATEST
        or VERSION_LIKE_RE.fullmatch(tag)
    ):
        raise InvalidNameError(
            f"invalid tag {_shown(str(tag))}",
            hint="use 1-64 letters, digits, '.', '_' or '-', starting with a letter; "
            "'latest' and vN are reserved",
        )
    return tag


def normalize_ref(ref: str) -> str:
    """'3' -> 'v3'; 'v3', 'latest' and tags are returned as they are (after checking)."""
    if not isinstance(ref, str) or not ref:
        raise InvalidNameError("empty version or tag", hint="use vN, N, latest or a tag name")
    if ref.isdigit() and ref.isascii():
        return check_version(f"v{int(ref)}") if int(ref) > 0 else check_version(ref)
    if ref == LATEST:
        return ref
    if VERSION_LIKE_RE.fullmatch(ref):
        return check_version(ref)
    return check_tag(ref)


def parse_spec(spec: str, default_ref: str = LATEST) -> tuple[str, str]:
    """Split 'NAME@REF' (or 'NAME') into a checked (name, ref)."""
    name, sep, ref = spec.partition("@")
    check_family(name)
    return name, normalize_ref(ref if sep else default_ref)
