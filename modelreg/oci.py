"""A version as an OCI image layout with CNCF ModelPack media types, which ``oras cp
--from-oci-layout DIR:vN`` or ``skopeo copy oci:DIR:vN`` send to any registry::

    DIR/
      oci-layout                {"imageLayoutVersion": "1.0.0"}
      index.json                one manifest per exported version, named by its vN
      blobs/sha256/<hex>        the model config, one raw layer per file, the manifest

Each file is one uncompressed layer (weights gain nothing from compression) annotated with
its path; the config blob holds the version's metadata in ModelPack's ``descriptor`` and
``config``, and the manifest's annotations hold the rest. The same version always gives
the same digests. A layout already in DIR takes more versions: blobs are shared by digest,
and ``index.json`` (written last, atomically) gains or replaces that version's entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from . import _fs, export
from .errors import AlreadyExistsError, InvalidInputError
from .repo import Record, Repository

LAYOUT_FILE = "oci-layout"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
ARTIFACT = "application/vnd.cncf.model.manifest.v1+json"
CONFIG = "application/vnd.cncf.model.config.v1+json"
WEIGHT = "application/vnd.cncf.model.weight.v1.raw"
WEIGHT_CONFIG = "application/vnd.cncf.model.weight.config.v1.raw"
DOC = "application/vnd.cncf.model.doc.v1.raw"
CODE = "application/vnd.cncf.model.code.v1.raw"
FILEPATH = "org.cncf.model.filepath"
REF_NAME = "org.opencontainers.image.ref.name"

_CONFIG_FILES = (".json", ".yaml", ".yml", ".txt", ".model", ".tiktoken", ".jinja")
_CODE_FILES = (".py", ".sh", ".ipynb")


def media_type(rel: str) -> str:
    """The ModelPack layer type a file gets by its name: weights unless it is clearly a
    document, code or a configuration file (tokenizer, config.json)."""
    name = rel.rsplit("/", 1)[-1].lower()
    if name.endswith(".md") or name.split(".")[0] in ("license", "readme", "notice"):
        return DOC
    if name.endswith(_CODE_FILES):
        return CODE
    if name.endswith(_CONFIG_FILES):
        return WEIGHT_CONFIG
    return WEIGHT


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _param_size(count: object) -> str | None:
    if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
        return None
    for scale, unit in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if count >= scale:
            return f"{count / scale:.1f}{unit}"
    return str(count)


def model_config(rec: Record, diff_ids: list[str]) -> dict[str, Any]:
    descriptor = {
        "name": rec["name"],
        "version": rec["version"],
        "createdAt": rec.get("registered_at"),
        "description": rec.get("description"),
        "revision": (rec.get("params") or {}).get("hf_commit") or rec.get("git_commit"),
    }
    config = {
        "architecture": rec.get("architecture"),
        "format": rec.get("framework") or rec.get("format"),
        "paramSize": _param_size((rec.get("inspect") or {}).get("parameters")),
    }
    return {
        "descriptor": {k: v for k, v in descriptor.items() if v},
        "config": {k: v for k, v in config.items() if v},
        "modelfs": {"type": "layers", "diffIds": diff_ids},
    }


def _annotations(rec: Record) -> dict[str, str]:
    out = {
        "org.opencontainers.image.title": rec["name"],
        "org.opencontainers.image.version": rec["version"],
        "org.opencontainers.image.created": rec.get("registered_at"),
        "org.opencontainers.image.description": rec.get("description"),
        "org.opencontainers.image.revision": rec.get("git_commit"),
        "dev.modelreg.metrics": json.dumps(rec["metrics"], sort_keys=True)
        if rec.get("metrics")
        else None,
        "dev.modelreg.params": json.dumps(rec["params"], sort_keys=True)
        if rec.get("params")
        else None,
        "dev.modelreg.dataset": rec.get("dataset"),
    }
    return {k: str(v) for k, v in out.items() if v}


def _put(blobs: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    path = blobs / digest
    if not path.is_file() or path.stat().st_size != len(data):
        _fs.atomic_write(path, data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _open_layout(dest: Path) -> dict[str, Any]:
    """The layout's index (a new one for a new or empty folder); refuses anything else."""
    if (dest / LAYOUT_FILE).is_file():
        try:
            index = json.loads((dest / "index.json").read_bytes())
        except (OSError, ValueError):
            index = None
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise InvalidInputError(
                f"{dest / 'index.json'} is missing or not an OCI index",
                hint="export into a new folder",
            )
        return index
    if dest.is_dir() and any(dest.iterdir()):
        raise AlreadyExistsError(
            f"{dest} is neither empty nor an OCI image layout",
            hint="choose a new folder, or an OCI layout to add the version to",
        )
    export.check_target(dest, "the OCI layout")
    return {"schemaVersion": 2, "mediaType": INDEX, "manifests": []}


def export_layout(
    repo: Repository,
    rec: Record,
    dest: Path,
    progress: export.Progress = export.no_progress,
) -> dict[str, Any]:
    """Write (or add to) the OCI layout at ``dest``; returns the index entry of the version,
    whose ``org.opencontainers.image.ref.name`` is its vN."""
    dest = Path(os.path.abspath(dest))
    index = _open_layout(dest)
    if (dest / LAYOUT_FILE).is_file():
        return _write(repo, rec, dest, index, progress)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fs.tmp_name(dest)  # a new layout appears whole or not at all
    try:
        described = _write(repo, rec, tmp, index, progress)
        os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return described


def _write(
    repo: Repository,
    rec: Record,
    dest: Path,
    index: dict[str, Any],
    progress: export.Progress,
) -> dict[str, Any]:
    entries = export.version_files(repo, rec)
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    layers: list[dict[str, Any]] = []
    for rel, entry in sorted(entries.items()):
        _fs.check_relpath(rel)
        _path, sha256 = export.write_file(
            repo, rel, entry, blobs, lambda digest: blobs / digest, progress
        )
        layers.append(
            {
                "mediaType": media_type(rel),
                "digest": f"sha256:{sha256}",
                "size": entry.size,
                "annotations": {FILEPATH: rel},
            }
        )
    config = _put(blobs, _canonical(model_config(rec, [layer["digest"] for layer in layers])))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": ARTIFACT,
        "config": {"mediaType": CONFIG, **config},
        "layers": layers,
        "annotations": _annotations(rec),
    }
    described = {
        "mediaType": MANIFEST,
        "artifactType": ARTIFACT,
        **_put(blobs, _canonical(manifest)),
        "annotations": {REF_NAME: rec["version"]},
    }
    others = [m for m in index["manifests"] if _ref_name(m) != rec["version"]]
    index["manifests"] = [*others, described]
    _fs.atomic_write(dest / LAYOUT_FILE, _canonical({"imageLayoutVersion": "1.0.0"}))
    _fs.atomic_write(dest / "index.json", _canonical(index))
    return described


def _ref_name(entry: object) -> object:
    return (entry.get("annotations") or {}).get(REF_NAME) if isinstance(entry, dict) else None
