"""Training-loop callbacks that register checkpoints as they are made.

``modelreg.integrations.lightning.RegistryCallback`` (PyTorch Lightning) and
``modelreg.integrations.transformers.RegistryCallback`` (Hugging Face ``Trainer``). Each module
imports its framework; this package imports neither.
"""
