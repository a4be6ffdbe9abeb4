"""Hooks: executables in ``.modelreg/hooks/`` that run before and after a command.

Like Git's hooks, a hook is a file named after its event (``pre-register``,
``post-register``, ``pre-tag``, ``post-tag``, ``pre-push``, ``post-push``), run with the
registry root as its working folder. It gets the details as JSON on stdin and the scalar ones
as ``MODELREG_<KEY>`` environment variables (``MODELREG_NAME``, ``MODELREG_VERSION``, ...).

A ``pre-*`` hook that exits non-zero stops the command before it changes anything, and its
output becomes the error. A ``post-*`` hook runs after the change is published: its failure is
a warning, never an undo. A hook file that is not executable is skipped with a warning; one
that runs longer than ``hooks.timeout`` seconds (config.yaml, default 60) is killed, with
its whole process group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import warnings
from pathlib import Path
from typing import Any

from .errors import HookError, HookWarning, ModelregError

EVENTS = ("pre-register", "post-register", "pre-tag", "post-tag", "pre-push", "post-push")
DIRNAME = "hooks"
DEFAULT_TIMEOUT = 60.0
MESSAGE_MAX = 500


def timeout(config: dict[str, Any], where: Path) -> float:
    raw = (config.get("hooks") or {}).get("timeout", DEFAULT_TIMEOUT)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not raw > 0:
        raise ModelregError(
            f"{where}: hooks.timeout is {raw!r}",
            hint="set it to seconds, e.g. hooks: {timeout: 60}",
        )
    return float(raw)


def _env_value(value: Any) -> str | None:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None  # lists and mappings are in the JSON only


def _environment(root: Path, event: str, details: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in details.items():
        text = _env_value(value)
        if text is not None and "\0" not in text:
            env[f"MODELREG_{key.upper().replace('-', '_')}"] = text
    env["MODELREG_HOOK"] = event
    env["MODELREG_ROOT"] = str(root)
    return env


def _message(output: bytes) -> str:
    text = " ".join(output.decode("utf-8", "replace").split())
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= MESSAGE_MAX else clean[: MESSAGE_MAX - 3] + "..."


def run(
    root: Path, store: Path, config: dict[str, Any], event: str, details: dict[str, Any]
) -> None:
    """Run the ``event`` hook of the registry at ``root`` (store folder ``store``), if any."""
    assert event in EVENTS, event
    path = store / DIRNAME / event
    if not path.is_file():
        return
    pre = event.startswith("pre-")

    def failed(why: str, hint: str) -> None:
        if pre:
            raise HookError(why, hint=hint)
        warnings.warn(f"{why}; {hint}", HookWarning, stacklevel=3)

    if not os.access(path, os.X_OK):
        warnings.warn(
            f"hook {path} is not executable; skipped (chmod +x it to run it)",
            HookWarning,
            stacklevel=3,
        )
        return
    limit = timeout(config, store / "config.yaml")
    payload = json.dumps({"hook": event, **details}, sort_keys=True, default=str).encode()
    try:
        proc = subprocess.Popen(
            [str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=root,
            env=_environment(root, event, details),
            start_new_session=True,  # a timeout kills the hook and whatever it started
        )
    except OSError as e:
        failed(
            f"the {event} hook could not be started ({e.strerror or e})",
            hint=f"check the first line (#!) of {path}",
        )
        return
    try:
        output, _ = proc.communicate(payload, timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        failed(
            f"the {event} hook did not finish within {limit:g} s and was stopped",
            hint=f"fix {path}, or raise hooks.timeout in {store / 'config.yaml'}",
        )
        return
    if proc.returncode != 0:
        said = _message(output)
        status = f"exit status {proc.returncode}" if proc.returncode > 0 else "a signal"
        if pre:
            what = event.removeprefix("pre-")
            failed(
                f"the {event} hook refused the {what} ({status})" + (f": {said}" if said else ""),
                hint=f"see {path}",
            )
        else:
            failed(
                f"the {event} hook failed ({status})" + (f": {said}" if said else ""),
                hint=f"the {event.removeprefix('post-')} itself is done; see {path}",
            )
