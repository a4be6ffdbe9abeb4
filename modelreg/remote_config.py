"""The ``remotes:`` section of ``.modelreg/config.yaml``, edited under a lock."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

from . import _fs
from .errors import AlreadyExistsError, ModelregError, NotFoundError
from .refs import yaml_dump, yaml_load
from .remotes import Remote, check_remote_name, normalize_url, open_remote
from .repo import Repository


def remotes(repo: Repository) -> dict[str, dict[str, Any]]:
    return dict(repo.config.get("remotes") or {})


def _edit(repo: Repository, change: Callable[[dict[str, Any]], None]) -> None:
    path = repo.dir / "config.yaml"
    with repo.config_lock():
        config = yaml_load(path.read_bytes())
        if not isinstance(config, dict):
            raise ModelregError(f"{path} is damaged", hint="restore it; it is YAML")
        config.setdefault("remotes", {})
        change(config["remotes"])
        _fs.atomic_write(path, yaml_dump(config).encode())
        repo.config = config


def add(repo: Repository, name: str, url: str, endpoint_url: str | None = None) -> str:
    check_remote_name(name)
    entry: dict[str, Any] = {"url": normalize_url(url)}
    if endpoint_url:
        entry["endpoint_url"] = endpoint_url

    def put(section: dict[str, Any]) -> None:
        if name in section:
            raise AlreadyExistsError(
                f"remote {name!r} already exists ({section[name]['url']})",
                hint=f"remove it first with 'modelreg remote remove {name}'",
            )
        section[name] = entry

    _edit(repo, put)
    return str(entry["url"])


def remove(repo: Repository, name: str) -> None:
    def drop(section: dict[str, Any]) -> None:
        if name not in section:
            raise NotFoundError(f"no remote named {name!r}", hint="see 'modelreg remote list'")
        del section[name]

    _edit(repo, drop)
    # Its tracking refs and cached pack indexes go too, as 'git remote remove' drops
    # refs/remotes/NAME: a new remote under the name must not inherit them.
    shutil.rmtree(repo.dir / "remotes" / name, ignore_errors=True)


def is_lazy(repo: Repository, name: str) -> bool:
    """Whether this registry fetches the remote's chunks only when a version is read (a
    lazy clone's origin: ``lazy: true`` in its entry)."""
    return bool(remotes(repo).get(name, {}).get("lazy"))


def lazy_remote(repo: Repository) -> str | None:
    """The remote this registry is lazy against, if any (the first by name)."""
    return next((n for n in sorted(remotes(repo)) if is_lazy(repo, n)), None)


def set_lazy(repo: Repository, name: str, on: bool) -> None:
    def put(section: dict[str, Any]) -> None:
        if name not in section:
            raise NotFoundError(f"no remote named {name!r}", hint="see 'modelreg remote list'")
        if on:
            section[name]["lazy"] = True
        else:
            section[name].pop("lazy", None)

    _edit(repo, put)


def resolve(repo: Repository, name: str | None) -> tuple[str, Remote]:
    """The named remote, or 'origin', or the only one there is."""
    known = remotes(repo)
    if name is None:
        if "origin" in known:
            name = "origin"
        elif len(known) == 1:
            (name,) = known
        elif not known:
            raise ModelregError(
                "this registry has no remote", hint="add one with 'modelreg remote add origin URL'"
            )
        else:
            raise ModelregError(
                "this registry has several remotes; say which one",
                hint=f"one of: {', '.join(sorted(known))}",
            )
    if name not in known:
        raise NotFoundError(f"no remote named {name!r}", hint="see 'modelreg remote list'")
    entry = known[name]
    return name, open_remote(str(entry["url"]), entry, repo.refs.lock_timeout)
