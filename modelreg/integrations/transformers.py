"""``RegistryCallback`` for the Hugging Face ``Trainer``: each checkpoint the Trainer saves
(``save_strategy``), at most one per ``every_n_epochs`` epochs, is registered as a version of
``name`` from memory (the model's state dict), with the numbers logged at that step (loss,
``eval_*``) as metrics, the main training arguments as params, and the run's ``epoch`` and
``global_step``; ``tag`` moves to the version with the best ``monitor`` value (``eval_loss``).

    from modelreg.integrations.transformers import RegistryCallback
    trainer = Trainer(..., callbacks=[RegistryCallback("bert", monitor="eval_loss")])
"""

from __future__ import annotations

import math
import warnings
from typing import Any

try:
    from transformers import TrainerCallback
except ImportError:
    raise ImportError(
        "modelreg.integrations.transformers needs transformers: "
        "pip install 'modelreg[transformers]'"
    ) from None

from ._common import CallbackArguments, numbers, params

FRAMEWORK = "transformers"
# The training arguments recorded as params: the hyper-parameters, not paths and switches.
ARGUMENTS = (
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "weight_decay",
    "warmup_steps",
    "warmup_ratio",
    "lr_scheduler_type",
    "optim",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "seed",
    "fp16",
    "bf16",
)
PROGRESS = ("epoch", "step")


class RegistryCallback(CallbackArguments, TrainerCallback):
    """``RegistryCallback(name, registry=".", monitor=None, mode="min", tag="best",
    every_n_epochs=1)``; see the module docstring."""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        strategy = getattr(args.save_strategy, "value", args.save_strategy)
        if strategy == "no":
            warnings.warn(
                "RegistryCallback registers the checkpoints the Trainer saves, and "
                "save_strategy is 'no': nothing will be registered (use 'epoch' or 'steps')",
                UserWarning,
                stacklevel=2,
            )

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """A checkpoint at or past the next ``every_n_epochs`` boundary is registered."""
        epoch = float(state.epoch or 0.0)
        if epoch + 1e-6 < self.registrar.next_epoch or not state.is_world_process_zero:
            return
        n = self.registrar.every_n_epochs
        self.registrar.next_epoch = (math.floor(epoch / n + 1e-6) + 1) * n
        logged: dict[str, Any] = {}
        for entry in state.log_history:
            if entry.get("step") == state.global_step:
                logged.update(entry)
        model = kwargs["model"]
        cls = type(model)
        hyper = {key: getattr(args, key) for key in ARGUMENTS if hasattr(args, key)}
        self.registrar.register(
            model,
            metrics=numbers(logged, skip=PROGRESS) or None,
            params={**params(hyper), "epoch": epoch, "global_step": state.global_step},
            framework=FRAMEWORK,
            architecture=f"transformers.{cls.__name__}"
            if cls.__module__.startswith("transformers.")
            else f"{cls.__module__}.{cls.__qualname__}",
            description=f"epoch {epoch:g}, step {state.global_step}",
        )
