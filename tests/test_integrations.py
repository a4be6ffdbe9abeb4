"""The training callbacks, with real training: tiny models, two epochs, on the CPU."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from modelreg import ModelRegistry
from modelreg.errors import InvalidInputError


def _best(registry: ModelRegistry, name: str, metric: str, mode: str = "min") -> str:
    rows = [r for r in registry.list(name) if metric in r["metrics"]]
    pick = min if mode == "min" else max
    return str(pick(rows, key=lambda r: r["metrics"][metric])["version"])


def _tagged(registry: ModelRegistry, name: str, tag: str) -> str | None:
    return registry.repo.family(name).tags.get(tag)


# --- PyTorch Lightning ---------------------------------------------------------------------


@pytest.fixture
def lightning_run(torch_mod: Any) -> Any:
    pl = pytest.importorskip("lightning.pytorch")
    torch = torch_mod
    from lightning.pytorch.utilities.warnings import PossibleUserWarning

    from modelreg.integrations.lightning import RegistryCallback

    class TinyMLP(pl.LightningModule):
        def __init__(self, lr: float = 0.05, hidden: int = 8) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
            )

        def forward(self, x: Any) -> Any:
            return self.net(x)

        def training_step(self, batch: Any, _i: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self(x), y)
            self.log("train_loss", loss, on_epoch=True, on_step=False)
            return loss

        def validation_step(self, batch: Any, _i: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    def fit(path: Path, epochs: int = 2, **callback: Any) -> tuple[Any, Any]:
        torch.manual_seed(0)
        x = torch.randn(64, 4)
        y = x.sum(dim=1, keepdim=True)
        data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
        model = TinyMLP()
        cb = RegistryCallback("mlp", registry=path, **callback)
        trainer = pl.Trainer(
            max_epochs=epochs,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            callbacks=[cb],
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PossibleUserWarning)  # advice on workers, logging
            trainer.fit(model, data, data)
        return model, cb

    return fit


def test_lightning_registers_each_epoch_with_metrics_params_and_the_best_tag(
    tmp_path: Path, lightning_run: Any, torch_mod: Any
) -> None:
    model, cb = lightning_run(tmp_path, monitor="val_loss")
    registry = ModelRegistry(tmp_path)
    rows = registry.list("mlp")
    assert cb.registered == ["mlp@v1", "mlp@v2"] and [r["version"] for r in rows] == ["v1", "v2"]
    for epoch, row in enumerate(rows):
        assert {"val_loss", "train_loss"} <= set(row["metrics"])
        assert row["params"]["lr"] == 0.05 and row["params"]["hidden"] == 8
        assert row["params"]["epoch"] == epoch and row["params"]["global_step"] == 4 * (epoch + 1)
        assert row["format"] == "safetensors" and row["framework"] == "pytorch-lightning"
        assert row["architecture"].endswith("TinyMLP")
    assert _tagged(registry, "mlp", "best") == _best(registry, "mlp", "val_loss")
    state = registry.load("mlp", "v2")
    assert all(torch_mod.equal(state[k], v) for k, v in model.state_dict().items())


def test_lightning_every_n_epochs_and_a_better_earlier_best_that_stays(
    tmp_path: Path, lightning_run: Any, torch_mod: Any
) -> None:
    registry = ModelRegistry(tmp_path)
    registry.register("mlp", model={"w": torch_mod.zeros(2)}, metrics={"val_loss": -1.0})
    registry.tag("mlp", "v1", "best")
    _model, cb = lightning_run(tmp_path, epochs=2, monitor="val_loss", every_n_epochs=2)
    assert cb.registered == ["mlp@v2"]
    assert registry.list("mlp")[-1]["params"]["epoch"] == 1
    assert _tagged(registry, "mlp", "best") == "v1"  # -1.0 is still the family's best


def test_lightning_max_mode_and_a_monitor_that_is_never_logged(
    tmp_path: Path, lightning_run: Any
) -> None:
    lightning_run(tmp_path / "a", monitor="val_loss", mode="max", tag="worst")
    registry = ModelRegistry(tmp_path / "a")
    assert _tagged(registry, "mlp", "worst") == _best(registry, "mlp", "val_loss", "max")
    with pytest.warns(UserWarning, match="monitor 'val_acc' is not among the logged metrics"):
        lightning_run(tmp_path / "b", monitor="val_acc")
    other = ModelRegistry(tmp_path / "b")
    assert other.root == tmp_path / "b" and other.repo.family("mlp").tags == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"mode": "lowest"}, "mode must be 'min' or 'max'"), ({"every_n_epochs": 0}, "1 or more")],
)
def test_callback_arguments_are_checked_at_once(
    kwargs: dict[str, Any], message: str, torch_mod: Any
) -> None:
    pytest.importorskip("lightning.pytorch")
    from modelreg.integrations.lightning import RegistryCallback

    with pytest.raises(InvalidInputError, match=message):
        RegistryCallback("mlp", **kwargs)


# --- Hugging Face Trainer -------------------------------------------------------------------


def _tiny_bert(transformers: Any) -> Any:
    """A BERT classifier made from a config (nothing downloaded), small enough for seconds."""
    config = transformers.BertConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    return transformers.BertForSequenceClassification(config)


def test_transformers_trainer_registers_each_epoch_checkpoint(
    tmp_path: Path, torch_mod: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    transformers = pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("WANDB_DISABLED", "true")
    torch = torch_mod
    from modelreg.integrations.transformers import RegistryCallback

    torch.manual_seed(0)
    model = _tiny_bert(transformers)
    ids = torch.randint(0, 32, (32, 8))
    rows = [
        {"input_ids": i, "attention_mask": torch.ones(8, dtype=torch.long), "labels": int(i[0] % 2)}
        for i in ids
    ]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=2,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="epoch",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    registry = ModelRegistry(tmp_path / "reg")
    cb = RegistryCallback("bert", registry=registry, monitor="eval_loss")
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=rows, eval_dataset=rows, callbacks=[cb]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    assert cb.registered == ["bert@v1", "bert@v2"]
    versions = registry.list("bert")
    for epoch, row in enumerate(versions, 1):
        assert {"eval_loss", "loss"} <= set(row["metrics"]), row["metrics"]
        assert row["params"]["learning_rate"] == 1e-3
        assert row["params"]["epoch"] == epoch and row["params"]["global_step"] == 4 * epoch
        assert row["architecture"] == "transformers.BertForSequenceClassification"
    assert _tagged(registry, "bert", "best") == _best(registry, "bert", "eval_loss")
    state = registry.load("bert", "v2")
    assert torch.equal(state["classifier.weight"], model.state_dict()["classifier.weight"])


def test_transformers_warns_when_the_trainer_saves_nothing(
    tmp_path: Path, torch_mod: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    transformers = pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from modelreg.integrations.transformers import RegistryCallback

    rows = [{"input_ids": torch_mod.randint(0, 32, (8,)), "labels": 0} for _ in range(4)]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        save_strategy="no",
        max_steps=1,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    cb = RegistryCallback("bert", registry=tmp_path / "reg")
    trainer = transformers.Trainer(
        model=_tiny_bert(transformers),
        args=args,
        train_dataset=rows,
        callbacks=[cb],
    )
    with pytest.warns(UserWarning, match="save_strategy is 'no': nothing will be registered"):
        trainer.train()
    assert cb.registered == []
