"""Error messages not covered elsewhere, each read as the user sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelreg import ModelRegistry
from modelreg.errors import InvalidInputError, ModelregError, UnsafeModelWarning

from .conftest import CliRun, write_bytes


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": {"": 1.0}}, "invalid metric name ''"),
        ({"metrics": {"acc": [1, 2]}}, "metric 'acc' must be a number, not a list"),
        ({"metrics": {"acc": "high"}}, "metric 'acc' must be a number, not 'high'; put text in"),
        ({"metrics": {"acc": "0,92"}}, "write decimals with a point"),
        ({"metrics": {"acc": float("inf")}}, "metric 'acc' is inf"),
        ({"metrics": {"acc": 10**5000}}, "metric 'acc' is too large (16610 bits)"),
        ({"metrics": {1: 0.5, "1": 0.6}}, "metric name 1 is an int; names must be strings"),
        ({"metrics": {"a\ud800": 1.0}}, "is not valid Unicode (a lone surrogate)"),
        ({"metrics": "acc=1"}, "metadata field 'metrics' must be a dict, not a str"),
        ({"params": {"lr": [1]}}, "param 'lr' must be text, a number or a bool, not a list"),
        ({"params": {"note": "\udfff"}}, "param 'note' holds text that is not valid Unicode"),
        ({"description": "caf\udce9"}, "description holds text that is not valid Unicode"),
        ({"input_shape": [1, "3"]}, "input_shape [1, '3'] must be whole numbers"),
        ({"input_shape": [1, -3]}, "input_shape [1, -3] must be whole numbers"),
        ({"input_shape": [2**64]}, "an input_shape dimension is too large"),
        ({"framework": 3}, "metadata field 'framework' must be a str, not an int"),
    ],
)
def test_bad_metadata_through_the_api(repo_dir: Path, kwargs: dict, message: str) -> None:
    registry = ModelRegistry(".")
    with pytest.raises(InvalidInputError) as caught:
        registry.register("m", write_bytes(repo_dir / "m.bin", 10), **kwargs)
    assert message in str(caught.value)
    assert registry.list_families() == []


def test_init_on_a_file_path(tmp_path: Path, run: CliRun) -> None:
    target = tmp_path / "afile"
    target.write_text("x")
    r = run("init", target)
    assert r.exit_code == 2 and "is a file" in r.stderr  # click's own check of the argument
    with pytest.raises(ModelregError, match="afile is not a folder"):
        ModelRegistry(target)  # the API says it in its own words
    assert target.read_text() == "x"


def test_tag_delete_needs_a_tag(repo_dir: Path, run: CliRun) -> None:
    run("register", "m", write_bytes(repo_dir / "m.bin", 10))
    r = run("tag", "-d", "m")
    assert r.exit_code == 2 and "tag -d needs NAME and TAG" in r.stderr


def test_a_bad_lock_timeout_setting(
    repo_dir: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELREG_LOCK_TIMEOUT", "soon")
    r = run("list")
    assert r.exit_code == 1 and "MODELREG_LOCK_TIMEOUT='soon' is not a number" in r.stderr


def test_a_registry_of_a_newer_format(repo_dir: Path, run: CliRun) -> None:
    config = repo_dir / ".modelreg" / "config.yaml"
    config.write_text(config.read_text().replace("format: 3", "format: 99"))
    r = run("list")
    assert r.exit_code == 1 and "is damaged or from a newer modelreg" in r.stderr
    assert "upgrade modelreg" in r.stderr


def test_a_folder_remote_that_is_a_file(repo_dir: Path, run: CliRun, tmp_path: Path) -> None:
    run("register", "m", write_bytes(repo_dir / "m.bin", 10))
    (tmp_path / "plainfile").write_text("x")
    run("remote", "add", "origin", tmp_path / "plainfile")
    r = run("push")
    assert r.exit_code == 1 and "is not a folder" in r.stderr


def test_loading_a_folder_with_several_model_files(repo_dir: Path, torch_mod) -> None:
    from .models import save_safetensors, save_torch, small_state_dict

    folder = repo_dir / "two"
    folder.mkdir()
    save_torch(folder / "a.pt", small_state_dict())
    save_safetensors(folder / "b.safetensors", small_state_dict())
    registry = ModelRegistry(".")
    registry.register("two", folder)
    with pytest.raises(ModelregError, match="two@v1 is a folder with 2 model files"):
        registry.load("two")


def test_a_pickle_that_cannot_be_read_is_of_unknown_safety(repo_dir: Path) -> None:
    path = repo_dir / "broken.pkl"
    path.write_bytes(b"\x80\x02" + b"0" * 10)  # POP on an empty stack
    with pytest.warns(UnsafeModelWarning, match="b@v1 could not be checked"):
        info = ModelRegistry(".").register("b", path)["inspect"]
    assert info == {"format": "pickle", "safety": "unknown", "note": "the pickle could not be read"}


def test_a_writer_that_cannot_get_the_family_lock_says_which(
    repo_dir: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelreg import _fs
    from modelreg.repo import Repository

    run("register", "m", write_bytes(repo_dir / "m.bin", 10))
    monkeypatch.setenv("MODELREG_LOCK_TIMEOUT", "0.2")
    held = Repository(repo_dir).refs.lock("m")
    with held:
        r = run("register", "m", repo_dir / "m.bin")
        assert r.exit_code == 1
        assert "gave up after 0.2s waiting for the write lock of model 'm'" in r.stderr
        assert "another modelreg process is writing" in r.stderr
        assert run("get", "m").exit_code == 0  # readers take no lock
    gc_held = _fs.FileLock(repo_dir / ".modelreg" / "locks" / "gc.lock", "gc", 1)
    with gc_held:
        r = run("register", "m", repo_dir / "m.bin")
        assert r.exit_code == 1 and "waiting for a running gc to finish" in r.stderr
    assert [v["version"] for v in ModelRegistry(".").list("m")] == ["v1"]
