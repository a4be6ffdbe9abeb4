"""Commands that list versions and show their history: ``list`` (with ``--where``,
``--sort``, ``--limit``) and ``log`` (with ``--metric``)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .. import modelinfo, names, query
from ..views import json_families, summary_table
from ..words import clean, human_bytes, plural, utc_time
from ._base import _emit_json, _public, _repo, cli, json_option


def _write_json_rows(families: Any) -> None:
    """Compact JSON, one version a line, written a family at a time."""
    sys.stdout.flush()
    out = sys.stdout.buffer
    out.write(b"[")
    lead = b"\n"
    for family_rows in families:
        if family_rows:
            out.write(lead + ",\n".join(family_rows).encode())
            lead = b",\n"
    out.write(b"]\n" if lead == b"\n" else b"\n]\n")
    out.flush()


@cli.command("list")
@click.argument("name", required=False)
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="EXPR",
    help="Only versions where EXPR holds, e.g. 'accuracy>=0.9', 'dataset=ImageNet', "
    "'params.optimizer=adamw'; repeat to require all.",
)
@click.option("--sort", metavar="[-]FIELD", help="Order by FIELD; a leading '-' for largest first.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N versions.")
@json_option
@click.pass_context
def list_(
    ctx: click.Context,
    name: str | None,
    where: tuple[str, ...],
    sort: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List the versions of every family, or of NAME."""
    repo = _repo(ctx)
    if name is not None:
        names.check_family(name)
    querying = bool(where or sort or limit)
    if querying:
        query.parse_where(where)  # a bad expression is refused before anything is read
        query.parse_sort(sort)
    if as_json and not querying:
        # spliced from the index: 100,000 versions in well under a second
        _write_json_rows(json_families(repo, name))
        return
    records = repo.versions(name)
    if querying:
        records = iter(query.select(records, where, sort, limit))
    rows = [_public(repo, r) for r in records]
    if as_json:
        _write_json_rows([[json.dumps(r, ensure_ascii=False, default=str) for r in rows]])
    elif rows:
        click.echo(summary_table([_marked(r) for r in rows]))
    elif querying:
        click.echo("No version matches.")
    else:
        click.echo("No models yet; add one with 'modelreg register NAME PATH'.")


def _marked(row: dict[str, Any]) -> dict[str, Any]:
    """The row with a word after its version when it is not safe to load."""
    marker = modelinfo.safety_marker(row.get("inspect") or {})
    return {**row, "version": f"{row['version']} [{marker}]"} if marker else row


_LOG_SAFETY = {
    "runs code": "UNSAFE     its pickle would run code",
    "unsafe classes": "UNSAFE     its pickle needs classes outside torch's weights-only allowlist",
    "saved module": "UNSAFE     a whole module saved with torch.save(model): save "
    "model.state_dict() instead",
    "unchecked": "UNCHECKED  its pickles could not all be checked",
}

SPARKS = "▁▂▃▄▅▆▇█"
BAR_WIDTH = 30


def metric_series(rows: list[dict[str, Any]], metric: str) -> list[tuple[str, float | None]]:
    """(version, value or None) oldest first; a value that is not a number counts as None."""
    out: list[tuple[str, float | None]] = []
    for r in rows:
        v = (r.get("metrics") or {}).get(metric)
        number = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        out.append((r["version"], number))
    return out


def sparkline(values: list[float | None]) -> str:
    """One block character a value, lowest to highest; a space where there is none."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low
    last = len(SPARKS) - 1
    return "".join(
        " " if v is None else SPARKS[round((v - low) / span * last) if span else last]
        for v in values
    )


def _metric_log(name: str, rows: list[dict[str, Any]], metric: str, as_json: bool) -> None:
    series = metric_series(rows, metric)
    known = [(v, x) for v, x in series if x is not None]
    if not known:
        recorded = sorted({k for r in rows for k in (r.get("metrics") or {})})
        hint = f"metrics of {name}: {', '.join(recorded)}" if recorded else "it records none"
        raise query.QueryError(f"no version of {name} has the metric {metric!r}", hint=hint)
    if as_json:
        _emit_json([{"version": v, metric: x} for v, x in series])
        return
    low = min(known, key=lambda p: p[1])
    high = max(known, key=lambda p: p[1])
    click.echo(
        f"{clean(name)} {clean(metric)} over {plural(len(known), 'version')}: "
        f"min {low[1]:.6g} ({low[0]})  max {high[1]:.6g} ({high[0]})  "
        f"last {known[-1][1]:.6g} ({known[-1][0]})"
    )
    click.echo(sparkline([x for _v, x in series]))
    width = max(len(v) for v, _x in series)
    span = high[1] - low[1]
    for version, x in series:
        if x is None:
            click.echo(f"{version:<{width}}  {'-':>10}")
            continue
        filled = (x - low[1]) / span * BAR_WIDTH if span else BAR_WIDTH
        click.echo(f"{version:<{width}}  {x:>10.6g}  {'█' * max(1, round(filled))}")


@cli.command()
@click.argument("name")
@click.option("--metric", metavar="KEY", help="Chart one metric across the versions, oldest first.")
@json_option
@click.pass_context
def log(ctx: click.Context, name: str, metric: str | None, as_json: bool) -> None:
    """The history of NAME, newest first."""
    repo = _repo(ctx)
    rows = [_public(repo, r) for r in repo.versions(names.check_family(name))]
    if metric is not None:
        _metric_log(name, rows, metric, as_json)
        return
    rows.reverse()
    if as_json:
        _emit_json(rows)
        return
    for r in rows:
        tags = f" ({', '.join(r['tags'])})" if r["tags"] else ""
        click.echo(click.style(f"{r['name']}@{r['version']}{tags}", fg="yellow"))
        click.echo(
            f"  registered {utc_time(r['registered_at'])}  {human_bytes(r['size'])}  "
            f"from {r['source']}"
        )
        if r.get("parent"):
            click.echo(f"  parent     {r['parent']}")
        if r.get("git_commit"):
            dirty = " (dirty)" if r.get("git_dirty") else ""
            click.echo(f"  git        {r['git_commit'][:12]}{dirty}")
        if r.get("metrics"):
            shown = " ".join(f"{k}={v}" for k, v in r["metrics"].items())
            click.echo("  metrics    " + clean(shown))
        inspected = r.get("inspect") or {}
        if inspected.get("tensors"):
            click.echo(
                f"  contents   {inspected['format']}, {plural(inspected['tensors'], 'tensor')}, "
                f"{plural(inspected['parameters'], 'parameter')}"
            )
        marker = modelinfo.safety_marker(inspected)
        if marker:
            whole = marker == "unsafe classes" and inspected.get("saved_module")
            what = _LOG_SAFETY["saved module" if whole else marker]
            click.echo(click.style(f"  {what}; load() refuses it", fg="red"))
        for line in (r.get("description") or "").splitlines():
            click.echo(f"  {clean(line)}")
        click.echo("")
