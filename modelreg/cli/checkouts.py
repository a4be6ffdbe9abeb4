"""The checkout tree: materialize versions, and prune what is materialized."""

from __future__ import annotations

import click

from .. import prune
from ..errors import ModelregError
from ..repo import Record, Repository
from ..words import human_bytes, plural
from ._base import _emit_json, _one_line, _repo, cli, json_option
from .versions import _materialize


@cli.command("checkout")
@click.argument("specs", nargs=-1, metavar="[NAME[@REF]]...")
@click.option("--all", "everything", is_flag=True, help="Every version of every family.")
@click.option(
    "--prune",
    "pruning",
    is_flag=True,
    help="Remove materialized versions instead (get rebuilds them); see --older-than.",
)
@click.option(
    "--older-than",
    type=float,
    metavar="DAYS",
    help="With --prune: only versions not checked out or confirmed for DAYS days.",
)
@click.option("-n", "--dry-run", is_flag=True, help="With --prune: only say what would go.")
@click.option(
    "-f", "--force", is_flag=True, help="With --prune: also remove folders with edited files."
)
@json_option
@click.pass_context
def checkout_(
    ctx: click.Context,
    specs: tuple[str, ...],
    everything: bool,
    pruning: bool,
    older_than: float | None,
    dry_run: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Materialize versions under models/. NAME alone checks out every version of NAME;
    NAME@REF one version. With --prune, remove materialized versions instead."""
    repo = _repo(ctx)
    if pruning:
        if specs or everything:
            raise click.UsageError("--prune takes no versions and no --all")
        _prune(repo, older_than, dry_run, force, as_json)
        return
    if older_than is not None or dry_run or force:
        raise click.UsageError("--older-than, --dry-run and --force go with --prune")
    if not specs and not everything:
        raise click.UsageError("name what to check out, or pass --all")
    records: list[Record] = []
    if everything:
        records = list(repo.versions())
    for spec in specs:
        records.extend([repo.lookup(spec)] if "@" in spec else repo.versions(spec))
    done = []
    failures = []
    for rec in records:
        try:
            result = _materialize(repo, rec)
        except ModelregError as e:
            failures.append(_one_line(e))
            continue
        done.append(
            {
                "name": rec["name"],
                "version": rec["version"],
                "path": str(result.path),
                "written": result.written,
                "removed": result.removed,
            }
        )
    if as_json:
        _emit_json(done)
    else:
        for d in done:
            state = f"{len(d['written'])} written" if d["written"] else "up to date"
            click.echo(f"{d['name']}@{d['version']}: {d['path']} ({state})")
    if failures:
        raise ModelregError(f"{len(failures)} of {len(records)} failed: {failures[0]}")


def _prune(
    repo: Repository, older_than: float | None, dry_run: bool, force: bool, as_json: bool
) -> None:
    plan = prune.prune(repo, older_than, dry_run=dry_run, force=force)
    if as_json:
        _emit_json(
            {
                "dry_run": dry_run,
                "removed": [m.label for m in plan.removed],
                "kept_modified": {m.label: m.modified for m in plan.kept_modified},
                "bytes": plan.bytes,
            }
        )
        return
    verb = "Would remove" if dry_run else "Removed"
    click.echo(
        f"{verb} {plural(len(plan.removed), 'checkout')} ({human_bytes(plan.bytes)}); "
        "'modelreg get' rebuilds any of them"
    )
    for m in plan.removed:
        click.echo(f"  {m.label}  {human_bytes(m.bytes)}  {m.path}")
    for m in plan.kept_modified:
        shown = ", ".join(m.modified[:3]) + (" ..." if len(m.modified) > 3 else "")
        click.echo(
            f"kept {m.label}: edited or added files ({shown}); --force removes it anyway",
            err=True,
        )
