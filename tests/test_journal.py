"""The refs journal: appends, torn lines, compaction, old refs files, and real processes
(killed with SIGKILL, or registering into one family at once)."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modelreg import ModelRegistry, journal, maintenance, refstore
from modelreg.errors import CorruptObjectError
from modelreg.refs import FamilyRefs, stamped
from modelreg.repo import Repository

from .conftest import CliRun, write_bytes
from .test_reliability import _kill, _started


def _register(repo: Repository, name: str, n: int, seed: int = 0) -> None:
    for i in range(n):
        src = write_bytes(repo.root / f"s{seed}-{i}.bin", 300, seed=seed * 1000 + i)
        repo.register(name, src)


def _journal(repo: Repository, name: str) -> Path:
    return repo.refs.journal_path(name)


def _index_agrees(repo: Repository, name: str) -> None:
    """The index (as readers use it) says what the refs say."""
    refs = repo.refs.get(name)
    index = repo.index.load(name)
    assert index is not None
    assert [e.version for e in index.entries()] == sorted(refs.versions, key=lambda v: int(v[1:]))
    assert {e.version: e.oid.hex() for e in index.entries()} == refs.versions
    assert index.tags == refs.tags
    assert index.key == repo.refs.key(name)


def test_a_register_appends_one_line_and_leaves_the_snapshot_alone(repo: Repository) -> None:
    _register(repo, "m", 2)
    snapshot = repo.refs.path("m").read_bytes()
    before = _journal(repo, "m").read_bytes()
    _register(repo, "m", 1, seed=1)
    assert repo.refs.path("m").read_bytes() == snapshot
    after = _journal(repo, "m").read_bytes()
    assert after.startswith(before) and after[len(before) :].count(b"\n") == 1
    assert sorted(repo.family("m").versions) == ["v1", "v2", "v3"]
    _index_agrees(repo, "m")


def test_a_register_into_a_family_with_a_current_index_reads_no_refs(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(repo, "m", 3)
    list(repo.versions("m"))  # the index is current

    def refused(*args: object) -> object:
        raise AssertionError("the register read the whole refs")

    monkeypatch.setattr(refstore.RefStore, "read_keyed", refused)
    _register(repo, "m", 2, seed=1)
    monkeypatch.undo()
    assert sorted(repo.family("m").versions) == ["v1", "v2", "v3", "v4", "v5"]
    assert repo.lookup("m@v5")["parent"] == "m@v4"
    _index_agrees(repo, "m")


def test_a_torn_last_line_is_ignored_and_cut_off_by_the_next_writer(
    repo: Repository, run: CliRun
) -> None:
    _register(repo, "m", 2)
    path = _journal(repo, "m")
    whole = journal.encode([["tag", "prod", "v1"]])
    for torn in (whole[:20], whole[:-1], b"\0" * 40 + b"\n"):  # killed mid-write; power cut
        with open(path, "ab") as f:
            f.write(torn)
        assert "prod" not in repo.family("m").tags  # readers ignore it
        assert maintenance.fsck(Repository(repo.root)).ok
        assert run("tag", "m@v2", "stable").exit_code == 0  # the next writer cuts it off
        assert not path.read_bytes().endswith(torn)
        assert repo.family("m").tags["stable"] == "v2"
        assert run("tag", "-d", "m", "stable").exit_code == 0
    _index_agrees(repo, "m")


def test_a_damaged_line_before_the_last_is_one_clear_error(repo: Repository, run: CliRun) -> None:
    _register(repo, "m", 3)
    path = _journal(repo, "m")
    data = bytearray(path.read_bytes())
    first = data.index(b"\n") + 1  # the first change, after the header
    data[first + 30] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptObjectError, match=r"refs journal .*m\.journal is damaged"):
        Repository(repo.root).refs.read("m")
    r = run("log", "m")
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1 and "m.journal is damaged" in r.stderr
    assert not maintenance.fsck(Repository(repo.root)).ok


def test_the_journal_is_folded_into_the_snapshot_past_its_size_and_at_gc(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refstore, "COMPACT_AT", 0)  # compact once past the snapshot's size
    _register(repo, "m", 12)
    repo.tag("m@v3", "prod", message="first")
    tokens = set()
    for i in range(30):
        _register(repo, "m", 1, seed=10 + i)
        tokens.add(repo.family("m").journal)
    assert len(tokens) > 1  # compacted at least once
    refs = repo.family("m")
    assert sorted(refs.versions, key=lambda v: int(v[1:])) == [f"v{n}" for n in range(1, 43)]
    assert refs.tags == {"prod": "v3"} and len(refs.history) == 1
    _index_agrees(repo, "m")
    maintenance.gc(repo)
    head = journal.header(str(repo.family("m").journal))
    assert _journal(repo, "m").read_bytes() == head  # gc folded it
    assert repo.family("m") == refs
    _index_agrees(repo, "m")


def test_a_journal_left_by_an_unfinished_compaction_is_ignored_then_replaced(
    repo: Repository,
) -> None:
    _register(repo, "m", 3)
    refs = repo.family("m")
    stale = _journal(repo, "m").read_bytes()
    refs.tags["prod"] = "v1"
    # killed after the new snapshot (a new token), before the fresh journal
    repo.refs.path("m").write_bytes(stamped(refs.to_yaml(), "0123456789abcdef"))
    assert stale.count(b"\n") > 1 and _journal(repo, "m").read_bytes() == stale
    assert repo.family("m") == refs  # the old journal's changes are in the snapshot
    _register(repo, "m", 1, seed=5)
    assert _journal(repo, "m").read_bytes().startswith(journal.header("0123456789abcdef"))
    assert sorted(repo.family("m").versions) == ["v1", "v2", "v3", "v4"]
    assert repo.family("m").tags == {"prod": "v1"}


def test_a_refs_file_of_todays_main_opens_and_is_upgraded_on_first_write(
    repo: Repository,
) -> None:
    _register(repo, "m", 2)
    refs = repo.family("m")
    # as main wrote it: a stamp line, no journal line, no journal file
    repo.refs.path("m").write_bytes(stamped(FamilyRefs("m", refs.versions, {"a": "v1"}).to_yaml()))
    _journal(repo, "m").unlink()
    old = Repository(repo.root)
    assert old.family("m").tags == {"a": "v1"} and old.family("m").journal is None
    assert [r["version"] for r in old.versions("m")] == ["v1", "v2"]
    _register(old, "m", 1, seed=3)
    assert old.family("m").journal is not None
    assert _journal(repo, "m").is_file()
    _register(old, "m", 1, seed=4)  # now an append
    assert sorted(old.family("m").versions) == ["v1", "v2", "v3", "v4"]
    assert old.family("m").tags == {"a": "v1"}
    _index_agrees(old, "m")


KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from modelreg.repo import Repository

    root, trial = Path(sys.argv[1]), int(sys.argv[2])
    repo = Repository(root)
    src = root / f"src-{trial}.bin"
    for i in range(100000):
        src.write_bytes(f"{trial} {i} ".encode() * 20)  # tiny: a register is mostly refs
        record = repo.register("j", src)
        if i % 3 == 0:
            repo.tag(f"j@{record['version']}", "moving", message=str(i))
        print("registered", flush=True)  # the test times its kill from the first of these
    """
)


def test_sigkill_during_appends_never_loses_or_damages_a_published_change(
    repo_dir: Path,
) -> None:
    repo = Repository(repo_dir)
    rnd = random.Random(99)
    seen: dict[str, str] = {}
    for trial in range(12):
        proc = _started(KILLED_WRITER, repo_dir, trial)
        time.sleep(rnd.uniform(0.0, 0.5))  # a register here takes ~0.01 s on a quiet machine
        _kill(proc)
        repo = Repository(repo_dir)
        refs = repo.family("j")
        for version, oid in seen.items():  # nothing published is lost or changed
            assert refs.versions[version] == oid
        seen = dict(refs.versions)
        numbers = sorted(int(v[1:]) for v in refs.versions)
        assert numbers == list(range(1, len(numbers) + 1))
        for oid in refs.versions.values():
            repo.record(oid)  # objects before refs
        assert [r["version"] for r in repo.versions("j")] == [f"v{n}" for n in numbers]
        report = maintenance.fsck(repo)
        assert report.ok, (trial, report)
    assert len(seen) >= 12  # every writer finished a register before its kill
    _index_agrees(repo, "j")
    history = repo.tag_history("j", "moving")
    assert history and history[-1]["to"] == repo.family("j").tags["moving"]


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from modelreg.repo import Repository

    root, worker, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    repo = Repository(root)
    src = root / f"src-{worker}.bin"
    for i in range(count):
        src.write_bytes(f"{worker} {i} ".encode() * 20)
        repo.register("two", src, metrics={"i": i}, description=worker)
    """
)


def test_two_processes_registering_into_one_large_family_share_and_lose_nothing(
    repo_dir: Path,
) -> None:
    repo = Repository(repo_dir)
    _register(repo, "two", 40)
    list(repo.versions("two"))  # the index is current: both take the cheap path
    count = 40
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(repo_dir), w, str(count)])
        for w in ("a", "b")
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    repo = Repository(repo_dir)
    rows = list(repo.versions("two"))
    assert [r["version"] for r in rows] == [f"v{n}" for n in range(1, 40 + 2 * count + 1)]
    mine = sorted((r["description"], r["metrics"]["i"]) for r in rows[40:])
    assert mine == sorted((w, i) for w in ("a", "b") for i in range(count))
    _index_agrees(repo, "two")
    assert maintenance.fsck(repo).ok
    assert ModelRegistry(repo_dir).get("two", "latest")["version"] == f"v{40 + 2 * count}"


def test_versions_chosen_below_the_highest_removed_and_renumbered_keep_the_index_right(
    repo: Repository, run: CliRun
) -> None:
    _register(repo, "m", 3)
    list(repo.versions("m"))
    for version in ("v10", "v5"):  # above, then below the highest: the table is rewritten
        src = write_bytes(repo.root / f"{version}.bin", 300, seed=int(version[1:]))
        assert run("register", "m", src, "--version", version).exit_code == 0
        _index_agrees(repo, "m")
    assert run("rm", "m@v2").exit_code == 0
    _index_agrees(repo, "m")
    _register(repo, "m", 1, seed=7)
    assert sorted(repo.family("m").versions, key=lambda v: int(v[1:])) == [
        "v1",
        "v3",
        "v5",
        "v10",
        "v11",
    ]
    assert repo.lookup("m@v11")["parent"] == "m@v10"
    _index_agrees(repo, "m")
