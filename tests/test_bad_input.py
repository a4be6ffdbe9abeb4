"""Hostile and mistaken input: one clear error, exit 1, nothing written anywhere."""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from modelreg.cli import cli
from modelreg.repo import Repository

from .conftest import tree_snapshot, write_bytes

hostile_names = st.one_of(
    st.sampled_from(
        [
            "..",
            "../x",
            "a/b",
            "/abs",
            "",
            ".hidden",
            "-rf",
            "a@b",
            "a b",
            "é",
            "x" * 101,
            "a\x00b",
            "a\nb",
            "a\\b",
            "C:\\x",
        ]
    ),
    st.text(alphabet=string.printable + "\x00\x7f/", max_size=120),
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One registry for all examples; each example proves it left it unchanged."""
    base = tmp_path_factory.mktemp("bad")
    root = base / "project"
    root.mkdir()
    Repository.init(root)
    write_bytes(root / "a.pt", 100)
    runner = CliRunner()
    assert (
        runner.invoke(cli, ["-C", str(root), "register", "good", str(root / "a.pt")]).exit_code == 0
    )
    return root


def _check_refused(root: Path, args: list[str]) -> None:
    outside_before = tree_snapshot(root.parent)
    # '--' so that a name like '-rf' reaches modelreg rather than click's option parser
    r = CliRunner().invoke(cli, ["-C", str(root), args[0], "--", *args[1:]], catch_exceptions=False)
    assert r.exit_code == 1, (args, r.output)
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert tree_snapshot(root.parent) == outside_before


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=hostile_names)
@example(name="..")
@example(name="a/../../../etc")
def test_hostile_model_names_are_refused(shared: Path, name: str) -> None:
    from modelreg.names import FAMILY_RE

    if FAMILY_RE.match(name):
        return  # a valid name: covered elsewhere
    for args in (
        ["register", name, str(shared / "a.pt")],
        ["get", name],
        ["log", name],
        ["show", f"{name}@v1"],
        ["tag", f"{name}@v1", "prod"],
    ):
        _check_refused(shared, args)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ref=st.text(alphabet=string.printable + "\x00", min_size=0, max_size=80))
def test_unknown_or_malformed_refs_are_refused(shared: Path, ref: str) -> None:
    if ref in ("latest", "v1", "1") or ref.lstrip("0") == "1":
        return
    _check_refused(shared, ["get", f"good@{ref}"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tag=hostile_names)
def test_hostile_tags_are_refused(shared: Path, tag: str) -> None:
    from modelreg.names import TAG_RE

    if TAG_RE.match(tag) and tag != "latest":
        return
    _check_refused(shared, ["tag", "good@v1", tag])


def test_directory_with_symlink_pointing_outside_is_refused(
    repo_dir: Path, tmp_path: Path, run
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not copy me")
    model = repo_dir / "dirmodel"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w" * 100)
    os.symlink(secret, model / "leak.txt")
    before = tree_snapshot(repo_dir / ".modelreg")
    r = run("register", "d", model)
    assert r.exit_code == 1
    assert "is a symlink to" in r.stderr and "outside" in r.stderr
    assert tree_snapshot(repo_dir / ".modelreg") == before


def test_symlink_inside_the_directory_is_stored_as_its_file(repo_dir: Path, run) -> None:
    model = repo_dir / "dirmodel"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w" * 100)
    os.symlink("weights.bin", model / "alias.bin")
    assert run("register", "d", model).exit_code == 0
    folder = Path(run("get", "d").stdout.strip())
    assert (folder / "alias.bin").read_bytes() == b"w" * 100
    assert not (folder / "alias.bin").is_symlink()


def test_a_tree_object_with_an_escaping_path_is_never_checked_out(
    repo_dir: Path, run, tmp_path: Path
) -> None:
    """A tampered (or hostile, pulled) tree naming '../x' is refused before any write."""
    from modelreg.hashing import oid_of
    from modelreg.objects import canonical_json

    repo = Repository(repo_dir)
    model = repo_dir / "dirmodel"
    model.mkdir()
    (model / "w.bin").write_bytes(b"w" * 100)
    run("register", "d", model)
    rec = repo.lookup("d@v1")
    tree = repo.objects.get_json(rec["root"])
    tree["entries"] = {"../../escaped.bin": tree["entries"]["w.bin"]}
    evil_tree = repo.objects.add(canonical_json(tree))
    rec = {k: v for k, v in rec.items() if k != "tags"}
    rec["root"] = evil_tree
    evil_rec = repo.objects.add(canonical_json(rec))
    assert evil_rec == oid_of(canonical_json(rec))
    repo.objects.sync()
    repo.refs.update("d", lambda refs: refs.versions.__setitem__("v1", evil_rec))
    r = run("get", "d")
    assert r.exit_code == 1 and "leaves its directory model" in r.stderr
    assert not (repo_dir / "models" / "escaped.bin").exists()
    assert not (repo_dir / "escaped.bin").exists()


def test_registering_a_fifo_is_refused(repo_dir: Path, run) -> None:
    model = repo_dir / "dirmodel"
    model.mkdir()
    os.mkfifo(model / "pipe")
    r = run("register", "d", model)
    assert r.exit_code == 1 and "is not a regular file" in r.stderr


def test_a_symlink_loop_inside_a_directory_model_is_refused(repo_dir: Path, run) -> None:
    model = repo_dir / "dirmodel"
    (model / "sub").mkdir(parents=True)
    (model / "w.bin").write_bytes(b"w" * 10)
    os.symlink("..", model / "sub" / "back")
    r = run("register", "d", model)
    assert r.exit_code == 1 and "is a symlink loop" in r.stderr


def test_a_symlinked_folder_inside_the_model_is_stored_as_files(repo_dir: Path, run) -> None:
    model = repo_dir / "dirmodel"
    (model / "real").mkdir(parents=True)
    (model / "real" / "w.bin").write_bytes(b"w" * 10)
    os.symlink("real", model / "alias")
    assert run("register", "d", model).exit_code == 0
    folder = Path(run("get", "d").stdout.strip())
    assert (folder / "alias" / "w.bin").read_bytes() == b"w" * 10
    assert not (folder / "alias").is_symlink()
