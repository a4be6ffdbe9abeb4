"""``RegistryCallback`` for PyTorch Lightning: each ``every_n_epochs``-th training epoch
(after its validation) is registered as a version of ``name`` from memory, with the logged
metrics (``trainer.callback_metrics``), the module's (and datamodule's) hyper-parameters and
the run's ``epoch`` and ``global_step`` as params; ``tag`` moves to the version with the best
``monitor`` value.

    from modelreg.integrations.lightning import RegistryCallback
    trainer = L.Trainer(callbacks=[RegistryCallback("mlp", monitor="val_loss")])
"""

from __future__ import annotations

from typing import Any

try:
    import lightning.pytorch as pl
except ImportError:  # the older package name
    try:
        import pytorch_lightning as pl
    except ImportError:
        raise ImportError(
            "modelreg.integrations.lightning needs PyTorch Lightning: "
            "pip install 'modelreg[lightning]'"
        ) from None

from ._common import CallbackArguments, numbers, params

FRAMEWORK = "pytorch-lightning"


class RegistryCallback(CallbackArguments, pl.Callback):
    """``RegistryCallback(name, registry=".", monitor=None, mode="min", tag="best",
    every_n_epochs=1)``; see the module docstring."""

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.registrar.every_n_epochs or not trainer.is_global_zero:
            return
        hparams = dict(getattr(pl_module, "hparams", {}) or {})
        datamodule = getattr(trainer, "datamodule", None)
        hparams = {**dict(getattr(datamodule, "hparams", {}) or {}), **hparams}
        cls = type(pl_module)
        self.registrar.register(
            pl_module,
            metrics=numbers(trainer.callback_metrics) or None,
            params={**params(hparams), "epoch": epoch, "global_step": trainer.global_step},
            framework=FRAMEWORK,
            architecture=f"{cls.__module__}.{cls.__qualname__}",
            description=f"epoch {epoch}, step {trainer.global_step}",
        )
