"""The version index at scale: registries of 100,000 versions.

    python -m benchmarks.scale             # a few minutes, about 1.5 GB of scratch disk
    python -m benchmarks.scale --smoke     # tiny sizes; the test suite runs this

Registering 100,000 versions one by one would take most of an hour here, so the registries
are built in bulk through the real code paths: one tiny file is registered for real, then
each further version is a record made as ``register`` makes it (a copy of that record with
its own version, parent, time and metrics), written with ``ObjectStore.add_json``, and each
family's refs are published once with ``RefStore.update``, which is what updates the index.
Building with one process per core, as benchmarks/run.py does. Everything timed afterwards
(``list``, ``get``, ``register``) goes through the ordinary API and CLI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from modelreg import ModelRegistry
from modelreg.repo import Record, Repository

from .run import fresh, interleaved, noop


def _records(repo: Repository, template: Record, family: str, first: int, last: int) -> dict:
    """vN -> id of a record like the one ``register`` would write for it."""
    made = {}
    when = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    for n in range(first, last + 1):
        rec = {
            **template,
            "name": family,
            "version": f"v{n}",
            "parent": f"{family}@v{n - 1}" if n > 1 else None,
            "registered_at": (when + dt.timedelta(seconds=n)).isoformat(),
            "metrics": {"accuracy": round(n / (last + 1), 6), "loss": 1.0 / n},
        }
        rec.pop("tags", None)
        made[f"v{n}"] = repo.objects.add_json(rec)
    repo.objects.sync()
    return made


def _build(root: str, families: list[str], versions: int) -> None:
    repo = Repository(Path(root))
    template = repo.record(repo.family("template").versions["v1"])
    for family in families:
        made = _records(repo, template, family, 1, versions)
        repo.refs.update(family, lambda refs, m=made: refs.versions.update(m))  # type: ignore[misc]


def build(root: Path, families: int, versions: int, workers: int = 2) -> float:
    """A registry of ``families`` x ``versions`` (plus the one-version 'template'); seconds."""
    start = time.perf_counter()
    repo, _ = Repository.init(fresh(root))
    src = root / "tiny.pth"
    src.write_bytes(b"tiny model " * 50)
    repo.register("template", src, framework="pytorch", dataset="ImageNet")
    src.unlink()
    names = [f"fam{i:05d}" for i in range(families)]
    chunks = [names[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        for job in [pool.submit(_build, str(root), c, versions) for c in chunks if c]:
            job.result()
    return time.perf_counter() - start


def _cli(root: Path, *args: str) -> Callable[[], None]:
    cmd = [sys.executable, "-m", "modelreg", *args]
    return lambda: subprocess.run(cmd, cwd=root, check=True, stdout=subprocess.DEVNULL)


def median_of(fn: Callable[[], Any], reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def register_rate(root: Path, family: str, count: int) -> float:
    """Registers a second of a small, new file each time into ``family``, in process."""
    repo = Repository(root)
    src = root.parent / f"{root.name}-src.pth"
    start = time.perf_counter()
    for _ in range(count):
        src.write_bytes(f"checkpoint {next(_SERIAL)} ".encode() * 40)
        repo.register(family, src, metrics={"accuracy": 0.5})
    src.unlink()
    return count / (time.perf_counter() - start)


_SERIAL = iter(range(10**9))


def rates(registries: dict[str, tuple[Path, str]], rounds: int, batch: int) -> dict[str, float]:
    """Register rate in each registry, in interleaved batches (A B, B A, ...), median."""
    seen: dict[str, list[float]] = {label: [] for label in registries}
    order = list(registries)
    for r in range(rounds):
        for label in order if r % 2 == 0 else order[::-1]:
            root, family = registries[label]
            seen[label].append(register_rate(root, family, batch))
    return {label: statistics.median(values) for label, values in seen.items()}


def registry_figures(
    root: Path, families: int, versions: int, reps: int, registers: int = 20
) -> dict[str, Any]:
    """Index build, list, get and register rate of one registry shape."""
    total = families * versions
    build_s = build(root, families, versions)
    probe = f"fam{families // 2:05d}"
    ref = f"{probe}@v{versions // 2}"
    repo = Repository(root)
    shutil.rmtree(repo.dir / "index", ignore_errors=True)
    start = time.perf_counter()
    rows = sum(1 for _ in Repository(root).versions())
    cold_list_s = time.perf_counter() - start
    assert rows == total + 1, rows
    _cli(root, "get", ref)()  # materialized once: get then only confirms it
    registry = ModelRegistry(root)
    in_proc = interleaved(
        {
            "lookup": (noop, lambda: repo.lookup(ref)),
            "get": (noop, lambda: registry.get(probe, f"v{versions // 2}")),
            "get_new_instance": (noop, lambda: ModelRegistry(root).get(probe, "latest")),
        },
        max(reps, 5) * 20,
    )
    in_proc["list"] = median_of(lambda: list(Repository(root).versions()), reps)
    cli = interleaved(
        {"list_json": (noop, _cli(root, "list", "--json")), "get": (noop, _cli(root, "get", ref))},
        reps,
    )
    rate = register_rate(root, probe, registers) if registers else 0.0
    return {
        "families": families,
        "versions": total,
        "build_s": build_s,
        "cold_index_and_list_s": cold_list_s,
        "lookup_in_process_s": in_proc["lookup"],
        "get_in_process_s": in_proc["get"],
        "get_new_instance_s": in_proc["get_new_instance"],
        "list_in_process_s": in_proc["list"],
        "list_json_cli_s": cli["list_json"],
        "get_cli_s": cli["get"],
        "register_per_s": rate,
    }


def metadata_file_figures(root: Path, versions: int, reps: int) -> dict[str, Any]:
    """One register through ModelRegistry with and without ``metadata_file``, in a registry
    of ``versions`` versions (100 per family), interleaved."""
    build(root, max(versions // 100, 1), min(versions, 100))
    plain = ModelRegistry(root)
    viewed = ModelRegistry(root, metadata_file=root / "registry.yaml")
    src = root.parent / "mf-src.pth"
    counter = iter(range(10**9))

    def one(reg: ModelRegistry) -> Callable[[], None]:
        def work() -> None:
            src.write_bytes(f"checkpoint {next(counter)} ".encode() * 40)
            reg.register("fam00000", src, metrics={"accuracy": 0.5})

        return work

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = interleaved({"plain": (noop, one(plain)), "viewed": (noop, one(viewed))}, reps * 10)
        viewed.flush()
    view = (root / "registry.yaml").read_text()
    return {
        "versions": versions,
        "register_s": t["plain"],
        "register_with_metadata_file_s": t["viewed"],
        "ratio": t["viewed"] / t["plain"],
        "metadata_file_bytes": len(view),
    }


Targets = list[tuple[str, tuple[str, str], float | None]]  # label, (section, key), limit
TARGETS: Targets = [
    ("list --json of 100,000 versions (CLI) <= 1 s", ("many", "list_json_cli_s"), 1.0),
    ("get NAME@REF in process <= 1 ms", ("many", "get_in_process_s"), 0.001),
    ("get NAME@REF in process <= 1 ms, one family", ("one", "get_in_process_s"), 0.001),
    ("register rate at 100,000 >= 0.9 x at 1,000", ("rate", "ratio"), None),
    ("metadata_file register <= 1.2 x without", ("metadata_file", "ratio"), 1.2),
]


def arguments(doc: str, name: str, argv: list[str] | None) -> argparse.Namespace:
    """--smoke, --reps, --workdir (/tmp/modelreg-NAME), --out (benchmarks/results/NAME.json)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=Path(f"/tmp/modelreg-{name}"))
    parser.add_argument("--out", type=Path, default=Path(f"benchmarks/results/{name}.json"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, "scale", argv)
    reps = args.reps or (1 if args.smoke else 5)
    big = 1_000 if args.smoke else 100_000
    small = 100 if args.smoke else 1_000
    work = fresh(args.workdir)
    figures: dict[str, dict[str, Any]] = {}
    figures["one"] = registry_figures(work / "one", 1, big, reps, registers=3)
    figures["small_one"] = registry_figures(work / "small_one", 1, small, reps, registers=20)
    shutil.rmtree(work / "one")  # disk: the two 100,000-version registries are 1.3 GB
    figures["many"] = registry_figures(work / "many", big // 100, 100, reps, registers=0)
    figures["small"] = registry_figures(work / "small", small // 100, 100, reps, registers=0)
    probe = f"fam{small // 200:05d}"
    measured = rates(
        {"small": (work / "small", probe), "big": (work / "many", f"fam{big // 200:05d}")},
        rounds=max(reps, 3) * 2,
        batch=10,
    )
    figures["rate"] = {
        "at_small_per_s": measured["small"],
        "at_big_per_s": measured["big"],
        "ratio": measured["big"] / measured["small"],
        "one_family_at_small_per_s": figures["small_one"]["register_per_s"],
        "one_family_at_big_per_s": figures["one"]["register_per_s"],
    }
    figures["metadata_file"] = metadata_file_figures(work / "mf", big // 10, reps)
    publish(args, reps, figures, TARGETS)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def publish(
    args: argparse.Namespace, reps: int, figures: dict[str, dict[str, Any]], targets: Targets
) -> None:
    """Each target met or missed (a limit of None: a ratio that must reach 0.9), the figures
    and the targets printed, and all of it written to ``args.out`` as JSON."""
    checked = []
    for label, (section, key), limit in targets:
        value = figures[section][key]
        met = value >= 0.9 if limit is None else value <= limit
        checked.append({"target": label, "value": value, "met": met})
    results = {"smoke": args.smoke, "reps": reps, "figures": figures, "targets": checked}
    for section, values in figures.items():
        print(f"[{section}]")
        for key, value in values.items():
            print(
                f"  {key:<32} {value:.4g}" if isinstance(value, float) else f"  {key:<32} {value}"
            )
    print("\ntargets:")
    for t in checked:
        print(f"  {'met' if t['met'] else 'MISSED':<6} {t['target']:<52} measured {t['value']:.4g}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
    os.environ.setdefault("MODELREG_LOCK_TIMEOUT", "120")
    sys.exit(main())
