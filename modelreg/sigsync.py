"""Signatures on a remote: ``signatures/<name>.json`` beside the refs, the bundles among the
objects.

Push sends the bundles with the other objects, then, after the family's refs, merges its
entries into the remote's file by compare-and-swap. Pull, after the refs, fetches the
remote's file, keeps the entries whose root is the local version's root, fetches their
bundles (each checked against its id and read as a model signature; the signer is taken
from the bundle, never from the file) and merges them in. Merging is a union: an entry
replaces only one by the same signer for the same content. Nothing here proves a signature:
``verify`` does, with a public key.
"""

from __future__ import annotations

from . import signatures, wire
from .errors import MalformedObjectError, ModelregError, RemoteMovedError
from .refs import FamilyRefs
from .remotes import Remote
from .remotes.base import signatures_key
from .remotes.packed import RemotePacks
from .repo import Repository
from .tracking import TransferReport

Index = dict[str, list[dict[str, str]]]
CAS_ATTEMPTS = 5


def _current(repo: Repository, refs: FamilyRefs, versions: set[str]) -> Index:
    """The family's entries for ``versions`` that count (their root is the version's)."""
    found: Index = {}
    for version, entries in signatures.family_view(repo, refs.name).items():
        if version in versions and version in refs.versions:
            root = repo.record(refs.versions[version])["root"]
            counted = [e for e in entries if e["root"] == root]
            if counted:
                found[version] = counted
    return found


def bundles(repo: Repository, refs: FamilyRefs, versions: set[str]) -> set[str]:
    """The bundle objects push must send for ``versions``."""
    return {e["bundle"] for entries in _current(repo, refs, versions).values() for e in entries}


def union(base: Index, extra: Index) -> Index:
    out = {v: list(entries) for v, entries in base.items()}
    for version, entries in extra.items():
        for e in entries:
            kept = [
                old
                for old in out.get(version, [])
                if (old["signer"], old["root"]) != (e["signer"], e["root"])
            ]
            out[version] = [*kept, e]
    return out


def push_family(remote: Remote, repo: Repository, refs: FamilyRefs, versions: set[str]) -> None:
    mine = _current(repo, refs, versions)
    if not mine:
        return
    key = signatures_key(refs.name)
    for _attempt in range(CAS_ATTEMPTS):
        current = remote.read_side(key)
        theirs = signatures.parse_index(current[0], f"{key} on {remote.url}") if current else {}
        merged = union(theirs, mine)
        if current is not None and signatures.dump_index(merged) == signatures.dump_index(theirs):
            return
        try:
            remote.write_side(key, signatures.dump_index(merged), current[1] if current else None)
            return
        except RemoteMovedError:
            continue
    raise RemoteMovedError(f"the remote kept moving while pushing the signatures of {refs.name}")


def pull_family(
    repo: Repository,
    remote: Remote,
    view: RemotePacks,
    name: str,
    family: str,
    report: TransferReport,
) -> None:
    """Merge the remote's signatures of ``family`` into the local file (the caller holds
    the gc lock shared: the bundles arrive as loose objects)."""
    key = signatures_key(family)
    try:
        current = remote.read_side(key)
        theirs = signatures.parse_index(current[0], f"{key} on remote {name}") if current else {}
    except (MalformedObjectError, ModelregError, OSError) as problem:
        said = " ".join(str(problem).split())
        report.warnings.append(f"{said}; its signatures were not pulled")
        return
    local = repo.refs.read(family)
    if not theirs or local is None:
        return
    wanted: Index = {}
    for version, entries in theirs.items():
        if version not in local.versions:
            continue
        root = repo.record(local.versions[version])["root"]
        for e in entries:
            if e["root"] != root:
                continue
            try:
                if not repo.objects.exists(e["bundle"]):
                    # in the remote's packs (or a loose key on a remote from before packs)
                    got = wire.fetch(
                        repo.objects, remote, view, [e["bundle"]], {}, signatures.MAX_BUNDLE
                    )
                    if got.oversized:
                        raise MalformedObjectError(got.oversized[e["bundle"]])
                    report.objects += got.objects
                    report.bytes += got.bytes
                signer = signatures.read_statement(signatures.bundle(repo, e)).signer
            except ModelregError as err:
                report.warnings.append(
                    f"remote {name}: the signature of {family}@{version} was not pulled: "
                    + " ".join(str(err).split())
                )
                continue
            wanted.setdefault(version, []).append({**e, "signer": signer})
    if wanted:
        repo.objects.sync()
        signatures.update(repo, family, lambda index: _merge_into(index, wanted))


def _merge_into(index: Index, extra: Index) -> None:
    merged = union(index, extra)
    index.clear()
    index.update(merged)
