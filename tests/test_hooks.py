"""Hooks in .modelreg/hooks/: real executable scripts, run by register, tag and push."""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelreg import ModelRegistry
from modelreg.errors import HookError, HookWarning
from modelreg.refs import yaml_dump, yaml_load

from .conftest import CliRun, tree_snapshot, write_bytes

ROOT = Path(__file__).resolve().parent.parent
RECORDER = """#!/bin/sh
# Appends what modelreg gave it: the environment it cares about, then the JSON.
{
  echo "hook=$MODELREG_HOOK name=$MODELREG_NAME version=$MODELREG_VERSION tag=$MODELREG_TAG"
  cat
  echo
} >> "$MODELREG_ROOT/hook-log"
"""


def _hook(root: Path, event: str, body: str, executable: bool = True) -> Path:
    folder = root / ".modelreg" / "hooks"
    folder.mkdir(exist_ok=True)
    path = folder / event
    path.write_text(body)
    path.chmod(0o755 if executable else 0o644)
    return path


def _calls(root: Path) -> list[tuple[str, dict[str, object]]]:
    """(environment line, JSON) of each recorded hook run."""
    lines = (root / "hook-log").read_text().splitlines()
    return [(lines[i], json.loads(lines[i + 1])) for i in range(0, len(lines), 2)]


def test_register_runs_pre_and_post_register_with_env_and_json(repo_dir: Path, run: CliRun) -> None:
    _hook(repo_dir, "pre-register", RECORDER)
    _hook(repo_dir, "post-register", RECORDER)
    model = write_bytes(repo_dir / "m.pt", 3000)
    r = run("register", "m", model, "--metric", "acc=0.9", "-t", "candidate")
    assert r.exit_code == 0, r.output
    (pre_env, pre), (post_env, post) = _calls(repo_dir)
    assert pre_env == "hook=pre-register name=m version= tag="
    assert pre["path"] == str(model) and pre["metrics"] == {"acc": 0.9}
    assert pre["tags"] == ["candidate"] and pre["version"] is None
    assert post_env == "hook=post-register name=m version=v1 tag="
    assert post["version"] == "v1" and post["tags"] == ["latest", "candidate"]
    assert post["content_hash"] and post["path"] == str(model)


def test_a_refusing_pre_register_hook_aborts_with_its_message(repo_dir: Path, run: CliRun) -> None:
    _hook(repo_dir, "pre-register", "#!/bin/sh\necho 'no registering on Fridays' >&2\nexit 3\n")
    model = write_bytes(repo_dir / "m.pt", 3000)
    before = tree_snapshot(repo_dir / ".modelreg" / "objects")
    r = run("register", "m", model)
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert r.stderr.startswith(
        "error: the pre-register hook refused the register (exit status 3): "
        "no registering on Fridays; see "
    )
    assert tree_snapshot(repo_dir / ".modelreg" / "objects") == before
    assert run("list", "--json").stdout.strip() == "[]"
    with pytest.raises(HookError, match="Fridays"):
        ModelRegistry(".").register("m", model)


def test_a_hook_that_is_not_executable_is_skipped_with_a_warning(
    repo_dir: Path, run: CliRun
) -> None:
    hook = _hook(repo_dir, "pre-register", "#!/bin/sh\nexit 1\n", executable=False)
    r = run("register", "m", write_bytes(repo_dir / "m.pt", 3000))
    assert r.exit_code == 0
    assert f"warning: hook {hook} is not executable; skipped (chmod +x it to run it)" in r.stderr


def test_a_failing_post_hook_is_a_warning_and_the_work_stays_done(
    repo_dir: Path, run: CliRun
) -> None:
    _hook(repo_dir, "post-register", "#!/bin/sh\necho 'webhook down'\nexit 2\n")
    r = run("register", "m", write_bytes(repo_dir / "m.pt", 3000))
    assert r.exit_code == 0 and "Registered m@v1" in r.stdout
    assert "warning: the post-register hook failed (exit status 2): webhook down" in r.stderr
    with pytest.warns(HookWarning, match="webhook down"):
        ModelRegistry(".").register("m", repo_dir / "m.pt")


def test_a_hanging_hook_is_killed_after_the_configured_timeout(repo_dir: Path, run: CliRun) -> None:
    config = repo_dir / ".modelreg" / "config.yaml"
    settings = yaml_load(config.read_bytes())
    assert isinstance(settings, dict)
    settings["hooks"] = {"timeout": 1}
    config.write_text(yaml_dump(settings))
    _hook(repo_dir, "pre-register", '#!/bin/sh\necho $$ > "$MODELREG_ROOT/pid"\nexec sleep 600\n')
    r = run("register", "m", write_bytes(repo_dir / "m.pt", 3000))
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert "error: the pre-register hook did not finish within 1 s and was stopped" in r.stderr
    assert "raise hooks.timeout in" in r.stderr
    pid = int((repo_dir / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    settings["hooks"] = {"timeout": "soon"}
    config.write_text(yaml_dump(settings))
    r = run("register", "m", repo_dir / "m.pt")
    assert r.exit_code == 1 and "hooks.timeout is 'soon'; set it to seconds" in r.stderr


def test_a_hook_that_cannot_start_is_named(repo_dir: Path, run: CliRun) -> None:
    _hook(repo_dir, "pre-tag", "#!/no/such/interpreter\n")
    run("register", "m", write_bytes(repo_dir / "m.pt", 3000))
    r = run("tag", "m@1", "production")
    assert r.exit_code == 1
    assert "error: the pre-tag hook could not be started" in r.stderr and "(#!)" in r.stderr


def test_tag_hooks_see_the_move_and_can_refuse_it(repo_dir: Path, run: CliRun) -> None:
    model = write_bytes(repo_dir / "m.pt", 3000)
    run("register", "m", model)
    run("register", "m", model)
    _hook(repo_dir, "pre-tag", RECORDER)
    _hook(repo_dir, "post-tag", RECORDER)
    assert run("tag", "m@1", "production").exit_code == 0
    assert run("tag", "m@2", "production").exit_code == 0
    assert run("tag", "-d", "m", "production").exit_code == 0
    calls = _calls(repo_dir)
    assert [env for env, _ in calls] == [
        "hook=pre-tag name=m version=v1 tag=production",
        "hook=post-tag name=m version=v1 tag=production",
        "hook=pre-tag name=m version=v2 tag=production",
        "hook=post-tag name=m version=v2 tag=production",
        "hook=pre-tag name=m version=v2 tag=production",
        "hook=post-tag name=m version=v2 tag=production",
    ]
    assert calls[2][1]["previous"] == "v1" and calls[2][1]["delete"] is False
    assert calls[5][1]["delete"] is True
    guard = '#!/bin/sh\nif [ "$MODELREG_TAG" = production ]; then echo "ask the lead"; exit 1; fi\n'
    _hook(repo_dir, "pre-tag", guard)
    r = run("tag", "m@1", "production")
    assert r.exit_code == 1 and "refused the tag (exit status 1): ask the lead" in r.stderr
    assert "production" not in json.loads(run("tag", "m", "--json").stdout)
    assert run("tag", "m@1", "staging").exit_code == 0


def test_push_hooks_can_stop_a_push_and_see_what_it_sent(
    repo_dir: Path, run: CliRun, tmp_path: Path
) -> None:
    run("register", "m", write_bytes(repo_dir / "m.pt", 3000))
    remote = tmp_path / "remote"
    run("remote", "add", "origin", remote)
    _hook(repo_dir, "pre-push", '#!/bin/sh\necho "not to $MODELREG_REMOTE"\nexit 1\n')
    r = run("push")
    assert r.exit_code == 1 and "refused the push (exit status 1): not to origin" in r.stderr
    assert not remote.exists()
    _hook(repo_dir, "pre-push", RECORDER)
    _hook(repo_dir, "post-push", RECORDER)
    assert run("push").exit_code == 0
    (_, pre), (_, post) = _calls(repo_dir)
    assert pre["remote"] == "origin" and pre["names"] == ["m"]
    assert post["versions"] == ["m@v1"] and post["objects"] > 0


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, object]]]]:
    received: list[dict[str, object]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


def test_the_documented_webhook_example_posts_the_version(
    repo_dir: Path,
    run: CliRun,
    webhook: tuple[str, list[dict[str, object]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, received = webhook
    example = (ROOT / "docs" / "examples" / "post-register-webhook").read_text()
    shebang, rest = example.split("\n", 1)
    assert shebang == "#!/usr/bin/env python3"
    _hook(repo_dir, "post-register", f"#!{sys.executable}\n{rest}")  # this test's Python
    monkeypatch.setenv("MODELREG_WEBHOOK_URL", url)
    r = run("register", "m", write_bytes(repo_dir / "m.pt", 3000), "--metric", "acc=0.5")
    assert r.exit_code == 0 and "hook" not in r.stderr, r.stderr
    assert len(received) == 1 and received[0]["text"] == "registered m@v1"
    version = received[0]["version"]
    assert isinstance(version, dict) and version["metrics"] == {"acc": 0.5}
    monkeypatch.setenv("MODELREG_WEBHOOK_URL", "http://127.0.0.1:9/nothing-listens")
    r = run("register", "m", repo_dir / "m.pt")
    assert r.exit_code == 0
    assert "warning: the post-register hook failed (exit status 1): webhook http" in r.stderr


def test_a_model_registered_from_memory_has_no_path_in_its_hooks(
    repo_dir: Path, torch_mod: Any
) -> None:
    _hook(repo_dir, "pre-register", RECORDER)
    _hook(repo_dir, "post-register", RECORDER)
    ModelRegistry(".").register("m", model={"w": torch_mod.ones(3)})
    (_, pre), (post_env, post) = _calls(repo_dir)
    assert pre["path"] is None and post["path"] is None
    assert post_env == "hook=post-register name=m version=v1 tag="
    assert post["source"] == "model.safetensors"
