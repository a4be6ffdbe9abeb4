"""Looking inside model files without executing them, and what that protects."""

from __future__ import annotations

import json
import os
import pickle
import warnings
from pathlib import Path

import pytest

from modelreg import ModelRegistry
from modelreg.errors import ModelregError, UnsafeModelError, UnsafeModelWarning
from modelreg.pickle_scan import ALLOWED_GLOBALS, scan, tensors

from .conftest import CliRun
from .models import save_safetensors, save_torch, small_state_dict

MARKER_NAME = "MARKER_was_executed"


class Evil:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def test_allowlist_is_exactly_what_torch_weights_only_accepts(torch_mod) -> None:
    from torch._weights_only_unpickler import _get_allowed_globals

    assert set(_get_allowed_globals()) == set(ALLOWED_GLOBALS)


def test_scan_reads_the_tensor_table_of_a_torch_pickle(tmp_path: Path, torch_mod) -> None:
    import zipfile

    path = save_torch(tmp_path / "m.pt", small_state_dict())
    with zipfile.ZipFile(path) as zf:
        result, _end = scan(zf.read("m/data.pkl"))
    assert result.safe and "torch._utils._rebuild_tensor_v2" in result.globals
    table = {t.name: t for t in tensors(result.root)}
    assert table["conv.weight"].shape == (64, 16, 3, 3)
    assert table["conv.weight"].dtype == "float32"
    assert table["bn.num_batches_tracked"].dtype == "int64"
    assert table["bn.num_batches_tracked"].shape == ()


def test_register_records_what_the_file_holds(repo_dir: Path, torch_mod) -> None:
    registry = ModelRegistry(".")
    state = small_state_dict()
    state["half"] = torch_mod.zeros(4, dtype=torch_mod.float16)
    info = registry.register("m", save_torch(repo_dir / "m.pt", state))["inspect"]
    assert info == {
        "format": "torch-zip",
        "safety": "safe",
        "tensors": 7,
        "parameters": sum(t.numel() for t in state.values()),
        "dtypes": ["float16", "float32", "int64"],
    }
    st = registry.register("s", save_safetensors(repo_dir / "m.safetensors", small_state_dict()))
    assert st["inspect"]["format"] == "safetensors" and st["inspect"]["safety"] == "safe"
    assert st["inspect"]["tensors"] == 6
    raw = registry.register("r", _text(repo_dir))
    assert raw["inspect"] == {"format": "raw", "safety": "n/a"}


def _text(folder: Path) -> Path:
    p = folder / "notes.txt"
    p.write_text("not a model\n")
    return p


@pytest.fixture
def evil_checkpoint(repo_dir: Path, torch_mod) -> tuple[Path, Path]:
    marker = repo_dir.parent / MARKER_NAME
    state = small_state_dict()
    state["payload"] = Evil(marker)  # type: ignore[assignment]
    path = save_torch(repo_dir / "evil.pt", state)
    assert not marker.exists()
    return path, marker


def test_a_pickle_that_would_run_code_never_runs(
    repo_dir: Path, run: CliRun, evil_checkpoint: tuple[Path, Path]
) -> None:
    path, marker = evil_checkpoint
    registry = ModelRegistry(".")
    registry.register("good", save_torch(repo_dir / "good.pt", small_state_dict()))
    with pytest.warns(UnsafeModelWarning, match=r"evil@v1 is marked unsafe.*posix\.system"):
        info = registry.register("evil", path)
    assert info["inspect"]["safety"] == "unsafe"
    assert info["inspect"]["unsafe_globals"] == ["posix.system"]

    r = run("register", "evil", path)
    assert r.exit_code == 0 and "warning: evil@v2 is marked unsafe" in r.stderr
    assert "UNSAFE     its pickle would run code" in run("log", "evil").stdout
    assert "UNSAFE" not in run("log", "good").stdout
    assert "contents   torch-zip, 6 tensors" in run("log", "good").stdout
    shown = json.loads(run("show", "evil", "--json").stdout)
    assert shown["inspect"]["safety"] == "unsafe"
    assert run("get", "evil").exit_code == 0
    assert run("diff", "good", "evil").exit_code == 0
    assert run("stats", "--scan", path).exit_code == 0
    with pytest.raises(UnsafeModelError, match=r"evil@v2 is marked unsafe.*pass trust=True"):
        registry.load("evil")
    with pytest.raises(ModelregError, match="torch refused to load evil@v2"):
        registry.load("evil", trust=True)  # trust only reaches the weights-only loader
    assert not marker.exists()


def test_a_plain_pickle_file_is_scanned_too(repo_dir: Path, run: CliRun) -> None:
    marker = repo_dir.parent / MARKER_NAME
    path = repo_dir / "legacy.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0], "x": Evil(marker)}, protocol=2))
    with warnings.catch_warnings(record=True):
        info = ModelRegistry(".").register("legacy", path)
    assert info["inspect"]["format"] == "pickle"
    assert info["inspect"]["safety"] == "unsafe"
    assert not marker.exists()


def test_a_directory_model_reports_its_worst_file(
    repo_dir: Path, evil_checkpoint: tuple[Path, Path]
) -> None:
    path, marker = evil_checkpoint
    folder = repo_dir / "bundle"
    folder.mkdir()
    save_safetensors(folder / "model.safetensors", small_state_dict())
    os.replace(path, folder / "extra.pt")
    (folder / "config.json").write_text("{}")
    with pytest.warns(UnsafeModelWarning):
        info = ModelRegistry(".").register("bundle", folder)["inspect"]
    assert info["safety"] == "unsafe"
    assert info["model_files"] == {"extra.pt": "torch-zip", "model.safetensors": "safetensors"}
    assert info["unsafe_globals"] == {"extra.pt": ["posix.system"]}
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated upstream
def test_torchscript_and_legacy_checkpoints(repo_dir: Path, torch_mod) -> None:
    class Tiny(torch_mod.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch_mod.nn.Linear(64, 64)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.fc(x)

    scripted = torch_mod.jit.script(Tiny())
    jit_path = repo_dir / "tiny_jit.pt"
    torch_mod.jit.save(scripted, str(jit_path))
    legacy = repo_dir / "legacy.pt"
    torch_mod.save(small_state_dict(), legacy, _use_new_zipfile_serialization=False)
    registry = ModelRegistry(".")
    with pytest.warns(UnsafeModelWarning, match="jit@v1 could not be checked: a TorchScript"):
        jit_info = registry.register("jit", jit_path)["inspect"]
    assert jit_info["format"] == "torchscript" and jit_info["safety"] == "unknown"
    old = registry.register("legacy", legacy)["inspect"]
    assert old == {
        "format": "torch-legacy",
        "safety": "safe",
        "tensors": 6,
        "parameters": sum(t.numel() for t in small_state_dict().values()),
        "dtypes": ["float32", "int64"],
    }
    for name, path in (("jit", jit_path), ("legacy", legacy)):
        assert Path(registry.get(name)["file_path"]).read_bytes() == path.read_bytes()
    assert isinstance(registry.load("legacy"), dict)


def test_records_written_before_inspection_existed_still_work(
    repo_dir: Path, run: CliRun, torch_mod
) -> None:
    """A foundation-era record has no `inspect`: everything still reads it."""
    from modelreg.objects import canonical_json

    registry = ModelRegistry(".")
    registry.register("m", save_torch(repo_dir / "a.pt", small_state_dict()))
    registry.register("m", save_torch(repo_dir / "b.pt", small_state_dict(seed=1)))
    repo = registry.repo
    for version in ("v1", "v2"):
        rec = repo.record(repo.family("m").versions[version])
        del rec["inspect"]
        oid = repo.objects.add(canonical_json(rec))
        repo.refs.update("m", lambda refs, v=version, o=oid: refs.versions.__setitem__(v, o))
    assert registry.get("m")["inspect"] == {}
    assert run("show", "m").exit_code == 0
    assert "UNSAFE" not in run("log", "m").stdout
    assert json.loads(run("diff", "m@v1", "m@v2", "--json").stdout)["tensors"]["unchanged"] == 2
    assert isinstance(registry.load("m"), dict)
    assert run("fsck").exit_code == 0


# --- two levels of unsafe ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "risk"),
    [
        (b"cbuiltins\neval\n(S'1'\ntR.", "executes-code"),
        (b"c__builtin__\ngetattr\n(S'x'\nS'y'\ntR.", "executes-code"),
        (b"csubprocess\nPopen\n(S'ls'\ntR.", "executes-code"),
        (b"ctorch.hub\nload\n(S'x'\ntR.", "executes-code"),
        (b"cmymodels\nNet\n)\x81.", "executes-code"),  # importing an unknown module runs it
        (b"ctorch.nn.modules.conv\nmake\n(tR.", "executes-code"),  # a call of a non-class
        (b"\x80\x02ccollections\nOrderedDict\n)R(cbuiltins\nlen\ntR.", "executes-code"),
        (b"\x80\x02c__main__\nNet\n)\x81}b.", "unsafe-classes"),
        (b"\x80\x02ctorch.nn.modules.conv\nConv2d\n)\x81}b.", "unsafe-classes"),
        (b"ctorch.nn.functional\nrelu\n.", "unsafe-classes"),  # named, never called
        (b"ctorch.nn.modules.linear\nLinear\n(I1\nI2\ntR.", "unsafe-classes"),
    ],
)
def test_unsafe_pickles_are_told_apart(body: bytes, risk: str) -> None:
    from modelreg.pickle_risk import risk as risk_of

    result, _end = scan(body)
    assert not result.safe and risk_of(result) == risk


def test_a_whole_saved_module_is_unsafe_classes_with_a_hint(
    repo_dir: Path, run: CliRun, torch_mod
) -> None:
    import torchvision

    path = repo_dir / "whole.pt"
    torch_mod.save(torchvision.models.resnet18(weights=None), path)
    with pytest.warns(UnsafeModelWarning) as caught:
        info = ModelRegistry(".").register("whole", path)["inspect"]
    warning = str(caught[0].message)
    assert "whole@v1 is marked unsafe (unsafe classes)" in warning
    assert "torchvision.models.resnet.ResNet" in warning
    assert "torch.save(model): save model.state_dict()" in warning
    assert info["risk"] == "unsafe-classes" and info["saved_module"] is True
    assert "torch.nn.modules.conv.Conv2d" in info["unsafe_globals"]
    assert "code_globals" not in info
    with pytest.raises(UnsafeModelError, match=r"whole@v1 is marked unsafe \(unsafe classes\)"):
        ModelRegistry(".").load("whole")
    assert "whole  v1 [unsafe classes]" in run("list").stdout
    assert "UNSAFE     a whole module saved with torch.save(model)" in run("log", "whole").stdout
    shown = run("show", "whole")
    assert "risk: unsafe-classes" in shown.stdout
    assert "warning: whole@v1 is marked unsafe (unsafe classes)" in shown.stderr


def test_code_execution_is_named_in_register_show_list_and_log(
    repo_dir: Path, run: CliRun, evil_checkpoint: tuple[Path, Path]
) -> None:
    path, marker = evil_checkpoint
    run("register", "good", save_torch(repo_dir / "good.pt", small_state_dict()))
    r = run("register", "evil", path)
    assert "warning: evil@v1 is marked unsafe (executes code): loading its pickle with " in (
        r.stderr
    )
    assert "torch.load(weights_only=False) would run code (posix.system)" in r.stderr
    listed = run("list").stdout
    assert "evil  v1 [runs code]" in listed
    assert "good  v1 " in listed and "good  v1 [" not in listed
    assert "UNSAFE     its pickle would run code; load() refuses it" in run("log", "evil").stdout
    shown = run("show", "evil")
    assert "risk: executes-code" in shown.stdout and "code_globals:" in shown.stdout
    assert "warning: evil@v1 is marked unsafe (executes code)" in shown.stderr
    assert "warning" not in run("show", "good").stderr
    assert not marker.exists()


def test_a_record_from_before_the_two_levels_still_reads_as_unsafe() -> None:
    from modelreg.modelinfo import safety_marker, verdict_line

    old = {"format": "torch-zip", "safety": "unsafe", "unsafe_globals": ["posix.system"]}
    assert verdict_line("m@v1", old) == (
        "m@v1 is marked unsafe: loading its pickle would import posix.system"
    )
    assert safety_marker(old) == "runs code"
    folder = {"safety": "unsafe", "risk": "executes-code", "code_globals": {"a.pt": ["os.system"]}}
    assert verdict_line("d@v1", folder) == (
        "d@v1 is marked unsafe (executes code): loading its pickle with "
        "torch.load(weights_only=False) would run code (a.pt: os.system)"
    )


def test_a_module_of_an_unknown_package_runs_code_and_still_gets_the_hint(
    repo_dir: Path, torch_mod, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model class from the user's own package: modelreg cannot know what importing that
    package does, so it counts as running code; the state_dict hint still applies."""

    class Net(torch_mod.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch_mod.nn.Linear(2, 2)

    Net.__module__, Net.__qualname__ = "tests.test_modelinfo", "UserNet"
    monkeypatch.setitem(globals(), "UserNet", Net)  # pickle looks the class up by name
    path = repo_dir / "net.pt"
    torch_mod.save(Net(), path)
    with pytest.warns(UnsafeModelWarning) as caught:
        info = ModelRegistry(".").register("net", path)["inspect"]
    assert info["risk"] == "executes-code" and info["code_globals"] == [
        "tests.test_modelinfo.UserNet"
    ]
    assert "would run code (tests.test_modelinfo.UserNet); it is a whole module saved" in str(
        caught[0].message
    )
