"""modelreg benchmarks: every figure is a ratio to its reference, measured in the same run.

    python -m benchmarks.run                 # the full run (a few minutes, ~4 GB of disk)
    python -m benchmarks.run --smoke         # tiny sizes, seconds; the test suite runs this
    python -m benchmarks.run --storage-only  # register and checkout rows only (about a minute)

Each timed pair is interleaved (A, B, B, A, ...) and the median of the repetitions is kept,
so a noisy neighbour slows both sides alike. Output: a table on stdout and a JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from modelreg import checkout, maintenance
from modelreg.repo import Repository

from . import scenarios

Step = tuple[Callable[[], Any], Callable[[], Any]]  # (untimed setup, timed work)


def noop() -> None:
    pass


def cpu_seconds() -> float:
    """User + system time of this process (every thread) and of its finished children."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def interleaved(
    subjects: dict[str, Step], reps: int, cpu: dict[str, float] | None = None
) -> dict[str, float]:
    """Median wall time of each subject; with ``cpu``, also the median CPU seconds it used
    (a figure a busy machine disturbs less than wall time: it does not count waiting)."""
    times: dict[str, list[float]] = {name: [] for name in subjects}
    used: dict[str, list[float]] = {name: [] for name in subjects}
    names = list(subjects)
    for rep in range(reps):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            setup, work = subjects[name]
            setup()
            before = cpu_seconds()
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
            used[name].append(cpu_seconds() - before)
    if cpu is not None:
        cpu.update({name: statistics.median(ts) for name, ts in used.items()})
    return {name: statistics.median(ts) for name, ts in times.items()}


def fresh(folder: Path) -> Path:
    if folder.exists():
        for p in folder.rglob("*"):
            if not p.is_symlink():
                p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def blocks(paths: list[Path]) -> int:
    return sum(p.stat().st_blocks * 512 for p in paths)


def register_all(root: Path, files: list[tuple[str, Path]]) -> Repository:
    repo, _ = Repository.init(root)
    for family, path in files:
        repo.register(family, path)
    return repo


def cp_sync(files: list[Path], dest: Path) -> None:
    subprocess.run(["cp", *map(str, files), str(dest)], check=True)
    subprocess.run(["sync"], check=True)


def cp_sync_each(files: list[Path], dest: Path) -> None:
    """Each file made durable on its own, as each register is: a context figure only."""
    for path in files:
        subprocess.run(["cp", str(path), str(dest)], check=True)
        subprocess.run(["sync"], check=True)


def storage_and_register(
    work: Path, label: str, files: list[tuple[str, Path]], reps: int
) -> dict[str, Any]:
    reg, cp_dir = work / f"{label}-registry", work / f"{label}-cp"
    paths = [p for _f, p in files]

    def new_registry() -> None:
        Repository.init(fresh(reg))  # creating the registry is not part of registering

    cpu: dict[str, float] = {}
    t = interleaved(
        {
            "register": (new_registry, lambda: register_all(reg, files)),
            "cp_sync": (lambda: fresh(cp_dir), lambda: cp_sync(paths, cp_dir)),
            "cp_sync_each": (lambda: fresh(cp_dir), lambda: cp_sync_each(paths, cp_dir)),
        },
        reps,
        cpu,
    )
    repo = Repository(reg)
    bound, payload = scenarios.tensor_lower_bound(paths)
    disk = maintenance.disk_usage(repo.dir)
    return {
        "files": len(paths),
        "files_under_modelreg": files_under(repo.dir),
        "logical_bytes": sum(p.stat().st_size for p in paths),
        "register_s": t["register"],
        "cp_sync_s": t["cp_sync"],
        "register_vs_cp_sync": t["register"] / t["cp_sync"],
        "register_cpu_s": cpu["register"],
        "cp_sync_cpu_s": cpu["cp_sync"],
        "cp_sync_each_s": t["cp_sync_each"],
        "register_vs_cp_sync_each": t["register"] / t["cp_sync_each"],
        "disk_bytes": disk,
        "lower_bound_bytes": bound,
        "distinct_tensor_bytes": payload,
        "plain_copies_bytes": blocks(paths),
        "disk_vs_lower_bound": disk / bound,
        "disk_vs_plain_copies": disk / blocks(paths),
    }


def checkout_figures(work: Path, files: list[tuple[str, Path]], reps: int) -> dict[str, Any]:
    repo = Repository(work / "big-registry")
    family, source = files[-1]
    rec = repo.lookup(f"{family}@latest")
    dest = work / "cp-checkout"

    def clear_checkout() -> None:
        fresh(repo.checkout_root)
        fresh(repo.dir / "cache")

    def clear_cp() -> None:
        fresh(dest)

    def cp() -> None:
        subprocess.run(["cp", str(source), str(dest / source.name)], check=True)

    cpu: dict[str, float] = {}
    t = interleaved(
        {
            "checkout": (clear_checkout, lambda: checkout.materialize(repo, rec)),
            "cp": (clear_cp, cp),
        },
        reps,
        cpu,
    )
    checkout.materialize(repo, rec)
    again = interleaved(
        {
            "recheckout": (lambda: None, lambda: checkout.materialize(repo, rec)),
            "cp": (clear_cp, cp),
        },
        reps,
    )
    maintenance.gc(repo)  # the pair's float tensors get compressed
    packed_cpu: dict[str, float] = {}
    packed = interleaved(
        {
            "checkout": (clear_checkout, lambda: checkout.materialize(repo, rec)),
            "cp": (clear_cp, cp),
        },
        reps,
        packed_cpu,
    )
    return {
        "file_bytes": rec["size"],
        "checkout_gc_s": packed["checkout"],
        "checkout_gc_cp_s": packed["cp"],
        "checkout_gc_vs_cp": packed["checkout"] / packed["cp"],
        "checkout_gc_cpu_s": packed_cpu["checkout"],
        "checkout_gc_cp_cpu_s": packed_cpu["cp"],
        "checkout_s": t["checkout"],
        "cp_s": t["cp"],
        "checkout_vs_cp": t["checkout"] / t["cp"],
        "checkout_cpu_s": cpu["checkout"],
        "cp_cpu_s": cpu["cp"],
        "recheckout_s": again["recheckout"],
        "recheckout_cp_s": again["cp"],
        "recheckout_vs_cp": again["recheckout"] / again["cp"],
    }


def files_under(folder: Path) -> int:
    return sum(len(names) for _d, _s, names in os.walk(folder))


def byte_exact(repo: Repository, files: list[tuple[str, Path]]) -> bool:
    """Check out every version and compare it with the file it was registered from."""
    from modelreg.hashing import hash_file

    done: dict[str, int] = {}
    for family, path in files:
        done[family] = done.get(family, 0) + 1
        rec = repo.lookup(f"{family}@v{done[family]}")
        checkout.materialize(repo, rec)
        out = repo.checkout_root / family / f"v{done[family]}" / path.name
        if hash_file(out) != hash_file(path):
            return False
    fresh(repo.checkout_root)
    fresh(repo.dir / "cache")
    return True


def gc_figures(root: Path, files: list[tuple[str, Path]]) -> dict[str, Any]:
    """``modelreg gc`` of a registry holding ``files`` (registered already when ``root``
    exists): disk against the tensor-level lower bound, before and after."""
    if not (root / ".modelreg").is_dir():
        register_all(fresh(root), files)
    repo = Repository(root)
    bound, _payload = scenarios.tensor_lower_bound([p for _f, p in files])
    before = maintenance.disk_usage(repo.dir)
    start = time.perf_counter()
    plan = maintenance.gc(repo)
    gc_s = time.perf_counter() - start
    after = maintenance.disk_usage(repo.dir)
    report = maintenance.fsck(repo)
    return {
        "lower_bound_bytes": bound,
        "disk_before_gc": before,
        "disk_after_gc": after,
        "disk_after_gc_vs_lower_bound": after / bound,
        "chunks_compressed": plan.compress,
        "gc_s": gc_s,
        "files_after_gc": files_under(repo.dir),
        "fsck_ok": report.ok,
        "byte_exact_after_gc": byte_exact(repo, files),
    }


def _cli(*args: str, cwd: Path) -> Callable[[], None]:
    cmd = [sys.executable, "-m", "modelreg", *args]
    return lambda: subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def startup_figures(registry: Path, reps: int) -> dict[str, Any]:
    subprocess.run(
        [sys.executable, "-m", "modelreg", "get", "resnet18"],
        cwd=registry,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    t = interleaved(
        {
            "python_pass": (
                noop,
                lambda: subprocess.run([sys.executable, "-c", "pass"], check=True),
            ),
            "help": (noop, _cli("--help", cwd=registry)),
            "get": (noop, _cli("get", "resnet18", cwd=registry)),
        },
        reps,
    )
    return {
        "python_pass_s": t["python_pass"],
        "help_s": t["help"],
        "get_s": t["get"],
        "help_minus_pass_s": t["help"] - t["python_pass"],
        "get_minus_pass_s": t["get"] - t["python_pass"],
    }


def cli_register_figures(work: Path, path: Path, reps: int) -> dict[str, Any]:
    """`modelreg register` of one checkpoint from the command line (start-up, Git look-up,
    storing, flushing) against `cp` + `sync` of the same file."""
    reg, cp_dir = work / "cli-registry", work / "cli-cp"

    def new_registry() -> None:
        Repository.init(fresh(reg))

    t = interleaved(
        {
            "cli_register": (new_registry, _cli("register", "m", str(path), cwd=reg)),
            "cp_sync": (lambda: fresh(cp_dir), lambda: cp_sync([path], cp_dir)),
        },
        reps,
    )
    return {
        "file_bytes": path.stat().st_size,
        "cli_register_s": t["cli_register"],
        "cp_sync_s": t["cp_sync"],
        "cli_register_minus_cp_sync_s": t["cli_register"] - t["cp_sync"],
    }


def _build_families(root: str, first: int, last: int, versions: int) -> None:
    repo = Repository(Path(root))
    src = Path(root) / f"src-{first}"
    for fam in range(first, last):
        for v in range(versions):
            src.write_bytes(f"family {fam} version {v}\n".encode() * 20)
            repo.register(
                f"fam{fam:04d}", src, metrics={"accuracy": v / versions}, framework="pytorch"
            )
    src.unlink()


def scale_figures(work: Path, families: int, versions: int, reps: int) -> dict[str, Any]:
    root = fresh(work / "scale-registry")
    Repository.init(root)
    start = time.perf_counter()
    step = (families + 1) // 2
    with ProcessPoolExecutor(2) as pool:
        jobs = [
            pool.submit(_build_families, str(root), a, min(a + step, families), versions)
            for a in range(0, families, step)
        ]
        for job in jobs:
            job.result()
    build_s = time.perf_counter() - start
    repo = Repository(root)
    probe = f"fam{families // 2:04d}"
    in_proc = interleaved(
        {
            "get": (noop, lambda: checkout.materialize(repo, repo.lookup(f"{probe}@latest"))),
            "list": (noop, lambda: list(Repository(root).versions())),
            "log": (noop, lambda: list(Repository(root).versions(probe))),
        },
        reps,
    )
    cli = interleaved(
        {
            "get": (noop, _cli("get", f"{probe}@latest", cwd=root)),
            "list": (noop, _cli("list", "--json", cwd=root)),
            "log": (noop, _cli("log", probe, cwd=root)),
        },
        reps,
    )
    return {
        "families": families,
        "versions": families * versions,
        "build_s": build_s,
        "build_versions_per_s": families * versions / build_s,
        **{f"{k}_in_process_s": v for k, v in in_proc.items()},
        **{f"{k}_cli_s": v for k, v in cli.items()},
    }


TARGETS = [
    # (label, figure path, limit, unit)
    ("register sequence <= 0.8 x cp+sync", ("sequence", "register_vs_cp_sync"), 0.8),
    ("register big pair <= 0.8 x cp+sync", ("big_pair", "register_vs_cp_sync"), 0.8),
    ("files under .modelreg/ (sequence) <= 40", ("sequence", "files_under_modelreg"), 40),
    ("checkout (stored raw) <= 1.2 x cp", ("checkout", "checkout_vs_cp"), 1.2),
    ("checkout (after gc) <= 1.5 x cp", ("checkout", "checkout_gc_vs_cp"), 1.5),
    ("re-checkout <= 0.05 x cp", ("checkout", "recheckout_vs_cp"), 0.05),
    ("disk (sequence) <= 1.03 x lower bound", ("sequence", "disk_vs_lower_bound"), 1.03),
    ("disk (big pair) <= 1.03 x lower bound", ("big_pair", "disk_vs_lower_bound"), 1.03),
    ("disk after gc (sequence) <= 0.87 x bound", ("gc", "sequence_vs_lower_bound"), 0.87),
    ("disk after gc (trained fp32) <= 0.68 x bound", ("gc", "trained_fp32_vs_lower_bound"), 0.68),
    ("disk after gc (trained bf16) <= 0.72 x bound", ("gc", "trained_bf16_vs_lower_bound"), 0.72),
    ("get start-up <= python -c pass + 150 ms", ("startup", "get_minus_pass_s"), 0.150),
    (
        "CLI register of one checkpoint <= cp+sync + 150 ms",
        ("cli_register", "cli_register_minus_cp_sync_s"),
        0.150,
    ),
    ("list of all versions (CLI) <= 1 s", ("scale", "list_cli_s"), 1.0),
    ("one tensor of a version reads <= 3 x its size", ("partial", "read_vs_tensor"), 3.0),
    ("one tensor in a lazy clone fetches <= 3 x its size", ("partial", "lazy_read_vs_tensor"), 3.0),
]


Files = list[tuple[str, Path]]


def partial_figures(work: Path, smoke: bool, reps: int) -> dict[str, Any]:
    """benchmarks/partial.py in a child process: it imports torch, this process must not."""
    args = ["--workdir", str(work), "--reps", str(reps)] + (["--smoke"] if smoke else [])
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.partial", *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def make_scenarios(folder: Path, big_bytes: int, with_trained: bool) -> tuple[Files, Files, Any]:
    """Write the model files in a child process, so that this one, which does the timing,
    has not imported torch: a user's ``modelreg register`` does not either. The third item
    is the trained pair, or a string saying why it was skipped."""
    code = (
        "import json, sys; from pathlib import Path; from benchmarks import scenarios; "
        "f = Path(sys.argv[1]); "
        "t, why = scenarios.trained_pair(f / 'trained') if sys.argv[3] == '1' "
        "else ([], 'not in a --smoke run'); "
        "print(json.dumps([[(a, str(b)) for a, b in scenarios.resnet_sequence(f / 'seq')], "
        "[(a, str(b)) for a, b in scenarios.big_pair(f / 'big', int(sys.argv[2]))], "
        "[(a, str(b)) for a, b in t] or why]))"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder), str(big_bytes), "1" if with_trained else "0"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    seq, big, crepe = json.loads(done.stdout.strip().splitlines()[-1])
    if not isinstance(crepe, str):
        crepe = [(a, Path(b)) for a, b in crepe]
    return ([(a, Path(b)) for a, b in seq], [(a, Path(b)) for a, b in big], crepe)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    return info


def report(results: dict[str, Any]) -> str:
    lines = [f"machine: {results['machine']}", ""]
    for section, figures in results["figures"].items():
        lines.append(f"[{section}]")
        for key, value in figures.items():
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            lines.append(f"  {key:<28} {shown}")
    lines += ["", "targets:"]
    for t in results["targets"]:
        if t["met"] is None:
            lines.append(f"  {'skip':<6} {t['target']:<46} (no trained checkpoint here)")
            continue
        mark = "met" if t["met"] else "MISSED"
        lines.append(f"  {mark:<6} {t['target']:<46} measured {t['value']:.4g}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/modelreg-bench"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/latest.json"))
    parser.add_argument(
        "--storage-only",
        action="store_true",
        help="only register (sequence, 512 MB pair) and checkout: about a minute",
    )
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.smoke else 5)
    big_bytes = (16 << 20) if args.smoke else (512 << 20)
    families, versions = (20, 3) if args.smoke else (1000, 10)
    work = fresh(args.workdir)

    seq, big, crepe = make_scenarios(work / "src", big_bytes, with_trained=not args.smoke)
    figures: dict[str, dict[str, Any]] = {}
    figures["sequence"] = storage_and_register(work, "seq", seq, reps)
    figures["big_pair"] = storage_and_register(work, "big", big, reps)
    figures["checkout"] = checkout_figures(work, big, reps)
    if args.storage_only:
        return finish(args, reps, figures)
    figures["startup"] = startup_figures(work / "seq-registry", max(reps, 3))
    figures["cli_register"] = cli_register_figures(work, seq[0][1], max(reps, 3))
    gc_seq = gc_figures(work / "seq-registry", seq)
    gc_all = {f"sequence_{k}": v for k, v in gc_seq.items()}
    gc_all["sequence_vs_lower_bound"] = gc_seq["disk_after_gc_vs_lower_bound"]
    if isinstance(crepe, str):
        gc_all["trained_skipped"] = crepe
    else:
        for (label, path), key in zip(crepe, ("trained_fp32", "trained_bf16"), strict=True):
            got = gc_figures(work / f"{label}-registry", [(label, path)])
            gc_all.update({f"{key}_{k}": v for k, v in got.items()})
            gc_all[f"{key}_vs_lower_bound"] = got["disk_after_gc_vs_lower_bound"]
    figures["gc"] = gc_all
    figures["scale"] = scale_figures(work, families, versions, reps)
    from .push import push_figures  # it builds on the helpers above

    figures["push"] = push_figures(work, seq, reps)
    figures["partial"] = partial_figures(work / "partial", args.smoke, reps)
    return finish(args, reps, figures)


def finish(args: argparse.Namespace, reps: int, figures: dict[str, dict[str, Any]]) -> int:
    targets = []
    for label, (section, key), limit in TARGETS:
        if section not in figures:  # --storage-only
            continue
        value = figures[section].get(key)
        if value is None:  # the trained checkpoint is not on this machine
            targets.append({"target": label, "value": None, "limit": limit, "met": None})
            continue
        targets.append({"target": label, "value": value, "limit": limit, "met": value <= limit})
    results = {
        "machine": machine(),
        "smoke": args.smoke,
        "reps": reps,
        "figures": figures,
        "targets": targets,
    }
    print(report(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"\nwrote {args.out}")
    shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
