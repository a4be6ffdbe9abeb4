"""The CLI as a user meets it: output, --json, exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import CliRun, tree_snapshot, write_bytes


def test_init_creates_registry_and_is_harmless_twice(
    tmp_path: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = run("init")
    assert r.exit_code == 0 and "Initialized empty modelreg registry" in r.stdout
    r = run("init")
    assert r.exit_code == 0 and "Already a modelreg registry" in r.stdout


def test_register_get_show_list_log_round_trip(repo_dir: Path, run: CliRun) -> None:
    model = write_bytes(repo_dir / "m.pt", 1000)
    r = run(
        "register",
        "resnet18",
        model,
        "--framework",
        "pytorch",
        "--metric",
        "acc=0.91",
        "--metric",
        "epochs=3",
        "--param",
        "note=ok",
        "--dataset",
        "ImageNet",
        "--architecture",
        "torchvision.models.resnet18",
        "--input-shape",
        "1,3,224,224",
        "-m",
        "first",
        "-t",
        "production",
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("Registered resnet18@v1 (1000 B; ")
    assert r.stdout.strip().endswith(" new in the store)")
    r = run("get", "resnet18")
    path = Path(r.stdout.strip())
    assert path == repo_dir / "models" / "resnet18" / "v1" / "m.pt"
    assert path.read_bytes() == model.read_bytes()
    shown = json.loads(run("show", "resnet18@production", "--json").stdout)
    assert shown["metrics"] == {"acc": 0.91, "epochs": 3}
    assert shown["params"] == {"note": "ok"}
    assert shown["input_shape"] == [1, 3, 224, 224]
    assert shown["tags"] == ["latest", "production"]
    assert "description: first" in run("show", "resnet18@1").stdout
    rows = json.loads(run("list", "--json").stdout)
    assert [(x["name"], x["version"]) for x in rows] == [("resnet18", "v1")]
    assert "resnet18" in run("list").stdout
    run("register", "resnet18", model)
    log = run("log", "resnet18").stdout
    assert log.index("resnet18@v2") < log.index("resnet18@v1")
    assert [x["version"] for x in json.loads(run("log", "resnet18", "--json").stdout)] == [
        "v2",
        "v1",
    ]


def test_families_summary_and_stats_have_json(repo_dir: Path, run: CliRun) -> None:
    run("register", "b", write_bytes(repo_dir / "b.pt", 100_000))
    run("register", "a", write_bytes(repo_dir / "b.pt", 100_000))
    assert run("families").stdout.split() == ["a", "b"]
    assert json.loads(run("families", "--json").stdout) == ["a", "b"]
    summary = json.loads(run("summary", "--json").stdout)
    assert summary["families"] == ["a", "b"] and len(summary["versions"]) == 2
    assert "2 families, 2 versions" in run("summary").stdout
    stats = json.loads(run("stats", "--json").stdout)
    assert stats["logical_bytes"] == 200_000
    assert 100_000 <= stats["stored_bytes"] < 110_000  # the same bytes are stored once
    assert stats["dedup_ratio"] > 1.8
    assert "dedup ratio" in run("stats").stdout


def test_tag_moves_only_on_request_and_can_be_deleted(repo_dir: Path, run: CliRun) -> None:
    f = write_bytes(repo_dir / "m.pt", 10)
    run("register", "m", f)
    assert run("tag", "m@v1", "production").stdout.strip() == "production -> m@v1"
    run("register", "m", f)
    assert json.loads(run("show", "m@production", "--json").stdout)["version"] == "v1"
    run("tag", "m@latest", "production")
    assert json.loads(run("show", "m@production", "--json").stdout)["version"] == "v2"
    assert json.loads(run("tag", "m", "--json").stdout) == {"production": "v2"}
    assert "production -> v2" in run("tag", "m").stdout
    r = run("tag", "-d", "m", "production")
    assert r.exit_code == 0 and "Deleted tag production (was m@v2)" in r.stdout
    r = run("get", "m@production")
    assert r.exit_code == 1 and "m has no tag 'production'" in r.stderr


def test_checkout_one_family_and_all(repo_dir: Path, run: CliRun) -> None:
    f = write_bytes(repo_dir / "m.pt", 10)
    run("register", "m", f)
    run("register", "m", f)
    run("register", "n", f)
    r = run("checkout", "m")
    assert r.exit_code == 0 and r.stdout.count("1 written") == 2
    assert (repo_dir / "models" / "m" / "v2" / "m.pt").is_file()
    assert not (repo_dir / "models" / "n").exists()
    out = json.loads(run("checkout", "--all", "--json").stdout)
    assert [(d["name"], d["version"], d["written"]) for d in out] == [
        ("m", "v1", []),
        ("m", "v2", []),
        ("n", "v1", ["m.pt"]),
    ]
    assert "up to date" in run("checkout", "n@1").stdout
    r = run("checkout")
    assert r.exit_code == 2 and "name what to check out, or pass --all" in r.stderr


def test_rm_then_gc_frees_bytes_and_numbers_are_not_reused(repo_dir: Path, run: CliRun) -> None:
    run("register", "m", write_bytes(repo_dir / "a.pt", 100_000, seed=1))
    run("register", "m", write_bytes(repo_dir / "b.pt", 100_000, seed=2))
    run("checkout", "m")
    r = run("rm", "m@v2")
    assert r.exit_code == 0 and "Removed m@v2" in r.stdout
    assert f"and its checkout {repo_dir / 'models' / 'm' / 'v2'}" in r.stdout
    assert not (repo_dir / "models" / "m" / "v2").exists()
    assert (repo_dir / "models" / "m" / "v1" / "a.pt").is_file()
    dry = run("gc", "--dry-run")
    assert dry.exit_code == 0 and "Would free" in dry.stdout
    plan = json.loads(run("gc", "--dry-run", "--json").stdout)
    assert plan["bytes"] >= 100_000 and plan["objects"]
    assert run("gc").stdout.startswith("Freed")
    assert json.loads(run("gc", "--dry-run", "--json").stdout)["objects"] == []
    assert run("fsck").exit_code == 0
    run("register", "m", write_bytes(repo_dir / "c.pt", 10))
    assert json.loads(run("show", "m", "--json").stdout)["version"] == "v3"
    r = run("register", "m", repo_dir / "c.pt", "--version", "v2")
    assert r.exit_code == 1
    assert "m@v2 already exists (removed versions are not reused)" in r.stderr


def test_rm_refuses_a_tagged_version_unless_forced(repo_dir: Path, run: CliRun) -> None:
    run("register", "m", write_bytes(repo_dir / "a.pt", 10), "-t", "production")
    r = run("rm", "m@v1")
    assert r.exit_code == 1 and "m@v1 carries tags production" in r.stderr
    r = run("rm", "m@v1", "--force")
    assert r.exit_code == 0 and "and its tags production" in r.stdout
    assert run("families").stdout == ""


def test_rm_needs_an_explicit_version(repo_dir: Path, run: CliRun) -> None:
    run("register", "m", write_bytes(repo_dir / "a.pt", 10))
    r = run("rm", "m")
    assert r.exit_code == 1 and "say which version of 'm' to remove" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["get", "nope"], "no model named 'nope' in this registry"),
        (["get", "m@v9"], "m has no version v9"),
        (["get", "m@0"], "invalid version '0'"),
        (["get", "m@"], "empty version or tag"),
        (["show", "m@staging"], "m has no tag 'staging'"),
        (["register", "m", "missing.pt"], "no such file or folder: missing.pt"),
        (["register", "../evil", "a.pt"], "invalid model name '../evil'"),
        (["register", "m", "a.pt", "--version", "seven"], "invalid version 'seven'"),
        (["register", "m", "a.pt", "-t", "latest"], "invalid tag 'latest'"),
        (["register", "m", "a.pt", "--metric", "acc=nan"], "metric 'acc' is nan"),
        (["register", "m", "a.pt", "--parent", "other@v1"], "no model named 'other'"),
        (["tag", "m@v1", "v2"], "invalid tag 'v2'"),
        (["tag", "-d", "m", "nope"], "m has no tag 'nope'"),
        (["log", "a/b"], "invalid model name 'a/b'"),
        (["get", "m@v0"], "invalid version 'v0'; versions start at v1"),
        (["get", "mm"], "no model named 'mm' in this registry; did you mean m?"),
        (["register", "m", "/dev/zero"], "/dev/zero is not a regular file"),
        (["register", "m", "empty.pt"], "empty.pt is empty"),
        (["register", "m", "emptydir"], "emptydir holds no files to register"),
        (["register", "m", "onlyignored"], "onlyignored holds no files to register"),
        (["register", "m", ".modelreg"], "is inside the registry's own store"),
        (["register", "m", ".modelreg/objects"], "is inside the registry's own store"),
        (
            ["register", "m", "a.pt", "--metric", "accuracy=high"],
            "metric 'accuracy' must be a number, not 'high'; put text in a param instead",
        ),
        (["register", "m", "a.pt", "--metric", "accuracy=0,92"], "write decimals with a point"),
        (
            ["register", "m", "a.pt", "--metric", "acc=1", "--metric", "acc=2"],
            "--metric acc is given twice",
        ),
        (["register", "m", "a.pt", "--param", "lr=1", "--param", "lr=2"], "--param lr is given"),
    ],
)
def test_bad_input_gives_one_line_exit_1_and_changes_nothing(
    repo_dir: Path, run: CliRun, args: list[str], message: str
) -> None:
    write_bytes(repo_dir / "a.pt", 10)
    (repo_dir / "empty.pt").touch()
    (repo_dir / "emptydir").mkdir()
    (repo_dir / "onlyignored").mkdir()
    write_bytes(repo_dir / "onlyignored" / "x.tmp", 10)
    (repo_dir / "onlyignored" / ".modelregignore").write_text("*.tmp\n")
    run("register", "m", "a.pt")
    before = tree_snapshot(repo_dir)
    r = run(*args)
    assert r.exit_code == 1
    assert r.stdout == ""
    assert r.stderr.startswith("error: ") and message in r.stderr
    assert r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr
    assert tree_snapshot(repo_dir) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["register", "m", "a.pt", "--metric", "acc"], "'acc' is not KEY=VALUE"),
        (["register", "m", "a.pt", "--input-shape", "1,x"], "'1,x' is not like 1,3,224,224"),
        (["frobnicate"], "No such command"),
    ],
)
def test_usage_errors_exit_2(repo_dir: Path, run: CliRun, args: list[str], message: str) -> None:
    write_bytes(repo_dir / "a.pt", 10)
    r = run(*args)
    assert r.exit_code == 2 and message in r.stderr


@pytest.mark.parametrize(
    "command",
    [["list"], ["get", "m"], ["register", "m", "a.pt"], ["fsck"], ["gc"], ["stats"], ["families"]],
)
def test_commands_outside_a_registry_say_so(
    tmp_path: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_bytes(tmp_path / "a.pt", 10)
    r = run(*command)
    assert r.exit_code == 1
    assert "no modelreg registry in" in r.stderr and "run 'modelreg init' first" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt"]


def test_dash_C_runs_in_another_folder(
    repo_dir: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run("register", "m", write_bytes(repo_dir / "a.pt", 10))
    monkeypatch.chdir(tmp_path)
    assert run("-C", repo_dir, "families").stdout.split() == ["m"]


def test_debug_env_shows_the_traceback(
    repo_dir: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelreg.errors import NotFoundError

    monkeypatch.setenv("MODELREG_DEBUG", "1")
    with pytest.raises(NotFoundError):
        run("get", "nope")


def test_an_unexpected_failure_is_still_one_line(
    repo_dir: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelreg import maintenance

    def broken(repo: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(maintenance, "stats", broken)
    r = run("stats")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert "error: internal error (KeyError: 'boom'); rerun with MODELREG_DEBUG=1" in r.stderr
