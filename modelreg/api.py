"""``ModelRegistry``: the Python API, kept as the seed project wrote it."""

from __future__ import annotations

import builtins
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from . import cards, checkout, files, lazy, loading, memory, prune, query, remote_config, sync
from . import tensors as tensor_reads
from .errors import InvalidInputError, UnrecognizedFormatWarning, UnsafeModelWarning
from .metaview import MetadataView
from .repo import DEFAULT_CHECKOUT_DIR, Record, Repository, find_root
from .views import (
    auto_gc_warning,
    card_text,
    format_warning,
    summary_table,
    unsafe_warning,
    version_view,
)
from .words import plural


class ModelRegistry:
    """A registry of model files, opened (or created) at ``storage_path``.

    ``storage_path`` is either the checkout tree (``"./models"``, as the seed used it) or the
    registry root (``"."``). The registry is found by walking up from it the way Git finds
    ``.git``. When there is none, one is created: beside a folder named ``models`` (so
    ``ModelRegistry("./models")`` makes ``./.modelreg``), else in ``storage_path`` itself.
    Checkouts go to ``storage_path``, or to ``<root>/models`` when it is the root.

    ``metadata_file``, when given, is a YAML view of the whole registry, written when the
    instance is created, after each change it makes (within a second, for registers in quick
    succession; ``flush()`` forces it) and at exit. The truth stays in ``.modelreg/``.
    """

    def __init__(
        self,
        storage_path: str | os.PathLike[str] = "./models",
        metadata_file: str | os.PathLike[str] | None = None,
    ) -> None:
        storage = Path(storage_path).absolute()
        start = storage
        while not start.exists() and start != start.parent:
            start = start.parent
        root = find_root(start)
        if root is None:
            root = storage.parent if storage.name == DEFAULT_CHECKOUT_DIR else storage
            self.repo, _ = Repository.init(root)
        else:
            self.repo = Repository(root)
        self.checkout_root = (
            self.repo.checkout_root if storage.resolve() == self.repo.root else storage
        )
        self.metadata_file = Path(metadata_file).absolute() if metadata_file else None
        self._view = (
            MetadataView(self.repo, self.metadata_file, self.checkout_root)
            if self.metadata_file
            else None
        )
        self._write_metadata_file()

    @property
    def root(self) -> Path:
        return self.repo.root

    def register(
        self,
        name: str,
        model_path: str | os.PathLike[str] | None = None,
        framework: str | None = None,
        metrics: dict[str, Any] | None = None,
        description: str | None = None,
        dataset: str | None = None,
        architecture: str | None = None,
        input_shape: list[int] | tuple[int, ...] | None = None,
        version: str | None = None,
        tags: list[str] | tuple[str, ...] = (),
        parent: str | None = None,
        progress: files.Progress | None = None,
        params: dict[str, Any] | None = None,
        inherit: bool = True,
        *,
        model: Any = None,
        card: str | os.PathLike[str] | None = None,
        card_text: str | None = None,
    ) -> dict[str, Any]:
        """Store a file or folder (``model_path``), or a model in memory (``model=``: an
        ``nn.Module`` or a state dict, stored as safetensors, see memory.py), as the next
        version of ``name``; returns its info.

        Unless ``inherit=False``, framework, dataset, architecture, input_shape and params not
        given here are taken from the parent version (by default the family's latest).
        ``card`` (a Markdown file) or ``card_text`` is the version's model card; its front
        matter fills fields not given (cards.py)."""
        if (model_path is None) == (model is None):
            raise InvalidInputError(
                "give either model_path or model, not both or neither",
                hint="model_path= for a file or folder, model= for a module or state dict",
            )
        if card is not None and card_text is not None:
            raise InvalidInputError("give card or card_text, not both")
        fields: dict[str, Any] = {
            "version": version,
            "tags": tags,
            "parent": parent,
            "progress": progress,
            "inherit": inherit,
            "card": cards.read(card) if card is not None else card_text,
            "params": params,
            "framework": framework,
            "metrics": metrics,
            "description": description,
            "dataset": dataset,
            "architecture": architecture,
            "input_shape": input_shape,
        }
        if model_path is not None:
            rec = self.repo.register(name, Path(model_path), **fields)
        else:
            with memory.staged(self.repo.dir, model) as (path, source, found):
                fields["architecture"] = architecture or found
                rec = self.repo.register(name, path, source=source, **fields)
        self._write_metadata_file(soon=True)
        warning = unsafe_warning(rec)
        if warning:
            warnings.warn(warning, UnsafeModelWarning, stacklevel=2)
        unknown = format_warning(rec)
        if unknown:
            warnings.warn(unknown, UnrecognizedFormatWarning, stacklevel=2)
        repack_failed = auto_gc_warning(self.repo)
        if repack_failed:
            warnings.warn(repack_failed, RuntimeWarning, stacklevel=2)
        return self._info(rec)

    def get(self, name: str, version: str = "latest") -> dict[str, Any]:
        """Info of one version, with ``file_path`` materialized (and repaired) on disk."""
        rec = self.repo.lookup(f"{name}@{version}")
        result = checkout.materialize(self.repo, rec, self.checkout_root)
        prune.enforce_budget(self.repo, result.path, self.checkout_root)
        info = self._info(rec)
        info["file_path"] = str(result.path)
        info["checked_out"] = True
        info["card"] = card_text(self.repo, rec)
        return info

    def load(
        self,
        name: str,
        version: str = "latest",
        *,
        trust: bool = False,
        as_module: bool | None = None,
        tensors: Sequence[str] | None = None,
    ) -> Any:
        """The version's weights: a ``torch.nn.Module`` (in eval mode) when ``architecture``
        names a torchvision builder such as ``torchvision.models.resnet18``, else the state
        dict. The bytes are read from the store (no checkout is written) and go through
        ``torch.load(weights_only=True)`` or safetensors.

        A file whose pickle modelreg found would run code is refused unless ``trust=True``;
        even then it is only handed to torch's weights-only loader, never executed.

        ``tensors`` (names or glob patterns) returns a dict of just those tensors, reading
        only the chunks that hold them (``open_tensors``).
        """
        rec = self.repo.lookup(f"{name}@{version}")
        loading.check_trust(rec, trust)
        if tensors is not None:
            if as_module:
                raise InvalidInputError(
                    "as_module=True loads every weight; it cannot be combined with tensors=",
                    hint="drop one of them",
                )
            source = lazy.chunk_source(self.repo, rec) or tensor_reads.StoreSource
            return tensor_reads.load_tensors(self.repo, rec, tensors, source)
        state = loading.load_state(self.repo, rec)
        return loading.build_module(rec, state) if loading.wants_module(rec, as_module) else state

    def open_tensors(
        self, name: str, version: str = "latest", *, trust: bool = False
    ) -> tensor_reads.TensorMap:
        """A lazy, read-only mapping of the version's tensors by name: ``keys()`` costs the
        file's tensor table, and each tensor is read (only its chunks) when it is asked for."""
        rec = self.repo.lookup(f"{name}@{version}")
        loading.check_trust(rec, trust)
        source = lazy.chunk_source(self.repo, rec) or tensor_reads.StoreSource
        return tensor_reads.open_tensors(self.repo, rec, source)

    def list(
        self,
        name: str | None = None,
        where: str | Sequence[str] | None = None,
        sort: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Info of every version (of one family, or of all). ``file_path`` says where the
        version is checked out; call ``get`` to make sure it is there.

        ``where``: an expression such as ``"accuracy>=0.9"``, or a list of them, all of which
        must hold; ``sort``: a field, ``"-accuracy"`` for largest first; ``limit``: at most
        that many. The rules are those of ``modelreg list --where`` (docs/cli.md)."""
        records = self.repo.versions(name)
        if where is not None or sort is not None or limit is not None:
            records = iter(query.select(records, where, sort, limit))
        return [self._info(rec) for rec in records]

    def list_families(self) -> builtins.list[str]:
        return self.repo.families()

    def tag(
        self,
        name: str,
        version: str,
        tag: str,
        message: str | None = None,
        force: bool = False,
    ) -> str:
        """Point ``tag`` at ``name@version``; recorded in the tag's history. A protected tag
        moves only with ``force``."""
        moved = self.repo.tag(f"{name}@{version}", tag, message=message, force=force)
        self._write_metadata_file()
        return moved

    def protect_tag(self, name: str, tag: str, protect: bool = True) -> bool:
        """Make later moves of ``tag`` need ``force`` (``protect=False`` undoes it)."""
        return self.repo.protect(name, tag, on=protect)

    def tag_history(self, name: str, tag: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every create, move, delete, protect and unprotect of ``name``'s tags (or of one
        tag), oldest first: dicts with id, tag, op, from, to, by, host, at, message, forced."""
        return self.repo.tag_history(name, tag)

    def remove(self, name: str, version: str, force: bool = False) -> str:
        removed, _tags = self.repo.remove(f"{name}@{version}", force=force)
        checkout.discard(self.repo, name, removed, self.checkout_root)
        self._write_metadata_file()
        return removed

    # --- team registries ---------------------------------------------------------------
    def add_remote(self, name: str, url: str, endpoint_url: str | None = None) -> None:
        """Remember a remote: ``s3://bucket/prefix`` or a folder path."""
        remote_config.add(self.repo, name, url, endpoint_url)

    def push(
        self,
        remote: str | None = None,
        names: Sequence[str] = (),
        progress: files.Progress | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """Send ``names`` (``NAME`` or ``NAME@REF``; default: everything) and the objects the
        remote lacks. Raises RemoteMovedError when the remote took a version number first, or
        a tag moved on both sides; ``force=True`` publishes the local tag values (and
        replaces the remote's copy of a version this registry pushed), as ``push --force``."""
        return sync.push(self.repo, remote, names, progress, force=force).__dict__

    def pull(
        self,
        remote: str | None = None,
        names: Sequence[str] = (),
        progress: files.Progress | None = None,
        full: bool = False,
    ) -> dict[str, Any]:
        """Fetch families (default: all) and the objects this registry lacks; from the remote
        of a lazy clone, only refs, records and manifests unless ``full``."""
        report = sync.pull(self.repo, remote, names, progress, full=full).__dict__
        self._write_metadata_file()
        return report

    @classmethod
    def clone(
        cls,
        url: str,
        directory: str | os.PathLike[str],
        endpoint_url: str | None = None,
        progress: files.Progress | None = None,
        full: bool = False,
    ) -> ModelRegistry:
        """A new registry in ``directory`` from the remote at ``url``: lazy (refs, records
        and manifests; each version's data when it is first read) unless ``full``."""
        options = {"endpoint_url": endpoint_url} if endpoint_url else None
        repo, _report = sync.clone(url, Path(directory), options, progress, full=full)
        return cls(repo.root)

    def fetch(self, specs: Sequence[str], progress: files.Progress | None = None) -> dict[str, Any]:
        """Bring the data of versions (``NAME@REF``) into this registry ahead of time, for
        work offline (a lazy clone otherwise fetches it when a version is first read)."""
        records = [self.repo.lookup(spec) for spec in specs]
        return lazy.ensure(self.repo, records, progress, into_cache=False).__dict__

    def print_summary(self, file: IO[str] | None = None) -> None:
        out = file or sys.stdout
        rows = self.list()
        if not rows:
            print(f"Registry at {self.root}: no models yet.", file=out)
            return
        families = self.list_families()
        counts = f"{plural(len(families), 'family')}, {plural(len(rows), 'version')}"
        print(f"Registry at {self.root}: {counts}", file=out)
        print(summary_table(rows), file=out)

    def _info(self, rec: Record) -> dict[str, Any]:
        return version_view(self.repo, rec, self.checkout_root)

    def flush(self) -> None:
        """Write ``metadata_file`` now if a register has not yet (see the class docstring)."""
        if self._view is not None:
            self._view.flush(only_if_dirty=True)

    def _write_metadata_file(self, soon: bool = False) -> None:
        if self._view is not None:
            self._view.changed(soon)
