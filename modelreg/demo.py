"""``modelreg demo``: what the registry is for, offline and in a few seconds.

A small image task is made in memory from a fixed seed. ResNet-18 gets a new head for its
classes and is registered as v1; then only that head is fine-tuned and the result registered
as v2 with v1 as its parent, so ``diff`` shows exactly two changed tensors and the accuracy
gained, and the store grows by kilobytes for a 43 MiB file. Every accuracy printed or recorded
is measured here, on images the model was not trained on.

torch and torchvision are imported here and nowhere on the paths of other commands.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelregError
from .repo import DIRNAME, Repository, find_root

Echo = Callable[[str], None]

CLASSES = ("horizontal stripes", "vertical stripes", "checkerboard", "disc")
IMAGE_SIZE = 64
IMAGES_PER_CLASS = 250
HELD_OUT = 0.2
SEED = 0
HEAD_STEPS = 500
NOISE = 0.15
DATASET = (
    f"synthetic patterns, {len(CLASSES)} classes, {IMAGE_SIZE}x{IMAGE_SIZE}, seed {SEED} "
    f"(accuracy on the held-out {HELD_OUT:.0%})"
)
WEIGHTS = {"resnet18": "ResNet18_Weights", "mobilenet_v2": "MobileNet_V2_Weights"}


def _import_torch() -> tuple[Any, Any]:
    try:
        import torch
        import torchvision
    except ImportError:
        raise ModelregError(
            "the demo needs torch and torchvision",
            hint="pip install 'modelreg[torch]'",
        ) from None
    return torch, torchvision


@dataclass(frozen=True)
class Task:
    train_x: Any
    train_y: Any
    test_x: Any
    test_y: Any


def make_task() -> Task:
    """Images whose class is a pattern, drawn with random period, phase, position, colours and
    noise so that telling them apart has to be learned. Made in memory (the demo downloads
    nothing) from a fixed seed, so every run, and the tests, see the same images."""
    torch, _ = _import_torch()
    g = torch.Generator().manual_seed(SEED)
    n = len(CLASSES) * IMAGES_PER_CLASS

    def uniform(low: float, high: float, *shape: int) -> Any:
        return low + (high - low) * torch.rand(n, *shape, generator=g)

    yy, xx = torch.meshgrid(
        torch.arange(IMAGE_SIZE, dtype=torch.float32),
        torch.arange(IMAGE_SIZE, dtype=torch.float32),
        indexing="ij",
    )
    period, phase = uniform(4, 12, 1, 1), uniform(0, 2 * math.pi, 1, 1)
    rows = torch.sin(2 * math.pi * yy / period + phase)
    cols = torch.sin(2 * math.pi * xx / period + phase)
    cy, cx, radius = uniform(16, 48, 1, 1), uniform(16, 48, 1, 1), uniform(8, 24, 1, 1)
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
    patterns = torch.stack([rows > 0, cols > 0, rows * cols > 0, disc], dim=1)
    labels = torch.arange(len(CLASSES)).repeat_interleave(IMAGES_PER_CLASS)
    on = patterns[torch.arange(n), labels].unsqueeze(1)
    colour = uniform(0, 1, 3, 1, 1)
    noise = NOISE * torch.randn(n, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g)
    images = torch.where(on, colour, 1 - colour) + noise
    order = torch.randperm(n, generator=g)
    x, y = images[order], labels[order]
    n_test = int(n * HELD_OUT)
    return Task(x[n_test:], y[n_test:], x[:n_test], y[:n_test])


def accuracy(model: Any, x: Any, y: Any) -> float:
    """The share of ``x`` the model labels as ``y``: measured, never assumed."""
    torch, _ = _import_torch()
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(batch).argmax(1) for batch in x.split(100)])
    return int((predicted == y).sum()) / len(y)


def fine_tune_head(model: Any, task: Task) -> None:
    """Train ResNet-18's ``fc`` alone. The backbone is frozen and kept in eval mode (its
    BatchNorm statistics untouched), so only fc.weight and fc.bias change; its features are
    then the same at every step, and computing them once makes the training take a second."""
    torch, _ = _import_torch()
    model.eval()
    model.requires_grad_(False)
    head, model.fc = model.fc, torch.nn.Identity()
    try:
        with torch.no_grad():
            features = torch.cat([model(batch) for batch in task.train_x.split(100)])
    finally:
        model.fc = head
    head.requires_grad_(True)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.01)
    for _ in range(HEAD_STEPS):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(head(features), task.train_y).backward()
        optimizer.step()
    head.requires_grad_(False)


def build(name: str, echo: Echo) -> tuple[Any, str]:
    """A torchvision model with a new, seeded final layer for ``CLASSES``; its backbone is
    the pretrained weights when they are already in the local torch cache, else a seeded
    random init. A cached file is read with ``weights_only=True`` (torchvision's own loader
    does not ask for it), so it is never executed."""
    torch, torchvision = _import_torch()
    builder = getattr(torchvision.models, name)
    weights = getattr(torchvision.models, WEIGHTS[name]).DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    torch.manual_seed(SEED)
    model, origin = builder(weights=None), f"random backbone (seed {SEED})"
    if cached.is_file():
        try:
            pretrained = builder(weights=None)
            pretrained.load_state_dict(
                torch.load(cached, weights_only=True, map_location="cpu"),
            )
        except Exception as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            echo(f"  {name}: cached weights {cached} not used ({reason[:120]})")
        else:
            echo(f"  {name}: pretrained weights found in the local torch cache")
            model, origin = pretrained, "pretrained backbone (local torch cache)"
    if origin.startswith("random"):
        echo(f"  {name}: no usable pretrained weights in the local torch cache, so random weights")
    torch.manual_seed(SEED)
    if name == "resnet18":
        model.fc = torch.nn.Linear(model.fc.in_features, len(CLASSES))
    else:
        model.classifier[-1] = torch.nn.Linear(model.classifier[-1].in_features, len(CLASSES))
    return model.eval(), origin


def check_new_or_empty(directory: Path) -> None:
    """The demo registers throw-away models and moves ``production``: run in someone's
    registry (or among their files) it would mix those into real work, so it only writes
    into a folder it can call its own."""
    hint = "pass a new or empty folder to --dir, or leave --dir out for a temporary one"
    if directory.exists() and not directory.is_dir():
        raise ModelregError(f"--dir {directory} is a file, not a folder", hint=hint)
    outer = find_root(directory.absolute().parent)
    if outer is not None:
        owned = Repository(outer)
        inside = directory.absolute().resolve()
        for folder, what in ((owned.dir, "store"), (owned.checkout_root, "checkout folder")):
            real = folder.resolve()
            if inside == real or real in inside.parents:
                raise ModelregError(
                    f"--dir {directory} is inside the {what} of the registry at {outer}",
                    hint=hint,
                )
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
    from .diff import diff, render
    from .maintenance import stats
    from .words import human_bytes

    workdir = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="modelreg-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # Created here, not found by walking up: a new folder inside someone's registry gets
    # its own registry rather than adding the demo's versions to theirs.
    Repository.init(workdir)
    echo(f"Demo registry in {workdir}\n")
    registry = ModelRegistry(workdir, metadata_file=workdir / "registry.yaml")
    files = workdir / "checkpoints"
    files.mkdir(exist_ok=True)

    echo("1. A small task, made here (nothing is downloaded)")
    task = make_task()
    echo(
        f"  synthetic patterns, {IMAGE_SIZE}x{IMAGE_SIZE} RGB with noise, seed {SEED}, "
        f"{len(CLASSES)} classes: {', '.join(CLASSES)}"
    )
    echo(
        f"  {len(task.train_y)} images to train on, {len(task.test_y)} held out "
        f"({HELD_OUT:.0%}) to measure accuracy"
    )

    echo(f"\n2. Models: torchvision's, with a new final layer for {len(CLASSES)} classes")
    resnet, resnet_origin = build("resnet18", echo)
    mobilenet, mobile_origin = build("mobilenet_v2", echo)

    echo("\n3. Registering them before any training")
    common: dict[str, Any] = {
        "framework": "pytorch",
        "dataset": DATASET,
        "input_shape": [1, 3, IMAGE_SIZE, IMAGE_SIZE],
    }
    acc_v1 = accuracy(resnet, task.test_x, task.test_y)
    path = files / "resnet18.pth"
    torch.save(resnet.state_dict(), path)
    v1 = registry.register(
        "resnet18",
        path,
        architecture="torchvision.models.resnet18",
        metrics={"accuracy": acc_v1},
        description=f"ResNet-18, {resnet_origin}, new {len(CLASSES)}-class fc (seed {SEED})",
        tags=["production"],
        **common,
    )
    echo(
        f"  resnet18@{v1['version']}  {human_bytes(v1['size'])}  accuracy {acc_v1:.3f}  production"
    )
    path = files / "mobilenet_v2.pth"
    torch.save(mobilenet.state_dict(), path)
    m1 = registry.register(
        "mobilenet_v2",
        path,
        architecture="torchvision.models.mobilenet_v2",
        description=f"MobileNetV2, {mobile_origin}, new {len(CLASSES)}-class classifier "
        f"(seed {SEED}); not trained or evaluated here",
        **common,
    )
    echo(
        f"  mobilenet_v2@{m1['version']}  {human_bytes(m1['size'])}  a second family, not evaluated"
    )

    echo("\n4. Fine-tuning ResNet-18's head (backbone frozen: only fc.weight and fc.bias train)")
    started = time.perf_counter()
    fine_tune_head(resnet, task)
    acc_v2 = accuracy(resnet, task.test_x, task.test_y)
    echo(
        f"  {HEAD_STEPS} steps of Adam on {len(task.train_y)} images in "
        f"{time.perf_counter() - started:.1f} s: held-out accuracy {acc_v1:.3f} -> {acc_v2:.3f}"
    )

    echo(f"\n5. Registering the fine-tune as the next version, parent {v1['version']}")
    path = files / "resnet18_head_finetuned.pth"
    torch.save(resnet.state_dict(), path)
    before = stats(registry.repo).stored_bytes
    v2 = registry.register(
        "resnet18",
        path,
        architecture="torchvision.models.resnet18",
        metrics={"accuracy": acc_v2},
        description=f"fc fine-tuned, backbone frozen ({HEAD_STEPS} steps of Adam)",
        parent=v1["version"],
        **common,
    )
    added = stats(registry.repo).stored_bytes - before
    echo(
        f"  resnet18@{v2['version']}  {human_bytes(v2['size'])}, added {human_bytes(added)} "
        f"to the store, not another {human_bytes(v2['size'])}: fc's new values, the file's "
        "headers and its list of chunks"
    )

    a, b = f"resnet18@{v1['version']}", f"resnet18@{v2['version']}"
    echo(f"\n6. diff {a} {b}")
    for line in render(diff(registry.repo, a, b)):
        echo(f"  {line}")

    echo(f"\n7. tag {b} production (tags move only when asked)")
    registry.tag("resnet18", v2["version"], "production")
    echo(f"  production: {a} -> {b}")

    echo("\n8. get resnet18@production")
    info = registry.get("resnet18", "production")
    echo(f"  {info['name']}@{info['version']} -> {info['file_path']}")
    echo(f"  accuracy {info['metrics']['accuracy']:.3f}, tags {', '.join(info['tags'])}")

    echo("\n9. list")
    for row in registry.list():
        echo(
            f"  {row['name']}@{row['version']}  {human_bytes(row['size'])}  "
            f"tags={','.join(row['tags']) or '-'}"
        )
    echo(f"\n10. families: {', '.join(registry.list_families())}")

    echo("\n11. summary")
    registry.print_summary()

    echo("\n12. checkout everything")
    for row in registry.list():
        got = registry.get(row["name"], row["version"])
        echo(f"  {got['file_path']}")

    s = stats(registry.repo)
    echo("\n13. stats")
    echo(
        f"  logical {human_bytes(s.logical_bytes)}, stored {human_bytes(s.stored_bytes)}, "
        f"dedup {s.dedup_ratio:.2f}x"
    )
    echo(f"\nTry: cd {workdir} && modelreg diff {a} {b} && modelreg log resnet18")
    return workdir
