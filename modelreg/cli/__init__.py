"""The ``modelreg`` command line."""

from . import checkouts, interop, remote, store, versions  # noqa: F401  (each registers its commands)
from ._base import cli, main

__all__ = ["cli", "main"]
