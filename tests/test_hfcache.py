"""import --hf: a snapshot of the local Hugging Face cache registered by following its links
into blobs/, and nothing else."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from .conftest import CliRun, write_bytes
from .hubcache import COMMIT, make_snapshot
from .test_export import register_safetensors


def _files(seed: int = 1) -> dict[str, bytes]:
    tmp = Path(os.environ["HOME"]) / f"w{seed}.bin"
    return {
        "config.json": b'{"hidden_size": 4}',
        "model.safetensors": write_bytes(tmp, 300_000, seed=seed).read_bytes(),
        "tokenizer/vocab.txt": b"a\nb\nc\n",
    }


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    hub = tmp_path / "hub"
    hub.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    return hub


def test_import_registers_the_snapshot_with_repo_and_commit(
    repo_dir: Path, cache: Path, run: CliRun
) -> None:
    files = _files()
    make_snapshot(cache, "acme/tiny", files)
    r = run("import", "--hf", "acme/tiny", "tiny")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"Imported acme/tiny@{COMMIT[:12]} as tiny@v1")
    shown = json.loads(run("show", "tiny", "--json").stdout)
    assert shown["kind"] == "dir"
    assert shown["params"] == {"hf_repo": "acme/tiny", "hf_commit": COMMIT, "hf_revision": "main"}
    out = Path(run("get", "tiny").stdout.strip())
    for rel, data in files.items():
        assert (out / rel).read_bytes() == data and not (out / rel).is_symlink()


def test_importing_bytes_already_stored_adds_nothing(
    repo_dir: Path, cache: Path, run: CliRun
) -> None:
    files = _files()
    make_snapshot(cache, "acme/tiny", files)
    plain = repo_dir / "plain"
    (plain / "tokenizer").mkdir(parents=True)
    for rel, data in files.items():
        (plain / rel).write_bytes(data)
    run("register", "same", plain)
    before = json.loads(run("stats", "--json").stdout)["stored_bytes"]
    r = run("import", "--hf", "acme/tiny", "tiny")
    assert r.exit_code == 0, r.output
    grown = json.loads(run("stats", "--json").stdout)["stored_bytes"] - before
    assert 0 < grown < 2000  # the version record alone, for 300 KB of files


def test_listing_says_what_each_import_would_add(repo_dir: Path, cache: Path, run: CliRun) -> None:
    make_snapshot(cache, "acme/tiny", _files(1))
    make_snapshot(cache, "acme/other", _files(2), commit="f" * 40, revision="v1.0")
    listed = json.loads(run("import", "--hf", "--json").stdout)
    rows = {r["repo_id"]: r for r in listed["snapshots"]}
    assert set(rows) == {"acme/tiny", "acme/other"}
    assert rows["acme/other"]["revisions"] == ["v1.0"]
    assert rows["acme/tiny"]["files"] == 3
    assert rows["acme/tiny"]["would_add"] >= 300_000
    run("import", "--hf", "acme/tiny", "tiny")
    listed = json.loads(run("import", "--hf", "--json").stdout)["snapshots"]
    after = {r["repo_id"]: r for r in listed}
    assert after["acme/tiny"]["would_add"] == 0
    assert after["acme/other"]["would_add"] >= 300_000
    text = run("import", "--hf").stdout
    assert "acme/tiny" in text and "WOULD ADD" in text


def test_import_by_commit_and_by_revision(repo_dir: Path, cache: Path, run: CliRun) -> None:
    make_snapshot(cache, "acme/tiny", _files(), revision="v2")
    r = run("import", "--hf", "acme/tiny", "a", "--revision", COMMIT)
    assert r.exit_code == 0, r.output
    r = run("import", "--hf", "acme/tiny", "b", "--revision", "v2")
    assert r.exit_code == 0, r.output
    assert json.loads(run("show", "b", "--json").stdout)["params"]["hf_revision"] == "v2"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["acme/missing", "x"], "is not in the Hugging Face cache"),
        (["acme/tiny", "x", "--revision", "nope"], "has no revision 'nope'"),
        (["acme/tiny", "x", "--revision", "../../etc"], "invalid revision"),
        (["../evil", "x"], "invalid Hugging Face repo id"),
        (["acme/tiny", "bad name"], "invalid model name"),
    ],
)
def test_bad_imports_say_what_is_wrong(
    repo_dir: Path, cache: Path, run: CliRun, args: list[str], words: str
) -> None:
    make_snapshot(cache, "acme/tiny", _files())
    r = run("import", "--hf", *args)
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("error: ") and words in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert run("families").stdout == ""


def _hostile(cache: Path, tmp_path: Path, kind: str) -> None:
    snap = make_snapshot(cache, "acme/tiny", _files())
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    if kind == "outside file":
        (snap / "stolen.txt").symlink_to(secret)
    elif kind == "other repo's blob":
        other = make_snapshot(cache, "acme/other", {"x.bin": b"other bytes"}, revision=None)
        (snap / "borrowed.bin").symlink_to((other / "x.bin").resolve())
    elif kind == "folder link":
        (snap / "dir").symlink_to(tmp_path)
    elif kind == "blob that is a link":
        blob = cache / "models--acme--tiny" / "blobs" / ("e" * 64)
        blob.symlink_to(secret)
        (snap / "sneaky.txt").symlink_to(os.path.relpath(blob, snap))
    elif kind == "relative escape":
        (snap / "up.txt").symlink_to(os.path.relpath(secret, snap))


@pytest.mark.parametrize(
    "kind",
    ["outside file", "other repo's blob", "folder link", "blob that is a link", "relative escape"],
)
def test_links_other_than_snapshot_to_blobs_are_refused(
    repo_dir: Path, cache: Path, tmp_path: Path, run: CliRun, kind: str
) -> None:
    _hostile(cache, tmp_path, kind)
    r = run("import", "--hf", "acme/tiny", "tiny")
    assert r.exit_code == 1, r.output
    assert "error: " in r.stderr and "blobs" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert run("families").stdout == ""
    listed = json.loads(run("import", "--hf", "--json").stdout)["snapshots"]
    tiny = next(r for r in listed if r["repo_id"] == "acme/tiny")
    assert tiny["problem"] and tiny["would_add"] is None


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--hf", "acme/tiny"], "import --hf needs REPO_ID and NAME"),
        (["somewhere", "x", "--revision", "v2"], "go with --hf"),
        (["somewhere", "x", "-m", "text"], "go with --hf"),
        ([], "import needs DIR and NAME"),
    ],
)
def test_import_usage_errors(repo_dir: Path, run: CliRun, args: list[str], words: str) -> None:
    r = run("import", *args)
    assert r.exit_code == 2 and words in r.stderr


def test_import_hf_dry_run_says_what_one_import_would_add(
    repo_dir: Path, cache: Path, run: CliRun
) -> None:
    make_snapshot(cache, "acme/tiny", _files(1))
    make_snapshot(cache, "acme/other", _files(2), commit="f" * 40)
    r = run("import", "--hf", "acme/tiny", "tiny", "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)["snapshots"]
    assert row["repo_id"] == "acme/tiny" and row["would_add"] >= 300_000
    assert run("families").stdout == ""


def test_import_hf_takes_the_descriptive_options(repo_dir: Path, cache: Path, run: CliRun) -> None:
    make_snapshot(cache, "acme/tiny", _files())
    r = run(
        "import",
        "--hf",
        "acme/tiny",
        "tiny",
        "--framework",
        "pytorch",
        "--param",
        "lr=0.1",
        "-m",
        "from the hub",
        "-t",
        "base",
    )
    assert r.exit_code == 0, r.output
    shown = json.loads(run("show", "tiny@base", "--json").stdout)
    assert shown["framework"] == "pytorch" and shown["description"] == "from the hub"
    assert shown["params"]["lr"] == "0.1" and shown["params"]["hf_repo"] == "acme/tiny"


def test_our_hand_made_cache_is_what_huggingface_hub_reads(cache: Path) -> None:
    hub = pytest.importorskip("huggingface_hub")
    make_snapshot(cache, "acme/tiny", _files())
    info = hub.scan_cache_dir(cache)
    assert not info.warnings
    (repo_info,) = info.repos
    assert repo_info.repo_id == "acme/tiny"
    path = hub.try_to_load_from_cache("acme/tiny", "tokenizer/vocab.txt", cache_dir=cache)
    assert isinstance(path, str) and Path(path).read_bytes() == b"a\nb\nc\n"


# --- export --hf-cache ----------------------------------------------------------------------


def _offline_hub(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return pytest.importorskip("huggingface_hub")


def test_export_to_the_cache_is_found_offline_by_repo_id(
    repo_dir: Path, tmp_path: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub: Any = _offline_hub(monkeypatch)
    files = _files()
    model = repo_dir / "tiny"
    (model / "tokenizer").mkdir(parents=True)
    for rel, data in files.items():
        (model / rel).write_bytes(data)
    run("register", "tiny", model)
    out = tmp_path / "other-cache"
    r = run("export", "tiny", "--hf-cache", "me/tiny", "--cache-dir", out, "--json")
    assert r.exit_code == 0, r.output
    placed = json.loads(r.stdout)
    for rel, data in files.items():
        found = hub.try_to_load_from_cache("me/tiny", rel, cache_dir=out)
        assert isinstance(found, str) and Path(found).read_bytes() == data
    snap = hub.snapshot_download("me/tiny", cache_dir=out, local_files_only=True)
    assert Path(snap) == Path(placed["path"])
    info = hub.scan_cache_dir(out)
    assert not info.warnings and [r.repo_id for r in info.repos] == ["me/tiny"]
    (refs,) = [rev.refs for rev in next(iter(info.repos)).revisions]
    assert refs == frozenset({"main"})
    again = run("export", "tiny", "--hf-cache", "me/tiny", "--cache-dir", out, "--json")
    assert json.loads(again.stdout)["commit"] == placed["commit"]  # same bytes, same commit


def test_import_then_export_gives_back_the_same_snapshot(
    repo_dir: Path, cache: Path, tmp_path: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub: Any = _offline_hub(monkeypatch)
    files = _files()
    make_snapshot(cache, "acme/tiny", files)
    run("import", "--hf", "acme/tiny", "tiny")
    out = tmp_path / "elsewhere"
    r = run("export", "tiny", "--hf-cache", "acme/tiny", "--cache-dir", out)
    assert r.exit_code == 0, r.output
    assert f"acme/tiny@{COMMIT[:12]}" in r.stdout
    path = hub.snapshot_download("acme/tiny", revision=COMMIT, cache_dir=out, local_files_only=True)
    assert {p.relative_to(path).as_posix() for p in Path(path).rglob("*") if p.is_file()} == set(
        files
    )
    # into the cache it came from: the snapshot is there already with the same bytes
    r = run("export", "tiny", "--hf-cache", "acme/tiny")
    assert r.exit_code == 0, r.output


def test_exported_safetensors_load_from_the_cache(
    repo_dir: Path, tmp_path: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub: Any = _offline_hub(monkeypatch)
    safetensors_torch = pytest.importorskip("safetensors.torch")
    state = register_safetensors(repo_dir, run, 5)
    run("export", "st", "--hf-cache", "me/st", "--cache-dir", tmp_path / "c")
    path = hub.hf_hub_download("me/st", "model.safetensors", cache_dir=tmp_path / "c")
    loaded = safetensors_torch.load_file(path)
    assert sorted(loaded) == sorted(state)


def test_export_refuses_a_snapshot_holding_other_bytes(
    repo_dir: Path, cache: Path, run: CliRun
) -> None:
    make_snapshot(cache, "acme/tiny", _files(1))
    run("import", "--hf", "acme/tiny", "tiny")
    snap = cache / "models--acme--tiny" / "snapshots" / COMMIT
    (snap / "config.json").unlink()
    (snap / "config.json").write_text('{"edited": true}')
    r = run("export", "tiny", "--hf-cache", "acme/tiny")
    assert r.exit_code == 1 and "already holds config.json with other content" in r.stderr
    assert (snap / "config.json").read_text() == '{"edited": true}'


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["tiny"], "give exactly one of DIR, --hf-cache"),
        (["tiny", "d", "--hf-cache", "a/b"], "give exactly one of DIR, --hf-cache"),
        (["tiny", "d", "--cache-dir", "c"], "--cache-dir goes with --hf-cache"),
    ],
)
def test_export_usage_errors(repo_dir: Path, run: CliRun, args: list[str], words: str) -> None:
    run("register", "tiny", write_bytes(repo_dir / "a.bin", 100))
    r = run("export", *args)
    assert r.exit_code == 2 and words in r.stderr


def test_export_refuses_a_bad_repo_id(repo_dir: Path, cache: Path, run: CliRun) -> None:
    run("register", "tiny", write_bytes(repo_dir / "a.bin", 100))
    r = run("export", "tiny", "--hf-cache", "a--b/../c")
    assert r.exit_code == 1 and "invalid Hugging Face repo id" in r.stderr
    assert list(cache.iterdir()) == []
