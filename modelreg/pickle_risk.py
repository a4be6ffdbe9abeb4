"""How bad an unsafe pickle is: two levels, so a user can tell a saved module from an attack.

``unsafe-classes``: the pickle only names classes (and refers to functions) of torch,
torchvision and a few known packages, as ``torch.save(model)`` does. A weights-only load refuses
it; a full load imports known code and builds objects. ``executes-code``: anything else -- a
callable known to run commands or code, a call of something that is not a class, or a name from
a module modelreg does not know (importing a module runs it). Unknown means unknown, so the
rules err towards the second.
"""

from __future__ import annotations

from .pickle_scan import PickleScan

EXECUTES_CODE, UNSAFE_CLASSES = "executes-code", "unsafe-classes"


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_CODE_MODULES = _names(
    """os posix nt subprocess _posixsubprocess runpy importlib pty shutil socket sys webbrowser
    pickle _pickle pickletools marshal ctypes cffi code codeop commands popen2 multiprocessing
    signal asyncio threading _thread tempfile io _io pathlib glob fileinput urllib urllib2
    http httplib ftplib smtplib telnetlib requests shelve dill joblib cloudpickle types
    operator _operator functools inspect gc timeit trace cProfile profile pdb bdb doctest
    distutils setuptools pip site zipimport pkgutil platform uuid ensurepip venv idlelib
    antigravity this"""
)
_CODE_BUILTINS = _names(
    """eval exec execfile compile getattr setattr delattr __import__ open input breakpoint
    globals locals vars exit quit help reload file apply memoryview type super
    classmethod staticmethod property"""
)
_CODE_TORCH = _names(
    """torch.hub torch.jit torch.ops torch._ops torch._C torch.classes torch.library
    torch.utils.cpp_extension torch.package torch.serialization torch.storage torch.load
    torch.save torch.compile torch._dynamo torch._inductor torch.fx torch.distributed
    torch.multiprocessing torch.utils.data torch.testing torch.cuda torch.backends torch.export
    torch.onnx torchvision.io torchvision.datasets"""
)
_KNOWN_MODULES = _names(
    "torch torchvision torchaudio timm numpy collections copyreg copy_reg builtins __builtin__ "
    "_codecs __main__"
)
_MODEL_PACKAGES = _names("torch torchvision torchaudio timm")
_BUILTIN_TYPES = _names(
    "set frozenset dict list tuple slice range int float complex str bytes bytearray bool object"
)
_HARMLESS_CALLS = _names(
    """copyreg._reconstructor copy_reg._reconstructor collections.defaultdict collections.deque
    numpy.dtype numpy.ndarray numpy.core.multiarray._reconstruct numpy.core.multiarray.scalar
    numpy._core.multiarray._reconstruct numpy._core.multiarray.scalar"""
) | {f"{b}.{t}" for b in ("builtins", "__builtin__") for t in _BUILTIN_TYPES}


def runs_code(name: str, called: bool) -> bool:
    """Whether loading a pickle that names ``name`` (and calls it, if ``called``) would run
    code beyond building objects of known classes."""
    root, _, rest = name.partition(".")
    if name.startswith("<") or root in _CODE_MODULES or root not in _KNOWN_MODULES:
        return True
    if root in ("builtins", "__builtin__") and rest in _CODE_BUILTINS:
        return True
    if any(name == p or name.startswith(p + ".") for p in _CODE_TORCH):
        return True
    if not called or name in _HARMLESS_CALLS:
        return False
    return not (root in _MODEL_PACKAGES and name.rsplit(".", 1)[-1][:1].isupper())


def code_globals(result: PickleScan) -> list[str]:
    """The unsafe globals that would run code (see ``runs_code``)."""
    return [g for g in result.unsafe_globals if runs_code(g, g in result.called)]


def risk(result: PickleScan) -> str | None:
    if result.safe:
        return None
    if result.calls_computed or code_globals(result):
        return EXECUTES_CODE
    return UNSAFE_CLASSES
