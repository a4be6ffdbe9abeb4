"""The ``modelreg`` command line."""

from . import (  # noqa: F401  (each registers its commands)
    cache,
    checkouts,
    fetching,
    history,
    importing,
    interop,
    remote,
    store,
    ui,
    versions,
)
from ._base import cli, main

__all__ = ["cli", "main"]
