"""``modelreg import``: a folder of checkpoints as versions of one family."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .. import importer
from ..errors import ModelregError
from ..repo import Repository
from ..views import format_warning, unsafe_warning
from ..words import clean, plural
from ._base import _emit_json, _public, _repo, cli, json_option
from .store import echo_estimate
from .versions import _pairs


def _metrics(fields: dict[str, Any]) -> str:
    shown = " ".join(f"{k}={v}" for k, v in sorted((fields.get("metrics") or {}).items()))
    return f"  {clean(shown)}" if shown else ""


@cli.command("import")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.argument("name")
@click.option(
    "-n",
    "--dry-run",
    is_flag=True,
    help="Only say what would be registered and what it would add to the store.",
)
@click.option("--framework", help="For every model, e.g. pytorch.")
@click.option("--dataset", help="For every model.")
@click.option("--architecture", help="For every model, e.g. torchvision.models.resnet18.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A param for every model (wins over a sidecar's); repeat for more.",
)
@json_option
@click.pass_context
def import_(
    ctx: click.Context,
    directory: Path,
    name: str,
    dry_run: bool,
    framework: str | None,
    dataset: str | None,
    architecture: str | None,
    params: tuple[str, ...],
    as_json: bool,
) -> None:
    """Register every model file in DIRECTORY (and each subfolder holding one) as versions
    of NAME, oldest first, with metrics from a sidecar JSON/YAML file when there is one.
    Models already registered (same file name and content) are skipped."""
    try:
        repo: Repository | None = _repo(ctx)
    except ModelregError:
        if not dry_run:
            raise
        repo = None  # a dry run works outside a registry, as 'stats --scan' does
    given = {
        "framework": framework,
        "dataset": dataset,
        "architecture": architecture,
        "params": _pairs("--param", params) or None,
    }
    plan = importer.plan(directory, name, repo, given=given)
    if dry_run:
        _dry_run(plan, repo, as_json)
        return
    assert repo is not None
    done: list[dict[str, Any]] = []

    def report(c: importer.Candidate, rec: dict[str, Any]) -> None:
        done.append(_public(repo, rec))
        if not as_json:
            click.echo(f"Registered {name}@{rec['version']} from {_entry(c.path)}{_metrics(rec)}")
        for warning in (unsafe_warning(rec), format_warning(rec)):
            if warning:
                click.echo(f"warning: {warning}", err=True)

    importer.run(repo, plan, report)
    if as_json:
        _emit_json({"registered": done, "skipped": _skipped(plan)})
        return
    for entry, why in _skipped(plan):
        click.echo(f"skipped {entry}: {why}")
    click.echo(
        f"Imported {plural(len(done), 'version')} of {name}"
        + (
            f"; {plural(len(plan.candidates) - len(done), 'model')} already there"
            if len(done) < len(plan.candidates)
            else ""
        )
    )


def _entry(path: Path) -> str:
    return f"{path.name}/" if path.is_dir() else path.name


def _skipped(plan: importer.ImportPlan) -> list[tuple[str, str]]:
    already = [(_entry(c.path), f"already {c.already}") for c in plan.candidates if c.already]
    return already + plan.skipped


def _dry_run(plan: importer.ImportPlan, repo: Repository | None, as_json: bool) -> None:
    est = importer.estimate(plan, repo)
    if as_json:
        _emit_json(
            {
                "would_register": [
                    {
                        "version": f"{plan.name}@{c.version}",
                        "path": str(c.path),
                        "sidecar": str(c.sidecar) if c.sidecar else None,
                        **c.fields,
                    }
                    for c in plan.new
                ],
                "skipped": _skipped(plan),
                "estimate": est.__dict__,
                "in_registry": str(repo.root) if repo else None,
            }
        )
        return
    for c in plan.new:
        side = f"  (from {c.sidecar.name})" if c.sidecar else ""
        click.echo(
            f"would register {plan.name}@{c.version} <- {_entry(c.path)}{_metrics(c.fields)}{side}"
        )
    for entry, why in _skipped(plan):
        click.echo(f"would skip {entry}: {why}")
    echo_estimate(est, repo)
