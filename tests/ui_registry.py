"""A registry with several families for the UI tests and screenshots: real safetensors and
torch checkpoints (tests/models.py), tags, a parent in another family, a version whose pickle
would run code, and user text that tries to be HTML."""

from __future__ import annotations

import inspect
import pickle
import warnings
from pathlib import Path
from typing import Any

from modelreg import ModelRegistry
from modelreg.repo import Repository

from .models import save_safetensors, save_torch, small_state_dict

XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
CARD = f"""# ResNet card

Trained on **ImageNet**. {XSS}

- top-1 reported in `metrics.accuracy`
- see [the paper](https://arxiv.org/abs/1512.03385)
- [a trap](javascript:window.__xss=3)

```
modelreg get xss-probe@v1
```
"""
RESNET_ACCURACY = [0.71, 0.74, 0.78, 0.77, 0.81, 0.83]


class _RunsCode:
    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, ("true",))  # pickled only: never loaded


def build(root: Path) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    src = root / "src"
    src.mkdir()
    registry = ModelRegistry(root)
    for n, acc in enumerate(RESNET_ACCURACY, start=1):
        state = small_state_dict(seed=n, big=32)
        if n >= 6:
            state["head.extra"] = state["fc.bias"] * 2  # v6 adds a tensor
        path = save_safetensors(src / f"resnet-{n}.safetensors", state)
        registry.register(
            "resnet",
            path,
            metrics={"accuracy": acc, "loss": round(1.5 - acc, 3)},
            params={"optimizer": "adamw" if n > 3 else "sgd", "lr": "3e-4"},
            dataset="ImageNet",
            architecture="resnet18-small",
            description=f"epoch {n * 10}",
        )
    registry.tag("resnet", "v4", "production")
    registry.tag("resnet", "v6", "staging")
    for n in range(1, 4):
        path = save_torch(src / f"distilled-{n}.pt", small_state_dict(seed=100 + n, big=16))
        registry.register(
            "distilled",
            path,
            metrics={"accuracy": 0.6 + n / 20},
            parent="resnet@v4" if n == 1 else None,
            dataset="ImageNet",
        )
    path = save_safetensors(src / "probe.safetensors", small_state_dict(seed=7, big=8))
    takes_card = "card_text" in inspect.signature(registry.register).parameters
    registry.register(
        "xss-probe",
        path,
        metrics={"accuracy": 0.5},
        params={"note": "<b>not bold</b>", "q": "\"'&"},
        description=XSS,
        dataset="<i>data</i>",
        **({"card_text": CARD} if takes_card else {}),
    )
    if not takes_card:
        _add_card("xss-probe", root)
    (src / "runs-code.pkl").write_bytes(pickle.dumps({"w": _RunsCode()}, protocol=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry.register("unsafe", src / "runs-code.pkl", metrics={"accuracy": 0.1})
    registry.get("resnet", "production")  # one checkout for the storage page
    return {"root": root, "families": ["distilled", "resnet", "unsafe", "xss-probe"]}


def _add_card(name: str, root: Path) -> None:
    """The latest version of ``name`` with a model card as its text in the record, for a
    modelreg whose register takes no card yet."""
    repo = Repository(root)
    refs = repo.family(name)
    version = refs.latest()
    assert version is not None
    rec = repo.record(refs.versions[version])
    rec["card"] = CARD
    oid = repo.objects.add_json(rec)
    repo.objects.sync()
    repo.refs.update(name, lambda r: r.versions.update({version: oid}))
