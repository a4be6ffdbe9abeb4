"""The typed objects (modelreg/model.py): every stored record, tree and manifest parses and
gives back its exact bytes; each malformed form is refused with the error readers rely on.
And the one walk of a version's objects (modelreg/walk.py)."""

from __future__ import annotations

import copy
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from modelreg.errors import MalformedObjectError
from modelreg.maintenance import fsck
from modelreg.model import Chunk, FileManifest, Tree, VersionRecord
from modelreg.objects import canonical_json
from modelreg.repo import Repository
from modelreg.walk import MAX_STRUCTURED_BYTES, needed_objects

from .conftest import write_bytes

FIXTURE = Path(__file__).parent / "fixtures" / "format1-registry.tar.gz"
PARSERS: dict[str, Callable[[object], Any]] = {
    "version": VersionRecord.parse,
    "file": FileManifest.parse,
    "tree": Tree.parse,
}


def _structured(repo: Repository) -> dict[str, tuple[bytes, dict[str, Any]]]:
    """Every record, tree and manifest in the store: id -> (stored bytes, JSON)."""
    found = {}
    for oid in {c.oid for c in repo.objects.copies()}:
        raw = repo.objects.get(oid)
        try:
            obj = json.loads(raw)
        except ValueError:
            continue  # a chunk
        if isinstance(obj, dict) and obj.get("type") in PARSERS:
            found[oid] = (raw, obj)
    return found


def _assert_round_trips(repo: Repository) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for oid, (raw, obj) in _structured(repo).items():
        typed = PARSERS[obj["type"]](obj)
        assert canonical_json(typed.to_json()) == raw, oid
        assert type(typed).parse(typed.to_json()) == typed
        kinds[obj["type"]] = kinds.get(obj["type"], 0) + 1
        if isinstance(typed, VersionRecord):
            kinds[typed.kind] = kinds.get(typed.kind, 0) + 1
    return kinds


@pytest.fixture
def made(repo: Repository, repo_dir: Path) -> Repository:
    """A file version (safetensors: spans, chunks and inline parts) and a folder version."""
    weights = {"w": np.arange(300_000, dtype=np.float32), "b": np.ones(7, dtype=np.float32)}
    save_file(weights, str(repo_dir / "model.safetensors"))
    repo.register(
        "st",
        repo_dir / "model.safetensors",
        description="première ligne",
        metrics={"acc": 0.91, "loss": 3},
        params={"lr": 0.1, "opt": "adam"},
        input_shape=[1, 3],
    )
    folder = repo_dir / "folder"
    (folder / "sub").mkdir(parents=True)
    write_bytes(folder / "big.bin", 3 << 20)
    write_bytes(folder / "sub" / "tiny.txt", 10, seed=2)
    repo.register("dir", folder, framework="none")
    repo.register("dir", folder, parent="dir@v1")  # inherits framework; names a parent
    return repo


def test_every_object_register_writes_round_trips_byte_for_byte(made: Repository) -> None:
    kinds = _assert_round_trips(made)
    assert kinds["version"] == 3 and kinds["file"] >= 3 and kinds["tree"] == 1
    assert kinds["dir"] == 2 and kinds["file"] >= 1


def test_every_object_of_a_format_1_registry_round_trips(tmp_path: Path) -> None:
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    (root,) = [p.parent.parent for p in tmp_path.rglob(".modelreg/config.yaml")]
    kinds = _assert_round_trips(Repository(root))
    assert kinds["version"] >= 2 and kinds["tree"] >= 1 and kinds["dir"] >= 1


def test_the_typed_record_says_what_callers_used_to_switch_on(made: Repository) -> None:
    st = made.lookup("st@v1")
    rec = made.version_record(made.family("st").versions["v1"])
    assert (rec.kind, rec.is_dir, rec.root_type, rec.label) == ("file", False, "file", "st@v1")
    assert rec.manifest_ids(made.objects) == [st["root"]]
    assert rec.metadata["metrics"] == {"acc": 0.91, "loss": 3}
    manifest = FileManifest.parse(made.objects.get_json(rec.root))
    assert manifest.spans and manifest.chunk_ids() == [c.oid for c in manifest.chunks()]
    assert all(isinstance(c, Chunk) and c.length > 0 for c in manifest.chunks())

    d = made.version_record(made.family("dir").versions["v2"])
    assert d.is_dir and d.parent == "dir@v1" and d.metadata["framework"] == "none"
    tree = d.tree(made.objects)
    assert sorted(tree.entries) == ["big.bin", "sub/tiny.txt"]
    assert d.manifest_ids(made.objects) == tree.manifest_ids()
    # The public view is still the stored dict (plus tags), not the typed object.
    view = made.lookup("dir@v2")
    assert isinstance(view, dict) and view["tags"] == ["latest"]
    shown = VersionRecord.of_view(view).to_json()
    assert shown.pop("tags") == ["latest"] and shown == d.to_json()


def _sample(made: Repository, kind: str) -> dict[str, Any]:
    for _raw, obj in _structured(made).values():
        wanted = {"file": bool(obj.get("spans")), "version": obj.get("name") == "st"}
        if obj["type"] == kind and wanted.get(kind, True):
            return copy.deepcopy(obj)
    raise AssertionError(kind)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj.__setitem__(key, value)


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj.pop(key)


MALFORMED = [
    ("version", _set("type", "file"), "version record: it is not a version record"),
    ("version", _set("name", "../x"), "its name or version is malformed"),
    ("version", _set("version", "3"), "its name or version is malformed"),
    ("version", _set("kind", "link"), "its kind 'link' is neither file nor dir"),
    ("version", _set("root", [1]), "its root [1] is not an object id"),
    ("version", _set("size", True), "its size is not a whole number"),
    ("version", _set("size", -1), "its size is not a whole number"),
    ("version", _set("format", 3), "its content_hash or format is not text"),
    ("version", _set("source", "a/b"), "its source 'a/b' is not a plain file or folder name"),
    ("version", _set("source", ".."), "its source '..' is not a plain file or folder name"),
    ("version", _set("format", "\x1b[2J"), "its content_hash or format holds a control"),
    ("version", _set("parent", "st@production"), "its parent 'st@production' is not NAME@vN"),
    ("version", _set("parent", "st@v1"), "its parent st@v1 is the version itself"),
    ("version", _set("inspect", []), "its inspect summary is not a mapping"),
    ("version", _drop("registered_at"), "its registered_at is not text"),
    ("version", _set("registered_at", "noon"), "its registered_at 'noon' is not an ISO 8601"),
    ("version", _set("metrics", []), "its metrics has the wrong type"),
    ("version", _set("metrics", {"a": True}), "a metric is neither a number nor text"),
    ("version", _set("description", "\x1b]0;x\x07"), "its description is invalid"),
    ("file", _set("type", "tree"), "file manifest: it is not a file manifest"),
    ("file", _set("hash", "zz"), "its size or hash is missing or malformed"),
    ("file", _drop("size"), "its size or hash is missing or malformed"),
    ("file", _set("format", None), "its format is not text"),
    ("file", _set("parts", {}), "its parts are not a list"),
    ("file", lambda m: m["parts"].append({"b": "!!"}), "an inline part is not base64"),
    ("file", lambda m: m["parts"].append({"o": "x", "n": 1}), "a part is neither inline"),
    ("file", lambda m: m["parts"].pop(), "its parts add up to"),
    ("file", lambda m: m["spans"].append(["x", 0, 1 << 40]), "a span is malformed or outside"),
    ("file", _set("spans", 7), "its spans are not a list"),
    ("tree", _set("type", "file"), "tree: it is not a tree"),
    ("tree", _set("entries", []), "its entries are not a mapping"),
    (
        "tree",
        lambda t: t["entries"].__setitem__("../up", {}),
        "unsafe path: path '../up' leaves its directory",
    ),
    (
        "tree",
        lambda t: t["entries"]["big.bin"].__setitem__("manifest", 1),
        "the entry of 'big.bin' is malformed",
    ),
    ("tree", _set("size", 1), "its size is not the sum of its files' sizes"),
    ("tree", _set("hash", "0" * 32), "its hash is not the one its entries give"),
]


@pytest.mark.parametrize(("kind", "spoil", "message"), MALFORMED)
def test_a_malformed_object_is_refused_saying_what_is_wrong(
    made: Repository, kind: str, spoil: Callable[[dict[str, Any]], None], message: str
) -> None:
    obj = _sample(made, kind)
    PARSERS[kind](obj)  # sound before it is spoiled
    spoil(obj)
    with pytest.raises(MalformedObjectError, match="not a well-formed") as caught:
        PARSERS[kind](obj)
    assert message in caught.value.args[0]


def test_unknown_keys_are_kept_so_a_newer_modelregs_fields_survive(made: Repository) -> None:
    for kind in PARSERS:
        obj = _sample(made, kind)
        obj["added_later"] = {"x": 1}
        assert PARSERS[kind](obj).to_json() == obj


def test_the_walk_visits_what_a_version_needs_and_descends_only_where_asked(
    made: Repository,
) -> None:
    record_oid = made.family("dir").versions["v1"]
    rec = made.version_record(record_oid)
    manifests = rec.manifest_ids(made.objects)
    chunks = [c for m in manifests for c in FileManifest.parse(made.objects.get_json(m)).chunks()]
    assert chunks  # big.bin is cut into chunks

    seen: list[str] = []
    limits: dict[str, int] = {}

    def here(oid: str) -> bool:
        seen.append(oid)
        return True

    needed_objects(made.objects, record_oid, here, limits)
    assert seen[:3] == [record_oid, rec.root, manifests[0]]
    assert set(seen) == {record_oid, rec.root, *manifests, *(c.oid for c in chunks)}
    assert all(limits[c.oid] == c.length for c in chunks)
    assert limits[record_oid] == limits[rec.root] == MAX_STRUCTURED_BYTES

    stopped: list[str] = []
    needed_objects(made.objects, record_oid, lambda oid: stopped.append(oid) or oid != rec.root)
    assert stopped == [record_oid, rec.root]  # the tree is not read: it is "absent"


def test_the_walk_names_the_object_it_found_malformed(made: Repository) -> None:
    obj = _sample(made, "version")
    obj["kind"] = "dir" if obj["kind"] == "file" else "file"
    oid = made.objects.add_json(obj, loose=True)
    with pytest.raises(MalformedObjectError, match=f"object {oid} is not a well-formed version"):
        needed_objects(made.objects, oid, lambda _: True)


def test_a_description_of_several_lines_is_well_formed(repo: Repository, repo_dir: Path) -> None:
    """register accepts line breaks in a description (and only there): fsck and pull must
    not call the record it wrote malformed (before: 'description holds a control
    character (U+000A)')."""
    write_bytes(repo_dir / "a.bin", 5000)
    rec = repo.register("m", repo_dir / "a.bin", description="line one\n\tline two")
    report = fsck(repo)
    assert report.ok and not report.problems, report.problems
    assert repo.version_record(repo.family("m").versions["v1"]).metadata == {
        "description": rec["description"]
    }
    spoiled = {**repo.record(repo.family("m").versions["v1"]), "dataset": "a\nb"}
    with pytest.raises(MalformedObjectError, match="dataset holds a control character"):
        VersionRecord.parse(spoiled)
