"""modelreg: a Git-style, content-addressed registry for model files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ModelregError

if TYPE_CHECKING:
    from .api import ModelRegistry

__version__ = "0.1.0"
__all__ = ["ModelRegistry", "ModelregError", "__version__"]


def __getattr__(name: str) -> Any:
    """``ModelRegistry`` on first use: the command line starts without the API's imports
    (remotes, loading), which only the Python API needs."""
    if name == "ModelRegistry":
        from .api import ModelRegistry

        return ModelRegistry
    raise AttributeError(f"module 'modelreg' has no attribute {name!r}")
