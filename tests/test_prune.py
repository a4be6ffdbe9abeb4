"""The checkout tree is a cache: `checkout --prune` empties it, a budget keeps it small, and
neither ever removes a file a user edited or a version the next `get` cannot rebuild."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from modelreg import ModelRegistry
from modelreg.checkout import StatCache
from modelreg.repo import Repository

from .conftest import CliRun, tree_snapshot, write_bytes


def _three_checkouts(repo_dir: Path, run: CliRun) -> list[Path]:
    paths = []
    for i in range(3):
        write_bytes(repo_dir / f"w{i}.bin", 100_000, seed=i)
        assert run("register", f"m{i}", f"w{i}.bin").exit_code == 0
        paths.append(Path(run("get", f"m{i}").stdout.strip()))
    return paths


def _age(repo_dir: Path, family: str, days: float) -> None:
    """Make a checkout look last used ``days`` ago (its stat cache and folder)."""
    when = time.time() - days * 86400
    folder = repo_dir / "models" / family / "v1"
    for p in (folder, StatCache(Repository(repo_dir), folder).path):
        os.utime(p, (when, when))


def test_prune_removes_every_checkout_and_get_rebuilds_it(repo_dir: Path, run: CliRun) -> None:
    paths = _three_checkouts(repo_dir, run)
    store_before = tree_snapshot(repo_dir / ".modelreg" / "objects")
    r = run("checkout", "--prune")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("Removed 3 checkouts (")
    assert not any(p.exists() for p in paths)
    assert tree_snapshot(repo_dir / ".modelreg" / "objects") == store_before
    again = Path(run("get", "m1").stdout.strip())
    assert again.read_bytes() == (repo_dir / "w1.bin").read_bytes()


def test_prune_older_than_keeps_recently_used_versions(repo_dir: Path, run: CliRun) -> None:
    paths = _three_checkouts(repo_dir, run)
    _age(repo_dir, "m0", days=10)
    dry = json.loads(run("checkout", "--prune", "--older-than", "7", "--dry-run", "--json").stdout)
    assert dry["removed"] == ["m0@v1"] and dry["dry_run"] is True
    assert paths[0].exists()
    r = run("checkout", "--prune", "--older-than", "7")
    assert r.exit_code == 0 and "m0@v1" in r.stdout
    assert not paths[0].exists() and paths[1].exists() and paths[2].exists()


def test_prune_keeps_a_folder_with_an_edited_file_unless_forced(
    repo_dir: Path, run: CliRun
) -> None:
    paths = _three_checkouts(repo_dir, run)
    paths[1].chmod(0o644)
    paths[1].write_bytes(b"my edit")
    r = run("checkout", "--prune")
    assert r.exit_code == 0
    assert "kept m1@v1: edited or added files (w1.bin); --force removes it anyway" in r.stderr
    assert paths[1].read_bytes() == b"my edit"
    assert not paths[0].exists()
    assert run("checkout", "--prune", "--force").exit_code == 0
    assert not paths[1].exists()


def test_prune_never_follows_a_link_in_the_checkout_tree(
    repo_dir: Path, run: CliRun, tmp_path: Path
) -> None:
    _three_checkouts(repo_dir, run)
    outside = tmp_path / "outside"
    (outside / "v1").mkdir(parents=True)
    (outside / "v1" / "precious.bin").write_bytes(b"keep me")
    os.symlink(outside, repo_dir / "models" / "m9")
    assert run("checkout", "--prune", "--force").exit_code == 0
    assert (outside / "v1" / "precious.bin").read_bytes() == b"keep me"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["checkout", "--prune", "m0"], "--prune takes no versions and no --all"),
        (["checkout", "m0", "--older-than", "3"], "--older-than, --dry-run and --force go with"),
    ],
)
def test_prune_usage_errors(repo_dir: Path, run: CliRun, args: list[str], message: str) -> None:
    r = run(*args)
    assert r.exit_code == 2 and message in r.stderr


def test_negative_days_are_refused(repo_dir: Path, run: CliRun) -> None:
    r = run("checkout", "--prune", "--older-than", "-1")
    assert r.exit_code == 1 and "--older-than -1 is negative" in r.stderr


def test_a_budget_evicts_the_least_recently_used_checkouts(
    repo_dir: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _three_checkouts(repo_dir, run)
    _age(repo_dir, "m0", days=3)
    _age(repo_dir, "m2", days=1)
    write_bytes(repo_dir / "w3.bin", 100_000, seed=3)
    run("register", "m3", "w3.bin")
    monkeypatch.setenv("MODELREG_CHECKOUT_BUDGET", "250K")  # room for two of the four
    r = run("get", "m3")
    assert r.exit_code == 0
    assert "note: removed the checkout of m0@v1 (over the checkout budget)" in r.stderr
    assert "removed the checkout of m2@v1" in r.stderr
    assert not paths[0].exists() and not paths[2].exists()
    assert paths[1].exists() and Path(r.stdout.strip()).exists()


def test_a_budget_in_the_config_applies_to_the_api(repo_dir: Path) -> None:
    config = repo_dir / ".modelreg" / "config.yaml"
    config.write_text(config.read_text() + "checkout: {budget: 150K}\n")
    registry = ModelRegistry(".")
    for i in range(2):
        registry.register(f"m{i}", write_bytes(repo_dir / f"w{i}.bin", 100_000, seed=i))
    first = Path(registry.get("m0")["file_path"])
    second = Path(registry.get("m1")["file_path"])
    assert second.exists() and not first.exists()


def test_a_bad_budget_is_one_clear_error(
    repo_dir: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_bytes(repo_dir / "w.bin", 100)
    run("register", "m", "w.bin")
    monkeypatch.setenv("MODELREG_CHECKOUT_BUDGET", "lots")
    r = run("get", "m")
    assert r.exit_code == 1
    assert "MODELREG_CHECKOUT_BUDGET is 'lots', not a size" in r.stderr
