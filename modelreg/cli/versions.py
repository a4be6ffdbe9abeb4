"""Commands that create, find, tag, compare and remove versions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from .. import cards, checkout, modelinfo, names, prune, taghistory
from ..errors import InvalidInputError
from ..refs import yaml_dump
from ..repo import Record, Repository
from ..similar import find_same
from ..views import (
    auto_gc_warning,
    card_text,
    format_warning,
    summary_table,
    unsafe_warning,
)
from ..words import clean, human_bytes, plural
from . import retention
from ._base import _emit_json, _progress, _public, _repo, _size_of, cli, json_option


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def init(ctx: click.Context, directory: Path | None) -> None:
    """Create a registry (.modelreg/) in DIRECTORY or the current folder."""
    target = directory or ctx.obj["cwd"] or Path.cwd()
    repo, created = Repository.init(target)
    verb = "Initialized empty" if created else "Already a"
    click.echo(f"{verb} modelreg registry in {repo.dir}")
    added = repo.gitignored if created else repo.ignore_in_git()
    if added:
        click.echo(f"Added {', '.join(added)} to {repo.root / '.gitignore'}")


def _pairs(option: str, pairs: tuple[str, ...]) -> dict[str, str]:
    """KEY=VALUE options as a dict; a key given twice is refused, not silently dropped."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=option)
        if key in out:
            raise InvalidInputError(
                f"{option} {key} is given twice ({out[key]} and {raw})", hint="give it once"
            )
        out[key] = raw
    return out


NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
NOT_FINITE = {f"{sign}{word}" for sign in ("", "+", "-") for word in ("nan", "inf", "infinity")}


def _parse_metrics(pairs: tuple[str, ...]) -> dict[str, Any]:
    """Plain ASCII numbers as numbers (not '1_000' or full-width digits, which Python's float
    would take); anything else stays text, which the registry refuses with what to do."""
    metrics: dict[str, Any] = {}
    for key, raw in _pairs("--metric", pairs).items():
        value: Any = raw
        if NUMBER_RE.fullmatch(raw):
            value = int(raw) if raw.lstrip("+-").isdigit() else float(raw)
        elif raw.lower() in NOT_FINITE:
            value = float(raw)
        metrics[key] = value
    return metrics


def _parse_shape(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(d) for d in text.split(",")]
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not like 1,3,224,224", param_hint="--input-shape"
        ) from None


@cli.command()
@click.argument("name")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--framework", help="e.g. pytorch")
@click.option(
    "--metric", "metrics", multiple=True, metavar="KEY=VALUE", help="A metric; repeat for more."
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A hyper-parameter or other text, kept as given; repeat for more.",
)
@click.option("--dataset")
@click.option("--architecture", help="e.g. torchvision.models.resnet18")
@click.option("--input-shape", help="e.g. 1,3,224,224")
@click.option("-m", "--description")
@click.option("--version", "version", help="An explicit unused version, e.g. v7.")
@click.option("-t", "--tag", "tags", multiple=True, help="Tag the new version; repeatable.")
@click.option(
    "--parent",
    help="The version this one derives from (NAME@REF or vN); defaults to the family's latest.",
)
@click.option(
    "--no-inherit",
    is_flag=True,
    help="Do not take framework, dataset, architecture, input shape and params from the parent.",
)
@click.option(
    "--card",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A model card (README.md) to keep with the version; its Hugging Face front matter "
    "fills fields not given.",
)
@json_option
@click.pass_context
def register(
    ctx: click.Context,
    name: str,
    path: Path,
    framework: str | None,
    metrics: tuple[str, ...],
    params: tuple[str, ...],
    dataset: str | None,
    architecture: str | None,
    input_shape: str | None,
    description: str | None,
    version: str | None,
    tags: tuple[str, ...],
    parent: str | None,
    no_inherit: bool,
    card: Path | None,
    as_json: bool,
) -> None:
    """Store the file or folder PATH as the next version of NAME."""
    repo = _repo(ctx)
    card_text = cards.read(card) if card is not None else None
    with _progress(f"register {name}", _size_of(path)) as bar:
        rec = repo.register(
            name,
            path,
            version=version,
            tags=tags,
            parent=parent,
            progress=bar,
            inherit=not no_inherit,
            framework=framework,
            metrics=_parse_metrics(metrics) or None,
            params=_pairs("--param", params) or None,
            dataset=dataset,
            architecture=architecture,
            input_shape=_parse_shape(input_shape),
            description=description,
            card=card_text,
        )
    for warning in (unsafe_warning(rec), format_warning(rec), auto_gc_warning(repo)):
        if warning:
            click.echo(f"warning: {warning}", err=True)
    same = find_same(repo, rec)
    if same:
        click.echo(f"note: {same[0]} as {same[1]}", err=True)
    if as_json:
        _emit_json(_public(repo, rec))
    else:
        click.echo(
            f"Registered {rec['name']}@{rec['version']} ({human_bytes(rec['size'])}; "
            f"{human_bytes(repo.objects.added_bytes)} new in the store)"
        )


def _materialize(repo: Repository, rec: Record, verify: bool = False) -> checkout.CheckoutResult:
    with _progress(f"checkout {rec['name']}@{rec['version']}", rec["size"]) as bar:
        result = checkout.materialize(repo, rec, progress=bar, verify=verify)
    for label in prune.enforce_budget(repo, result.path):
        click.echo(f"note: removed the checkout of {label} (over the checkout budget)", err=True)
    return result


@cli.command()
@click.argument("spec", metavar="NAME[@REF]")
@click.option(
    "--verify",
    is_flag=True,
    help="Hash every checked-out file instead of trusting its size, times and inode, and "
    "rebuild any that differ.",
)
@click.pass_context
def get(ctx: click.Context, spec: str, verify: bool) -> None:
    """Check out one version if needed and print its path."""
    repo = _repo(ctx)
    rec = repo.lookup(spec)
    result = _materialize(repo, rec, verify=verify)
    if verify:
        hashed = f"{result.checked} {'file' if result.checked == 1 else 'files'} hashed"
        click.echo(
            f"verified {rec['name']}@{rec['version']}: {hashed}, {len(result.written)} rebuilt",
            err=True,
        )
    click.echo(str(result.path))


def _unverified(repo: Repository, rec: Record) -> str | None:
    """What a lazy clone's record says about data not fetched yet is the remote's word."""
    from .. import lazy, remote_config  # imported here: other commands start without them

    name = remote_config.lazy_remote(repo)
    if name is None or not lazy.not_fetched(repo, rec):
        return None
    label = f"{rec['name']}@{rec['version']}"
    return (
        f"inspect, size and hashes are from remote {name}, not checked here: the data is not "
        f"fetched yet ('modelreg fetch {label}' or 'modelreg get {label}' checks them)"
    )


@cli.command()
@click.argument("spec", metavar="NAME[@REF]")
@json_option
@click.pass_context
def show(ctx: click.Context, spec: str, as_json: bool) -> None:
    """Print every recorded field of one version."""
    repo = _repo(ctx)
    found = repo.lookup(spec)
    rec = {**_public(repo, found), "card": card_text(repo, found)}
    unverified = _unverified(repo, found)
    if unverified:
        rec["unverified"] = unverified
    if as_json:
        _emit_json(rec)
    else:
        hidden = ("schema", "card")
        shown = {k: v for k, v in rec.items() if v not in (None, {}, []) and k not in hidden}
        click.echo(yaml_dump(shown).rstrip())
        if rec["card"] is not None:  # as a YAML block, so the output stays YAML
            click.echo("card: |")
            click.echo("\n".join(f"  {clean(line)}".rstrip() for line in rec["card"].splitlines()))
        verdict = modelinfo.verdict_line(
            f"{rec['name']}@{rec['version']}", rec.get("inspect") or {}
        )
        if verdict:
            click.echo(f"warning: {verdict}", err=True)


@cli.command()
@json_option
@click.pass_context
def families(ctx: click.Context, as_json: bool) -> None:
    """List model families."""
    found = _repo(ctx).families()
    if as_json:
        _emit_json(found)
    else:
        for name in found:
            click.echo(name)


@cli.command()
@json_option
@click.pass_context
def summary(ctx: click.Context, as_json: bool) -> None:
    """Family and version counts, and a table of every version."""
    repo = _repo(ctx)
    rows = [_public(repo, r) for r in repo.versions()]
    if as_json:
        _emit_json({"root": str(repo.root), "families": repo.families(), "versions": rows})
        return
    counts = f"{plural(len(repo.families()), 'family')}, {plural(len(rows), 'version')}"
    click.echo(f"Registry at {repo.root}: {counts}")
    if rows:
        click.echo(summary_table(rows))


@cli.command()
@click.argument("spec", metavar="NAME[@REF]")
@click.argument("tag_name", metavar="TAG", required=False)
@click.option("-d", "--delete", is_flag=True, help="Delete TAG from NAME.")
@click.option("-m", "--message", help="Why: kept in the tag's history.")
@click.option("-f", "--force", is_flag=True, help="Move or delete a protected tag.")
@click.option("--history", is_flag=True, help="Show every move of NAME's tags (or of TAG).")
@click.option("--protect", is_flag=True, help="Make later moves of TAG need --force.")
@click.option("--unprotect", is_flag=True, help="Let TAG move freely again.")
@json_option
@click.pass_context
def tag(
    ctx: click.Context,
    spec: str,
    tag_name: str | None,
    delete: bool,
    message: str | None,
    force: bool,
    history: bool,
    protect: bool,
    unprotect: bool,
    as_json: bool,
) -> None:
    """Point TAG at NAME@REF (moving it if it exists); with no TAG, list NAME's tags.

    Every move is recorded (who, when, from, to, -m MESSAGE): see --history."""
    modes = [
        m
        for m, on in (
            ("-d", delete),
            ("--history", history),
            ("--protect", protect),
            ("--unprotect", unprotect),
        )
        if on
    ]
    if len(modes) > 1:
        raise click.UsageError(f"{' and '.join(modes)} cannot be used together")
    repo = _repo(ctx)
    if history:
        name = names.check_family(spec)
        events = repo.tag_history(name, tag_name)
        if as_json:
            _emit_json(events)
            return
        for e in events:
            click.echo(clean(taghistory.shown(e)))
        if not events:
            click.echo(
                f"no tag of {name} has moved yet"
                if tag_name is None
                else f"tag {tag_name} of {name} has no history"
            )
        return
    if tag_name is None:
        if modes:
            raise click.UsageError(f"tag {modes[0]} needs NAME and TAG")
        refs = repo.family(names.parse_spec(spec)[0])
        if as_json:
            _emit_json(refs.tags)
        for t, v in sorted(refs.tags.items()):
            if not as_json:
                click.echo(f"{t} -> {v}" + (" (protected)" if t in refs.protected else ""))
        return
    if protect or unprotect:
        name = names.check_family(spec)
        changed = repo.protect(name, tag_name, on=protect, message=message)
        state = "protected" if protect else "not protected"
        click.echo(f"Tag {tag_name} of {name} is {state}" + ("" if changed else " (unchanged)"))
    elif delete:
        name = names.check_family(spec)
        version = repo.untag(name, tag_name, message=message, force=force)
        click.echo(f"Deleted tag {tag_name} (was {name}@{version})")
    else:
        version = repo.tag(spec, tag_name, message=message, force=force)
        click.echo(f"{tag_name} -> {names.parse_spec(spec)[0]}@{version}")


@cli.command("diff")
@click.argument("spec_a", metavar="A")
@click.argument("spec_b", metavar="B")
@click.option("--stat", is_flag=True, help="Counts only; list no names.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="List at most N files and N tensors (0: no limit).",
)
@json_option
@click.pass_context
def diff_(
    ctx: click.Context, spec_a: str, spec_b: str, stat: bool, limit: int, as_json: bool
) -> None:
    """What changed from version A to version B (each NAME[@REF]): metadata, metrics, and
    which tensors changed, were added or removed, read from the stored manifests. The shards
    of one model in a folder are one set of tensors. --json always lists everything."""
    from ..diff import diff, render

    result = diff(_repo(ctx), spec_a, spec_b)
    if as_json:
        _emit_json(result)
    else:
        click.echo("\n".join(render(result, limit=limit or None, stat=stat)))


@cli.command()
@click.argument("spec", metavar="NAME@REF")
@click.option("-f", "--force", is_flag=True, help="Also delete tags pointing at it.")
@click.option(
    "--remote",
    metavar="REMOTE",
    help="Remove it from REMOTE's refs instead (compare-and-swap); 'gc --remote' frees it there.",
)
@click.pass_context
def rm(ctx: click.Context, spec: str, force: bool, remote: str | None) -> None:
    """Remove one version from the registry and its checkout; 'modelreg gc' frees its bytes."""
    repo = _repo(ctx)
    if remote is not None:
        retention.rm_remote(repo, remote, spec, force)
        return
    version, tags = repo.remove(spec, force=force)
    name = spec.partition("@")[0]
    extra = f" and its tags {', '.join(tags)}" if tags else ""
    folder = checkout.discard(repo, name, version)
    gone = f" and its checkout {folder}" if folder else ""
    click.echo(f"Removed {name}@{version}{extra}{gone}; run 'modelreg gc' to free its bytes")
