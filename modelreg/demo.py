"""``modelreg demo``: the seed's walk-through, offline.

torch and torchvision are imported here and nowhere on the paths of other commands.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ModelregError
from .repo import DIRNAME, Repository

Echo = Callable[[str], None]


def _import_torch() -> tuple[object, object]:
    try:
        import torch
        import torchvision
    except ImportError:
        raise ModelregError(
            "the demo needs torch and torchvision",
            hint="pip install 'modelreg[torch]'",
        ) from None
    return torch, torchvision


def _build(name: str, echo: Echo) -> tuple[object, str, dict[str, float]]:
    """A torchvision model: cached pretrained weights when present, else a seeded init; with
    metrics that are true of it (torchvision's published ImageNet accuracy for the
    pretrained weights, chance level for a random init)."""
    torch, torchvision = _import_torch()
    builder = getattr(torchvision.models, name)  # type: ignore[attr-defined]
    weights_enum = {"resnet18": "ResNet18_Weights", "mobilenet_v2": "MobileNet_V2_Weights"}[name]
    weights = getattr(torchvision.models, weights_enum).DEFAULT  # type: ignore[attr-defined]
    cache = Path(torch.hub.get_dir()) / "checkpoints"  # type: ignore[attr-defined]
    cached = cache / Path(weights.url).name
    if cached.is_file():
        # Loaded here with weights_only=True rather than by torchvision's own loader, which
        # does not ask for it: a file in the cache is never executed.
        model = builder(weights=None)
        try:
            state = torch.load(cached, weights_only=True, map_location="cpu")  # type: ignore[attr-defined]
            model.load_state_dict(state)
        except Exception as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            echo(f"  {name}: cached weights {cached} not used ({reason[:120]})")
        else:
            echo(f"  {name}: pretrained weights found in the local torch cache")
            published = weights.meta["_metrics"]["ImageNet-1K"]
            metrics = {"acc@1": published["acc@1"] / 100, "acc@5": published["acc@5"] / 100}
            return model, "pretrained (local torch cache)", metrics
    torch.manual_seed(0)  # type: ignore[attr-defined]
    echo(
        f"  {name}: no usable pretrained weights in the local torch cache, "
        "so random weights (seed 0)"
    )
    chance = {"acc@1": 0.001, "acc@5": 0.005}  # 1 and 5 of 1,000 classes
    return builder(weights=None), "random init, seed 0 (chance-level accuracy)", chance


def check_new_or_empty(directory: Path) -> None:
    """The demo registers random-init models and moves ``production``: run in someone's
    registry (or among their files) it would mix those into real work, so it only writes
    into a folder it can call its own."""
    hint = "pass a new or empty folder to --dir, or leave --dir out for a temporary one"
    if directory.exists() and not directory.is_dir():
        raise ModelregError(f"--dir {directory} is a file, not a folder", hint=hint)
    if directory.is_dir():
        if (directory / DIRNAME).exists():
            raise ModelregError(
                f"--dir {directory} is already a modelreg registry; the demo never writes into one",
                hint=hint,
            )
        if any(directory.iterdir()):
            raise ModelregError(f"--dir {directory} is not empty", hint=hint)


def run_demo(directory: Path | None, echo: Echo) -> Path:
    if directory is not None:
        check_new_or_empty(directory)
    torch, _ = _import_torch()
    from . import ModelRegistry
    from .api import human_bytes
    from .maintenance import stats

    workdir = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="modelreg-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # Created here, not found by walking up: a new folder inside someone's registry gets
    # its own registry rather than adding the demo's versions to theirs.
    Repository.init(workdir)
    echo(f"Demo registry in {workdir}\n")
    registry = ModelRegistry(workdir, metadata_file=workdir / "registry.yaml")
    files = workdir / "checkpoints"
    files.mkdir(exist_ok=True)

    echo("1. Building models")
    resnet, resnet_origin, resnet_metrics = _build("resnet18", echo)
    mobilenet, mobile_origin, mobile_metrics = _build("mobilenet_v2", echo)

    echo("\n2. Registering")
    path = files / "resnet18.pth"
    torch.save(resnet.state_dict(), path)  # type: ignore[attr-defined]
    common: dict[str, Any] = {
        "framework": "pytorch",
        "dataset": "ImageNet",
        "input_shape": [1, 3, 224, 224],
    }
    v1 = registry.register(
        "resnet18",
        path,
        architecture="torchvision.models.resnet18",
        metrics=resnet_metrics,
        description=f"ResNet-18, {resnet_origin}",
        **common,
    )
    echo(f"  resnet18@{v1['version']}  {human_bytes(v1['size'])}")
    path2 = files / "resnet18_final.pth"
    torch.save(resnet.state_dict(), path2)  # type: ignore[attr-defined]
    before = stats(registry.repo).stored_bytes
    v2 = registry.register(
        "resnet18",
        path2,
        architecture="torchvision.models.resnet18",
        metrics=resnet_metrics,
        description="the same weights saved again (torch.save gives new bytes each time)",
        tags=["production"],
        **common,
    )
    added = stats(registry.repo).stored_bytes - before
    echo(
        f"  resnet18@{v2['version']}  {human_bytes(v2['size'])}, "
        f"added only {human_bytes(added)} to the store"
    )
    path3 = files / "mobilenet_v2.pth"
    torch.save(mobilenet.state_dict(), path3)  # type: ignore[attr-defined]
    m1 = registry.register(
        "mobilenet_v2",
        path3,
        architecture="torchvision.models.mobilenet_v2",
        metrics=mobile_metrics,
        description=f"MobileNetV2, {mobile_origin}",
        **common,
    )
    echo(f"  mobilenet_v2@{m1['version']}  {human_bytes(m1['size'])}")

    echo("\n3. get resnet18@latest")
    info = registry.get("resnet18", "latest")
    echo(f"  {info['name']}@{info['version']} -> {info['file_path']}")
    echo(f"  metrics {info['metrics']}, tags {info['tags']}")

    echo("\n4. list")
    for row in registry.list():
        echo(
            f"  {row['name']}@{row['version']}  {human_bytes(row['size'])}  "
            f"tags={','.join(row['tags']) or '-'}"
        )
    echo(f"\n5. families: {', '.join(registry.list_families())}")

    echo("\n6. summary")
    registry.print_summary()

    echo("\n7. checkout everything")
    for row in registry.list():
        got = registry.get(row["name"], row["version"])
        echo(f"  {got['file_path']}")

    s = stats(registry.repo)
    echo("\n8. stats")
    echo(
        f"  logical {human_bytes(s.logical_bytes)}, stored {human_bytes(s.stored_bytes)}, "
        f"dedup {s.dedup_ratio:.2f}x"
    )
    echo(f"\nTry: cd {workdir} && modelreg log resnet18")
    return workdir
