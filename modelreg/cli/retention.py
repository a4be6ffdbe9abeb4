"""``rm --remote`` and ``gc --remote``: the printing half (modelreg.remote_gc does the work)."""

from __future__ import annotations

import click

from .. import remote_gc
from ..repo import Repository
from ..words import human_bytes, plural
from ._base import _emit_json


def rm_remote(repo: Repository, remote: str, spec: str, force: bool) -> None:
    name, version, tags = remote_gc.remove(repo, remote, spec, force=force)
    family = spec.partition("@")[0]
    extra = f" and its tags {', '.join(tags)}" if tags else ""
    click.echo(
        f"Removed {family}@{version}{extra} from remote {name}; teammates' next pull drops it; "
        f"run 'modelreg gc --remote {name}' to free its bytes there"
    )


def gc_remote(repo: Repository, remote: str, dry_run: bool, grace: str, as_json: bool) -> None:
    seconds = remote_gc.parse_duration(grace)

    def show(plan: remote_gc.RemoteGcPlan) -> None:
        if as_json:
            return
        verb = "Would free" if dry_run else "Freeing"
        click.echo(
            f"{verb} {human_bytes(plan.bytes)} on remote {plan.remote}: "
            f"{plural(plan.objects, 'unreachable object')}; deleting "
            f"{plural(len(plan.dead_packs), 'pack')}, repacking "
            f"{plural(len(plan.mixed_packs), 'pack')}, deleting "
            f"{plural(len(plan.orphan_keys), 'other key')}; sparing "
            f"{plural(plan.young_packs, 'pack')} newer than {grace}"
        )
        if dry_run:
            for name in plan.dead_packs:
                click.echo(f"  delete packs/pack-{name}.pack")
            for name in plan.mixed_packs:
                click.echo(f"  repack packs/pack-{name}.pack")
            for key in plan.orphan_keys:
                click.echo(f"  delete {key}")

    plan = remote_gc.gc(repo, remote, seconds, dry_run=dry_run, on_plan=show)
    if as_json:
        _emit_json({"dry_run": dry_run, **plan.__dict__})
    elif plan.done:
        new = f" into {plural(len(plan.new_packs), 'new pack')}" if plan.new_packs else ""
        click.echo(f"Done{new}")
