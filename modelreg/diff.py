"""``modelreg diff A B``: what changed between two versions, from the stored manifests.

Tensors are compared by a content key built from the ids of the chunks that hold them, so no
weights are read or loaded; only the pickle or the safetensors, GGUF or ONNX header is, to
learn the names. An ONNX model's external tensors are keyed by their bytes in the data file
beside it. The shards of one model in a folder are one namespace (``shards``): re-sharding
is no change.
"""

from __future__ import annotations

from typing import Any

from . import modelinfo, shards, words
from .formats import onnx
from .model import VersionRecord
from .repo import Record, Repository

COMPARED = (
    "framework",
    "dataset",
    "architecture",
    "input_shape",
    "params",
    "description",
    "size",
    "content_hash",
    "format",
    "source",
    "parent",
    "kind",
)


def _tensors(repo: Repository, rec: VersionRecord) -> dict[str, modelinfo.Tensor]:
    """Tensors by name; a folder's shards of one model share one namespace (see shards)."""
    if not rec.is_dir:
        return modelinfo.tensor_table(repo.objects, repo.objects.get_json(rec.root))
    manifests: dict[str, dict[str, Any]] = {}
    formats: dict[str, str] = {}
    tables: dict[str, dict[str, modelinfo.Tensor]] = {}
    for rel, entry in rec.tree(repo.objects).entries.items():
        manifests[rel] = repo.objects.get_json(entry.manifest)

    def beside(rel: str) -> modelinfo.Sibling:
        def open_(location: str) -> modelinfo.StoredFile | None:
            target = onnx.resolve(rel, location)
            m = manifests.get(target) if target else None
            return modelinfo.StoredFile(repo.objects, m) if m else None

        return open_

    for rel, manifest in manifests.items():
        info, table = modelinfo.analyze(repo.objects, manifest, beside(rel))
        formats[rel], tables[rel] = str(info["format"]), table

    def read(rel: str) -> bytes | None:
        m = manifests.get(rel)
        if m is None or int(m["size"]) > shards.MAX_INDEX:
            return None
        return modelinfo.StoredFile(repo.objects, m).read(0, int(m["size"]))

    return shards.merge(tables, shards.groups(formats, list(manifests), read))


def _files(repo: Repository, rec: VersionRecord) -> dict[str, str]:
    if not rec.is_dir:
        return {rec.source: rec.content_hash}
    return {rel: e.hash for rel, e in rec.tree(repo.objects).entries.items()}


def _delta(a: Any, b: Any) -> Any:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return b - a
    return None


def diff(repo: Repository, spec_a: str, spec_b: str) -> dict[str, Any]:
    a, b = repo.lookup(spec_a), repo.lookup(spec_b)
    out: dict[str, Any] = {
        "a": f"{a['name']}@{a['version']}",
        "b": f"{b['name']}@{b['version']}",
        "metadata": {k: [a.get(k), b.get(k)] for k in COMPARED if a.get(k) != b.get(k)},
    }
    metrics: dict[str, Any] = {}
    ma, mb = a.get("metrics") or {}, b.get("metrics") or {}
    for key in sorted(set(ma) | set(mb)):
        if ma.get(key) != mb.get(key):
            metrics[key] = {
                "a": ma.get(key),
                "b": mb.get(key),
                "delta": _delta(ma.get(key), mb.get(key)),
            }
    out["metrics"] = metrics
    out["card"] = _card_change(a.get("card"), b.get("card"))

    typed_a, typed_b = VersionRecord.of_view(a), VersionRecord.of_view(b)
    fa, fb = _files(repo, typed_a), _files(repo, typed_b)
    if typed_a.is_dir or typed_b.is_dir:
        out["files"] = {
            "changed": sorted(k for k in set(fa) & set(fb) if fa[k] != fb[k]),
            "added": sorted(set(fb) - set(fa)),
            "removed": sorted(set(fa) - set(fb)),
        }
    ta, tb = _tensors(repo, typed_a), _tensors(repo, typed_b)
    if ta or tb:
        changed = []
        for name in sorted(set(ta) & set(tb)):
            x, y = ta[name], tb[name]
            unknown = modelinfo.UNKNOWN_KEY in (x.key, y.key)
            if unknown or (x.key, x.dtype, x.shape) != (y.key, y.dtype, y.shape):
                what = "values" if (x.dtype, x.shape) == (y.dtype, y.shape) else "dtype/shape"
                changed.append(
                    {
                        "name": name,
                        "change": what,
                        "dtype": [x.dtype, y.dtype],
                        "shape": [x.shape, y.shape],
                    }
                )
        out["tensors"] = {
            "changed": changed,
            "added": [
                {"name": n, "dtype": tb[n].dtype, "shape": tb[n].shape}
                for n in sorted(set(tb) - set(ta))
            ],
            "removed": [
                {"name": n, "dtype": ta[n].dtype, "shape": ta[n].shape}
                for n in sorted(set(ta) - set(tb))
            ],
            "unchanged": len(set(ta) & set(tb)) - len(changed),
        }
    return out


def _card_change(a: str | None, b: str | None) -> str | None:
    """The model card: None when neither version has one, else unchanged, changed, added or
    removed (cards are objects, so the same text is the same id)."""
    if a == b:
        return None if a is None else "unchanged"
    return "added" if a is None else "removed" if b is None else "changed"


LIMIT = 50  # names listed per section by default


def _shown(key: str, v: Any) -> str:
    if key == "size" and isinstance(v, int):
        return f"{words.human_bytes(v)} ({v:,} bytes)"
    return words.value(v)


def _capped(lines: list[str], limit: int | None) -> list[str]:
    if limit == 0:
        return []  # --stat: the counts line says it all
    if limit is None or len(lines) <= limit:
        return lines
    return [*lines[:limit], f"  ... and {len(lines) - limit} more"]


def render(d: dict[str, Any], limit: int | None = LIMIT, stat: bool = False) -> list[str]:
    """The diff as text: counts, and up to ``limit`` names per section (all with None; none
    with ``stat``)."""
    if stat:
        limit = 0
    lines = [f"{d['a']} -> {d['b']}"]
    if d["metadata"]:
        lines.append("metadata:")
        lines += [
            f"  {k}: {_shown(k, v[0])} -> {_shown(k, v[1])}" for k, v in d["metadata"].items()
        ]
    if d["metrics"]:
        lines.append("metrics:")
        for key, m in d["metrics"].items():
            delta = f" ({m['delta']:+.4g})" if m["delta"] is not None else ""
            lines.append(f"  {key}: {words.value(m['a'])} -> {words.value(m['b'])}{delta}")
    if d.get("card") not in (None, "unchanged"):
        lines.append(f"model card: {d['card']}")
    if "files" in d:
        f = d["files"]
        lines.append(
            f"files: {len(f['changed'])} changed, {len(f['added'])} added, "
            f"{len(f['removed'])} removed"
        )
        named = [f"  ~ {n}" for n in f["changed"]] + [f"  + {n}" for n in f["added"]]
        lines += _capped(named + [f"  - {n}" for n in f["removed"]], limit)
    if "tensors" in d:
        t = d["tensors"]
        lines.append(
            f"tensors: {len(t['changed'])} changed, {len(t['added'])} added, "
            f"{len(t['removed'])} removed, {t['unchanged']} unchanged"
        )
        named = []
        for c in t["changed"]:
            extra = (
                ""
                if c["change"] == "values"
                else (f"  {c['dtype'][0]}{c['shape'][0]} -> {c['dtype'][1]}{c['shape'][1]}")
            )
            named.append(f"  ~ {c['name']}{extra}")
        named += [f"  + {x['name']}  {x['dtype']}{x['shape']}" for x in t["added"]]
        named += [f"  - {x['name']}  {x['dtype']}{x['shape']}" for x in t["removed"]]
        lines += _capped(named, limit)
    if len(lines) == 1:
        lines.append("no differences")
    return lines


def tensors_of(repo: Repository, rec: Record) -> dict[str, modelinfo.Tensor]:
    """Every tensor of a version by name (``path:name`` in a folder), read from its manifests."""
    return _tensors(repo, VersionRecord.of_view(rec))
