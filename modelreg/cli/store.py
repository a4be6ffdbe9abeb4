"""Commands about the store as a whole: gc, fsck, stats, and the demo."""

from __future__ import annotations

from pathlib import Path

import click

from .. import maintenance
from ..errors import ModelregError
from ..repo import Repository
from ..words import human_bytes, plural
from . import retention
from ._base import _emit_json, _repo, cli, json_option


@cli.command()
@click.option("-n", "--dry-run", is_flag=True, help="Only say what would be done.")
@click.option(
    "--auto",
    "auto",
    is_flag=True,
    help="Only repack, and only when loose objects or packs passed the limits in "
    "config.yaml (gc.auto_loose, gc.auto_packs); register runs this itself.",
)
@click.option(
    "--remote",
    metavar="REMOTE",
    help="Delete (or repack) REMOTE's packs that no remote ref reaches any more.",
)
@click.option(
    "--grace",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="With --remote: spare anything newer than this (30s, 15m, 1h, 2d).",
)
@json_option
@click.pass_context
def gc(
    ctx: click.Context, dry_run: bool, auto: bool, remote: str | None, grace: str, as_json: bool
) -> None:
    """Delete objects no version uses and files left by interrupted writes; pack the rest
    into one pack, compressing tensor chunks whose dtype the file states."""
    repo = _repo(ctx)
    if remote is not None:
        retention.gc_remote(repo, remote, dry_run, grace, as_json)
        return
    if auto:
        done = maintenance.auto_gc(repo)
        if as_json:
            _emit_json({"ran": done is not None, **(done.__dict__ if done else {})})
        elif done is None:
            click.echo("Nothing to do: the store is under its gc.auto limits")
        else:
            click.echo(
                f"Packed {plural(done.loose, 'loose object')} and merged "
                f"{plural(len(done.packs), 'pack')}"
                + (f" into pack-{done.new_pack}" if done.new_pack else "")
            )
        return
    plan = maintenance.gc(repo, dry_run=dry_run)
    if as_json:
        _emit_json(
            {
                "dry_run": dry_run,
                "objects": plan.objects,
                "leftovers": [str(p) for p in plan.leftovers],
                "bytes": plan.bytes,
                "packs": plan.packs,
                "loose": plan.loose,
                "compress": plan.compress,
                "kept": plan.kept,
                "new_pack": plan.new_pack,
            }
        )
        return
    verb = "Would free" if dry_run else "Freed"
    click.echo(
        f"{verb} {human_bytes(plan.bytes)}: {plural(len(plan.objects), 'object')}, "
        f"{plural(len(plan.leftovers), 'leftover temporary file')}"
    )
    if plan.repack:
        would = "Would pack" if dry_run else "Packed"
        click.echo(
            f"{would} {plural(plan.kept, 'object')} into one pack: merging "
            f"{plural(len(plan.packs), 'pack')} and {plural(plan.loose, 'loose object')}, "
            f"offering {plural(plan.compress, 'chunk')} of known dtype to the codec"
        )
    else:
        click.echo("The store is one pack already; nothing to repack")
    if dry_run:
        for oid in plan.objects:
            click.echo(f"  {oid}")
        for p in plan.leftovers:
            click.echo(f"  {p}")
        for name in plan.packs:
            click.echo(f"  pack-{name}.pack")


@cli.command()
@click.option(
    "--repair",
    is_flag=True,
    help="Replace corrupt or missing objects with verified copies from the remotes.",
)
@json_option
@click.pass_context
def fsck(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Verify every object, every ref, and each version's record against its content; exit 1
    when anything is damaged, missing or inconsistent."""
    repo = _repo(ctx)
    from .. import sync  # imported here: other commands start without it

    report = sync.repair(repo) if repair else maintenance.fsck(repo)
    if as_json:
        _emit_json(
            {
                "ok": report.ok,
                "checked": report.checked,
                "corrupt": report.corrupt,
                "missing": report.missing,
                "inconsistent": report.inconsistent,
                "problems": report.problems,
                "unused": report.unused,
                "leftovers": report.leftovers,
                "repaired": report.repaired,
                "where": report.where,
                "packs": report.packs,
                "fetchable": report.fetchable,
                "fetchable_from": report.fetchable_from,
                "cached": report.cached,
            }
        )
    else:
        for oid, remote in sorted(report.repaired.items()):
            click.echo(f"repaired object {oid} from remote {remote}")
        for oid, users in sorted(report.corrupt.items()):
            click.echo(f"corrupt object {oid} in {report.where.get(oid, '?')}{_used_by(users)}")
        for oid, users in sorted(report.missing.items()):
            click.echo(f"missing object {oid}{_used_by(users)}")
        for label, why in sorted(report.inconsistent.items()):
            click.echo(f"inconsistent version {label}: {why}")
        for problem in report.problems:
            click.echo(problem)
        click.echo(
            f"checked {report.checked} objects: {len(report.corrupt)} corrupt, "
            f"{len(report.missing)} missing, {report.unused} unused, "
            f"{report.leftovers} leftovers; {len(report.inconsistent)} inconsistent, "
            f"{len(report.repaired)} repaired ({plural(report.packs, 'pack')})"
        )
        if report.fetchable:
            click.echo(
                f"{plural(len(report.fetchable), 'object')} of this lazy clone "
                f"{'is' if len(report.fetchable) == 1 else 'are'} not here but fetchable from "
                f"remote {report.fetchable_from} ('modelreg fetch NAME@REF' brings a version's)"
            )
        if not report.ok and not repair and (report.corrupt or report.missing):
            click.echo(
                "to fetch damaged or missing objects from the remotes: modelreg fsck --repair"
            )
    if not report.ok:
        ctx.exit(1)


def _used_by(users: list[str]) -> str:
    return f" (used by {', '.join(users)})" if users else " (unused)"


@cli.command()
@click.option(
    "--scan",
    "scan_path",
    type=click.Path(path_type=Path),
    help="Estimate what registering the files under this path would add; writes "
    "nothing and works outside a registry too.",
)
@json_option
@click.pass_context
def stats(ctx: click.Context, scan_path: Path | None, as_json: bool) -> None:
    """Logical size of all versions against what the store really uses, and what removing
    each version would free."""
    if scan_path is not None:
        _scan(ctx, scan_path, as_json)
        return
    s = maintenance.stats(_repo(ctx))
    if as_json:
        _emit_json(
            {**s.__dict__, "dedup_ratio": s.dedup_ratio, "total_disk_bytes": s.total_disk_bytes}
        )
        return
    click.echo(f"families        {s.families}")
    click.echo(f"versions        {s.versions}")
    click.echo(f"logical size    {human_bytes(s.logical_bytes)}  (as plain copies)")
    click.echo(f"stored size     {human_bytes(s.stored_bytes)}  in {s.objects} objects")
    click.echo(f"disk used       {human_bytes(s.disk_bytes)}  (.modelreg/, as du counts)")
    click.echo(
        f"checkouts       {human_bytes(s.checkout_bytes)}  "
        f"{_count(s.checked_out, 'version')}, {_count(s.checkout_files, 'file')} in "
        f"{s.checkout_dir} (plain copies, rebuilt on demand: safe to delete)"
    )
    click.echo(f"total on disk   {human_bytes(s.total_disk_bytes)}")
    click.echo(f"dedup ratio     {s.dedup_ratio:.2f}x")
    if s.freeable:
        click.echo("\nbytes only this version uses (what 'rm' then 'gc' would free):")
        for label, size in sorted(s.freeable.items()):
            click.echo(f"  {label:<40} {human_bytes(size)}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _scan(ctx: click.Context, path: Path, as_json: bool) -> None:
    from ..chunking import ChunkParams

    try:
        repo: Repository | None = _repo(ctx)
    except ModelregError:
        repo = None
    params = repo.chunk_params if repo else ChunkParams()
    est = maintenance.scan(path, params, repo.objects if repo else None)
    if as_json:
        _emit_json({**est.__dict__, "in_registry": str(repo.root) if repo else None})
        return
    echo_estimate(est, repo)


def echo_estimate(est: maintenance.ScanEstimate, repo: Repository | None) -> None:
    """What storing some files would cost (``stats --scan``, ``import --dry-run``)."""
    where = f"registry {repo.root}" if repo else "an empty registry"
    click.echo(f"{est.files} files, {human_bytes(est.logical_bytes)} as they are")
    click.echo(f"whole-file dedup would store  {human_bytes(est.file_dedup_bytes)}")
    click.echo(f"modelreg would add            {human_bytes(est.modelreg_bytes)}  (to {where})")


@cli.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    help="Run here (a new or empty folder) instead of in a new temporary folder.",
)
def demo(directory: Path | None) -> None:
    """Fine-tune ResNet-18's head on a small synthetic task, register before and after, and
    walk through the commands (offline; needs torch)."""
    from ..demo import run_demo

    run_demo(directory, click.echo)
