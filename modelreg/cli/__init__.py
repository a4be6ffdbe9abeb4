"""The ``modelreg`` command line."""

from . import checkouts, importing, remote, store, versions  # noqa: F401  (each registers its commands)
from ._base import cli, main

__all__ = ["cli", "main"]
