"""A registry on disk: an object store and a ref store under ``.modelreg/``.

::

    project/
      .modelreg/
        config.yaml          format version, hash, chunking parameters, checkout dir, remotes
        objects/ab/cdef...   loose objects: version records, objects of older registries
        objects/pack/        pack-<name>.pack + .idx: chunks, manifests, trees (packs.py)
        refs/<name>.yaml     vN -> version record id, tags, removed numbers, tag history
        refs/<name>.journal  changes since that snapshot, one line each (journal.py)
        index/               the version index, a cache of refs + records (index.py)
        locks/               <name>.lock per family, gc.lock for the whole store
        cache/checkouts/     stat cache of materialized files (safe to delete)
      models/<name>/<vN>/    checkout tree, materialized on demand
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from . import (
    _fs,
    cards,
    files,
    formats,
    gitinfo,
    hooks,
    metadata,
    modelinfo,
    names,
    repack,
    taghistory,
)
from .cache import CachedObjectStore
from .chunking import ChunkParams
from .errors import (
    AlreadyExistsError,
    CorruptObjectError,
    InvalidInputError,
    InvalidNameError,
    ModelregError,
    NotARegistryError,
    NotFoundError,
)
from .hashing import ALGORITHM
from .index import FamilyIndex, IndexDamaged, VersionIndex
from .model import VersionRecord, named
from .objects import ObjectStore
from .refs import FamilyRefs, yaml_dump, yaml_load
from .refstore import RefStore
from .schema import public_fields

DIRNAME = files.STORE_DIRNAME
FORMAT = 3  # 2: objects may be packed; 3: refs may have a journal. An older registry opens
READABLE = (1, 2, 3)  # as it is and is upgraded by the first pack (2) or journal line (3).
PACKED, JOURNALED = 2, 3
COMPRESS_AT = ("gc", "register")
DEFAULT_CHECKOUT_DIR = "models"
AUTO_LOOSE = 256  # like git's gc.auto, but version records are the only new loose objects
AUTO_PACKS = 16
Record = dict[str, Any]
T = TypeVar("T")


def find_root(start: Path) -> Path | None:
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / DIRNAME / "config.yaml").is_file():
            return folder
    return None


def lock_timeout() -> float:
    raw = os.environ.get("MODELREG_LOCK_TIMEOUT", "60")
    try:
        return float(raw)
    except ValueError:
        raise ModelregError(
            f"MODELREG_LOCK_TIMEOUT={raw!r} is not a number", hint="set it to seconds, e.g. 60"
        ) from None


class Repository:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / DIRNAME
        try:
            config = yaml_load((self.dir / "config.yaml").read_bytes())
        except FileNotFoundError:
            raise NotARegistryError(f"{root} is not a modelreg registry") from None
        if not isinstance(config, dict) or config.get("format") not in READABLE:
            raise ModelregError(
                f"{self.dir / 'config.yaml'} is damaged or from a newer modelreg",
                hint="upgrade modelreg, or restore the file",
            )
        self.config: dict[str, Any] = config
        self.chunk_params = ChunkParams.from_config(config.get("chunking") or {})
        self.objects: ObjectStore = CachedObjectStore(  # reads what it lacks from the shared cache
            self.dir / "objects",
            compress=self.compress_at() == "register",
            before_pack=self._upgrade_format if config["format"] < PACKED else None,
        )
        self.refs = RefStore(self.dir / "refs", self.dir / "locks", lock_timeout())
        self.index = VersionIndex(self.dir / "index", self.refs, self.objects)
        self.refs.on_publish = self.index.published
        self.refs.view = self.index.view
        if config["format"] < JOURNALED:
            self.refs.before_journal = lambda: self._upgrade_format(JOURNALED)
        self.checkout_root = root / _checkout_dir(config, self.dir / "config.yaml")
        self.gitignored: list[str] = []  # what init added to .gitignore
        self.auto_gc_failure: str | None = None  # why the last write's gc --auto failed

    # --- opening --------------------------------------------------------------------------
    def compress_at(self) -> str:
        raw = self.config.get("compression") or {}
        at = raw.get("at", "gc") if isinstance(raw, dict) else raw
        if at not in COMPRESS_AT:
            raise ModelregError(
                f"{self.dir / 'config.yaml'}: compression.at is {at!r}",
                hint=f"set it to one of: {', '.join(COMPRESS_AT)}",
            )
        return str(at)

    def gc_limits(self) -> tuple[int, int]:
        """(loose objects, packs) past which ``gc --auto`` repacks; 0 turns a limit off."""
        raw = self.config.get("gc") or {}
        try:
            return int(raw.get("auto_loose", AUTO_LOOSE)), int(raw.get("auto_packs", AUTO_PACKS))
        except (AttributeError, TypeError, ValueError):
            raise ModelregError(
                f"{self.dir / 'config.yaml'}: gc.auto_loose and gc.auto_packs must be numbers",
                hint="e.g. gc: {auto_loose: 256, auto_packs: 16}",
            ) from None

    def _upgrade_format(self, to: int = PACKED) -> None:
        """Before the first pack of a format-1 registry is published, mark it format 2 (3
        before the first journal line), so an older modelreg refuses it rather than missing
        its packed objects or journaled refs."""
        if self.config["format"] >= to:
            return
        path = self.dir / "config.yaml"
        with self.config_lock():  # as 'remote add' edits it: neither change is lost
            config = yaml_load(path.read_bytes())  # re-read: keep what others changed
            if isinstance(config, dict) and config.get("format", 0) < to:
                config["format"] = to
                _fs.atomic_write(path, yaml_dump(config).encode())
        self.config["format"] = to

    def config_lock(self) -> _fs.FileLock:
        """Held by whoever rewrites config.yaml."""
        return _fs.FileLock(self.dir / "locks" / "config.lock", "the config lock", lock_timeout())
        self.config["format"] = FORMAT

    @classmethod
    def init(cls, root: Path) -> tuple[Repository, bool]:
        """Create a registry at ``root``; returns (repo, created). Re-running is harmless."""
        root = root.resolve()
        if (root / DIRNAME / "config.yaml").is_file():
            return cls(root), False
        if root.exists() and not root.is_dir():
            raise NotARegistryError(f"{root} is not a folder", hint="choose a folder to init")
        directory = root / DIRNAME
        for sub in ("objects", "refs", "locks", "cache"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        config = {
            "format": FORMAT,
            "hash": ALGORITHM,
            "checkout_dir": DEFAULT_CHECKOUT_DIR,
            "chunking": ChunkParams().to_config(),
            "compression": {"at": "gc"},
            "gc": {"auto_loose": AUTO_LOOSE, "auto_packs": AUTO_PACKS},
            "remotes": {},
        }
        (directory / "locks" / "gc.lock").touch()
        _fs.atomic_write(directory / "config.yaml", yaml_dump(config).encode())
        repo = cls(root)
        repo.gitignored = repo.ignore_in_git()
        return repo, True

    def ignore_in_git(self) -> list[str]:
        """Inside a Git work tree, list the store and the checkout folder in the root's
        ``.gitignore`` (once): model bytes belong in modelreg, not in Git. Returns what it
        added. Git itself is not run (see gitinfo.py for why)."""
        if not any((folder / ".git").exists() for folder in (self.root, *self.root.parents)):
            return []
        path = self.root / ".gitignore"
        try:
            text = path.read_text(encoding="utf-8")
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            text, mode = "", 0o644
        present = {line.strip().strip("/") for line in text.splitlines()}
        wanted = [f"/{DIRNAME}/", f"/{self.checkout_root.relative_to(self.root).as_posix()}/"]
        missing = [entry for entry in wanted if entry.strip("/") not in present]
        if missing:
            lead = "" if not text or text.endswith("\n") else "\n"
            block = "# modelreg: the store and checkouts (the registry's bytes stay out of Git)\n"
            block += "".join(f"{m}\n" for m in missing)
            _fs.atomic_write(path, (text + lead + block).encode(), mode=mode)
        return missing

    @classmethod
    def find(cls, start: Path | None = None) -> Repository:
        here = (start or Path.cwd()).resolve()
        root = find_root(here)
        if root is None:
            raise NotARegistryError(f"no modelreg registry in {here} or any parent folder")
        return cls(root)

    def gc_lock(self, shared: bool) -> _fs.FileLock:
        """Writers hold it shared while they add objects; ``gc`` holds it alone."""
        what = "running writers to finish" if not shared else "a running gc to finish"
        return _fs.FileLock(self.dir / "locks" / "gc.lock", what, self.refs.lock_timeout, shared)

    # --- reading --------------------------------------------------------------------------
    def family(self, name: str) -> FamilyRefs:
        return self.refs.get(name)

    def families(self) -> list[str]:
        found = []
        for name in self.refs.families():
            count = None
            with contextlib.suppress(ModelregError, IndexDamaged), self.index.probe(name) as index:
                count = index.count if index is not None else 0  # the header alone
            if count is not None:
                if count:
                    found.append(name)
                continue
            refs = self.refs.read(name)
            if refs is not None and refs.versions:
                found.append(name)
        return found

    def family_index(self, name: str) -> FamilyIndex | None:
        """The family's whole index, or None when it has no refs or the index cannot be
        built (a damaged record: the callers then read refs and records and say what is
        wrong, as they did before the index)."""
        try:
            return self.index.load(name)
        except (ModelregError, IndexDamaged):
            return None

    def from_index(self, name: str, use: Callable[[FamilyIndex], T]) -> T | None:
        """``use`` on the family's whole index; when it finds damage the checks at load could
        not see, once more on an index rebuilt from refs and records. None: read those."""
        index = self.family_index(name)
        if index is None:
            return None
        try:
            return use(index)
        except IndexDamaged:
            pass
        try:
            rebuilt = self.index.rebuild(name)
            return use(rebuilt) if rebuilt is not None else None
        except (ModelregError, IndexDamaged):
            return None

    def check_family_exists(self, name: str) -> None:
        """The error for a missing family, without parsing its refs when it exists."""
        if self.refs.key(name) is None:
            self.family(name)

    def record(self, oid: str) -> Record:
        rec = self.objects.get_json(oid)
        if not isinstance(rec, dict) or rec.get("type") != "version":
            raise CorruptObjectError(f"object {oid} is not a version record")
        return rec

    def version_record(self, oid: str) -> VersionRecord:
        """Record ``oid`` typed, checked as pull checks a remote's (for code inside modelreg;
        ``record``, ``lookup`` and ``describe`` give the public dict)."""
        return named(oid, VersionRecord.parse, self.objects.get_json(oid))

    def resolve(self, spec: str, default_ref: str = names.LATEST) -> tuple[FamilyRefs, str]:
        """'NAME@REF' -> (refs of NAME, vN)."""
        name, ref = names.parse_spec(spec, default_ref)
        refs = self.family(name)
        return refs, refs.resolve(ref)

    def lookup(self, spec: str) -> Record:
        """The record of NAME@REF with its tags, through the index when it can answer; a
        version it does not find is confirmed (and the error worded) from the refs."""
        name, ref = names.parse_spec(spec)
        found: tuple[str, Record] | None = None
        try:
            with self.index.probe(name) as index:
                if index is not None:
                    found = index.record_with_id(index.resolve(ref))
        except IndexDamaged:
            found = self.from_index(name, lambda index: index.record_with_id(index.resolve(ref)))
        except ModelregError:
            pass  # not found (confirmed below), or a record the index could not be built from
        if found is None:
            refs, version = self.resolve(spec)
            return self.describe(refs, version)
        oid, rec = found
        try:
            self.record(oid)  # the store's copy must be whole too: fsck and get agree
        except ModelregError as e:
            raise type(e)(f"{name}@{rec['version']}: {e.args[0]}", e.hint) from None
        return rec

    def describe(self, refs: FamilyRefs, version: str) -> Record:
        """A version record with its current tags; errors name the version."""
        try:
            rec = self.record(refs.versions[version])
        except ModelregError as e:
            raise type(e)(f"{refs.name}@{version}: {e.args[0]}", e.hint) from None
        rec["tags"] = refs.tags_of(version)
        if version == refs.latest():
            rec["tags"] = ["latest", *rec["tags"]]
        return rec

    def versions(self, name: str | None = None) -> Iterator[Record]:
        """Every version (of one family, or of all) in the public shape, from the index."""
        if name is not None:
            self.check_family_exists(name)
        for family in [name] if name is not None else self.refs.families():
            views = self.from_index(family, lambda index: list(index.views()))
            if views is not None:
                yield from views
                continue
            refs = self.refs.read(family)
            for version in sorted(refs.versions if refs else (), key=names.version_number):
                assert refs is not None
                yield self.describe(refs, version)

    # --- writing --------------------------------------------------------------------------
    def register(
        self,
        name: str,
        path: Path,
        *,
        version: str | None = None,
        tags: list[str] | tuple[str, ...] = (),
        parent: str | None = None,
        progress: files.Progress | None = None,
        inherit: bool = True,
        card: str | None = None,
        source: str | None = None,
        listing: list[tuple[str, Path]] | None = None,
        **fields: Any,
    ) -> Record:
        """Store ``path`` as a new version. Unless ``inherit`` is False, descriptive fields
        not given (``metadata.INHERITED``) are taken from the parent version. ``card`` is
        the model card's text (its front matter fills fields not given, cards.py);
        ``source`` the file name to record for a file modelreg staged itself (memory.py).
        ``listing`` gives a folder's files already walked and checked (``files.store_tree``)."""
        names.check_family(name)
        if version is not None:
            version = names.check_chosen_version(names.normalize_ref(str(version)))
            self._check_unused(name, version)
        for tag in tags:
            names.check_tag(tag)
        card_bytes = cards.check(card) if card is not None else None
        if card_bytes is not None:
            fields = cards.fill(fields, card_bytes.decode())
        meta = metadata.check_metadata(fields)
        path = Path(path)
        kind = self._source_kind(path, staged=source is not None)
        if parent is not None and "@" not in parent:
            parent = f"{name}@{names.normalize_ref(parent)}"
        where = str(path.absolute()) if source is None else None  # a staged file: no path
        asked = {"name": name, "path": where, "version": version, "tags": list(tags)}
        self.run_hook("pre-register", {**asked, "parent": parent, **meta})
        with self.gc_lock(shared=True), ThreadPoolExecutor(1) as side:
            git = side.submit(gitinfo.describe, self.root)  # a subprocess: overlap it
            parent_name = None
            if parent is not None:
                prefs, pversion = self.resolve(parent)
                parent_name = f"{prefs.name}@{pversion}"
            step = progress or (lambda n: None)
            try:
                if kind == "dir":
                    mine = frozenset({self.dir.resolve(), self.checkout_root.resolve()})
                    root_oid, body = files.store_tree(
                        self.objects,
                        path,
                        self.chunk_params,
                        step,
                        exclude=mine,
                        plan=formats.plan,
                        plan_folder=formats.plan_folder,
                        listing=listing,
                    )
                else:
                    root_oid, body = files.store_file(
                        self.objects, path, self.chunk_params, step, plan=formats.plan
                    )
                card_oid = None
                if card_bytes is not None:
                    self._upgrade_format(JOURNALED)  # a modelreg before cards would gc it away
                    card_oid = self.objects.add(card_bytes)
            except BaseException:
                self.objects.abort()  # nothing of it was visible; drop the unfinished pack
                raise
            durable = side.submit(self.objects.sync)  # the flush waits on the disk, not the GIL
            inspected = self.inspect(kind, body)
            commit, dirty = git.result()
            durable.result()
            base: Record = {
                "type": "version",
                "name": name,
                "kind": kind,
                "root": root_oid,
                "size": body["size"],
                "content_hash": body["hash"],
                "format": body.get("format", "dir"),
                "source": source or path.resolve().name,
                "git_commit": commit,
                "git_dirty": dirty,
                "inspect": inspected,
                "registered_by": taghistory.registered_by(),
            }
            if card_oid is not None:
                base["card"] = card_oid

            def publish(refs: FamilyRefs) -> Record:
                chosen = version or refs.next_version()
                _refuse_taken(refs, chosen)
                latest = refs.latest()
                lineage = parent_name or (f"{name}@{latest}" if latest else None)
                given = meta
                if inherit and lineage is not None:
                    given = metadata.inherit(meta, self._parent_record(lineage, refs))
                record = {
                    **base,
                    **given,
                    "version": chosen,
                    "parent": lineage,
                    "registered_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                }
                oid = self.objects.add_json(record, loose=True)  # one small file, no pack
                self.objects.sync()
                refs.versions[chosen] = oid
                for tag in tags:
                    taghistory.move(refs, tag, chosen)
                return record

            record = self.refs.update(name, publish, cheap=True)
        self.after_write()
        done = self.lookup(f"{name}@{record['version']}")
        self.run_hook("post-register", {**public_fields(done), "path": asked["path"]})
        return done

    def run_hook(self, event: str, details: dict[str, Any]) -> None:
        """Run ``.modelreg/hooks/<event>`` if there is one (hooks.py)."""
        hooks.run(self.root, self.dir, self.config, event, details)

    def after_write(self) -> None:
        """Run ``gc --auto`` when the store passed a limit: packs the loose objects and
        merges small packs. Skipped while another process writes or collects (it runs
        again after the next write)."""
        lock = _fs.FileLock(self.dir / "locks" / "gc.lock", "writers to finish", 0)
        # The version is published already: a repack that fails does not fail the write, but
        # it is said (``auto_gc_failure``), or loose objects would pile up unnoticed.
        self.auto_gc_failure = None
        try:
            repack.auto(self.objects, lock, self.gc_limits())
        except (ModelregError, OSError) as e:
            self.auto_gc_failure = " ".join(str(e).split())

    def _check_unused(self, name: str, version: str) -> None:
        """Refuse a taken version before storing anything (publish checks again, locked)."""
        refs = self.refs.read(name)
        if refs is not None:
            _refuse_taken(refs, version)

    def _source_kind(self, path: Path, staged: bool = False) -> str:
        """'file' or 'dir'; refuses what cannot or must not be registered, before any work.
        A ``staged`` file is one modelreg wrote inside its store to register it."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise NotFoundError(f"no such file or folder: {path}", hint="check the path") from None
        real = path.resolve()
        store = self.dir.resolve()
        if not staged and (real == store or store in real.parents):
            raise InvalidInputError(
                f"{path} is inside the registry's own store {self.dir}",
                hint="register model files, not modelreg's objects",
            )
        if real == self.checkout_root.resolve():
            raise InvalidInputError(
                f"{path} is the checkout folder, which holds every version",
                hint="register a model file or one version's folder",
            )
        if stat.S_ISDIR(st.st_mode):
            return "dir"
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInputError(
                f"{path} is not a regular file (a device, pipe or socket)",
                hint="register a model file or a folder",
            )
        if st.st_size == 0:
            raise InvalidInputError(
                f"{path} is empty", hint="check that the file was written completely"
            )
        return "file"

    def _parent_record(self, spec: str, own: FamilyRefs) -> Record | None:
        """The parent's record; ``own`` is the locked refs of the family being written."""
        pname, _, pversion = spec.partition("@")
        refs = own if pname == own.name else self.refs.read(pname)
        if refs is None or pversion not in refs.versions:
            return None
        return self.record(refs.versions[pversion])

    def inspect(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """What a file (or every file of a folder) holds, read without executing it."""
        if kind == "file":
            return modelinfo.summarize(self.objects, body)
        per_file = {
            rel: modelinfo.summarize(self.objects, self.objects.get_json(e["manifest"]))
            for rel, e in body["entries"].items()
        }
        return modelinfo.combine(per_file)

    def tag(self, spec: str, tag: str, message: str | None = None, force: bool = False) -> str:
        """Point ``tag`` at NAME@REF; recorded in the tag's history. A protected tag moves
        only with ``force``."""
        names.check_tag(tag)
        taghistory.check_message(message)
        name, ref = names.parse_spec(spec)

        def move(refs: FamilyRefs) -> str:
            version = refs.resolve(ref)
            taghistory.move(refs, tag, version, message, force)
            return version

        refs = self.family(name)
        if not refs.versions:
            raise NotFoundError(f"no model named {name!r} in this registry")
        target = refs.resolve(ref)
        taghistory.check_movable(refs, tag, target, force)
        details = {"name": name, "tag": tag, "version": target, "delete": False}
        details["previous"] = refs.tags.get(tag)
        self.run_hook("pre-tag", details)
        version = self.refs.update(name, move, cheap=True)
        self.run_hook("post-tag", {**details, "version": version})
        return version

    def untag(self, name: str, tag: str, message: str | None = None, force: bool = False) -> str:
        names.check_tag(tag)
        taghistory.check_message(message)
        refs = self.family(name)

        def drop(refs: FamilyRefs) -> str:
            if tag not in refs.tags:
                raise NotFoundError(f"{name} has no tag {tag!r}")
            return str(taghistory.move(refs, tag, None, message, force))

        details = {"name": name, "tag": tag, "delete": True, "previous": refs.tags.get(tag)}
        if tag in refs.tags:
            taghistory.check_movable(refs, tag, None, force)
            self.run_hook("pre-tag", {**details, "version": refs.tags[tag]})
        version = self.refs.update(name, drop, cheap=True)
        self.run_hook("post-tag", {**details, "version": version, "previous": version})
        return version

    def protect(self, name: str, tag: str, on: bool = True, message: str | None = None) -> bool:
        """Protect (or unprotect) a tag of NAME; False when it already was (or was not)."""
        names.check_tag(tag)
        taghistory.check_message(message)
        self.check_family_exists(name)
        return self.refs.update(
            name, lambda refs: taghistory.protect(refs, tag, on, message), cheap=True
        )

    def tag_history(self, name: str, tag: str | None = None) -> list[taghistory.Event]:
        """Every tag event of NAME (of one tag), oldest first."""
        if tag is not None:
            names.check_tag(tag)
        events = taghistory.ordered(self.family(name).history)
        return [e for e in events if tag is None or e["tag"] == tag]

    def remove(self, spec: str, force: bool = False) -> tuple[str, list[str]]:
        """Drop one version from the refs; its bytes stay until ``gc``. Returns (vN, tags)."""
        if "@" not in spec:
            raise InvalidNameError(
                f"say which version of {spec!r} to remove", hint=f"e.g. 'modelreg rm {spec}@v1'"
            )
        name, ref = names.parse_spec(spec)
        self.family(name)
        return self.refs.update(name, lambda refs: drop_version(refs, ref, force))


def drop_version(refs: FamilyRefs, ref: str, force: bool) -> tuple[str, list[str]]:
    """Remove the version ``ref`` names from ``refs`` (its number is never reused); with
    ``force``, the tags on it go too. Returns (vN, tags dropped). Local and remote ``rm``."""
    name = refs.name
    version = refs.resolve(ref)
    tagged = refs.tags_of(version)
    if tagged and not force:
        raise ModelregError(
            f"{name}@{version} carries tags {', '.join(tagged)}",
            hint="move or delete the tags first, or pass --force to drop them too",
        )
    for tag in tagged:
        taghistory.move(refs, tag, None, f"{name}@{version} was removed", force=True)
    del refs.versions[version]
    refs.removed.append(version)
    refs.removed_at[version] = dt.datetime.now(dt.timezone.utc).isoformat()
    return version, tagged


def _refuse_taken(refs: FamilyRefs, version: str) -> None:
    if version in refs.versions or version in refs.removed:
        gone = " (removed versions are not reused)" if version in refs.removed else ""
        raise AlreadyExistsError(
            f"{refs.name}@{version} already exists{gone}",
            hint=f"omit the version to get the next one ({refs.next_version()})",
        )


def _checkout_dir(config: dict[str, Any], where: Path) -> str:
    """The checkout folder named in config.yaml: a folder inside the registry, below its root
    (``.`` would make every ``X/vN/`` folder of the project look like a checkout)."""
    raw = config.get("checkout_dir", DEFAULT_CHECKOUT_DIR)
    parts = str(raw).split("/") if isinstance(raw, str) else []
    if not parts or any(p in ("", ".", "..") for p in parts) or parts[0] == DIRNAME:
        raise ModelregError(
            f"checkout_dir {raw!r} in {where} is not a folder inside the registry",
            hint=f"set it to a relative folder such as {DEFAULT_CHECKOUT_DIR}",
        )
    return str(raw)
