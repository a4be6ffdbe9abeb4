"""``modelreg fetch``: bring versions' data from a lazy clone's remote ahead of time."""

from __future__ import annotations

import click

from ..words import human_bytes, plural
from ._base import _emit_json, _repo, cli, json_option
from .remote import _transfer_bar


@cli.command()
@click.argument("specs", nargs=-1, required=True, metavar="NAME@REF...")
@json_option
@click.pass_context
def fetch(ctx: click.Context, specs: tuple[str, ...], as_json: bool) -> None:
    """Fetch the data of these versions into this registry (a lazy clone fetches a version's
    data when it is first read), for work offline; each is checked against its record."""
    repo = _repo(ctx)
    from .. import lazy  # imported here: other commands start without it

    records = [repo.lookup(spec) for spec in specs]
    with _transfer_bar("fetch") as bar:
        done = lazy.ensure(repo, records, progress=bar, into_cache=False)
    if as_json:
        _emit_json(done.__dict__)
        return
    if not done.versions:
        click.echo("Nothing to fetch: the data of these versions is here")
        return
    source = f" from {done.remote}" if done.objects else " from the shared cache"
    click.echo(
        f"Fetched {plural(done.objects, 'object')} ({human_bytes(done.bytes)}){source} "
        f"for {', '.join(done.versions)}"
    )
