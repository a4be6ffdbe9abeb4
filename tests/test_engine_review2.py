"""Holes a second hostile review found in the typed objects, the damage marks and the GGUF and
ONNX readers, each with the attack that found it."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelreg import ModelRegistry
from modelreg.hashing import oid_of
from modelreg.objects import canonical_json
from modelreg.refs import FamilyRefs
from modelreg.remotes import open_remote
from modelreg.repo import Repository

from .conftest import CliRun


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, as a user runs it (no MODELREG_DEBUG)."""
    env = {k: v for k, v in os.environ.items() if k != "MODELREG_DEBUG"}
    cmd = [sys.executable, "-m", "modelreg", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def one_line_error(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr


def _register_one(root: Path) -> ModelRegistry:
    registry = ModelRegistry(root)
    weights = root.parent / f"{root.name}.pkl"
    weights.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    registry.register("m", weights)
    return registry


def _forged_records(registry: ModelRegistry) -> dict[str, bytes]:
    """m@v1's record as m@v2 with something no modelreg writes spliced in."""
    rec = registry.repo.record(registry.repo.family("m").versions["v1"])
    body = canonical_json({**rec, "version": "v2"})

    def splice(key: str, value: bytes) -> bytes:
        return body.replace(b'"source":', b'"' + key.encode() + b'":' + value + b',"source":')

    return {
        "nested 5,000 deep": splice("zz", b'{"a":' * 5000 + b"1" + b"}" * 5000),
        "nested 900 deep": splice("zz", b"[" * 900 + b"1" + b"]" * 900),
        "a lone surrogate in an unknown key": splice("zz", b'"\\ud800x"'),
        "a lone surrogate in its source": body.replace(b'"source":"', b'"source":"\\ud800'),
    }


FORGED = {  # how -> what the one line says
    "nested 5,000 deep": "is not JSON",
    "nested 900 deep": "nests deeper than 32 levels",
    "a lone surrogate in an unknown key": "is not JSON",
    "a lone surrogate in its source": "is not JSON",
}


def _publish_v2(alice: ModelRegistry, url: str, *bodies: bytes) -> Path:
    """Push alice's m, then put ``bodies`` on the remote, the last one as m@v2's record, as
    someone with write access to the remote could; a fresh registry 'bob' with it as origin."""
    alice.add_remote("origin", url)
    alice.push()
    remote = open_remote(url)
    for body in bodies:
        remote.put_object(oid_of(body), body)
    got = remote.read_ref("m")
    assert got is not None
    refs = FamilyRefs.from_yaml("m", got[0], url)
    refs.versions["v2"] = oid_of(bodies[-1])
    remote.write_ref("m", refs.to_yaml(), got[1])
    bob = url + "-bob"
    assert cli("init", bob).returncode == 0
    assert cli("-C", bob, "remote", "add", "origin", url).returncode == 0
    return Path(bob)


@pytest.mark.parametrize("how", FORGED)
def test_a_record_no_modelreg_writes_is_refused_on_pull_naming_it(tmp_path: Path, how: str) -> None:
    alice = _register_one(tmp_path / "alice")
    body = _forged_records(alice)[how]
    bob = _publish_v2(alice, str(tmp_path / "remote"), body)
    # before: pulling the 5,000-deep one failed with "internal error (RecursionError ...)";
    # the others were pulled, then 'show m@v2' (surrogates) or 'report m' (900 deep) failed
    # with an internal error
    one_line_error(cli("-C", bob, "pull", "m"), oid_of(body), FORGED[how])
    assert ModelRegistry(bob).list_families() == []


@pytest.mark.parametrize("how", FORGED)
def test_a_record_edited_in_by_hand_is_one_line_naming_it(tmp_path: Path, how: str) -> None:
    registry = _register_one(tmp_path / "reg")
    body = _forged_records(registry)[how]
    oid = registry.repo.objects.add(body, loose=True)
    registry.repo.objects.sync()
    refs = tmp_path / "reg" / ".modelreg" / "refs" / "m.yaml"
    v1 = registry.repo.family("m").versions["v1"]
    refs.write_text(refs.read_text().replace(v1, oid))  # m@v1 now names the forged record
    report = tmp_path / "report"
    for args in (
        ["show", "m@v1"],
        ["get", "m@v1"],
        ["diff", "m@v1", "m@v1"],
        ["report", "m", "-o", report],
    ):
        one_line_error(cli("-C", tmp_path / "reg", *args), oid)
    r = cli("-C", tmp_path / "reg", "fsck")
    assert r.returncode == 1 and oid in r.stdout + r.stderr, (r.stdout, r.stderr)
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr, r.stderr


def _write_gguf(path: Path, values: list[float]) -> Path:
    np = pytest.importorskip("numpy")
    gguf_pkg = pytest.importorskip("gguf")
    w = gguf_pkg.GGUFWriter(str(path), "llama")
    for i, v in enumerate(values):
        w.add_tensor(f"norm.{i}", np.array([v], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _stored_bytes(repo: Repository) -> int:
    return sum(c.stored for c in repo.objects.copies())


def test_thousands_of_tiny_tensors_are_few_parts_and_a_new_version_costs_what_changed(
    repo_dir: Path, run: CliRun
) -> None:
    values = [float(i) for i in range(5000)]
    a = _write_gguf(repo_dir / "a.gguf", values)
    values[2500] = -1.0
    b = _write_gguf(repo_dir / "b.gguf", values)
    assert run("register", "m", a).exit_code == 0
    repo = Repository(repo_dir)
    manifest = repo.objects.get_json(repo.lookup("m@v1")["root"])
    assert len(manifest["spans"]) == 5000
    assert len(manifest["parts"]) < 100  # before: 10,001 (a part per tensor, one per padding)
    before = _stored_bytes(repo)
    assert run("register", "m", b).exit_code == 0
    # before: each version repeated every tiny tensor inline in its manifest (the manifest
    # was larger than the file); now only the joined piece holding the changed one is new
    # (and the manifest's list of spans, a name and two numbers per tensor)
    assert _stored_bytes(Repository(repo_dir)) - before < b.stat().st_size // 2
    d = json.loads(run("diff", "m@v1", "m@v2", "--json").stdout)
    assert [c["name"] for c in d["tensors"]["changed"]] == ["norm.2500"]
    assert d["tensors"]["unchanged"] == 4999
    assert Path(run("get", "m@v2").stdout.strip()).read_bytes() == b.read_bytes()
    assert run("fsck").exit_code == 0


def test_a_folder_or_link_in_place_of_a_mark_is_no_mark(repo_dir: Path, run: CliRun) -> None:
    (repo_dir / "a.bin").write_bytes(os.urandom(200_000))
    assert run("register", "m", "a.bin").exit_code == 0
    repo = Repository(repo_dir)
    (chunk,) = repo.objects.get_json(repo.lookup("m@v1")["root"])["parts"]
    oid = chunk["o"]
    damaged = repo_dir / ".modelreg" / "objects" / "damaged"
    damaged.mkdir()
    (damaged / oid).mkdir()  # clear() cannot unlink a folder: gc never lifted it
    assert run("gc").exit_code == 0
    # before: the id stayed marked for good, so every register of these bytes re-read them
    assert oid not in Repository(repo_dir).objects.marks
    outside = repo_dir / "outside"
    (damaged / oid).rmdir()
    (damaged / oid).symlink_to(outside)
    assert oid not in Repository(repo_dir).objects.marks
    store = Repository(repo_dir).objects
    store.marks.add(oid)  # a read that found it corrupt: the link is not followed
    assert not outside.exists() and (damaged / oid).is_symlink()


def _short_part_record(registry: ModelRegistry) -> tuple[bytes, bytes]:
    """(manifest, record) of m@v2: m@v1's one chunk, said to be 100 bytes long."""
    rec = registry.repo.record(registry.repo.family("m").versions["v1"])
    manifest = registry.repo.objects.get_json(rec["root"])
    (chunk,) = manifest["parts"]
    body = canonical_json({**manifest, "size": 100, "parts": [{"o": chunk["o"], "n": 100}]})
    return body, canonical_json({**rec, "version": "v2", "root": oid_of(body), "size": 100})


def test_a_part_length_that_is_not_its_chunks_is_refused_on_pull_and_by_fsck(
    tmp_path: Path,
) -> None:
    alice = ModelRegistry(tmp_path / "alice")
    (tmp_path / "a.bin").write_bytes(os.urandom(200_000))
    alice.register("m", tmp_path / "a.bin")
    manifest, record = _short_part_record(alice)
    bob = _publish_v2(alice, str(tmp_path / "remote"), manifest, record)
    # before: pulled, fsck clean, and 'get m@v2' failed ("its chunks hold more than its
    # recorded size; run 'modelreg fsck'") while fsck found nothing
    one_line_error(cli("-C", bob, "pull", "m"), oid_of(manifest), "100 bytes; the chunk has 200000")
    assert ModelRegistry(bob).list_families() == []
    # the same objects put into a store by hand: fsck names them
    for body in (manifest, record):
        alice.repo.objects.add(body, loose=True)
    alice.repo.objects.sync()
    refs_file = tmp_path / "alice" / ".modelreg" / "refs" / "m.yaml"
    v1 = alice.repo.family("m").versions["v1"]
    refs_file.write_text(refs_file.read_text().replace(v1, oid_of(record)))
    r = cli("-C", tmp_path / "alice", "fsck")
    assert r.returncode == 1 and "internal error" not in r.stderr, (r.stdout, r.stderr)
    assert f"manifest {oid_of(manifest)} gives its chunk" in r.stdout + r.stderr


def _onnx_folder(folder: Path, arrays: list[Any]) -> Path:
    """one.onnx and two.onnx name the same tensors of w.data under other names."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir()
    for model, names in (("one.onnx", "abc"), ("two.onnx", "xyz")):
        inits, offset = [], 0
        for name, arr in zip(names, arrays, strict=True):
            t = numpy_helper.from_array(arr, name)
            t.ClearField("raw_data")
            t.data_location = TensorProto.EXTERNAL
            for key, value in (("location", "w.data"), ("offset", offset), ("length", arr.nbytes)):
                entry = t.external_data.add()
                entry.key, entry.value = key, str(value)
            offset += arr.nbytes
            inits.append(t)
        graph = helper.make_graph([], "g", [], [], initializer=inits)
        onnx.save(helper.make_model(graph), folder / model)
    (folder / "w.data").write_bytes(b"".join(a.tobytes() for a in arrays))
    return folder


def test_two_onnx_models_sharing_one_data_file_cut_it_at_their_tensors(
    repo_dir: Path, run: CliRun
) -> None:
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((256, 256)).astype(np.float32) for _ in range(3)]
    assert run("register", "o", _onnx_folder(repo_dir / "v1", arrays)).exit_code == 0
    arrays[1] = arrays[1] + 1
    assert run("register", "o", _onnx_folder(repo_dir / "v2", arrays)).exit_code == 0
    repo = Repository(repo_dir)
    tree = repo.objects.get_json(repo.lookup("o@v1")["root"])
    data = repo.objects.get_json(tree["entries"]["w.data"]["manifest"])
    # before: the two models' spans overlapped, so w.data was cut by content, as raw bytes
    assert data["format"] == "onnx-data"
    d = json.loads(run("diff", "o@v1", "o@v2", "--json").stdout)
    assert sorted(c["name"] for c in d["tensors"]["changed"]) == ["one.onnx:b", "two.onnx:y"]
    assert d["tensors"]["unchanged"] == 4
