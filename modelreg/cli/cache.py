"""``modelreg cache``: the per-user object cache every registry on the machine shares."""

from __future__ import annotations

import dataclasses

import click

from .. import cache as shared
from ..checkout import parse_size
from ..errors import InvalidInputError
from ..words import human_bytes, plural
from ._base import _emit_json, cli, json_option


@cli.group()
def cache() -> None:
    """The shared object cache ($MODELREG_CACHE, else $XDG_CACHE_HOME/modelreg, else
    ~/.cache/modelreg): objects fetched lazily, read by every registry that lacks them."""


@cache.command()
@json_option
def stats(as_json: bool) -> None:
    """Where the cache is, how many objects it holds and their size."""
    found = shared.Cache().stats()
    if as_json:
        _emit_json(dataclasses.asdict(found))
        return
    click.echo(f"Cache: {found.path}")
    click.echo(f"{plural(found.objects, 'object')}, {human_bytes(found.bytes)}")


@cache.command()
@click.option(
    "--max-size",
    "max_size",
    metavar="SIZE",
    help="Keep the most recently used objects that fit in SIZE (500M, 20G); "
    "without it the cache is emptied.",
)
@click.option("-n", "--dry-run", is_flag=True, help="Only say what would be removed.")
@json_option
def prune(max_size: str | None, dry_run: bool, as_json: bool) -> None:
    """Remove least recently used objects until the cache fits in --max-size."""
    limit = 0
    if max_size is not None:
        parsed = parse_size(max_size)
        if parsed is None:
            raise InvalidInputError(
                f"--max-size {max_size!r} is not a size", hint="give bytes or 500M, 20G, 1.5GiB"
            )
        limit = parsed
    plan = shared.Cache().prune(limit, dry_run=dry_run)
    if as_json:
        _emit_json(
            {
                "dry_run": dry_run,
                "removed": [e.oid for e in plan.removed],
                "freed_bytes": plan.freed,
                "leftovers": [str(p) for p in plan.leftovers],
                "kept_objects": plan.kept_objects,
                "kept_bytes": plan.kept_bytes,
            }
        )
        return
    verb = "Would free" if dry_run else "Freed"
    click.echo(
        f"{verb} {human_bytes(plan.freed)}: {plural(len(plan.removed), 'object')}, "
        f"{plural(len(plan.leftovers), 'leftover temporary file')}; kept "
        f"{plural(plan.kept_objects, 'object')} ({human_bytes(plan.kept_bytes)})"
    )
