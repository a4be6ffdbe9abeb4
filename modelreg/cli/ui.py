"""``modelreg ui`` and ``modelreg report``."""

from __future__ import annotations

import os
import webbrowser
from pathlib import Path

import click

from ..errors import InvalidInputError
from ._base import _repo, cli


@cli.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="0 picks a free port.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on; only this machine can reach the default.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option("--quiet", is_flag=True, help="Do not log each request on stderr.")
@click.pass_context
def ui(ctx: click.Context, port: int, host: str, open_browser: bool, quiet: bool) -> None:
    """Serve a read-only web view of the registry until Ctrl-C."""
    from ..ui import make_server, url_of

    repo = _repo(ctx)
    log = None if quiet else (lambda line: click.echo(line, err=True))
    try:
        server = make_server(repo.root, host, port, log)
    except OSError as e:
        raise InvalidInputError(
            f"cannot listen on {host}:{port} ({e.strerror or e})",
            hint="pick another --port (0 for any free one)",
        ) from None
    url = url_of(server)
    click.echo(f"Serving {repo.root} at {url} (read-only; Ctrl-C to stop)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}: other machines can read this registry", err=True)
    if open_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)  # Ctrl-C is how a server is meant to end: exit 0
    finally:
        server.server_close()


@cli.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
)
@click.pass_context
def report(ctx: click.Context, names: tuple[str, ...], output: Path) -> None:
    """Write the UI's views of NAME... (default: every family) to one self-contained HTML
    file."""
    from .. import _fs
    from ..ui import build_report

    repo = _repo(ctx)
    text = build_report(repo, list(names))
    target = output if output.is_absolute() else Path(ctx.obj.get("cwd") or os.getcwd()) / output
    _fs.atomic_write(target, text.encode("utf-8"))
    click.echo(f"Wrote {target} ({len(text.encode('utf-8')):,} bytes)")
