"""The command group, its error handling and the helpers every command uses.

This package is the only code that imports click, and ``_Group.invoke`` is the one place that
turns errors into messages and exit codes (1 for errors, 2 for usage)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..errors import HookWarning, ModelregError
from ..repo import Record, Repository
from ..views import version_view

PROGRESS_MIN_BYTES = 32 << 20


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Library warnings meant for the user (hooks) as one ``warning:`` line each."""
    if issubclass(category, HookWarning):
        click.echo(f"warning: {' '.join(str(message).split())}", err=True)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("always", HookWarning)
            warnings.showwarning = _show_warning
            return self._invoke(ctx)

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except BrokenPipeError:
            # The reader went away ('modelreg list | head'): stop quietly, as git does.
            with contextlib.suppress(OSError, ValueError, AttributeError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(141)
        except KeyboardInterrupt:
            click.echo("interrupted; nothing half-written is visible (see 'modelreg gc')", err=True)
            ctx.exit(130)
        except Exception as e:
            if os.environ.get("MODELREG_DEBUG") == "1":
                raise
            if isinstance(e, (ModelregError, OSError, EOFError)):
                click.echo(f"error: {_one_line(e)}", err=True)
            else:
                click.echo(
                    f"error: internal error ({type(e).__name__}: {_one_line(e)}); rerun with "
                    "MODELREG_DEBUG=1 for the traceback and report it",
                    err=True,
                )
            ctx.exit(1)


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror}{where}"
    return " ".join(str(e).split())


def _repo(ctx: click.Context) -> Repository:
    return Repository.find(ctx.obj.get("cwd"))


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


def _public(repo: Repository, rec: Record) -> dict[str, Any]:
    return version_view(repo, rec)


@contextlib.contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int], None] | None]:
    """A bar on a terminal for work big enough to wait for, saying how many bytes of the
    total are done and at what rate so far (so a slow disk is told from a hang); nothing
    otherwise."""
    if total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    from ..words import human_bytes

    started = time.monotonic()
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        bar.update(n)

    def info(_item: object) -> str:
        rate = done / max(time.monotonic() - started, 1e-3)
        return f"{human_bytes(done)}/{human_bytes(total)}  {human_bytes(rate)}/s"

    with click.progressbar(length=total, label=label, file=sys.stderr, item_show_func=info) as bar:
        yield step


def _size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelreg")
@click.option(
    "-C",
    "cwd",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run as if started in this folder.",
)
@click.pass_context
def cli(ctx: click.Context, cwd: Path | None) -> None:
    """A Git-style, content-addressed registry for model files.

    Refer to a version as NAME@REF, where REF is vN, N, latest or a tag; NAME alone means
    NAME@latest.
    """
    ctx.obj = {"cwd": cwd}


def main() -> None:
    cli(prog_name="modelreg")
