"""The ``modelreg`` command line."""

from . import checkouts, history, remote, store, ui, versions  # noqa: F401  (each registers its commands)
from ._base import cli, main

__all__ = ["cli", "main"]
