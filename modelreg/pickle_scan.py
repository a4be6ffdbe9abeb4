"""Reading a pickle without running it.

``scan`` walks the opcodes (``pickletools``' table, with the protocol-0 arguments read the
way the C unpickler reads them) and evaluates them on a symbolic stack:
a GLOBAL becomes a ``Global`` record (nothing is imported), a REDUCE a ``Call`` record
(nothing is called). That is enough to list every global the pickle would import, judge them
against an allowlist, and read the tensor table of a torch checkpoint (names, dtypes, shapes,
storage keys) -- with no code from the file ever executed.

The allowlist is the set of globals torch's ``weights_only=True`` loader accepts by default
(torch 2.x): an allowlist, not a blocklist, so anything unknown is unsafe. Which globals are
called is recorded too, so ``pickle_risk`` can tell a saved module from code execution; which
pickles a file holds is ``containers``' business.
"""

from __future__ import annotations

import contextlib
import io
import pickletools
import re
import warnings
from dataclasses import dataclass, field
from typing import IO, Any

_KINDS = ["BFloat16", "Bool", "Byte", "Char", "Double", "Float", "Half", "Int", "Long", "Short"]
_DTYPES = {
    "BFloat16": "bfloat16",
    "Bool": "bool",
    "Byte": "uint8",
    "Char": "int8",
    "Double": "float64",
    "Float": "float32",
    "Half": "float16",
    "Int": "int32",
    "Long": "int64",
    "Short": "int16",
    "ComplexFloat": "complex64",
    "ComplexDouble": "complex128",
}
ITEM_SIZES = {
    "bfloat16": 2,
    "bool": 1,
    "uint8": 1,
    "int8": 1,
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "int32": 4,
    "int64": 8,
    "int16": 2,
    "complex64": 8,
    "complex128": 16,
}
_REBUILD = [
    "_rebuild_parameter",
    "_rebuild_parameter_with_state",
    "_rebuild_qtensor",
    "_rebuild_tensor",
    "_rebuild_tensor_v2",
    "_rebuild_tensor_v3",
    "_rebuild_sparse_tensor",
    "_rebuild_meta_tensor_no_storage",
    "_rebuild_nested_tensor",
    "_rebuild_wrapper_subclass",
    "_rebuild_device_tensor_from_numpy",
    "_rebuild_device_tensor_from_cpu_tensor",
]
_TORCH_DTYPES = [
    "bfloat16",
    "bool",
    "complex128",
    "complex32",
    "complex64",
    "float16",
    "float32",
    "float64",
    "bcomplex32",
    "bits16",
    "bits1x8",
    "bits2x4",
    "bits4x2",
    "bits8",
    "float4_e2m1fn_x2",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e5m2",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
    "qint32",
    "qint8",
    "quint2x4",
    "quint4x2",
    "quint8",
    *(f"int{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64)),
    *(f"uint{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64)),
    "per_channel_affine",
    "per_channel_affine_float_qparams",
    "per_channel_symmetric",
    "per_tensor_affine",
    "per_tensor_symmetric",
]
ALLOWED_GLOBALS = frozenset(
    [
        "_codecs.encode",
        "builtins.bytearray",
        "builtins.complex",
        "builtins.set",
        "collections.Counter",
        "collections.OrderedDict",
        "torch.Size",
        "torch.Tensor",
        "torch.device",
        "torch.nn.parameter.Parameter",
        "torch.serialization._get_layout",
        "torch.storage.TypedStorage",
        "torch.storage.UntypedStorage",
        "torch._tensor._rebuild_from_type_v2",
        *(f"torch._utils.{f}" for f in _REBUILD),
        *(f"torch.{t}" for t in _TORCH_DTYPES),
        *(
            f"torch.{p}{k}Storage"
            for p in ("", "cuda.")
            for k in [*_KINDS, "ComplexDouble", "ComplexFloat"]
        ),
        *(f"torch.{p}{k}Tensor" for p in ("", "cuda.") for k in _KINDS),
        *(
            f"torch.{p}sparse.{k}Tensor"
            for p in ("", "cuda.")
            for k in _KINDS
            if k not in ("Bool",)
        ),
        *(f"torch.Q{k}Storage" for k in ("Int32", "Int8", "UInt2x4", "UInt4x2", "UInt8")),
    ]
)


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickle of a legacy (pre-zip) torch.save file


def is_legacy_torch(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts with the legacy torch magic pickle."""
    try:
        result, _end = scan(head)
    except ScanError:
        return False
    return result.root == LEGACY_MAGIC and not result.globals


@dataclass(frozen=True)
class Global:
    name: str  # "module.qualname"


@dataclass
class Call:
    func: Any
    args: Any
    items: dict[Any, Any] = field(default_factory=dict)
    state: Any = None


@dataclass(frozen=True)
class Persistent:
    pid: Any


class _Mark:
    pass


_MARK = _Mark()


class ScanError(Exception):
    """The bytes are not a well-formed pickle. ``partial`` is what was read before the fault:
    ``pickle.load`` runs each opcode as it reads it, so the globals imported (and the calls
    made) before a malformed tail still count. ``inconclusive``: the scan stopped where a
    loader may go on (an argument line too long to read), so the bytes may well be a pickle."""

    def __init__(
        self, message: str, partial: PickleScan | None = None, inconclusive: bool = False
    ) -> None:
        super().__init__(message)
        self.partial = partial
        self.inconclusive = inconclusive


class Inconclusive(ValueError):
    """Raised by a reader the scan reads through: it cannot tell what a loader would read."""


@dataclass
class PickleScan:
    globals: list[str]
    unsafe_globals: list[str]
    root: Any  # the symbolic object the pickle builds
    called: frozenset[str] = frozenset()  # globals a REDUCE, INST or OBJ would call
    calls_computed: bool = False  # a REDUCE of something that is not a plain global
    saved_module: bool = False  # an object with an nn.Module's state (_modules, _parameters)
    persistent: tuple[Any, ...] = ()  # every persistent id, in order (torch: the storages)

    @property
    def safe(self) -> bool:
        return not self.unsafe_globals and not self.calls_computed


def _pop_mark(stack: list[Any]) -> list[Any]:
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is _MARK:
            items = stack[i + 1 :]
            del stack[i:]
            return items
    raise ScanError("MARK missing")


def _setitems(target: Any, pairs: list[Any]) -> None:
    store = target.items if isinstance(target, Call) else target
    if not isinstance(store, dict):
        return
    for k, v in zip(pairs[::2], pairs[1::2], strict=False):
        with contextlib.suppress(TypeError):  # an unhashable symbolic key is left out
            store[k] = v


_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _global(module: Any, qual: Any) -> Global:
    """A global pickle.load could import; anything that is not a dotted name cannot be."""
    if not (isinstance(module, str) and isinstance(qual, str)):
        raise ScanError("a global named by something other than text")
    if not (_DOTTED.fullmatch(module) and _DOTTED.fullmatch(qual)):
        raise ScanError(f"{module!r} {qual!r} is not an importable name")
    return Global(f"{module}.{qual}")


def _called(func: Any, called: set[str]) -> bool:
    """Record a call of ``func``; False when what is called is not a plain global."""
    if isinstance(func, Global):
        called.add(func.name)
        return True
    return False


# pickletools decodes protocol-0 strings with codecs.escape_decode, which warns about escapes
# Python would not accept in source code; a hostile pickle is full of them, and they mean
# nothing to a scan.
warnings.filterwarnings("ignore", category=DeprecationWarning, module="pickletools")


# --- protocol-0 arguments, read as the C unpickler (_pickle.c) reads them -----------------
#
# pickletools reads INT with int(), so ``I0x10`` or ``I 7`` stops it at the first opcode; the
# C unpickler reads it with strtol(s, &end, 0) (hex, octal, blanks, a sign), falls back to
# int(s, 0), and ends every argument at a NUL byte as well as at the newline. A scan stricter
# than the loader would call a pickle that runs code "not a pickle".

_C_SPACE = b" \t\n\v\f\r"
_HEX = {bytes([c]) for c in b"0123456789abcdef"}
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1


def _c_line(f: IO[bytes]) -> bytes:
    """An argument line; the unpickler wants at least one byte before the newline."""
    line = f.readline()
    if not line.endswith(b"\n"):
        raise ValueError("no newline found when trying to read a protocol-0 argument")
    if len(line) < 2:
        raise ValueError("an empty protocol-0 argument")
    return line


def _c_string(line: bytes) -> bytes:
    """The line as a C string: it ends at the first NUL."""
    return line.split(b"\0", 1)[0]


def _strtol(line: bytes) -> int | None:
    """What strtol(line, &end, 0) reads, when ``end`` lands on the newline or the NUL; None
    when it stops short (the unpickler then tries int(line, 0))."""
    s = _c_string(line)
    i = 0
    while i < len(s) and s[i] in _C_SPACE:
        i += 1
    sign = -1 if s[i : i + 1] == b"-" else 1
    i += s[i : i + 1] in (b"-", b"+")
    base, digits = 10, "0123456789"
    if s[i : i + 2] in (b"0x", b"0X") and s[i + 2 : i + 3].lower() in _HEX:
        base, digits, i = 16, "0123456789abcdef", i + 2
    elif s[i : i + 1] == b"0":
        base, digits = 8, "01234567"
    j = i
    while j < len(s) and chr(s[j]).lower() in digits:
        j += 1
    if j == i:  # no digits: end is the line's start
        return 0 if s == b"" else None
    if j < len(s) and s[j : j + 1] != b"\n":
        return None
    return sign * int(s[i:j], base)


def _read_int(f: IO[bytes]) -> int | bool:
    line = _c_line(f)
    value = _strtol(line)
    if value is None or not _LONG_MIN <= value <= _LONG_MAX:
        return int(_c_string(line), 0)
    if len(line) == 3 and value in (0, 1):
        return bool(value)
    return value


def _read_long(f: IO[bytes]) -> int:
    line = _c_line(f)
    if line[-2:-1] == b"L":  # the unpickler drops an ending L, without requiring it
        line = line[:-2]
    return int(_c_string(line), 0)


def _read_float(f: IO[bytes]) -> float:
    return float(_c_string(_c_line(f)))


def _read_memo_key(f: IO[bytes]) -> int:
    return int(_c_string(_c_line(f)), 10)


def _read_global(f: IO[bytes]) -> str:
    """Module and name lines, as UTF-8 with no escapes; joined by a blank like pickletools."""
    module = _c_line(f)[:-1].decode("utf-8")
    return f"{module} {_c_line(f)[:-1].decode('utf-8')}"


_OPCODES = {op.code: op for op in pickletools.opcodes}
_READERS = {
    "INT": _read_int,
    "LONG": _read_long,
    "FLOAT": _read_float,
    "GET": _read_memo_key,
    "PUT": _read_memo_key,
    "GLOBAL": _read_global,
    "INST": _read_global,
}


def _genops(data: bytes | IO[bytes]) -> Any:
    """``pickletools.genops`` with the readers above."""
    f: IO[bytes] = io.BytesIO(data) if isinstance(data, bytes) else data
    while True:
        pos = f.tell()
        code = f.read(1)
        op = _OPCODES.get(code.decode("latin-1"))
        if op is None:
            raise ValueError("pickle exhausted before seeing STOP" if not code else "bad opcode")
        reader = _READERS.get(op.name) or (op.arg.reader if op.arg is not None else None)
        yield op, (reader(f) if reader is not None else None), pos
        if op.name == "STOP":
            return


def scan(data: bytes | IO[bytes] | io.RawIOBase) -> tuple[PickleScan, int]:
    """Evaluate one pickle symbolically; returns the scan and the offset just past STOP.

    ``data`` may be a file positioned at the pickle's start (offsets then count from the
    file's start): only what the pickle spans is read."""
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    seen: list[str] = []
    called: set[str] = set()
    pids: list[Any] = []
    computed = module_state = False
    end = len(data) if isinstance(data, bytes) else -1
    try:
        for op, raw_arg, pos in _genops(data):  # type: ignore[arg-type]
            arg: Any = raw_arg
            name = op.name
            if name in ("PROTO", "FRAME"):
                continue
            if name == "STOP":
                end = (pos or 0) + 1
                break
            if name in ("GLOBAL", "INST"):
                module, _, qual = str(arg).partition(" ")
                g = _global(module, qual)
                seen.append(g.name)
                if name == "INST":
                    called.add(g.name)
                    stack.append(Call(g, tuple(_pop_mark(stack))))
                else:
                    stack.append(g)
            elif name == "STACK_GLOBAL":
                qual, module = stack.pop(), stack.pop()
                g = _global(module, qual)
                seen.append(g.name)
                stack.append(g)
            elif name == "MARK":
                stack.append(_MARK)
            elif name in ("EMPTY_DICT",):
                stack.append({})
            elif name in ("EMPTY_LIST",):
                stack.append([])
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name in ("EMPTY_SET", "FROZENSET"):
                stack.append(tuple(_pop_mark(stack)) if name == "FROZENSET" else [])
            elif name == "TUPLE":
                stack.append(tuple(_pop_mark(stack)))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                top = tuple(stack[-n:])
                del stack[-n:]
                stack.append(top)
            elif name == "LIST":
                stack.append(_pop_mark(stack))
            elif name == "DICT":
                d: dict[Any, Any] = {}
                _setitems(d, _pop_mark(stack))
                stack.append(d)
            elif name in ("APPEND",):
                value = stack.pop()
                if isinstance(stack[-1], list):
                    stack[-1].append(value)
            elif name in ("APPENDS", "ADDITEMS"):
                items = _pop_mark(stack)
                if isinstance(stack[-1], list):
                    stack[-1].extend(items)
            elif name == "SETITEM":
                v, k = stack.pop(), stack.pop()
                _setitems(stack[-1], [k, v])
            elif name == "SETITEMS":
                pairs = _pop_mark(stack)
                _setitems(stack[-1], pairs)
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[int(arg)] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                stack.append(memo[int(arg)])
            elif name == "REDUCE":
                args, func = stack.pop(), stack.pop()
                computed |= not _called(func, called)
                stack.append(Call(func, args))
            elif name == "NEWOBJ":
                args, cls = stack.pop(), stack.pop()
                computed |= not isinstance(cls, Global)
                stack.append(Call(cls, args))
            elif name == "NEWOBJ_EX":
                _kw, args, cls = stack.pop(), stack.pop(), stack.pop()
                computed |= not isinstance(cls, Global)
                stack.append(Call(cls, args))
            elif name == "OBJ":
                marked = _pop_mark(stack)
                if not marked:
                    raise ScanError("OBJ without a class")
                computed |= not _called(marked[0], called)
                stack.append(Call(marked[0], tuple(marked[1:])))
            elif name == "BUILD":
                state = stack.pop()
                if isinstance(state, tuple) and state:
                    state = state[0]
                if isinstance(state, dict) and {"_modules", "_parameters"} <= set(state):
                    module_state = True
                if isinstance(stack[-1], Call):
                    stack[-1].state = state
            elif name in ("BINPERSID", "PERSID"):
                stack.append(Persistent(stack.pop() if name == "BINPERSID" else arg))
                pids.append(stack[-1].pid)
            elif name == "POP":
                stack.pop()
            elif name == "POP_MARK":
                _pop_mark(stack)
            elif name == "DUP":
                stack.append(stack[-1])
            elif name in ("NONE",):
                stack.append(None)
            elif name in ("NEWTRUE", "NEWFALSE"):
                stack.append(name == "NEWTRUE")
            elif name in ("EXT1", "EXT2", "EXT4"):
                seen.append(f"<extension {arg}>")
                stack.append(Global(f"<extension {arg}>"))
            elif op.stack_after and not op.stack_before:
                stack.append(arg)  # a literal: ints, floats, strings, bytes
            else:
                raise ScanError(f"unhandled opcode {name}")
        else:
            raise ScanError("the pickle has no STOP")
    except (ValueError, IndexError, KeyError, TypeError, ScanError) as e:
        partial = _result(seen, called, computed, module_state, stack[-1] if stack else None)
        partial.persistent = tuple(pids)
        raise ScanError(str(e), partial, isinstance(e, Inconclusive)) from None
    root = stack[-1] if stack else None
    result = _result(seen, called, computed, module_state, root)
    result.persistent = tuple(pids)
    return result, end


def _result(
    seen: list[str], called: set[str], computed: bool, module_state: bool, root: Any
) -> PickleScan:
    unsafe = sorted({g for g in seen if g not in ALLOWED_GLOBALS})
    return PickleScan(sorted(set(seen)), unsafe, root, frozenset(called), computed, module_state)


@dataclass(frozen=True)
class TensorRef:
    name: str
    dtype: str
    shape: tuple[int, ...]
    storage: str  # the storage key: the zip member "<archive>/data/<key>"
    numel: int
    offset: int = 0  # elements into the storage
    stride: tuple[int, ...] | None = None  # None: not read from the pickle


def legacy_storage_sizes(main: PickleScan) -> dict[str, int]:
    """Storage key -> bytes per element, from the persistent ids of a legacy torch pickle
    (``("storage", <type>, key, location, numel)``); a storage of unknown type is left out."""
    sizes: dict[str, int] = {}
    for pid in main.persistent:
        if isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage":
            size = ITEM_SIZES.get(_storage_dtype(pid[1]))
            if size:
                sizes[str(pid[2])] = size
    return sizes


def _storage_dtype(storage_type: Any) -> str:
    if isinstance(storage_type, Global):
        kind = storage_type.name.rsplit(".", 1)[-1]
        if kind.endswith("Storage"):
            return _DTYPES.get(kind[: -len("Storage")], kind)
        return storage_type.name.replace("torch.", "")
    return "unknown"


def _as_tensor(name: str, obj: Any) -> TensorRef | None:
    if not isinstance(obj, Call) or not isinstance(obj.func, Global):
        return None
    fname = obj.func.name
    args = obj.args if isinstance(obj.args, tuple) else ()
    if fname == "torch._utils._rebuild_parameter" and args:
        return _as_tensor(name, args[0])
    if fname not in ("torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor") or (
        len(args) < 3 or not isinstance(args[0], Persistent)
    ):
        return None
    pid = args[0].pid
    if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
        return None
    shape = tuple(int(d) for d in args[2]) if isinstance(args[2], tuple) else ()
    numel = 1
    for d in shape:
        numel *= d
    dtype = _storage_dtype(pid[1])
    if len(args) > 6 and isinstance(args[6], Global):  # v3 carries the dtype itself
        dtype = args[6].name.replace("torch.", "")
    offset = args[1] if isinstance(args[1], int) and not isinstance(args[1], bool) else 0
    stride = (
        args[3]
        if len(args) > 3
        and isinstance(args[3], tuple)
        and len(args[3]) == len(shape)
        and all(type(d) is int for d in args[3])
        else None
    )
    return TensorRef(name, dtype, shape, str(pid[2]), numel, offset, stride)


def tensors(root: Any, prefix: str = "", depth: int = 0) -> list[TensorRef]:
    """Every tensor reachable through (ordered) dicts, named by its dotted key path."""
    found: list[TensorRef] = []
    if depth > 8:
        return found
    items = root.items if isinstance(root, Call) else root
    if not isinstance(items, dict):
        return found
    for key, value in items.items():
        name = f"{prefix}{key}"
        t = _as_tensor(name, value)
        if t is not None:
            found.append(t)
        else:
            found.extend(tensors(value, f"{name}.", depth + 1))
    return found
