"""``list --where/--sort/--limit``, ``registry.list(where=...)`` and ``log --metric``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelreg import ModelRegistry, query
from modelreg.query import QueryError

from .conftest import write_bytes


def _row(version: int, **extra: object) -> dict:
    row = {
        "name": "net",
        "version": f"v{version}",
        "tags": [],
        "size": 1000 * version,
        "dataset": "ImageNet",
        "registered_at": f"2026-11-{version:02d}T10:00:00+00:00",
        "metrics": {"accuracy": round(0.8 + version / 100, 4)},
        "params": {"optimizer": "sgd", "lr": "1e-3"},
        "inspect": {"safety": "safe"},
    }
    row.update(extra)
    return row


ROWS = [
    _row(1),
    _row(2, params={"optimizer": "adamw", "lr": "3e-4"}, tags=["production"]),
    _row(3, dataset="CIFAR", metrics={"accuracy": 0.95, "dataset": 1}),
    _row(4, metrics={}, git_dirty=True),
]


def _versions(rows: list[dict]) -> list[str]:
    return [r["version"] for r in rows]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("accuracy>=0.82", ["v2", "v3"]),
        ("accuracy > 0.82", ["v3"]),
        ("accuracy==0.81", ["v1"]),
        ("accuracy!=0.81", ["v2", "v3"]),  # v4 has no accuracy: it never matches
        ("metrics.accuracy<0.82", ["v1"]),
        ("params.optimizer=adamw", ["v2"]),
        ("optimizer=sgd", ["v1", "v3", "v4"]),  # a bare name falls back to params
        ("lr<1e-3", ["v2"]),  # a param's text compares as a number when it is one
        ("dataset=ImageNet", ["v1", "v2", "v4"]),
        ("dataset=1", ["v3"]),  # a metric comes before a field of the same name
        ("version>=v3", ["v3", "v4"]),
        ("version<3", ["v1", "v2"]),
        ("size>2K", ["v3", "v4"]),  # 2 KiB = 2048
        ("size=1000", ["v1"]),
        ("registered_at>=2026-11-03", ["v3", "v4"]),
        ("registered_at=2026-11-02", ["v2"]),  # = on a date is a prefix
        ("tags=production", ["v2"]),
        ("name=n*", ["v1", "v2", "v3", "v4"]),
        ("name=x*", []),
        ("git_dirty=true", ["v4"]),
        ("inspect.safety=safe", ["v1", "v2", "v3", "v4"]),
    ],
)
def test_where_selects_the_matching_versions(where: str, expected: list[str]) -> None:
    assert _versions(query.select(ROWS, where)) == expected


def test_several_where_combine_with_and() -> None:
    got = query.select(ROWS, ["dataset=ImageNet", "accuracy>0.815"])
    assert _versions(got) == ["v2"]


def test_sort_and_limit() -> None:
    assert _versions(query.select(ROWS, sort="-accuracy")) == ["v3", "v2", "v1", "v4"]
    assert _versions(query.select(ROWS, sort="accuracy")) == ["v1", "v2", "v3", "v4"]
    assert _versions(query.select(ROWS, sort="-version", limit=2)) == ["v4", "v3"]
    assert _versions(query.select(ROWS, where="accuracy>0", sort="-size", limit=1)) == ["v3"]


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ("accuracy", "has no comparison"),
        ("accuracy>=", "has no value"),
        (">=0.9", "field name is missing"),
        ("accuracy>=high", "compares numbers"),
        ("accuracy=>0.9", "is not a value"),
        ("accuracy!0.9", "'!' must be followed by '='"),
        ("params.=x", "names no key"),
        ("accuarcy>=0.9", "no version has a metric, field or param named 'accuarcy'"),
    ],
)
def test_a_bad_expression_is_one_clear_error(where: str, words: str) -> None:
    with pytest.raises(QueryError, match=words):
        query.select(ROWS, where)


def test_bad_sort_and_limit_are_refused() -> None:
    with pytest.raises(QueryError, match="is an expression"):
        query.select(ROWS, sort="accuracy>1")
    with pytest.raises(QueryError, match="no version has"):
        query.select(ROWS, sort="-acuracy")
    with pytest.raises(QueryError, match="at least 1"):
        query.select(ROWS, limit=0)


@pytest.fixture
def registry(repo_dir: Path) -> ModelRegistry:
    registry = ModelRegistry(repo_dir)
    for n in range(1, 6):
        path = write_bytes(repo_dir / f"m{n}.bin", 2000 + n, seed=n)
        registry.register(
            "net",
            path,
            metrics={"accuracy": round(0.8 + n / 50, 4), "loss": 1.0 / n},
            params={"optimizer": "adamw" if n > 3 else "sgd"},
            dataset="ImageNet",
        )
    registry.register("other", repo_dir / "m1.bin", metrics={"accuracy": 0.5}, dataset="CIFAR")
    return registry


def test_api_list_takes_where_sort_and_limit(registry: ModelRegistry) -> None:
    rows = registry.list("net", where="accuracy>=0.86", sort="-accuracy", limit=2)
    assert [r["version"] for r in rows] == ["v5", "v4"]
    assert all("file_path" in r for r in rows)
    rows = registry.list(where=["dataset=ImageNet", "params.optimizer=sgd"])
    assert [(r["name"], r["version"]) for r in rows] == [
        ("net", "v1"),
        ("net", "v2"),
        ("net", "v3"),
    ]
    with pytest.raises(QueryError):
        registry.list(where="accuracy>>1")


def test_cli_list_where_sort_limit(registry: ModelRegistry, run) -> None:
    result = run("list", "--where", "accuracy>=0.86", "--where", "dataset=ImageNet", "--json")
    assert result.exit_code == 0
    assert [r["version"] for r in json.loads(result.stdout)] == ["v3", "v4", "v5"]
    result = run("list", "--sort", "-accuracy", "--limit", "1")
    assert result.exit_code == 0
    body = result.stdout.splitlines()[1:]
    assert [line.split()[:2] for line in body] == [["net", "v5"]]
    result = run("list", "net", "--where", "accuracy>5")
    assert (result.exit_code, result.stdout.strip()) == (0, "No version matches.")


@pytest.mark.parametrize(
    "args",
    [
        ("--where", "accuracy"),
        ("--where", "accuracy>=high"),
        ("--where", "accuarcy>=0.9"),
        ("--where", "dataset=ImageNet", "--where", "x=>1"),
        ("--sort", "accuracy>1"),
        ("--sort", "-nothing"),
    ],
)
def test_cli_bad_query_is_one_line_and_exit_1(registry: ModelRegistry, run, args) -> None:
    result = run("list", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")


def test_log_metric_charts_each_version(registry: ModelRegistry, run) -> None:
    result = run("log", "net", "--metric", "accuracy")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("net accuracy over 5 versions: min 0.82 (v1)  max 0.9 (v5)")
    assert lines[1] == "▁▃▅▆█"
    assert [line.split()[0] for line in lines[2:]] == ["v1", "v2", "v3", "v4", "v5"]
    result = run("log", "net", "--metric", "loss", "--json")
    series = json.loads(result.stdout)
    assert [p["version"] for p in series] == ["v1", "v2", "v3", "v4", "v5"]
    assert series[1]["loss"] == pytest.approx(0.5)


def test_log_metric_that_no_version_has(registry: ModelRegistry, run) -> None:
    result = run("log", "net", "--metric", "acc")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: no version of net has the metric 'acc'; metrics of net: accuracy, loss"
    )


def test_sparkline_leaves_a_gap_for_a_version_without_the_metric() -> None:
    from modelreg.cli.history import sparkline

    assert sparkline([1.0, None, 2.0]) == "▁ █"
    assert sparkline([3.0, 3.0]) == "██"
    assert sparkline([None]) == ""
