"""GGUF and ONNX files as tensor-aware formats: spans per tensor, inspect, diff by tensor
name, storage near the tensor-level lower bound, and headers that lie.

The files are real: written with the ``gguf`` and ``onnx`` packages (the dev extra)."""

from __future__ import annotations

import json
import os
import random
import struct
from pathlib import Path

import pytest

from benchmarks import formats as bench
from modelreg import checkout, formats, hints, maintenance
from modelreg.formats import gguf, onnx
from modelreg.formats._base import file_reader
from modelreg.repo import Repository

from .conftest import CliRun

gguf_pkg = pytest.importorskip("gguf")
onnx_pkg = pytest.importorskip("onnx")

SMALL = 256 << 10
CHANGED = {f"blk.{i}.weight" for i in bench.CHANGED}


def _plan(path: Path) -> tuple[str, list | None]:
    with open(path, "rb") as f:
        return formats.plan(f, path.stat().st_size)


def test_gguf_types_agree_with_the_gguf_package() -> None:
    sizes = {t.value: v for t, v in gguf_pkg.GGML_QUANT_SIZES.items()}
    for type_id, (name, block, block_bytes) in gguf.TYPES.items():
        assert gguf_pkg.GGMLQuantizationType(type_id).name == name
        assert sizes[type_id] == (block, block_bytes)


def test_gguf_is_cut_at_each_tensor_the_reader_finds(tmp_path: Path) -> None:
    (_f, path), _second = bench.gguf_pair(tmp_path, SMALL)
    fmt, spans = _plan(path)
    assert fmt == "gguf" and spans is not None
    named = {name: (start, length) for start, length, name in spans if name}
    reader = gguf_pkg.GGUFReader(str(path))
    assert named == {t.name: (int(t.data_offset), int(t.n_bytes)) for t in reader.tensors}


def test_onnx_is_cut_at_each_initializer(tmp_path: Path) -> None:
    (_f, path), _second = bench.onnx_pair(tmp_path, SMALL, external=False)
    fmt, spans = _plan(path)
    assert fmt == "onnx" and spans is not None
    data = path.read_bytes()
    model = onnx_pkg.load(str(path))
    named = {name: data[s : s + n] for s, n, name in spans if name}
    assert named == {f"float32:{t.name}": t.raw_data for t in model.graph.initializer}


def test_gguf_inspect_and_diff_by_tensor_name(repo_dir: Path, run: CliRun) -> None:
    for family, path in bench.gguf_pair(repo_dir / "src", SMALL):
        assert run("register", family, path).exit_code == 0
    shown = json.loads(run("show", "gguf@v1", "--json").stdout)
    assert shown["format"] == "gguf"
    info = shown["inspect"]
    assert info["format"] == "gguf" and info["safety"] == "safe"
    assert info["tensors"] == bench.TENSORS
    assert info["dtypes"] == ["Q8_0", "float16", "float32"]
    assert info["quantization"] == ["Q8_0"]
    reader = gguf_pkg.GGUFReader(str(repo_dir / "src" / "v1.gguf"))
    assert info["parameters"] == sum(int(t.n_elements) for t in reader.tensors)
    d = json.loads(run("diff", "gguf@v1", "gguf@v2", "--json").stdout)
    assert {c["name"] for c in d["tensors"]["changed"]} == CHANGED
    assert d["tensors"]["unchanged"] == bench.TENSORS - len(CHANGED)
    text = run("diff", "gguf@v1", "gguf@v2").stdout
    assert f"tensors: 3 changed, 0 added, 0 removed, {bench.TENSORS - 3} unchanged" in text
    assert "~ blk.5.weight" in text


def test_onnx_file_inspect_and_diff_by_tensor_name(repo_dir: Path, run: CliRun) -> None:
    for family, path in bench.onnx_pair(repo_dir / "src", SMALL, external=False):
        assert run("register", family, path).exit_code == 0
    info = json.loads(run("show", "onnx@v2", "--json").stdout)["inspect"]
    assert info["format"] == "onnx" and info["safety"] == "safe"
    assert info["tensors"] == bench.TENSORS and info["dtypes"] == ["float32"]
    assert "external_data" not in info
    d = json.loads(run("diff", "onnx@v1", "onnx@v2", "--json").stdout)
    assert {c["name"] for c in d["tensors"]["changed"]} == {
        f"layer{i}.weight" for i in bench.CHANGED
    }
    assert d["tensors"]["unchanged"] == bench.TENSORS - len(bench.CHANGED)


def test_onnx_folder_cuts_the_data_file_at_the_models_tensors(repo_dir: Path, run: CliRun) -> None:
    pair = bench.onnx_pair(repo_dir / "src", SMALL, external=True)
    for family, path in pair:
        r = run("register", family, path)
        assert r.exit_code == 0 and "warning" not in r.stderr
    repo = Repository(repo_dir)
    rec = repo.lookup("onnx_folder@v1")
    info = rec["inspect"]
    assert info["model_files"] == {"model.onnx": "onnx"}
    assert info["tensors"] == bench.TENSORS
    tree = repo.objects.get_json(rec["root"])
    data = repo.objects.get_json(tree["entries"]["model.onnx.data"]["manifest"])
    assert data["format"] == "onnx-data"
    model = onnx_pkg.load(str(pair[0][1] / "model.onnx"), load_external_data=False)
    located = {t.name: {e.key: e.value for e in t.external_data} for t in model.graph.initializer}
    assert {name: (s, n) for name, s, n in data["spans"]} == {
        f"float32:{name}": (int(e["offset"]), int(e["length"])) for name, e in located.items()
    }
    d = json.loads(run("diff", "onnx_folder@v1", "onnx_folder@v2", "--json").stdout)
    assert d["files"]["changed"] == ["model.onnx.data"]
    assert {c["name"] for c in d["tensors"]["changed"]} == {
        f"model.onnx:layer{i}.weight" for i in bench.CHANGED
    }
    assert d["tensors"]["unchanged"] == bench.TENSORS - len(bench.CHANGED)


def test_an_onnx_model_registered_without_its_data_names_the_data_file(
    repo_dir: Path, run: CliRun
) -> None:
    (_f, folder), _second = bench.onnx_pair(repo_dir / "src", SMALL, external=True)
    run("register", "alone", folder / "model.onnx")
    run("register", "alone", folder / "model.onnx")
    info = json.loads(run("show", "alone", "--json").stdout)["inspect"]
    assert info["external_data"] == ["model.onnx.data"]
    assert info["tensors"] == bench.TENSORS
    # without the data file no tensor can be compared: each counts as changed
    d = json.loads(run("diff", "alone@v1", "alone@v2", "--json").stdout)
    assert len(d["tensors"]["changed"]) == bench.TENSORS


def _registered(tmp_path: Path, which: str, size: int) -> tuple[Repository, bench.Files]:
    pair = bench.pair(which, tmp_path / "src", size)
    repo, _ = Repository.init(tmp_path / "reg")
    for family, path in pair:
        repo.register(family, path)
    return repo, pair


@pytest.mark.parametrize("which", bench.PAIRS)
def test_a_pair_with_a_few_changed_tensors_stores_near_the_lower_bound(
    tmp_path: Path, which: str
) -> None:
    repo, pair = _registered(tmp_path, which, 16 << 20)
    bound = bench.lower_bound([p for _f, p in pair])
    disk = maintenance.disk_usage(repo.dir)
    assert bound < disk <= 1.01 * bound


@pytest.mark.parametrize("which", bench.PAIRS)
def test_gc_compresses_the_tensors_and_checkouts_stay_byte_exact(
    tmp_path: Path, which: str
) -> None:
    repo, pair = _registered(tmp_path, which, SMALL)
    before = maintenance.disk_usage(repo.dir)
    assert maintenance.gc(repo).compress > 0
    assert maintenance.disk_usage(repo.dir) < before and maintenance.fsck(repo).ok
    for n, (family, path) in enumerate(pair, 1):
        out = checkout.materialize(repo, repo.lookup(f"{family}@v{n}")).path
        originals = [path] if path.is_file() else sorted(path.iterdir())
        copies = [out] if path.is_file() else [out / p.name for p in originals]
        assert [p.read_bytes() for p in copies] == [p.read_bytes() for p in originals]


def test_item_sizes_come_from_the_gguf_and_onnx_tables(tmp_path: Path) -> None:
    (_f, path), _second = bench.gguf_pair(tmp_path / "g", SMALL)
    _fmt, spans = _plan(path)
    assert spans is not None
    named = [(name, s, n) for s, n, name in spans if name]
    with open(path, "rb") as f:
        widths = hints.span_itemsizes("gguf", named, file_reader(f))
    assert widths["blk.0.weight"] == 1  # Q8_0: bytes, no byte planes
    assert widths["blk.1.weight"] == 2 and widths["blk.2.weight"] == 4
    names = ["float32:w", "float16:h", "int4:q", "varint:i", "string:s"]
    assert onnx.span_itemsizes(names) == {"float32:w": 4, "float16:h": 2, "int4:q": 1}


# --- headers that lie ---------------------------------------------------------------------


def _gguf_header(n_tensors: int, n_kv: int, body: bytes = b"") -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + body


def _string(s: bytes, length: int | None = None) -> bytes:
    return struct.pack("<Q", len(s) if length is None else length) + s


LYING_GGUF = {
    "tensor count beyond any file": _gguf_header(1 << 40, 0),
    "metadata count beyond the file": _gguf_header(0, 1 << 19),
    "a key longer than the file": _gguf_header(0, 1, _string(b"k", 1 << 62)),
    "an array of 2**60 strings": _gguf_header(
        0, 1, _string(b"k") + struct.pack("<IIQ", 9, 8, 1 << 60)
    ),
    "dimensions past the end": _gguf_header(
        1, 0, _string(b"t") + struct.pack("<I", 2) + struct.pack("<QQ", 1 << 40, 1 << 40)
    )
    + struct.pack("<IQ", 0, 0),
    "an offset past the end": _gguf_header(
        1, 0, _string(b"t") + struct.pack("<IQ", 1, 4) + struct.pack("<IQ", 0, 1 << 50)
    ),
    "rows that are not whole blocks": _gguf_header(
        1, 0, _string(b"t") + struct.pack("<IQ", 1, 33) + struct.pack("<IQ", 8, 0)
    ),
}


@pytest.mark.parametrize("case", sorted(LYING_GGUF))
def test_a_gguf_header_that_lies_is_cut_by_content(tmp_path: Path, case: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(LYING_GGUF[case] + bytes(4096))
    assert _plan(path) == ("raw", None)
    with open(path, "rb") as f, pytest.raises(formats.Malformed):
        gguf.parse(file_reader(f), path.stat().st_size)


def test_a_forged_vocabulary_stops_at_the_item_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gguf, "MAX_ITEMS", 1000)  # the real one is 16M strings
    path = tmp_path / "vocab.gguf"

    def vocabulary(count: int) -> bytes:
        array = _string(b"tokens") + struct.pack("<IIQ", 9, 8, count) + bytes(8 * count)
        return _gguf_header(0, 1, array)

    path.write_bytes(vocabulary(1001))
    with open(path, "rb") as f, pytest.raises(formats.Malformed, match="vocabulary"):
        gguf.parse(file_reader(f), path.stat().st_size)
    path.write_bytes(vocabulary(1000))
    with open(path, "rb") as f:
        assert gguf.parse(file_reader(f), path.stat().st_size) == []


def test_a_truncated_gguf_is_registered_as_plain_bytes_with_a_warning(
    repo_dir: Path, run: CliRun
) -> None:
    (_f, path), _second = bench.gguf_pair(repo_dir / "src", SMALL)
    data = path.read_bytes()
    for cut in (20, 300, len(data) - 100):
        bad = repo_dir / f"cut{cut}.gguf"
        bad.write_bytes(data[:cut])
        assert _plan(bad) == ("raw", None)
        r = run("register", f"cut{cut}", bad)
        assert r.exit_code == 0
        assert f"warning: {bad.name} is not a file in a recognised model format" in r.stderr
        out = checkout.materialize(Repository(repo_dir), Repository(repo_dir).lookup(f"cut{cut}"))
        assert out.path.read_bytes() == data[:cut]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _len_field(number: int, payload: bytes, length: int | None = None) -> bytes:
    size = len(payload) if length is None else length
    return _varint(number << 3 | 2) + _varint(size) + payload


def _model(initializer: bytes, graph_length: int | None = None) -> bytes:
    graph = _len_field(5, initializer)
    return b"\x08\x08" + _len_field(7, graph, graph_length)


LYING_ONNX = {
    "a graph longer than the file": _model(b"", graph_length=1 << 40),
    "a raw_data longer than its tensor": _model(_len_field(9, b"\0" * 8, length=1 << 33)),
    "a name of 2**62 bytes": _model(_len_field(8, b"w", length=1 << 62)),
    "a varint of 11 bytes": b"\x08\x08\x3a" + b"\xff" * 11 + b"\x01",
    "a group wire type": _model(b"\x0b"),
    "no graph at all": b"\x08\x08\x12\x03abc",
}


@pytest.mark.parametrize("case", sorted(LYING_ONNX))
def test_an_onnx_header_that_lies_is_cut_by_content(tmp_path: Path, case: str) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(LYING_ONNX[case])
    assert _plan(path) == ("raw", None)
    with open(path, "rb") as f, pytest.raises(formats.Malformed):
        onnx.parse(file_reader(f), path.stat().st_size)


def test_an_external_location_outside_the_folder_or_past_its_file_is_not_followed(
    tmp_path: Path,
) -> None:
    def tensor(name: bytes, location: bytes, offset: int, length: int) -> bytes:
        entries = [
            (b"location", location),
            (b"offset", b"%d" % offset),
            (b"length", b"%d" % length),
        ]
        body = b"\x08\x04\x10\x01" + _len_field(8, name) + b"\x70\x01"  # dims, FLOAT, EXTERNAL
        for k, v in entries:
            body += _len_field(13, _len_field(1, k) + _len_field(2, v))
        return _len_field(5, body)

    model = tmp_path / "m" / "model.onnx"
    model.parent.mkdir()
    outside = tensor(b"a", b"../secret.bin", 0, 16)
    past = tensor(b"b", b"w.bin", 8, 16)
    model.write_bytes(b"\x08\x08" + _len_field(7, outside + past))
    (tmp_path / "m" / "w.bin").write_bytes(bytes(16))
    with open(model, "rb") as f:
        assert [t.name for t in onnx.parse(file_reader(f), model.stat().st_size)] == ["a", "b"]
    listed = [("model.onnx", model), ("w.bin", tmp_path / "m" / "w.bin")]
    planners = formats.plan_folder(listed)
    assert set(planners) == {"w.bin"}  # ../secret.bin is never a file of the folder
    with open(tmp_path / "m" / "w.bin", "rb") as f:
        assert planners["w.bin"](f, 16) == ("raw", None)  # 8 + 16 > 16 bytes
    assert onnx.resolve("sub/model.onnx", "../../x") is None
    assert onnx.resolve("sub/model.onnx", "/etc/passwd") is None
    assert onnx.resolve("sub/model.onnx", "w.bin") == "sub/w.bin"


@pytest.mark.parametrize("which", ["gguf", "onnx"])
def test_damaged_headers_never_crash_the_planner(tmp_path: Path, which: str) -> None:
    data = bench.pair(which, tmp_path, 64 << 10)[0][1].read_bytes()
    rng = random.Random(7)
    bad = tmp_path / "bad"
    outcomes = set()
    for _ in range(300):
        damaged = bytearray(data)
        for _flip in range(rng.randint(1, 4)):
            damaged[rng.randrange(min(len(data), 2048))] = rng.randrange(256)
        bad.write_bytes(bytes(damaged))
        fmt, spans = _plan(bad)
        assert fmt in (which, "raw")
        if spans is not None:  # whatever was found covers the file exactly
            assert sum(n for _s, n, _name in spans) == len(damaged)
        outcomes.add(fmt)
    assert outcomes == {which, "raw"}


def test_a_file_that_merely_starts_like_onnx_is_raw(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x08\x01\x10" + os.urandom(1000))
    assert _plan(path) == ("raw", None)


@pytest.mark.parametrize("which", bench.PAIRS)
def test_reading_the_tensor_table_loads_the_header_not_the_weights(
    tmp_path: Path, which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelreg.diff import tensors_of
    from modelreg.files import chunk_ids

    repo, _pair = _registered(tmp_path, which, 4 << 20)
    rec = repo.lookup(f"{which}@v1")
    root = repo.objects.get_json(rec["root"])
    entries = root["entries"].values() if rec["kind"] == "dir" else []
    manifests = [repo.objects.get_json(e["manifest"]) for e in entries] or [root]
    chunks = {oid for m in manifests for oid in chunk_ids(m)}
    assert len(chunks) >= bench.TENSORS
    loaded: list[str] = []
    real_get = repo.objects.get

    def counting_get(oid: str) -> bytes:
        loaded.append(oid)
        return real_get(oid)

    monkeypatch.setattr(repo.objects, "get", counting_get)
    assert len(tensors_of(repo, rec)) == bench.TENSORS
    # the header's chunk, and at most the one the header runs into
    assert len(chunks.intersection(loaded)) <= 2


def test_a_model_exported_by_torch_onnx_diffs_by_parameter_name(
    repo_dir: Path, run: CliRun, torch_mod
) -> None:
    import warnings

    torch = torch_mod
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 256), torch.nn.ReLU()
    )
    x = torch.randn(1, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter says it is deprecated
        torch.onnx.export(model, (x,), str(repo_dir / "a.onnx"), dynamo=False)
        with torch.no_grad():
            model[2].bias += 1
        torch.onnx.export(model, (x,), str(repo_dir / "b.onnx"), dynamo=False)
    run("register", "exported", repo_dir / "a.onnx")
    run("register", "exported", repo_dir / "b.onnx")
    info = json.loads(run("show", "exported@v1", "--json").stdout)["inspect"]
    assert info["format"] == "onnx" and info["tensors"] == 4
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    d = json.loads(run("diff", "exported@v1", "exported@v2", "--json").stdout)
    assert [c["name"] for c in d["tensors"]["changed"]] == ["2.bias"]
    assert d["tensors"]["unchanged"] == 3


def test_load_says_it_reads_no_gguf_and_points_at_the_path(repo_dir: Path, torch_mod) -> None:
    from modelreg import ModelRegistry
    from modelreg.errors import ModelregError

    registry = ModelRegistry(".")
    (_f, path), _second = bench.gguf_pair(repo_dir / "src", SMALL)
    registry.register("g", path)
    with pytest.raises(ModelregError, match="is a gguf file") as caught:
        registry.load("g")
    assert "use get() for the path" in str(caught.value.hint)
    pair = bench.onnx_pair(repo_dir / "src", SMALL, external=True)
    registry.register("folder", pair[0][1])
    with pytest.raises(ModelregError, match="is an onnx file"):
        registry.load("folder")


def test_a_safetensors_shape_that_is_no_list_of_integers_is_unchecked_not_a_crash(
    repo_dir: Path, run: CliRun
) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": ["x"], "data_offsets": [0, 4]}})
    path = repo_dir / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + bytes(4))
    r = run("register", "bad", path)
    assert r.exit_code == 0
    assert "bad@v1 could not be checked: its safetensors header does not add up" in r.stderr
    info = json.loads(run("show", "bad", "--json").stdout)["inspect"]
    assert info == {
        "format": "safetensors",
        "safety": "unknown",
        "note": "its safetensors header does not add up",
    }


def test_a_gguf_whose_metadata_alone_changed_has_the_same_tensors(
    repo_dir: Path, run: CliRun
) -> None:
    import numpy as np

    weights = np.arange(4096, dtype=np.float32).reshape(16, 256)

    def write(path: Path, template: str) -> Path:
        writer = gguf_pkg.GGUFWriter(str(path), "llama")
        writer.add_chat_template(template)
        writer.add_tensor("token_embd.weight", weights)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path

    run("register", "chat", write(repo_dir / "a.gguf", "{{ messages }}"))
    r = run("register", "chat", write(repo_dir / "b.gguf", "{% for m in messages %}{{ m }}"))
    assert "note: same tensors as chat@v1" in r.stderr
    d = json.loads(run("diff", "chat@v1", "chat@v2", "--json").stdout)
    assert d["tensors"]["changed"] == [] and d["tensors"]["unchanged"] == 1


def test_a_folder_with_a_checkpoint_and_its_onnx_export_loads_the_checkpoint(
    repo_dir: Path, torch_mod
) -> None:
    import warnings

    from modelreg import ModelRegistry

    torch = torch_mod
    model = torch.nn.Sequential(torch.nn.Linear(8, 4))
    folder = repo_dir / "bundle"
    folder.mkdir()
    torch.save(model.state_dict(), folder / "model.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 8),), str(folder / "model.onnx"), dynamo=False)
    registry = ModelRegistry(".")
    info = registry.register("bundle", folder)["inspect"]
    assert info["model_files"] == {"model.onnx": "onnx", "model.pt": "torch-zip"}
    loaded = registry.load("bundle")
    assert set(loaded) == {"0.weight", "0.bias"}
    assert torch.equal(loaded["0.weight"], model.state_dict()["0.weight"])
