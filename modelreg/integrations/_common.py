"""What both training callbacks share: turning a run's numbers into metrics and params,
registering the model from memory, and moving the ``best`` tag."""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from typing import Any

from ..api import ModelRegistry
from ..errors import InvalidInputError
from ..metadata import KEY_MAX

MODES = ("min", "max")


def as_number(value: Any) -> float | int | None:
    """A logged value as a finite number (a 0-d tensor or numpy scalar too); None else."""
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def as_param(value: Any) -> str | int | float | bool | None:
    """A hyper-parameter as a param: numbers, text and bools as they are, anything else
    (lists, mappings, objects) as JSON text; None and non-finite numbers are left out."""
    if value is None:
        return None
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def numbers(logged: Mapping[str, Any], skip: tuple[str, ...] = ()) -> dict[str, float | int]:
    out = {}
    for key, value in logged.items():
        number = as_number(value)
        if number is not None and key not in skip and 0 < len(str(key)) <= KEY_MAX:
            out[str(key)] = number
    return out


def params(hparams: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in hparams.items():
        param = as_param(value)
        if param is not None and 0 < len(str(key)) <= KEY_MAX:
            out[str(key)] = param
    return out


class Registrar:
    """Registers versions of ``name`` for a callback and keeps ``tag`` on the best one."""

    def __init__(
        self,
        name: str,
        registry: ModelRegistry | str | os.PathLike[str],
        monitor: str | None,
        mode: str,
        tag: str | None,
        every_n_epochs: int,
    ) -> None:
        if mode not in MODES:
            raise InvalidInputError(f"mode must be 'min' or 'max', not {mode!r}")
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int):
            raise InvalidInputError("every_n_epochs must be a whole number of epochs")
        if every_n_epochs < 1:
            raise InvalidInputError(f"every_n_epochs must be 1 or more, not {every_n_epochs}")
        self.name = name
        self.monitor = monitor
        self.mode = mode
        self.tag = tag
        self.every_n_epochs = every_n_epochs
        self._registry = registry
        self._warned = False
        self.registered: list[str] = []  # 'NAME@vN' of each version this run made
        self.next_epoch = float(every_n_epochs)  # for callbacks that see fractional epochs

    @property
    def registry(self) -> ModelRegistry:
        if not isinstance(self._registry, ModelRegistry):
            self._registry = ModelRegistry(self._registry)
        return self._registry

    def register(self, model: Any, **fields: Any) -> dict[str, Any]:
        info = self.registry.register(self.name, model=model, **fields)
        self.registered.append(f"{self.name}@{info['version']}")
        self._move_tag(info)
        return info

    def _better(self, new: float, old: float) -> bool:
        return new < old if self.mode == "min" else new > old

    def _move_tag(self, info: dict[str, Any]) -> None:
        """Tag the new version when its monitored metric beats the one the tag is on (in any
        run: the tag means the family's best) or the tag is on none."""
        if self.monitor is None or self.tag is None:
            return
        value = (info.get("metrics") or {}).get(self.monitor)
        if value is None:
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"monitor {self.monitor!r} is not among the logged metrics "
                    f"({', '.join(sorted(info.get('metrics') or {})) or 'none'}); "
                    f"tag {self.tag!r} is not moved",
                    UserWarning,
                    stacklevel=2,
                )
            return
        repo = self.registry.repo
        current = repo.family(self.name).tags.get(self.tag)
        if current is not None:
            held = (repo.lookup(f"{self.name}@{current}").get("metrics") or {}).get(self.monitor)
            if isinstance(held, (int, float)) and not self._better(value, held):
                return
        self.registry.tag(self.name, info["version"], self.tag)


class CallbackArguments:
    """The constructor both callbacks share (first in their bases: it calls the framework's
    callback constructor, which takes no arguments)."""

    def __init__(
        self,
        name: str,
        registry: ModelRegistry | str | os.PathLike[str] = ".",
        monitor: str | None = None,
        mode: str = "min",
        tag: str | None = "best",
        every_n_epochs: int = 1,
    ) -> None:
        super().__init__()
        self.registrar = Registrar(name, registry, monitor, mode, tag, every_n_epochs)

    @property
    def registered(self) -> list[str]:
        """'NAME@vN' of each version this callback registered."""
        return self.registrar.registered
