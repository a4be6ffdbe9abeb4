"""Commands that meet other tools: export, import --hf, sign and verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .. import export as export_mod
from ..errors import AlreadyExistsError, CorruptObjectError, ModelregError, NotFoundError
from ..repo import Record, Repository
from ..words import clean, human_bytes, plural, utc_time
from ._base import _emit_json, _progress, _public, _repo, cli, json_option


@cli.command()
@click.argument("spec", metavar="NAME[@REF]")
@click.argument("directory", metavar="DIR", required=False, type=click.Path(path_type=Path))
@click.option(
    "--hf-cache",
    "hf_repo",
    metavar="REPO_ID",
    help="Place the version in the Hugging Face hub cache as REPO_ID's main revision "
    "(blobs, a snapshot, refs/main), where Hugging Face libraries find it offline.",
)
@click.option(
    "--oci",
    "oci_dir",
    metavar="DIR",
    type=click.Path(path_type=Path),
    help="Write an OCI image layout with CNCF ModelPack media types (new, empty, or an OCI "
    "layout to add the version to), named by its vN: oras cp --from-oci-layout DIR:vN ...",
)
@click.option(
    "--signature",
    "signature_file",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With DIR: also write the version's signature (the newest, when several keys "
    "signed it) to FILE, for 'model_signing verify key DIR --signature FILE'.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --hf-cache: the hub cache (default: HF_HUB_CACHE, $HF_HOME/hub, "
    "~/.cache/huggingface/hub).",
)
@json_option
@click.pass_context
def export(
    ctx: click.Context,
    spec: str,
    directory: Path | None,
    hf_repo: str | None,
    oci_dir: Path | None,
    signature_file: Path | None,
    cache_dir: Path | None,
    as_json: bool,
) -> None:
    """Write one version as plain files into DIR (a new or empty folder): what
    from_pretrained, safetensors or torch.load read. With --hf-cache, into the Hugging Face
    cache instead, or as an OCI image layout with --oci."""
    repo = _repo(ctx)
    if sum(x is not None for x in (directory, hf_repo, oci_dir)) != 1:
        raise click.UsageError("give exactly one of DIR, --hf-cache REPO_ID and --oci DIR")
    if cache_dir is not None and hf_repo is None:
        raise click.UsageError("--cache-dir goes with --hf-cache")
    if signature_file is not None and directory is None:
        raise click.UsageError("--signature goes with DIR (a plain folder)")
    rec = repo.lookup(spec)
    label = export_mod.label(rec)
    signature = _signature_for(repo, rec, signature_file) if signature_file else None
    with _progress(f"export {label}", rec["size"]) as bar:
        step = bar or export_mod.no_progress
        if hf_repo is not None:
            from .. import hfcache

            snap, commit = hfcache.export_snapshot(repo, rec, hf_repo, cache_dir, step)
            out: dict[str, Any] = {"path": str(snap), "repo_id": hf_repo, "commit": commit}
            said = f"Placed {label} in the Hugging Face cache as {hf_repo}@{commit[:12]} ({snap})"
        elif oci_dir is not None:
            from .. import oci

            entry = oci.export_layout(repo, rec, oci_dir, step)
            out = {"path": str(oci_dir.resolve()), "ref": rec["version"], **entry}
            said = (
                f"Wrote {label} to the OCI layout {oci_dir} as {rec['version']} "
                f"({entry['digest'][:19]}); oras cp --from-oci-layout {oci_dir}:{rec['version']} "
                "REGISTRY/REPO:TAG sends it"
            )
        else:
            assert directory is not None
            digests = export_mod.export_folder(repo, rec, directory, step)
            out = {"path": str(directory.resolve()), "sha256": digests}
            said = (
                f"Exported {label} to {directory} ({plural(len(digests), 'file')}, "
                f"{human_bytes(rec['size'])})"
            )
            if signature_file is not None and signature is not None:
                _write_signature(signature_file, signature, digests)
                out["signature"] = str(signature_file)
                said += f"; its signature by {signature[0]} is in {signature_file}"
    if as_json:
        _emit_json({"version": label, **out})
    else:
        click.echo(said)


def _signature_for(repo: Repository, rec: Record, target: Path) -> tuple[str, bytes]:
    """(signer, bundle) of the version's newest signature; refused before anything is
    written when there is none or ``target`` exists."""
    from .. import signatures

    entries = signatures.of(repo, rec)
    if not entries:
        raise NotFoundError(
            f"{export_mod.label(rec)} is not signed",
            hint="sign it first with 'modelreg sign NAME@REF --key KEY.pem'",
        )
    if target.exists() or target.is_symlink():
        raise AlreadyExistsError(f"{target} already exists", hint="choose a new signature file")
    newest = max(entries, key=lambda e: e["signed_at"])
    return newest["signer"], signatures.bundle(repo, newest)


def _write_signature(target: Path, signature: tuple[str, bytes], files: dict[str, str]) -> None:
    from .. import _fs, signatures

    wrong = signatures.mismatches(
        signatures.read_statement(signature[1]),
        {rel: sha for rel, sha in files.items() if signatures.signed_path(rel)},
    )
    if wrong:
        raise CorruptObjectError(f"the exported files do not match the signature: {wrong[0]}")
    _fs.atomic_write(target, signature[1])


def hf_import(
    ctx: click.Context,
    repo_id: str | None,
    name: str | None,
    revision: str,
    cache_dir: Path | None,
    dry_run: bool,
    as_json: bool,
    **fields: Any,
) -> None:
    """``import --hf``: list the cache (no REPO_ID), say what one import would add
    (``--dry-run``), or register the snapshot."""
    from .. import hfcache

    if repo_id is None:
        _list_cache(ctx, hfcache.hub_cache(cache_dir), as_json)
        return
    if name is None:
        raise click.UsageError("import --hf needs REPO_ID and NAME")
    if dry_run:
        _list_cache(ctx, hfcache.hub_cache(cache_dir), as_json, only=(repo_id, revision))
        return
    repo = _repo(ctx)
    rec = hfcache.import_snapshot(repo, name, repo_id, revision, cache_dir, **fields)
    if as_json:
        _emit_json(_public(repo, rec))
    else:
        click.echo(
            f"Imported {repo_id}@{rec['params']['hf_commit'][:12]} as "
            f"{rec['name']}@{rec['version']} ({human_bytes(rec['size'])}; "
            f"{human_bytes(repo.objects.added_bytes)} new in the store)"
        )


def _list_cache(
    ctx: click.Context, cache: Path, as_json: bool, only: tuple[str, str] | None = None
) -> None:
    """The cache's snapshots and what importing each would add (``only``: the snapshot that
    REPO_ID at REVISION names)."""
    from .. import hfcache

    try:
        repo: Repository | None = _repo(ctx)
    except ModelregError:
        repo = None
    snapshots = hfcache.cached(cache)
    if only is not None:
        _folder, commit = hfcache.resolve(cache, *only)
        snapshots = [s for s in snapshots if (s.repo_id, s.commit) == (only[0], commit)]
    rows: list[dict[str, Any]] = []
    for snap in snapshots:
        adds = None if snap.problem else hfcache.would_add(repo, snap).modelreg_bytes
        rows.append(
            {
                "repo_id": snap.repo_id,
                "commit": snap.commit,
                "revisions": snap.revisions,
                "files": len(snap.files),
                "size": snap.size,
                "would_add": adds,
                "problem": snap.problem,
            }
        )
    if as_json:
        _emit_json({"cache": str(cache), "registry": repo and str(repo.root), "snapshots": rows})
        return
    if not rows:
        click.echo(f"No snapshots in the Hugging Face cache {cache}")
        return
    where = f"registry {repo.root}" if repo else "an empty registry"
    click.echo(f"Hugging Face cache {cache}: {plural(len(rows), 'snapshot')}")
    table = [["REPO", "REVISIONS", "COMMIT", "FILES", "SIZE", f"WOULD ADD (to {where})"]]
    for r in rows:
        table.append(
            [
                r["repo_id"],
                ",".join(r["revisions"]) or "-",
                r["commit"][:12],
                str(r["files"]),
                human_bytes(r["size"]),
                human_bytes(r["would_add"]) if r["problem"] is None else f"refused: {r['problem']}",
            ]
        )
    widths = [max(len(clean(row[i])) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(clean(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@cli.command()
@click.argument("spec", metavar="NAME[@REF]")
@click.option(
    "--key",
    "private_key",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="An elliptic-curve private key in PEM (its password in MODELREG_KEY_PASSWORD).",
)
@json_option
@click.pass_context
def sign(ctx: click.Context, spec: str, private_key: Path, as_json: bool) -> None:
    """Sign one version in the OpenSSF model-signing format (an in-toto statement of every
    file's sha256, in a DSSE envelope, in a Sigstore bundle), kept with the version and
    carried by push and pull. Needs 'pip install modelreg[signing]'."""
    from .. import modelsign

    repo = _repo(ctx)
    rec = repo.lookup(spec)
    entry = modelsign.sign_version(repo, rec, modelsign.key_signer(private_key))
    if as_json:
        _emit_json({"version": export_mod.label(rec), **entry})
    else:
        click.echo(f"Signed {export_mod.label(rec)} by {entry['signer']}")


@cli.command()
@click.argument("spec", metavar="NAME[@REF]")
@click.option(
    "--public-key",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The PEM public key of the signer.",
)
@click.pass_context
def verify(ctx: click.Context, spec: str, public_key: Path) -> None:
    """Check a version's signature by PUBLIC_KEY against the bytes modelreg rebuilds from its
    store; exit 1 when it is missing, forged, or the bytes differ."""
    from .. import modelsign

    repo = _repo(ctx)
    rec = repo.lookup(spec)
    entry, count = modelsign.verify_version(repo, rec, public_key)
    click.echo(
        f"Verified {export_mod.label(rec)}: signed by {entry['signer']} on "
        f"{utc_time(entry['signed_at'])}; {plural(count, 'file')} match"
    )
