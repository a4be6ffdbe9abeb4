"""Commands that meet other tools: export, import --hf, sign and verify."""

from __future__ import annotations

from pathlib import Path

import click

from .. import export as export_mod
from ..words import human_bytes, plural
from ._base import _emit_json, _progress, _repo, cli, json_option


@cli.command()
@click.argument("spec", metavar="NAME[@REF]")
@click.argument("directory", metavar="DIR", required=False, type=click.Path(path_type=Path))
@json_option
@click.pass_context
def export(ctx: click.Context, spec: str, directory: Path | None, as_json: bool) -> None:
    """Write one version as plain files into DIR (a new or empty folder): what
    from_pretrained, safetensors or torch.load read."""
    repo = _repo(ctx)
    rec = repo.lookup(spec)
    label = export_mod.label(rec)
    if directory is None:
        raise click.UsageError("say where to export: DIR")
    with _progress(f"export {label}", rec["size"]) as bar:
        digests = export_mod.export_folder(repo, rec, directory, bar or export_mod.no_progress)
    if as_json:
        _emit_json({"version": label, "path": str(directory.resolve()), "sha256": digests})
    else:
        click.echo(
            f"Exported {label} to {directory} ({plural(len(digests), 'file')}, "
            f"{human_bytes(rec['size'])})"
        )
