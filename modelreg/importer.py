"""``modelreg import DIR NAME``: a folder of checkpoints, registered as versions of one family.

What counts as a model, in DIR itself (not below): a file whose first bytes are a torch
checkpoint or safetensors, or whose suffix is a model format's (``MODEL_SUFFIXES``); and a
subfolder holding such a file directly (a ``save_pretrained`` folder, a ``checkpoint-500/``
of a Hugging Face Trainer). Hidden entries, the registry's own store and its checkout folder
are left out. They are registered oldest first, by modification time (a folder's is that of
its newest file), then by name.

Metrics and params come from a *sidecar* when there is one: ``x.json``, ``x.yaml`` or
``x.yml`` beside ``x.pt`` (or ``x.pt.json`` ...; ``folder.json`` ... for a folder), else, in a
folder, ``metrics.json``/``metrics.yaml`` or a Trainer's ``trainer_state.json``. In a
sidecar, keys naming a version field (``metrics``, ``params``, ``description``, ``dataset``,
...) set that field; any other top-level number is a metric (but ``epoch``, ``step`` and
``global_step``, which say where the run was, are params) and text or true/false a param.
From ``trainer_state.json``: the numbers logged at its last step are the metrics,
``global_step`` and ``epoch`` the params.

Running it again registers only what is new: a model whose file name and content are those
of a version of the family already is skipped (so an interrupted import resumes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import formats, maintenance, metadata, names
from .chunking import ChunkParams
from .errors import InvalidInputError, ModelregError, NotFoundError
from .files import STORE_DIRNAME
from .refs import YamlRefusedError, yaml_load
from .repo import Repository

MODEL_SUFFIXES = frozenset(
    {
        ".pt",
        ".pth",
        ".ckpt",
        ".bin",
        ".safetensors",
        ".onnx",
        ".gguf",
        ".h5",
        ".keras",
        ".tflite",
        ".pb",
        ".msgpack",
        ".npz",
        ".joblib",
        ".pkl",
    }
)
SIDECAR_SUFFIXES = (".json", ".yaml", ".yml")
FOLDER_SIDECARS = ("metrics.json", "metrics.yaml", "metrics.yml", "trainer_state.json")
TRAINER_STATE = "trainer_state.json"
SIDECAR_MAX = 16 << 20
PROGRESS_KEYS = ("epoch", "step", "global_step")  # where the run was: params, not metrics


@dataclass
class Candidate:
    path: Path
    mtime: float
    sidecar: Path | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    version: str | None = None  # the version it gets (planned) or got
    already: str | None = None  # 'NAME@vN' holding the same file already: skipped


@dataclass
class ImportPlan:
    name: str
    directory: Path
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (entry, why)

    @property
    def new(self) -> list[Candidate]:
        return [c for c in self.candidates if c.already is None]


def is_model_file(path: Path) -> bool:
    if path.suffix.lower() in MODEL_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(formats.HEAD)
    except OSError:
        return False
    return any(fmt.detect(head) for fmt in formats.FORMATS)


def _visible(folder: Path) -> list[os.DirEntry[str]]:
    return sorted(
        (e for e in os.scandir(folder) if not e.name.startswith(".")), key=lambda e: e.name
    )


def _folder_mtime(folder: Path) -> float:
    times = [e.stat().st_mtime for e in _visible(folder) if e.is_file()]
    return max(times, default=folder.stat().st_mtime)


def plan(
    directory: Path,
    name: str,
    repo: Repository | None,
    params: ChunkParams | None = None,
    given: dict[str, Any] | None = None,
) -> ImportPlan:
    """What ``import`` would register, in order, each with its sidecar's fields checked and
    the version it would get; raises before anything is written when some input is bad.
    ``given`` fields (the command line's) apply to every model and win over a sidecar's, in
    ``params`` and ``metrics`` key by key."""
    names.check_family(name)
    given = metadata.check_metadata(given or {})
    if not directory.is_dir():
        raise NotFoundError(f"no such folder: {directory}", hint="give the folder of checkpoints")
    own = {repo.dir.resolve(), repo.checkout_root.resolve()} if repo else set()
    result = ImportPlan(name, directory)
    for entry in _visible(directory):
        path = Path(entry.path)
        if entry.name == STORE_DIRNAME or path.resolve() in own:
            continue
        if entry.is_file():
            if is_model_file(path):
                sidecar = _sidecar(path)
                result.candidates.append(Candidate(path, entry.stat().st_mtime, sidecar))
        elif entry.is_dir():
            inside = [Path(e.path) for e in _visible(path) if e.is_file()]
            if any(is_model_file(p) for p in inside):
                sidecar = _sidecar(path) or next(
                    (path / n for n in FOLDER_SIDECARS if (path / n).is_file()), None
                )
                result.candidates.append(Candidate(path, _folder_mtime(path), sidecar))
            else:
                result.skipped.append((f"{entry.name}/", "holds no model file directly"))
    if not result.candidates:
        raise InvalidInputError(
            f"found no model files in {directory}",
            hint="import registers torch checkpoints, safetensors and other model files, or "
            "folders holding one, found directly in the folder",
        )
    result.candidates.sort(key=lambda c: (c.mtime, c.path.name))
    for c in result.candidates:
        found = read_sidecar(c.sidecar) if c.sidecar else {}
        c.fields = {**found, **given}
        for key in ("metrics", "params"):
            if key in found and key in given:
                c.fields[key] = {**found[key], **given[key]}
    _number(result, repo, params)
    return result


def _sidecar(path: Path) -> Path | None:
    for base in (path.with_suffix(""), path) if path.suffix else (path,):
        for suffix in SIDECAR_SUFFIXES:
            candidate = base.with_name(base.name + suffix)
            if candidate != path and candidate.is_file():
                return candidate
    return None


def _number(result: ImportPlan, repo: Repository | None, params: ChunkParams | None) -> None:
    """The version each new candidate gets; a candidate whose file name and content a
    version of the family has already is marked ``already`` instead."""
    refs = repo.refs.read(result.name) if repo else None
    have: dict[tuple[str, int], list[tuple[str, str]]] = {}
    if repo is not None and refs is not None and refs.versions:
        for rec in repo.versions(result.name):
            key = (rec["source"], rec["size"])
            have.setdefault(key, []).append((rec["version"], rec["content_hash"]))
    chunking = params or (repo.chunk_params if repo else ChunkParams())
    next_number = names.version_number(refs.next_version()) if refs else 1
    for c in result.candidates:
        same = have.get((c.path.name, _size(c.path)))
        if same:
            digest = maintenance.content_hash(c.path, chunking)
            match = next((v for v, h in same if h == digest), None)
            if match is not None:
                c.already = f"{result.name}@{match}"
                continue
        c.version = f"v{next_number}"
        next_number += 1


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in maintenance.files_under(path))
    return path.stat().st_size


def read_sidecar(path: Path) -> dict[str, Any]:
    """The version fields a sidecar gives (see the module docstring), checked as register
    checks them; a sidecar that cannot be read is refused naming the file."""
    try:
        raw = path.read_bytes() if path.stat().st_size <= SIDECAR_MAX else None
    except OSError as e:
        raise InvalidInputError(f"cannot read {path}: {e.strerror}") from None
    if raw is None:
        raise InvalidInputError(f"{path} is too large for a sidecar of metrics")
    try:
        data = json.loads(raw) if path.suffix == ".json" else yaml_load(raw)
    except (ValueError, YamlRefusedError) as e:
        raise InvalidInputError(
            f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'} "
            f"({' '.join(str(e).split())[:120]})",
            hint="fix the file, or move it out of the folder",
        ) from None
    except Exception:  # yaml.YAMLError
        raise InvalidInputError(
            f"{path} is not valid YAML", hint="fix the file, or move it out of the folder"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"{path} is not a mapping of names to values", hint='e.g. {"accuracy": 0.91}'
        )
    fields = _trainer_state(data) if path.name == TRAINER_STATE else _fields(data)
    try:
        return metadata.check_metadata(fields)
    except ModelregError as e:
        raise InvalidInputError(f"{path}: {e.args[0]}", hint=e.hint or None) from None


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {k: v for k, v in data.items() if k in metadata.USER_FIELDS}
    metrics = dict(fields.get("metrics") or {})
    params = dict(fields.get("params") or {})
    for key, value in data.items():
        if key in metadata.USER_FIELDS or not isinstance(key, str):
            continue
        if key in PROGRESS_KEYS and isinstance(value, (int, float)):
            params.setdefault(key, value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics.setdefault(key, value)
        elif isinstance(value, (str, bool)):
            params.setdefault(key, value)
    if metrics:
        fields["metrics"] = metrics
    if params:
        fields["params"] = params
    return fields


def _trainer_state(state: dict[str, Any]) -> dict[str, Any]:
    """A Hugging Face Trainer's ``trainer_state.json``: what was logged at its last step."""
    history = state.get("log_history")
    step = state.get("global_step")
    metrics: dict[str, Any] = {}
    for entry in history if isinstance(history, list) else []:
        if isinstance(entry, dict) and entry.get("step") == step:
            metrics.update(
                {
                    k: v
                    for k, v in entry.items()
                    if k not in ("step", "epoch")
                    and isinstance(v, (int, float))
                    and not isinstance(v, bool)
                }
            )
    params = {
        k: state[k] for k in ("global_step", "epoch") if isinstance(state.get(k), (int, float))
    }
    return {"metrics": metrics or None, "params": params or None}


def estimate(result: ImportPlan, repo: Repository | None) -> maintenance.ScanEstimate:
    """What storing the new candidates would add, as ``stats --scan`` counts it."""
    params = repo.chunk_params if repo else ChunkParams()
    return maintenance.scan_many(
        [c.path for c in result.new], params, repo.objects if repo else None
    )


def run(
    repo: Repository,
    result: ImportPlan,
    on_done: Callable[[Candidate, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Register the new candidates in order; ``on_done(candidate, record)`` after each."""
    records = []
    for c in result.new:
        rec = repo.register(result.name, c.path, **c.fields)
        c.version = rec["version"]
        records.append(rec)
        if on_done is not None:
            on_done(c, rec)
    return records
