"""Holes a hostile review found after issue 8 was first closed, each with the attack that
found it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelreg import ModelRegistry
from modelreg.objects import canonical_json
from modelreg.repo import Repository

from .conftest import CliRun, tree_snapshot, write_bytes


def test_a_version_chosen_too_high_is_refused_before_anything_is_stored(
    repo_dir: Path, run: CliRun
) -> None:
    write_bytes(repo_dir / "w.bin", 5000)
    before = tree_snapshot(repo_dir / ".modelreg")
    r = run("register", "m", "w.bin", "--version", "v1000000000")
    assert r.exit_code == 1
    assert "version v1000000000 is too high to choose by hand" in r.stderr
    assert tree_snapshot(repo_dir / ".modelreg") == before
    # the highest number one may choose still leaves the numbers after it usable
    assert run("register", "m", "w.bin", "--version", "v999999999").exit_code == 0
    assert run("rm", "m@v999999999").exit_code == 0
    assert run("register", "m", "w.bin").exit_code == 0
    assert json.loads(run("show", "m", "--json").stdout)["version"] == "v1000000000"


def test_a_taken_version_is_refused_before_anything_is_stored(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "a.bin", 5000)
    write_bytes(repo_dir / "b.bin", 5000, seed=1)
    run("register", "m", "a.bin")
    before = tree_snapshot(repo_dir / ".modelreg" / "objects")
    r = run("register", "m", "b.bin", "--version", "v1")
    assert r.exit_code == 1 and "m@v1 already exists" in r.stderr
    assert tree_snapshot(repo_dir / ".modelreg" / "objects") == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "ok\x1b]0;owned\x07"], "description holds a control character (U+001B)"),
        (["--dataset", "a\tb"], "dataset holds a control character (U+0009)"),
        (["--metric", "acc =0.9"], "metric name 'acc ' starts or ends with a space"),
        (["--metric", "acc=1_000"], "metric 'acc' must be a number, not '1_000'"),
        (["--metric", "acc=\uff11"], "metric 'acc' must be a number"),
        (["--param", "p=\x1b[2J"], "param 'p' holds a control character"),
    ],
)
def test_text_that_a_terminal_would_act_on_is_refused(
    repo_dir: Path, run: CliRun, args: list[str], message: str
) -> None:
    write_bytes(repo_dir / "w.bin", 100)
    r = run("register", "m", "w.bin", *args)
    assert r.exit_code == 1 and message in r.stderr


def test_a_multi_line_description_is_fine(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "w.bin", 100)
    assert run("register", "m", "w.bin", "-m", "line one\n\tline two").exit_code == 0
    assert "  line one\n  \tline two\n" in run("log", "m").stdout


def test_control_characters_in_an_old_record_are_shown_escaped(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "w.bin", 100)
    run("register", "m", "w.bin")
    repo = Repository(repo_dir)
    rec = repo.record(repo.family("m").versions["v1"])
    rec.update(description="ok\x1b]0;owned\x07", metrics={"a\x1b": 1})
    oid = repo.objects.add(canonical_json(rec))
    repo.objects.sync()
    repo.refs.update("m", lambda refs: refs.versions.__setitem__("v1", oid))
    for args in (["log", "m"], ["list"]):
        out = run(*args).stdout
        assert "\x1b" not in out and "\x07" not in out, args
    assert "ok\\x1b]0;owned\\x07" in run("log", "m").stdout


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_git_head_that_is_no_regular_file_is_not_read(repo_dir: Path, kind: str) -> None:
    subprocess.run(["git", "init", "-q", str(repo_dir)], check=True)
    head = repo_dir / ".git" / "HEAD"
    head.unlink()
    if kind == "fifo":
        os.mkfifo(head)
    else:
        os.symlink("/dev/zero", head)
    write_bytes(repo_dir / "w.bin", 100)
    done = subprocess.run(
        [sys.executable, "-m", "modelreg", "register", "m", "w.bin", "--json"],
        cwd=repo_dir,
        capture_output=True,
        text=True,
        timeout=60,  # before: a FIFO blocked forever, /dev/zero ate all memory
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["git_commit"] is None


def test_a_legacy_torch_file_gets_no_format_warning(repo_dir: Path, run: CliRun, torch_mod) -> None:  # type: ignore[no-untyped-def]
    torch_mod.save(
        {"w": torch_mod.ones(8)}, repo_dir / "l.pt", _use_new_zipfile_serialization=False
    )
    r = run("register", "m", "l.pt")
    assert r.exit_code == 0 and "warning" not in r.stderr


def test_demo_refuses_a_folder_inside_a_registrys_store_or_checkouts(
    repo_dir: Path, run: CliRun
) -> None:
    before = tree_snapshot(repo_dir)
    for target, what in ((".modelreg/newdemo", "store"), ("models/newdemo", "checkout folder")):
        r = run("demo", "--dir", repo_dir / target)
        assert r.exit_code == 1
        assert f"is inside the {what} of the registry at {repo_dir}" in r.stderr
    assert tree_snapshot(repo_dir) == before


def test_a_nested_registry_store_is_not_part_of_a_folder_model(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "w.bin", 100)
    inner = repo_dir / "inner"
    inner.mkdir()
    assert run("init", inner).exit_code == 0
    assert run("-C", inner, "register", "q", repo_dir / "w.bin").exit_code == 0
    assert run("register", "all", ".").exit_code == 0
    folder = Path(run("get", "all").stdout.strip())
    stored = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert not any(".modelreg" in p for p in stored), stored
    assert "w.bin" in stored


def test_prune_never_removes_folders_that_are_not_checkouts(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "w.bin", 100)
    run("register", "m", "w.bin")
    run("get", "m")
    mine = [repo_dir / "models" / "m" / "v9" / "notes.txt", repo_dir / "models" / "x" / "v1" / "n"]
    for path in mine:
        path.parent.mkdir(parents=True)
        path.write_text("mine")
    assert run("checkout", "--prune", "--force").exit_code == 0
    assert all(p.read_text() == "mine" for p in mine)
    assert not (repo_dir / "models" / "m" / "v1").exists()


@pytest.mark.parametrize("value", [".", "..", "../elsewhere", ".modelreg", "a//b", ""])
def test_a_checkout_dir_outside_the_registry_is_refused(
    repo_dir: Path, run: CliRun, value: str
) -> None:
    config = repo_dir / ".modelreg" / "config.yaml"
    config.write_text(
        config.read_text().replace("checkout_dir: models", f"checkout_dir: '{value}'")
    )
    r = run("list")
    assert r.exit_code == 1 and "is not a folder inside the registry" in r.stderr


def test_diff_stat_prints_counts_only(repo_dir: Path, run: CliRun) -> None:
    model = repo_dir / "d"
    model.mkdir()
    for i in range(3):
        write_bytes(model / f"f{i}.bin", 100, seed=i)
    run("register", "d", "d")
    for i in range(3):
        write_bytes(model / f"f{i}.bin", 100, seed=10 + i)
    run("register", "d", "d")
    out = run("diff", "d@v1", "d@v2", "--stat").stdout
    assert "files: 3 changed, 0 added, 0 removed" in out
    assert "..." not in out and "~" not in out


@pytest.mark.parametrize("kind", ["file", "dangling link"])
def test_a_checkout_folder_that_is_no_folder_gets_a_clear_message(
    repo_dir: Path, run: CliRun, kind: str
) -> None:
    write_bytes(repo_dir / "w.bin", 100)
    run("register", "m", "w.bin")
    if kind == "file":
        (repo_dir / "models").write_text("x")
        expected = f"the checkout folder {repo_dir / 'models'} is a file, not a folder"
    else:
        os.symlink(repo_dir / "nowhere", repo_dir / "models")
        expected = "is a link to a missing folder"
    r = run("get", "m")
    assert r.exit_code == 1 and expected in r.stderr


def test_tags_that_look_like_versions_are_refused(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "w.bin", 100)
    run("register", "m", "w.bin")
    for tag in ("v01", "V1", "v0"):
        r = run("tag", "m@v1", tag)
        assert r.exit_code == 1 and "invalid" in r.stderr, tag


def test_the_api_refuses_control_characters_too(repo_dir: Path) -> None:
    from modelreg.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="description holds a control character"):
        ModelRegistry(".").register("m", write_bytes(repo_dir / "w.bin", 100), description="\x00")
