"""modelreg: a Git-style, content-addressed registry for model files."""

from .api import ModelRegistry
from .errors import ModelregError

__version__ = "0.1.0"
__all__ = ["ModelRegistry", "ModelregError", "__version__"]
