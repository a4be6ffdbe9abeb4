"""The version index answers exactly what the refs and records say, and is never believed
when it is stale or damaged."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelreg import ModelRegistry
from modelreg.errors import ModelregError
from modelreg.indexfile import HEADER_SIZE
from modelreg.refs import FamilyRefs
from modelreg.repo import Repository
from modelreg.views import json_rows, version_view

from .conftest import write_bytes


def truth(repo: Repository) -> dict[str, Any]:
    """What the refs and records say, read without the index (the code before it)."""
    listing, answers = [], {}
    for refs in repo.refs:
        for version in sorted(refs.versions, key=lambda v: int(v[1:])):
            rec = repo.describe(refs, version)
            listing.append(version_view(repo, rec))
        for ref in [*refs.versions, *refs.tags, "latest"]:
            try:
                answers[f"{refs.name}@{ref}"] = repo.describe(refs, refs.resolve(ref))
            except ModelregError as e:
                answers[f"{refs.name}@{ref}"] = str(e)
    families = [r.name for r in repo.refs if r.versions]
    return {"list": listing, "lookup": answers, "families": families}


def through_index(repo: Repository) -> dict[str, Any]:
    answers = {}
    for spec in truth_specs(repo):
        try:
            answers[spec] = repo.lookup(spec)
        except ModelregError as e:
            answers[spec] = str(e)
    return {
        "list": [version_view(repo, r) for r in repo.versions()],
        "lookup": answers,
        "families": repo.families(),
    }


def truth_specs(repo: Repository) -> list[str]:
    specs = []
    for refs in repo.refs:
        specs += [f"{refs.name}@{ref}" for ref in [*refs.versions, *refs.tags, "latest"]]
    return specs


def spliced(repo: Repository) -> list[dict[str, Any]]:
    return [json.loads(row) for row in json_rows(repo)]


def assert_index_tells_the_truth(repo: Repository) -> None:
    fresh = Repository(repo.root)
    got = through_index(fresh)
    rows = spliced(fresh)
    want = truth(fresh)
    assert got == want
    assert rows == want["list"]


def index_files(repo: Repository) -> list[Path]:
    return sorted((repo.dir / "index").iterdir())


def register(repo: Repository, name: str, seed: int, **kw: Any) -> dict[str, Any]:
    src = repo.root / "src.bin"
    write_bytes(src, 200 + seed % 7, seed=seed)
    return repo.register(name, src, **kw)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["register", "register", "register", "tag", "untag", "rm"]),
        st.sampled_from(["a", "b.c", "d-1"]),
        st.integers(0, 9),
    ),
    max_size=25,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
def test_index_answers_what_refs_and_records_say(tmp_path_factory, ops) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("prop")
    repo, _ = Repository.init(root)
    for seed, (op, name, n) in enumerate(ops, start=1):
        try:
            if op == "register":
                register(repo, name, seed, metrics={"acc": n / 10}, tags=[f"t{n}"] if n > 7 else [])
            elif op == "tag":
                repo.tag(f"{name}@v{n + 1}", f"t{n % 3}")
            elif op == "untag":
                repo.untag(name, f"t{n % 3}")
            else:
                repo.remove(f"{name}@v{n + 1}", force=n % 2 == 0)
        except ModelregError:
            pass
        if seed % 5 == 0:
            assert_index_tells_the_truth(repo)
    assert_index_tells_the_truth(repo)
    shutil.rmtree(repo.dir / "index", ignore_errors=True)
    assert_index_tells_the_truth(repo)


def test_list_reads_no_record_file_and_get_only_the_one_it_returns(repo: Repository) -> None:
    for i in range(30):
        register(repo, "m", i)
    repo.lookup("m@v3")  # builds it
    records = repo.dir / "objects"
    shutil.move(records, repo.root / "aside")
    try:
        assert [r["version"] for r in repo.versions("m")][-1] == "v30"
        assert repo.families() == ["m"]
        with pytest.raises(ModelregError, match=r"m@v7: object .* is missing"):
            # the store's copy is checked, as fsck would (by a store opened now: one that
            # already holds a pack open reads on from it, as it does after a gc removes it)
            Repository(repo.root).lookup("m@v7")
    finally:
        shutil.move(repo.root / "aside", records)
    assert repo.lookup("m@v7")["version"] == "v7"


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from modelreg.repo import Repository
    repo = Repository(Path(sys.argv[1]))
    src = Path(sys.argv[1]) / f"w{sys.argv[2]}.bin"
    for i in range(int(sys.argv[3])):
        src.write_bytes(f"writer {sys.argv[2]} {i} ".encode() * 30)
        repo.register("m", src)
    """
)


def run_writer(root: Path, who: int, count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(who), str(count)])


def test_a_write_by_another_process_is_noticed(repo: Repository) -> None:
    register(repo, "m", 1)
    assert repo.lookup("m@latest")["version"] == "v1"
    assert run_writer(repo.root, 0, 2).wait() == 0
    assert repo.lookup("m@latest")["version"] == "v3"
    assert [r["version"] for r in repo.versions("m")] == ["v1", "v2", "v3"]
    assert_index_tells_the_truth(repo)


def test_refs_written_without_the_index_are_noticed(repo: Repository) -> None:
    """An older modelreg writes refs without a stamp and never updates the index."""
    first = register(repo, "m", 1)
    register(repo, "m", 2)
    repo.lookup("m@latest")
    refs = repo.refs.read("m")
    assert refs is not None
    refs.tags["prod"] = "v1"
    del refs.versions["v2"]
    (repo.dir / "refs" / "m.yaml").write_bytes(refs.to_yaml())  # no stamp line
    assert repo.lookup("m@latest")["root"] == first["root"]
    assert repo.lookup("m@prod")["tags"] == ["latest", "prod"]
    assert_index_tells_the_truth(repo)


def test_an_edit_by_hand_that_keeps_the_stamp_is_noticed(repo: Repository) -> None:
    register(repo, "m", 1)
    register(repo, "m", 2)
    repo.lookup("m@v1")
    path = repo.dir / "refs" / "m.yaml"
    text = path.read_text()
    path.write_text(text.replace("tags: {}", "tags:\n  prod: v1"))
    assert repo.lookup("m@prod")["version"] == "v1"
    assert_index_tells_the_truth(repo)


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at % len(data)] ^= 0x20
    path.write_bytes(bytes(data))


Damage = Callable[[Path, Path], None]  # (index file, data file)


def corruptions(idx_size: int, dat_size: int) -> list[tuple[str, Damage]]:
    out: list[tuple[str, Damage]] = [
        ("truncated table", lambda i, d: os.truncate(i, idx_size - 7)),
        ("truncated to the header", lambda i, d: os.truncate(i, HEADER_SIZE)),
        ("empty", lambda i, d: os.truncate(i, 0)),
        ("garbage", lambda i, d: i.write_bytes(os.urandom(idx_size))),
        ("data truncated", lambda i, d: os.truncate(d, dat_size // 2)),
        ("data missing", lambda i, d: d.unlink()),
        ("data garbage", lambda i, d: d.write_bytes(os.urandom(dat_size))),
    ]
    for at in (3, 20, 60, HEADER_SIZE + 5, idx_size - 60, idx_size - 30, idx_size - 3):
        out.append((f"index byte {at}", lambda i, d, at=at: flip(i, at)))  # type: ignore[misc]
    for at in range(40, dat_size, 97):
        out.append((f"data byte {at}", lambda i, d, at=at: flip(d, at)))  # type: ignore[misc]
    return out


def test_a_damaged_index_is_rebuilt_never_believed(repo: Repository) -> None:
    for i in range(6):
        register(repo, "m", i, metrics={"acc": i / 10})
    repo.tag("m@v2", "prod")
    want = truth(repo)
    repo.lookup("m@v1")
    idx = repo.dir / "index" / "m.idx"
    (dat,) = (repo.dir / "index").glob("m.*.dat")
    cases = corruptions(idx.stat().st_size, dat.stat().st_size)
    for label, damage in cases:
        (dat,) = (repo.dir / "index").glob("m.*.dat")
        damage(idx, dat)
        fresh = Repository(repo.root)
        for spec, answer in want["lookup"].items():
            assert fresh.lookup(spec) == answer, (label, spec)
        assert through_index(fresh) == want, label
        assert spliced(fresh) == want["list"], label
        key = repo.refs.key("m")
        assert key is not None
        Repository(repo.root).index._open("m", key, whole=True)  # rebuilt: whole again
    assert len(cases) > 20


def test_a_reader_never_waits_for_a_writer_and_then_leaves_the_index_alone(
    repo: Repository,
) -> None:
    register(repo, "m", 1)
    register(repo, "m", 2)
    shutil.rmtree(repo.dir / "index", ignore_errors=True)
    with repo.refs.lock("m"):  # a writer holds the family (this is another open file)
        start = time.monotonic()
        assert repo.lookup("m@latest")["version"] == "v2"
        assert [r["version"] for r in repo.versions("m")] == ["v1", "v2"]
        assert time.monotonic() - start < 5  # the lock timeout is 30 s: it did not wait
        assert not (repo.dir / "index" / "m.idx").exists()  # built in memory only
    repo.lookup("m@latest")
    assert (repo.dir / "index" / "m.idx").exists()


def test_sigkilled_writers_leave_a_usable_index(repo: Repository) -> None:
    rnd = random.Random(9)
    register(repo, "m", 0)
    repo.lookup("m@latest")
    for trial in range(6):
        proc = run_writer(repo.root, trial, 1000)
        time.sleep(rnd.uniform(0.3, 0.9))
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        assert_index_tells_the_truth(repo)
    assert len(list(Repository(repo.root).versions("m"))) > 6
    register(repo, "m", 99)  # the next writer goes on from whatever was left
    assert_index_tells_the_truth(repo)
    leftovers = [p for p in index_files(repo) if p.name.startswith(".tmp-")]
    assert not leftovers  # left only where the index went stale; its rebuild swept them


def test_what_a_writer_killed_inside_the_index_write_leaves_is_harmless(
    repo: Repository,
) -> None:
    """The two states a kill can leave: bytes appended to the data file that no table names
    yet, and a temporary table file that was never renamed."""
    register(repo, "m", 1)
    repo.lookup("m@latest")
    (dat,) = (repo.dir / "index").glob("m.*.dat")
    with open(dat, "ab") as f:
        f.write(b'{"half a record of a killed writer')
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = repo.dir / "index" / f".tmp-{dead.pid}-0a0b0c0d0e0f-m.idx"
    orphan.write_bytes(b"half a table")
    assert_index_tells_the_truth(repo)
    register(repo, "m", 2)  # appends after the garbage
    assert_index_tells_the_truth(repo)
    key = repo.refs.key("m")
    assert key is not None
    assert repo.index._open("m", key, whole=True).count == 2  # current: brought forward
    # a temporary file is left only where the index went stale, so a rebuild follows, and
    # a rebuild sweeps the dead writers' files
    (repo.dir / "index" / "m.idx").unlink()
    assert repo.lookup("m@v1")["version"] == "v1"
    assert not orphan.exists()


def test_concurrent_writers_end_with_every_version_indexed(repo: Repository) -> None:
    register(repo, "m", 0)
    repo.lookup("m@latest")
    procs = [run_writer(repo.root, who, 8) for who in range(4)]
    assert [p.wait() for p in procs] == [0, 0, 0, 0]
    fresh = Repository(repo.root)
    assert [r["version"] for r in fresh.versions("m")] == [f"v{n}" for n in range(1, 34)]
    assert_index_tells_the_truth(repo)


def test_list_json_from_the_cli_has_the_schema(repo: Repository, run) -> None:  # type: ignore[no-untyped-def]
    register(repo, "m", 1, metrics={"acc": 0.5}, description='say "hi"')
    register(repo, "m", 2, tags=["prod"])
    run("get", "m@v1")
    rows = json.loads(run("list", "--json").stdout)
    assert rows == [version_view(repo, repo.lookup(f"m@v{n}")) for n in (1, 2)]
    assert rows[0]["checked_out"] is True and rows[1]["checked_out"] is False
    assert json.loads(run("list", "m", "--json").stdout) == rows
    missing = run("list", "nope", "--json")
    assert missing.exit_code == 1 and missing.stdout == ""
    assert "no model named 'nope'" in missing.stderr


def test_removing_every_version_drops_the_family_index(repo: Repository) -> None:
    register(repo, "m", 1)
    repo.lookup("m@v1")
    repo.remove("m@v1")
    assert repo.families() == []
    assert list(repo.versions()) == []
    with pytest.raises(ModelregError, match="was removed"):
        repo.lookup("m@v1")


# --- metadata_file -------------------------------------------------------------------


def expected_view(registry: ModelRegistry) -> dict[str, Any]:
    view: dict[str, Any] = {"registry": str(registry.root), "models": {}}
    for info in registry.list():
        fields = {k: v for k, v in info.items() if k not in ("name", "version", "checked_out")}
        view["models"].setdefault(info["name"], {})[info["version"]] = fields
    return view


def read_view(path: Path) -> dict[str, Any]:
    view = yaml.safe_load(path.read_text())
    for versions in view["models"].values():
        for fields in versions.values():
            fields.pop("checked_out")
    return view


def test_metadata_file_stays_correct_after_each_change(tmp_path: Path) -> None:
    project = tmp_path / "p"
    registry = ModelRegistry(project / "models", metadata_file=project / "registry.yaml")
    view = project / "registry.yaml"
    for i in range(5):
        registry.register("a" if i % 2 else "b", write_bytes(tmp_path / "w.pt", 300, seed=i))
    registry.flush()
    assert read_view(view) == expected_view(registry)
    registry.tag("b", "v1", "prod")
    assert read_view(view) == expected_view(registry)
    registry.remove("b", "v3")
    assert read_view(view) == expected_view(registry)
    assert yaml.safe_load(view.read_text())["models"]["b"]["v2"]["tags"] == ["latest"]

    # another process registers; this instance's next write picks it up
    other = ModelRegistry(project)
    other.register("c", write_bytes(tmp_path / "w.pt", 300, seed=9))
    registry.tag("a", "v2", "best")
    assert read_view(view) == expected_view(registry)
    assert set(yaml.safe_load(view.read_text())["models"]) == {"a", "b", "c"}

    # pull
    remote = tmp_path / "remote"
    other.add_remote("origin", str(remote))
    other.push("origin")
    puller = ModelRegistry(tmp_path / "q" / "models", metadata_file=tmp_path / "q.yaml")
    puller.add_remote("origin", str(remote))
    puller.pull("origin")
    assert read_view(tmp_path / "q.yaml") == expected_view(puller)
    assert set(read_view(tmp_path / "q.yaml")["models"]) == {"a", "b", "c"}


def test_metadata_file_of_quick_registers_is_written_within_a_second(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models", metadata_file=tmp_path / "r.yaml")
    for i in range(3):
        registry.register("m", write_bytes(tmp_path / "w.pt", 300, seed=i))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if set(yaml.safe_load((tmp_path / "r.yaml").read_text())["models"].get("m", {})) == {
            "v1",
            "v2",
            "v3",
        }:
            break
        time.sleep(0.05)
    assert read_view(tmp_path / "r.yaml") == expected_view(registry)


def test_metadata_file_is_written_at_exit(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from modelreg import ModelRegistry
        r = ModelRegistry({str(tmp_path / "models")!r}, metadata_file={str(tmp_path / "r.yaml")!r})
        for i in range(4):
            p = Path({str(tmp_path)!r}) / "w.pt"
            p.write_bytes(b"weights %d " % i * 50)
            r.register("m", p)
        """
    )
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True)
    registry = ModelRegistry(tmp_path / "models")
    assert read_view(tmp_path / "r.yaml") == expected_view(registry)
    assert len(yaml.safe_load((tmp_path / "r.yaml").read_text())["models"]["m"]) == 4


def test_old_refs_without_a_stamp_still_open(repo: Repository) -> None:
    register(repo, "m", 1)
    refs = repo.refs.read("m")
    assert isinstance(refs, FamilyRefs)
    (repo.dir / "refs" / "m.yaml").write_bytes(refs.to_yaml())
    shutil.rmtree(repo.dir / "index")
    assert repo.lookup("m")["version"] == "v1"
    register(repo, "m", 2)
    assert (repo.dir / "refs" / "m.yaml").read_bytes().startswith(b"# stamp: ")
    assert_index_tells_the_truth(repo)


# --- refs: the versions block written and read without libyaml ----------------------


def _random_refs(rnd: random.Random) -> FamilyRefs:
    def oid() -> str:
        kind = rnd.random()
        if kind < 0.2:
            return "".join(rnd.choice("0123456789") for _ in range(32))  # YAML: a number?
        if kind < 0.3:
            return "0b" + "".join(rnd.choice("01") for _ in range(30))
        if kind < 0.35:
            return "0" + "".join(rnd.choice("01234567") for _ in range(31))
        return f"{rnd.getrandbits(128):032x}"

    name = rnd.choice(["m", "true", "123", "1.5", "null", "a.b", "0x10", "yes", "1e3", "0b1"])
    refs = FamilyRefs(
        name,
        versions={f"v{n}": oid() for n in rnd.sample(range(1, 50), rnd.randint(0, 6))},
        tags={f"t{n}": f"v{n + 1}" for n in range(rnd.randint(0, 2))},
        removed=[f"v{60 + n}" for n in range(rnd.randint(0, 2))],
    )
    if refs.removed and rnd.random() < 0.5:
        refs.removed_at = {refs.removed[0]: "2026-11-28T18:40:01.123456+00:00"}
    return refs


def test_refs_are_written_as_libyaml_writes_them_and_read_as_it_reads_them() -> None:
    from modelreg.refs import stamped, yaml_dump, yaml_load

    rnd = random.Random(5)
    for _ in range(1500):
        refs = _random_refs(rnd)
        body = {
            "name": refs.name,
            "versions": {
                v: refs.versions[v] for v in sorted(refs.versions, key=lambda v: int(v[1:]))
            },
            "tags": dict(sorted(refs.tags.items())),
            "removed": sorted(refs.removed, key=lambda v: int(v[1:])),
        }
        if refs.removed_at:
            body["removed_at"] = refs.removed_at
        text = refs.to_yaml()
        assert text == yaml_dump(body, sort_keys=False).encode()
        for written in (text, stamped(text)):
            assert FamilyRefs.from_yaml(refs.name, written, Path("x")) == refs
            assert yaml_load(written) == body


def test_refs_that_are_not_exactly_as_written_go_to_the_yaml_parser() -> None:
    oid = "ab" * 16
    for text, versions in [
        (f"name: m\nversions:\n  v1: {oid}  # mine\n", {"v1": oid}),
        (f"name: m\nversions: {{v1: {oid}}}\n", {"v1": oid}),
        (f'name: m\nversions:\n  v1: {oid}\n  v2: "{oid}"\n', {"v1": oid, "v2": oid}),
        (f"name: m\nversions:\n    v1: {oid}\n", {"v1": oid}),
    ]:
        assert FamilyRefs.from_yaml("m", text.encode(), Path("x")).versions == versions
    with pytest.raises(ModelregError, match="damaged"):
        FamilyRefs.from_yaml(
            "m", b"name: m\nversions:\n  v1: 01234567012345670123456701234567\n", Path("x")
        )


def test_get_of_an_unchanged_checkout_only_touches_its_stat_cache(tmp_path: Path) -> None:
    """The cache file's mtime is the version's last use (prune), so it is touched, not
    rewritten: a rename per get was most of a get's time on a busy disk."""
    registry = ModelRegistry(tmp_path / "models")
    registry.register("m", write_bytes(tmp_path / "w.pt", 300))
    registry.get("m")
    (cache,) = (registry.repo.dir / "cache" / "checkouts").iterdir()
    before = cache.stat()
    os.utime(cache, ns=(before.st_atime_ns, before.st_mtime_ns - 10**10))
    registry.get("m")
    after = cache.stat()
    assert after.st_ino == before.st_ino
    assert after.st_mtime_ns >= before.st_mtime_ns
    Path(registry.get("m")["file_path"]).chmod(0o644)
    Path(registry.get("m")["file_path"]).write_bytes(b"changed")
    registry.get("m")  # rebuilt: the cache is written anew
    assert cache.stat().st_ino != before.st_ino
