"""Real processes: concurrent writers, and writers killed with SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from modelreg import ModelRegistry, maintenance
from modelreg.hashing import hash_file
from modelreg.repo import Repository

from .conftest import write_bytes

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from modelreg import ModelRegistry

    root, worker, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    registry = ModelRegistry(root)
    for i in range(count):
        src = root / "src" / f"w{worker}-{i}.bin"
        registry.register("shared", src, metrics={"worker": worker, "i": i})
    """
)


def test_eight_processes_registering_one_family_get_distinct_versions(repo_dir: Path) -> None:
    workers, per_worker = 8, 25
    (repo_dir / "src").mkdir()
    expected = {}
    for w in range(workers):
        for i in range(per_worker):
            src = write_bytes(repo_dir / "src" / f"w{w}-{i}.bin", 5000 + 17 * i, seed=w * 100 + i)
            expected[(w, i)] = hash_file(src)
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(repo_dir), str(w), str(per_worker)])
        for w in range(workers)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0] * workers

    registry = ModelRegistry(repo_dir)
    rows = registry.list("shared")
    assert [r["version"] for r in rows] == [f"v{n}" for n in range(1, 201)]
    seen = {(r["metrics"]["worker"], r["metrics"]["i"]) for r in rows}
    assert seen == set(expected)
    for r in rows:
        path = Path(registry.get("shared", r["version"])["file_path"])
        assert hash_file(path) == expected[(r["metrics"]["worker"], r["metrics"]["i"])]
    assert maintenance.fsck(registry.repo).ok


KILLED_WRITER = textwrap.dedent(
    """
    import os
    import sys
    from pathlib import Path
    from modelreg import ModelRegistry

    root, trial = Path(sys.argv[1]), int(sys.argv[2])
    registry = ModelRegistry(root)
    for i in range(1000):
        src = root / "src" / f"{trial}-{i}.bin"
        src.write_bytes(os.urandom(3_000_000 + i))  # new bytes: every register writes objects
        registry.register("crashy", src)
        print("registered", flush=True)  # the test times its kill from the first of these
    """
)


def _started(script: str, repo_dir: Path, trial: int) -> subprocess.Popen[bytes]:
    """A writer that has finished its first step: the kill that follows falls at a random
    moment of its work, whatever the machine's load made its start-up cost."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(repo_dir), str(trial)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stdout.readline(), "the writer died before its first step"
    return proc


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert proc.stdout is not None
    proc.stdout.close()


def test_sigkill_at_random_moments_never_corrupts_the_registry(repo_dir: Path) -> None:
    (repo_dir / "src").mkdir()
    rnd = random.Random(1234)
    trials = 25
    interrupted = 0
    for trial in range(trials):
        proc = _started(KILLED_WRITER, repo_dir, trial)
        time.sleep(rnd.uniform(0.0, 0.6))  # a register takes ~0.05 s on a quiet machine
        _kill(proc)
        repo = Repository(repo_dir)
        report = maintenance.fsck(repo)
        assert report.ok, (trial, report)
        interrupted += bool(report.dangling or report.leftovers)
    registry = ModelRegistry(repo_dir)
    rows = registry.list("crashy")
    assert len(rows) >= trials  # every writer finished a register before its kill
    print(f"{interrupted} of {trials} kills landed inside a register's writes")
    assert interrupted > 0
    for r in rows:
        checked_out = Path(registry.get("crashy", r["version"])["file_path"])
        assert hash_file(checked_out) == hash_file(repo_dir / "src" / r["source"])
    maintenance.gc(registry.repo)
    report = maintenance.fsck(registry.repo)
    assert report.ok and report.leftovers == 0 and report.dangling == 0


GC_LOOP = textwrap.dedent(
    """
    import os
    import sys
    from pathlib import Path
    from modelreg import ModelRegistry, maintenance

    root, trial = Path(sys.argv[1]), int(sys.argv[2])
    registry = ModelRegistry(root)
    for i in range(1000):
        src = root / "src" / f"gc-{trial}-{i}.bin"
        src.write_bytes(os.urandom(2_000_000 + i))
        registry.register("gcd", src)
        maintenance.gc(registry.repo)  # a repack of everything, every time
        print("repacked", flush=True)  # the test times its kill from the first of these
    """
)


def test_sigkill_during_gc_repack_leaves_every_version_readable(repo_dir: Path) -> None:
    (repo_dir / "src").mkdir()
    seed = write_bytes(repo_dir / "src" / "seed.bin", 8_000_000, seed=7)
    ModelRegistry(repo_dir).register("gcd", seed)  # gives every repack some bytes to copy
    rnd = random.Random(99)
    for trial in range(12):
        proc = _started(GC_LOOP, repo_dir, trial)
        time.sleep(rnd.uniform(0.0, 1.0))
        _kill(proc)
        repo = Repository(repo_dir)
        report = maintenance.fsck(repo)
        assert report.ok, (trial, report)
    registry = ModelRegistry(repo_dir)
    rows = registry.list("gcd")
    assert len(rows) >= 1 + 12  # the seed, and a version from every writer before its kill
    for r in rows:
        checked_out = Path(registry.get("gcd", r["version"])["file_path"])
        assert hash_file(checked_out) == hash_file(repo_dir / "src" / r["source"])
    maintenance.gc(registry.repo)
    report = maintenance.fsck(registry.repo)
    assert report.ok and report.leftovers == 0 and report.dangling == 0
    assert len(registry.repo.objects.pack_names()) == 1


PACKING_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from modelreg import ModelRegistry

    root, worker, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    registry = ModelRegistry(root)
    for i in range(count):
        registry.register(f"fam{worker}", root / "src" / f"p{worker}-{i}.bin")
    """
)


def test_concurrent_writers_each_write_their_own_pack_while_gc_auto_merges(
    repo_dir: Path,
) -> None:
    config = repo_dir / ".modelreg" / "config.yaml"
    config.write_text(config.read_text().replace("auto_packs: 16", "auto_packs: 3"))
    workers, per_worker = 4, 10
    (repo_dir / "src").mkdir()
    expected = {}
    for w in range(workers):
        for i in range(per_worker):
            src = write_bytes(repo_dir / "src" / f"p{w}-{i}.bin", 300_000, seed=1000 * w + i)
            expected[(w, i)] = hash_file(src)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PACKING_WRITER, str(repo_dir), str(w), str(per_worker)]
        )
        for w in range(workers)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0] * workers
    registry = ModelRegistry(repo_dir)
    repo = registry.repo
    assert len(repo.objects.pack_names()) < 3 + workers  # gc --auto ran between writers
    report = maintenance.fsck(repo)
    assert report.ok and report.leftovers == 0
    for w in range(workers):
        rows = registry.list(f"fam{w}")
        assert [r["version"] for r in rows] == [f"v{n}" for n in range(1, per_worker + 1)]
        for i, r in enumerate(rows):
            assert (
                hash_file(Path(registry.get(f"fam{w}", r["version"])["file_path"]))
                == (expected[(w, i)])
            )
