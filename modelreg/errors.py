"""The one error root. Every failure a user can cause is a ModelregError with a hint."""

from __future__ import annotations


class ModelregError(Exception):
    """Base of every error modelreg raises on purpose; ``hint`` says what to do next."""

    hint: str = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message}; {self.hint}" if self.hint else message


class NotARegistryError(ModelregError):
    hint = "run 'modelreg init' first, or cd into a registry"


class InvalidInputError(ModelregError):
    """What the caller gave cannot be stored as it is (empty, wrong type, not a number...)."""


class InvalidNameError(InvalidInputError):
    pass


class NotFoundError(ModelregError):
    pass


class AlreadyExistsError(ModelregError):
    pass


class CorruptObjectError(ModelregError):
    hint = (
        "run 'modelreg fsck' to list damaged objects, and 'modelreg fsck --repair' to restore "
        "them from a remote (or register the same file again)"
    )


class MalformedObjectError(CorruptObjectError):
    """An object whose bytes match its id but whose content is not what its kind must be:
    only something other than modelreg (a hostile remote) makes one."""


class LockTimeoutError(ModelregError):
    pass


class UnsafePathError(ModelregError):
    pass


class UnsafeModelError(ModelregError):
    pass


class UnsafeModelWarning(UserWarning):
    """Registered, but the file's pickle would run code when loaded."""


class UnrecognizedFormatWarning(UserWarning):
    """Registered, but as plain bytes: no file in it is a model format modelreg reads."""


class RemoteError(ModelregError):
    pass


class RemoteMovedError(RemoteError):
    hint = "run 'modelreg pull' first, then push again"


class HookError(ModelregError):
    """A ``pre-*`` hook refused the command, or could not be run."""


class HookWarning(UserWarning):
    """A hook was skipped (not executable) or a ``post-*`` hook failed after the work was done."""
