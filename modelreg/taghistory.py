"""Tag history and protected tags: who moved which tag of a family, when, from where to where.

Every move of a tag (create, move, delete) and every protect/unprotect is one *event*, a small
dict with an ``id`` that never changes::

    {"id": "<32 hex>", "tag": "production", "op": "move", "from": "v3", "to": "v4",
     "by": "alice", "host": "gpu-01", "at": "2026-11-28T21:00:00+00:00",
     "message": "beats v3 on val", "forced": false}

Events live in the family's refs (the journal while new, the snapshot after compaction) and
on a remote in its refs file. Two copies of a history merge as the union of their events by
``id``, so nothing recorded on either side is lost. Whether a tag is protected is what its
latest protect/unprotect event says, so protection travels and merges with the history.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import secrets
import socket
from typing import Any

from . import names
from .errors import InvalidInputError, ProtectedTagError
from .hashing import is_oid

Event = dict[str, Any]
OPS = ("create", "move", "delete", "protect", "unprotect")
MAX_MESSAGE = 1000
_MAX_TEXT = 200


def who() -> tuple[str, str]:
    """(user, host) of this process; ``MODELREG_USER`` and ``MODELREG_HOST`` override them
    (for CI, containers, tests)."""
    user = os.environ.get("MODELREG_USER")
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers)
            user = str(os.getuid())
    host = os.environ.get("MODELREG_HOST") or socket.gethostname() or "unknown"
    return user[:_MAX_TEXT], host[:_MAX_TEXT]


def registered_by() -> str:
    """``user@host``: the ``registered_by`` field of a new version record."""
    return "{}@{}".format(*who())


def check_message(message: str | None) -> str | None:
    if message is None:
        return None
    if not isinstance(message, str) or len(message) > MAX_MESSAGE or "\x00" in message:
        raise InvalidInputError(
            f"a tag message must be text of at most {MAX_MESSAGE} characters",
            hint="shorten the message given with -m",
        )
    return message


def event(
    tag: str,
    op: str,
    before: str | None,
    after: str | None,
    message: str | None = None,
    forced: bool = False,
) -> Event:
    user, host = who()
    return {
        "id": secrets.token_hex(16),
        "tag": tag,
        "op": op,
        "from": before,
        "to": after,
        "by": user,
        "host": host,
        "at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "message": check_message(message),
        "forced": forced,
    }


def _text(value: object, limit: int) -> bool:
    return isinstance(value, str) and len(value) <= limit


def check_event(raw: object) -> Event:
    """An event read from a file or a remote, checked field by field (ValueError if not)."""
    if not isinstance(raw, dict) or set(raw) != {
        "id",
        "tag",
        "op",
        "from",
        "to",
        "by",
        "host",
        "at",
        "message",
        "forced",
    }:
        raise ValueError("not a tag event")
    if not (isinstance(raw["id"], str) and is_oid(raw["id"])) or raw["op"] not in OPS:
        raise ValueError("not a tag event")
    names.check_tag(raw["tag"])
    for side in ("from", "to"):
        if raw[side] is not None:
            names.check_version(raw[side])
    if not all(_text(raw[k], _MAX_TEXT) for k in ("by", "host", "at")):
        raise ValueError("not a tag event")
    if raw["message"] is not None and not _text(raw["message"], MAX_MESSAGE):
        raise ValueError("not a tag event")
    if not isinstance(raw["forced"], bool):
        raise ValueError("not a tag event")
    return dict(raw)


def ordered(events: list[Event]) -> list[Event]:
    return sorted(events, key=lambda e: (e["at"], e["id"]))


def union(*histories: list[Event]) -> list[Event]:
    """Every event of every history once (by id), oldest first."""
    seen: dict[str, Event] = {}
    for history in histories:
        for e in history:
            seen.setdefault(e["id"], e)
    return ordered(list(seen.values()))


def protected_from(history: list[Event]) -> list[str]:
    """The tags whose latest protect/unprotect event protects them."""
    state: dict[str, bool] = {}
    for e in ordered(history):
        if e["op"] in ("protect", "unprotect"):
            state[e["tag"]] = e["op"] == "protect"
    return sorted(t for t, on in state.items() if on)


def shown(e: Event) -> str:
    """One line of ``modelreg tag --history``."""
    when = e["at"][:19].replace("T", " ")
    move = {
        "create": f"created at {e['to']}",
        "move": f"moved {e['from']} -> {e['to']}",
        "delete": f"deleted (was {e['from']})",
        "protect": "protected",
        "unprotect": "unprotected",
    }[e["op"]]
    forced = " (forced)" if e["forced"] else ""
    message = f": {e['message']}" if e["message"] else ""
    return f"{when} UTC  {e['tag']} {move}{forced} by {e['by']}@{e['host']}{message}"


def check_movable(refs: Any, tag: str, to: str | None, force: bool) -> None:
    """Raise ProtectedTagError when moving ``tag`` to ``to`` (None: deleting it) needs
    ``force`` and it was not given."""
    was = refs.tags.get(tag)
    if was != to and tag in refs.protected and not force:
        verb = "delete" if to is None else "move"
        raise ProtectedTagError(
            f"tag {tag!r} of {refs.name} is protected (it points at {was})",
            hint=f"pass --force to {verb} it anyway, or "
            f"'modelreg tag --unprotect {refs.name} {tag}' first",
        )


def move(
    refs: Any, tag: str, to: str | None, message: str | None = None, force: bool = False
) -> str | None:
    """Point ``tag`` of ``refs`` at ``to`` (None deletes it) and record the event; returns
    where it pointed. A protected tag moves only with ``force``; pointing a tag where it
    already points changes and records nothing."""
    was = refs.tags.get(tag)
    if was == to:
        return was
    check_movable(refs, tag, to, force)
    guarded = tag in refs.protected
    op = "create" if was is None else "delete" if to is None else "move"
    refs.history.append(event(tag, op, was, to, message, forced=guarded))
    if to is None:
        del refs.tags[tag]
    else:
        refs.tags[tag] = to
    return was


def protect(refs: Any, tag: str, on: bool, message: str | None = None) -> bool:
    """Protect (``on``) or unprotect ``tag``; recorded. False when nothing changed."""
    if (tag in refs.protected) == on:
        return False
    at = refs.tags.get(tag)
    refs.history.append(event(tag, "protect" if on else "unprotect", at, at, message))
    others = [t for t in refs.protected if t != tag]
    refs.protected = sorted([*others, tag] if on else others)
    return True
