"""What commands print: one JSON shape, words instead of Python, a quiet end when the reader
of a pipe goes away, and init's .gitignore lines."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelreg import ModelRegistry
from modelreg.views import FIELDS, SCHEMA

from .conftest import CliRun, write_bytes

VIEW_KEYS = {"schema", *FIELDS, "file_path", "checked_out"}


def test_every_version_listing_has_one_json_shape(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "a.bin", 100)
    registered = json.loads(run("register", "m", "a.bin", "--json").stdout)
    shapes = [
        registered,
        {k: v for k, v in json.loads(run("show", "m", "--json").stdout).items() if k != "card"},
        *json.loads(run("list", "--json").stdout),
        *json.loads(run("log", "m", "--json").stdout),
        *json.loads(run("summary", "--json").stdout)["versions"],
        ModelRegistry(".").list()[0],
    ]
    shown = json.loads(run("show", "m", "--json").stdout)
    assert set(shown) == VIEW_KEYS | {"card"} and shown["card"] is None  # show adds the card
    for shape in shapes:
        assert set(shape) == VIEW_KEYS
        assert shape["schema"] == SCHEMA
        assert shape["framework"] is None and shape["metrics"] == {} and shape["params"] == {}
        assert shape["file_path"] == str(repo_dir / "models" / "m" / "v1" / "a.bin")
        assert shape["checked_out"] is False
    run("get", "m")
    assert json.loads(run("show", "m", "--json").stdout)["checked_out"] is True
    assert ModelRegistry(".").get("m")["checked_out"] is True


def test_text_output_has_no_python_reprs(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "a.bin", 100)
    run("register", "m", "a.bin")
    for args in (["show", "m"], ["list"], ["log", "m"], ["summary"]):
        out = run(*args).stdout
        assert "None" not in out and "{}" not in out and "[]" not in out, (args, out)
    assert "null" not in run("show", "m").stdout


def test_times_say_utc_and_counts_use_plurals(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "a.bin", 100)
    run("register", "m", "a.bin")
    assert "REGISTERED (UTC)" in run("list").stdout
    assert re.search(r"registered \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", run("log", "m").stdout)
    assert ": 1 family, 1 version\n" in run("summary").stdout
    run("register", "n", "a.bin")
    assert ": 2 families, 2 versions\n" in run("summary").stdout


def test_a_removed_version_says_when_it_was_removed(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "a.bin", 100)
    run("register", "m", "a.bin")
    run("register", "m", "a.bin")
    assert run("rm", "m@v1").exit_code == 0
    r = run("get", "m@v1")
    assert r.exit_code == 1
    assert re.search(r"error: m@v1 was removed on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC;", r.stderr)


def test_an_unknown_tag_suggests_the_nearest(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "a.bin", 100)
    run("register", "m", "a.bin", "-t", "production")
    r = run("get", "m@prodution")
    assert r.exit_code == 1 and "m has no tag 'prodution'; did you mean production?" in r.stderr


def test_register_says_what_the_version_added_to_the_store(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "a.bin", 3 << 20)
    first = run("register", "m", "a.bin").stdout
    assert re.fullmatch(r"Registered m@v1 \(3\.0 MiB; 3\.0 MiB new in the store\)\n", first)
    again = run("register", "m", "a.bin").stdout
    assert re.fullmatch(r"Registered m@v2 \(3\.0 MiB; \d+ B new in the store\)\n", again)


@pytest.mark.parametrize("args", [["list"], ["show", "m"], ["log", "m"], ["list", "--json"]])
def test_output_piped_into_a_closed_reader_ends_quietly(
    repo_dir: Path, run: CliRun, args: list[str]
) -> None:
    write_bytes(repo_dir / "a.bin", 100)
    run("register", "m", "a.bin")
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelreg", *args],
        cwd=repo_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before a line is written, as in `| head -0`
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert err == ""  # before: "error: Broken pipe"
    assert proc.returncode == 141  # 128 + SIGPIPE, as git exits


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_init_in_a_git_work_tree_ignores_the_store_and_checkouts(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from modelreg.cli import cli

    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / ".gitignore").write_text("*.pyc")  # no newline at the end
    runner = CliRunner()
    r = runner.invoke(cli, ["init", str(project)])
    assert r.exit_code == 0
    assert f"Added /.modelreg/, /models/ to {project / '.gitignore'}" in r.stdout
    text = (project / ".gitignore").read_text()
    assert text.startswith("*.pyc\n") and text.endswith("/.modelreg/\n/models/\n")
    again = runner.invoke(cli, ["init", str(project)])
    assert "Added" not in again.stdout
    assert (project / ".gitignore").read_text() == text
    status = subprocess.run(
        ["git", "-C", str(project), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ".modelreg" not in status


def test_init_outside_git_writes_no_gitignore(tmp_path: Path, run: CliRun) -> None:
    assert run("init", tmp_path / "p").exit_code == 0
    assert not (tmp_path / "p" / ".gitignore").exists()


def test_diff_prints_words_not_python(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "a.bin", 100)
    write_bytes(repo_dir / "b.bin", 200, seed=1)
    run("register", "m", "a.bin", "-m", "baseline", "--metric", "f1=0.89")
    run("register", "m", "b.bin")
    out = run("diff", "m@v1", "m@v2").stdout
    assert "description: baseline -> (none)" in out
    assert "f1: 0.89 -> (none)" in out
    assert "size: 100 B (100 bytes) -> 200 B (200 bytes)" in out
    assert "None" not in out and "'" not in out
