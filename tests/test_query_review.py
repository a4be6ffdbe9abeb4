"""A hostile review of ``list --where/--sort/--limit``, ``registry.list(where=...)`` and ``log
--metric``: unicode digits, dates written the way people write them, metrics at the float
limits, values of mixed types. Through the CLI where users meet them, and the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelreg import ModelRegistry, query

from .conftest import write_bytes


def _rows() -> list[dict[str, Any]]:
    return [
        {"version": "v1", "registered_at": "2026-11-28T21:45:06.100000+00:00", "metrics": {}},
        {"version": "v2", "registered_at": "2026-11-28T23:45:06.100000+00:00", "metrics": {}},
    ]


def _chosen(where: str) -> list[str]:
    return [r["version"] for r in query.select(_rows(), [where])]


@pytest.mark.parametrize(
    ("where", "versions"),
    [
        ("registered_at>=2026-11-28T22:00", ["v2"]),
        ("registered_at>=2026-11-28 22:00", ["v2"]),  # a space, as people write it
        ("registered_at<2026-11-28T22:00+01:00", []),  # 21:00 UTC
        ("registered_at<2026-11-28T22:30-01:00", ["v1"]),  # 23:30 UTC
        ("registered_at<2026-11-28T22:00Z", ["v1"]),
        ("registered_at=2026-11-28 21", ["v1"]),  # = is a prefix of the UTC time
        ("registered_at>=2026", ["v1", "v2"]),
    ],
)
def test_registered_at_compares_as_a_time_in_utc(where: str, versions: list[str]) -> None:
    assert _chosen(where) == versions


@pytest.mark.parametrize(
    "where", ["registered_at>=tomorrow", "registered_at<28/11/2026", "version>=²", "version<v²"]
)
def test_an_order_on_something_that_is_no_date_or_version_is_refused(where: str) -> None:
    with pytest.raises(query.QueryError, match="compares numbers, versions"):
        query.select(_rows(), [where])


@pytest.fixture
def extremes(repo_dir: Path) -> ModelRegistry:
    registry = ModelRegistry(repo_dir)
    for n, value in enumerate((1e308, -1e308, 0.0), start=1):
        path = write_bytes(repo_dir / f"m{n}.bin", 2000, seed=n)
        registry.register(
            "big", path, metrics={"m": value}, params={"lr": ["3e-4", "auto", "1"][n - 1]}
        )
    return registry


def test_a_unicode_digit_in_where_is_one_line_not_a_crash(extremes: ModelRegistry, run) -> None:
    result = run("list", "--where", "version>=²")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: 'version>=²': >= compares numbers")


def test_log_metric_at_the_float_limits(extremes: ModelRegistry, run) -> None:
    """1e308 and -1e308: their difference overflows, which made the bars NaN (a crash)."""
    result = run("log", "big", "--metric", "m")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("big m over 3 versions: min -1e+308 (v2)  max 1e+308 (v1)")
    assert lines[1] == "█▁▅"
    bars = [line.rsplit(" ", 1)[-1] for line in lines[2:]]
    assert [len(b) for b in bars] == [30, 1, 15]


def test_list_where_and_sort_at_the_float_limits(extremes: ModelRegistry) -> None:
    chosen = extremes.list("big", where="m>-1e308", sort="-m")
    assert [r["version"] for r in chosen] == ["v1", "v3"]
    assert [r["version"] for r in extremes.list("big", where="m<1e999")] == ["v1", "v2", "v3"]


def test_sort_by_a_param_of_mixed_numbers_and_text(extremes: ModelRegistry) -> None:
    """Numbers first in their order, then text; the other way round with '-'."""
    assert [r["version"] for r in extremes.list("big", sort="lr")] == ["v1", "v3", "v2"]
    assert [r["version"] for r in extremes.list("big", sort="-lr")] == ["v2", "v3", "v1"]


def test_a_glob_is_compiled_once_per_expression_not_kept_by_fnmatch() -> None:
    """fnmatch keeps every pattern it saw (32,768 of them): a UI visitor sending distinct
    long patterns would grow the server without bound."""
    import fnmatch

    rows = [{"version": "v1", "dataset": "ImageNet-1k"}, {"version": "v2", "dataset": "CIFAR"}]
    before = fnmatch._compile_pattern.cache_info().currsize  # type: ignore[attr-defined]
    pattern = "Image*" + "?" * 0 + "[-]1k"
    assert [r["version"] for r in query.select(rows, [f"dataset={pattern}"])] == ["v1"]
    assert [r["version"] for r in query.select(rows, ["dataset!=*\n*"])] == ["v1", "v2"]
    assert fnmatch._compile_pattern.cache_info().currsize == before  # type: ignore[attr-defined]


def test_a_param_of_a_long_run_of_digits_is_read_at_once(repo_dir: Path) -> None:
    """'111...1x' (200,000 digits, not a number) made the number pattern backtrack for
    hours; the command runs in its own process so that the old behaviour fails, not hangs."""
    import subprocess
    import sys

    registry = ModelRegistry(repo_dir)
    path = write_bytes(repo_dir / "m.bin", 2000)
    registry.register("long", path, params={"lr": "1" * 200_000 + "x"})
    registry.register("long", write_bytes(repo_dir / "n.bin", 2000, seed=2), params={"lr": "0.1"})
    done = subprocess.run(
        [sys.executable, "-m", "modelreg", "list", "--where", "lr<1", "--sort", "-lr"],
        cwd=repo_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert [line.split()[1] for line in done.stdout.splitlines()[1:]] == ["v2"]
