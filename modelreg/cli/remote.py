"""Commands for team registries: remote, push, pull, clone."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import remote_config
from ..views import auto_gc_warning
from ..words import human_bytes
from ._base import _emit_json, _repo, cli, json_option

if TYPE_CHECKING:
    from .. import sync


class _TransferBar:
    """Bytes done of the bytes expected so far, and the rate, on one line of a terminal (a
    pull learns what it needs level by level, so its total grows as it goes)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.done = self.total = 0
        self.started = time.monotonic()
        self.shown = 0.0

    def expect(self, size: int) -> None:
        self.total += size

    def __call__(self, size: int) -> None:
        self.done += size
        now = time.monotonic()
        if now - self.shown >= 0.1:
            self.shown = now
            self.show(now)

    def show(self, now: float) -> None:
        rate = self.done / max(now - self.started, 1e-3)
        total = max(self.total, self.done)
        click.echo(
            f"\r{self.label}: {human_bytes(self.done)} / {human_bytes(total)}, "
            f"{human_bytes(rate)}/s   ",
            err=True,
            nl=False,
        )


@contextlib.contextmanager
def _transfer_bar(label: str) -> Iterator[Callable[[int], None] | None]:
    """A running count on a terminal; nothing elsewhere."""
    if not sys.stderr.isatty():
        yield None
        return
    bar = _TransferBar(label)
    try:
        yield bar
    finally:
        if bar.done:
            bar.show(time.monotonic())
            click.echo("", err=True)


def _totals(report: sync.TransferReport, verb: str) -> str:
    """'Sent 12 objects (3.4 MiB) to origin in 1.2 s (2.8 MiB/s)'."""
    objects = f"{report.objects} object{'' if report.objects == 1 else 's'}"
    rate = human_bytes(report.bytes / report.seconds) if report.seconds > 0 else "-"
    line = (
        f"{verb} {objects} ({human_bytes(report.bytes)}) "
        f"{'to' if verb == 'Sent' else 'from'} {report.remote} "
        f"in {report.seconds:.1f} s ({rate}/s)"
    )
    if report.skipped_bytes:
        line += (
            f"; {human_bytes(report.skipped_bytes)} of the {human_bytes(report.total_bytes)} "
            "these versions need were there already (not sent)"
        )
    return line


def _report(report: sync.TransferReport, verb: str, as_json: bool) -> None:
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for conflict in report.conflicts:
        click.echo(
            f"conflict: {conflict}; both kept: move the tag here to the remote's value, "
            "or publish yours with 'modelreg push --force'",
            err=True,
        )
    if as_json:
        _emit_json(report.__dict__)
        return
    click.echo(_totals(report, verb))
    for label in report.versions:
        replaced = " (replaced the remote's copy)" if label in report.replaced else ""
        click.echo(f"  {label}{replaced}")
    for old, new in report.renumbered:
        click.echo(f"  renumbered your unpublished {old} as {new}")
    for line in report.reparented:
        click.echo(f"  {line}")
    for tag in report.tags:
        click.echo(f"  tag {tag}")
    for label in report.dropped:
        click.echo(f"  dropped {label} (removed on {report.remote})")
    if not report.versions and not report.renumbered and not report.tags and not report.dropped:
        click.echo("  refs already up to date")


@cli.group()
def remote() -> None:
    """Manage remotes: s3://BUCKET/PREFIX or a folder path."""


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option(
    "--endpoint-url",
    help="An S3-compatible endpoint (MinIO, R2, ...); defaults to "
    "AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL or AWS itself.",
)
@click.pass_context
def remote_add(ctx: click.Context, name: str, url: str, endpoint_url: str | None) -> None:
    """Add a remote called NAME at URL."""
    stored = remote_config.add(_repo(ctx), name, url, endpoint_url)
    click.echo(f"Added remote {name} -> {stored}")


@remote.command("list")
@json_option
@click.pass_context
def remote_list(ctx: click.Context, as_json: bool) -> None:
    """List remotes."""
    known = remote_config.remotes(_repo(ctx))
    if as_json:
        _emit_json(known)
        return
    for name, entry in sorted(known.items()):
        extra = f"  (endpoint {entry['endpoint_url']})" if entry.get("endpoint_url") else ""
        click.echo(f"{name}\t{entry['url']}{extra}")


@remote.command("remove")
@click.argument("name")
@click.pass_context
def remote_remove(ctx: click.Context, name: str) -> None:
    """Forget the remote NAME (nothing on the remote is touched)."""
    remote_config.remove(_repo(ctx), name)
    click.echo(f"Removed remote {name}")


def _split_remote(
    repo_remotes: Mapping[str, object], args: tuple[str, ...]
) -> tuple[str | None, tuple[str, ...]]:
    """The first argument is a remote when it names one, as in 'git push origin main'."""
    if args and args[0] in repo_remotes:
        return args[0], args[1:]
    return None, args


@cli.command()
@click.argument("args", nargs=-1, metavar="[REMOTE] [NAME[@REF]]...")
@click.option(
    "--force",
    is_flag=True,
    help="Publish your value of tags that were moved (or deleted) both here and on the "
    "remote, and your copy of versions you pushed that differ on the remote.",
)
@json_option
@click.pass_context
def push(ctx: click.Context, args: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Send versions (default: all, with the ancestors of those named) and the objects the
    remote lacks."""
    repo = _repo(ctx)
    name, specs = _split_remote(remote_config.remotes(repo), args)
    from .. import sync  # imported here: other commands start without it

    with _transfer_bar("push") as bar:
        report = sync.push(repo, name, specs, progress=bar, force=force)
    _report(report, "Sent", as_json)


_FULL = click.option(
    "--full",
    is_flag=True,
    help="Fetch every version's data now, for work offline (default from a lazy clone's "
    "remote: refs, records and manifests; the data when a version is first read).",
)


@cli.command()
@click.argument("args", nargs=-1, metavar="[REMOTE] [NAME]...")
@_FULL
@json_option
@click.pass_context
def pull(ctx: click.Context, args: tuple[str, ...], full: bool, as_json: bool) -> None:
    """Fetch families (default: all) and the objects this registry lacks."""
    repo = _repo(ctx)
    name, families = _split_remote(remote_config.remotes(repo), args)
    from .. import sync  # imported here: other commands start without it

    with _transfer_bar("pull") as bar:
        report = sync.pull(repo, name, families, progress=bar, full=full)
    _report(report, "Received", as_json)
    repack_failed = auto_gc_warning(repo)
    if repack_failed:
        click.echo(f"warning: {repack_failed}", err=True)


@cli.command()
@click.argument("url")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--endpoint-url", help="An S3-compatible endpoint for this remote.")
@_FULL
@json_option
def clone(
    url: str, directory: Path | None, endpoint_url: str | None, full: bool, as_json: bool
) -> None:
    """Make a new registry in DIRECTORY from the remote at URL (remote 'origin'): lazy,
    fetching each version's data when it is first read, unless --full."""
    dest = directory or Path(url.rstrip("/").rsplit("/", 1)[-1] or "registry")
    options = {"endpoint_url": endpoint_url} if endpoint_url else None
    from .. import sync  # imported here: other commands start without it

    with _transfer_bar("clone") as bar:
        repo, report = sync.clone(url, dest, options, progress=bar, full=full)
    if as_json:
        _emit_json({"root": str(repo.root), **report.__dict__})
        return
    click.echo(f"Cloned {url} into {repo.root}")
    _report(report, "Received", as_json)
