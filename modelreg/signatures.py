"""Signatures of versions in the OpenSSF model-signing format, kept beside the versions.

A signature is a Sigstore bundle holding a DSSE envelope whose payload is an in-toto
statement listing every file of the model with its sha256. It arrives after the version
exists and versions are immutable, so it is not part of the record::

    .modelreg/
      signatures/<name>.json   {"format": 1, "versions": {"v2": [entry, ...]}}
      objects/...              each bundle, an object like any other (pushed and pulled)

An entry is ``{"bundle": <object id>, "signer": "key:<sha256 of the PEM public key>",
"root": <the version's root>, "signed_at": <UTC>}``, one per signer of a version. It counts
for a version only while ``root`` is that version's root: a number that came to name other
content (pull renumbers unpublished versions) is not taken for signed. The file is written
whole, atomically, under ``locks/signatures/<name>.lock``.

This module reads bundles with the standard library only (what the statement claims, and
whether the bytes modelreg rebuilds match it: ``fsck`` needs no key and no extra package);
checking the signature itself against a key is ``modelsign.py``'s work.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _fs, lazy, names
from .errors import MalformedObjectError, ModelregError
from .export import sha256_of, version_files
from .hashing import is_oid
from .repo import Record, Repository, lock_timeout

# What model_signing leaves out of a folder by default (its --ignore-git-paths), so that its
# verifier accepts an exported folder as it is.
GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
MAX_BUNDLE = 16 << 20
MAX_INDEX = 64 << 20
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


def signed_path(rel: str) -> bool:
    """Whether model_signing's default hashing covers ``rel``."""
    return rel.split("/", 1)[0] not in GIT_PATHS


def digests(repo: Repository, rec: Record) -> dict[str, str]:
    """relative path -> sha256 of every file a signature covers, from the bytes modelreg
    rebuilds (each chunk verified, each file checked against its manifest)."""
    return {
        rel: sha256_of(repo, rel, entry)
        for rel, entry in sorted(version_files(repo, rec).items())
        if signed_path(rel)
    }


@dataclass
class Statement:
    resources: dict[str, str]  # path -> sha256
    signer: str
    model_name: str


def _bad(why: str) -> MalformedObjectError:
    return MalformedObjectError(f"not a model signature: {why}")


def read_statement(bundle: bytes) -> Statement:
    """What a bundle claims, read without checking its signature: the files and sha256s of
    its in-toto statement, and who it says signed it."""
    try:
        parsed = json.loads(bundle)
        envelope = parsed["dsseEnvelope"]
        if envelope.get("payloadType") != PAYLOAD_TYPE:
            raise _bad(f"its payload type is {envelope.get('payloadType')!r:.60}")
        statement = json.loads(base64.b64decode(envelope["payload"], validate=True))
        if statement.get("_type") != STATEMENT_TYPE:
            raise _bad("its payload is not an in-toto statement")
        resources = {str(r["name"]): str(r["digest"]) for r in statement["predicate"]["resources"]}
        if any(r.get("algorithm") != "sha256" for r in statement["predicate"]["resources"]):
            raise _bad("a file is not hashed with sha256")
        model_name = str(statement["subject"][0]["name"])
        return Statement(resources, signer_of(parsed), model_name)
    except MalformedObjectError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, binascii.Error):
        raise _bad("it is not a Sigstore bundle of an in-toto statement") from None


def signer_of(bundle: dict[str, Any]) -> str:
    """Who a bundle names as its signer: ``key:<hint>`` for a key signature (the sha256 of
    the PEM public key, as model_signing records it). Keyless (Sigstore) bundles will name
    the certificate's identity here."""
    material = bundle.get("verificationMaterial") or {}
    hint = (material.get("publicKey") or {}).get("hint")
    if isinstance(hint, str) and hint:
        return f"key:{hint}"
    if material.get("certificate") or material.get("x509CertificateChain"):
        return "certificate"
    return "unknown"


def short(signer: str) -> str:
    kind, _, rest = signer.partition(":")
    return f"{kind}:{rest[:16]}" if rest else signer


def mismatches(statement: Statement, actual: dict[str, str]) -> list[str]:
    """How the files a statement lists differ from ``actual`` (empty: they match)."""
    out = [f"{rel} is missing" for rel in sorted(set(statement.resources) - set(actual))]
    out += [f"{rel} is not signed" for rel in sorted(set(actual) - set(statement.resources))]
    out += [
        f"{rel} has other bytes"
        for rel in sorted(set(actual) & set(statement.resources))
        if actual[rel] != statement.resources[rel]
    ]
    return out


# --- the per-family index -------------------------------------------------------------------


def _path(repo: Repository, family: str) -> Path:
    return repo.dir / "signatures" / f"{names.check_family(family)}.json"


def parse_index(data: bytes, where: str) -> dict[str, list[dict[str, str]]]:
    """A signatures file's versions, each entry checked; raises MalformedObjectError."""
    try:
        parsed = json.loads(data)
        versions = parsed["versions"]
        out: dict[str, list[dict[str, str]]] = {}
        for version, entries in versions.items():
            names.check_version(version)
            out[version] = [_entry(e) for e in entries]
        return out
    except (ValueError, KeyError, TypeError, AttributeError, ModelregError):
        raise MalformedObjectError(f"{where} is not a modelreg signatures file") from None


def _entry(raw: Any) -> dict[str, str]:
    entry = {k: raw[k] for k in ("bundle", "signer", "root", "signed_at")}
    if not all(isinstance(v, str) for v in entry.values()):
        raise TypeError
    if not (is_oid(entry["bundle"]) and is_oid(entry["root"])):
        raise ValueError
    return entry


def dump_index(versions: dict[str, list[dict[str, str]]]) -> bytes:
    shown = {v: sorted(e, key=lambda x: x["signer"]) for v, e in versions.items() if e}
    return json.dumps({"format": 1, "versions": shown}, sort_keys=True, indent=1).encode()


def read_index(repo: Repository, family: str) -> dict[str, list[dict[str, str]]]:
    path = _path(repo, family)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    return parse_index(data, str(path))


def update(
    repo: Repository,
    family: str,
    change: Callable[[dict[str, list[dict[str, str]]]], None],
) -> None:
    """Apply ``change`` to the family's signatures under its lock; write only if changed."""
    path = _path(repo, family)
    locks = repo.dir / "locks" / "signatures"
    locks.mkdir(parents=True, exist_ok=True)
    what = f"the signatures lock of {family}"
    with _fs.FileLock(locks / f"{family}.lock", what, lock_timeout()):
        versions = read_index(repo, family)
        before = dump_index(versions)
        change(versions)
        after = dump_index(versions)
        if after != before:
            path.parent.mkdir(exist_ok=True)
            _fs.atomic_write(path, after)


def families(repo: Repository) -> list[str]:
    folder = repo.dir / "signatures"
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if names.FAMILY_RE.fullmatch(p.stem))


def of(repo: Repository, rec: Record) -> list[dict[str, str]]:
    """The signatures that count for the version (see the module's docstring)."""
    entries = family_view(repo, rec["name"]).get(rec["version"], [])
    return [e for e in entries if e["root"] == rec["root"]]


_SEEN: dict[Path, tuple[tuple[int, ...], dict[str, list[dict[str, str]]]]] = {}


def family_view(repo: Repository, family: str) -> dict[str, list[dict[str, str]]]:
    """vN -> its entries, for listings (read-only: shared between calls while the file is
    unchanged, so ``log`` of many signed versions parses it once); a damaged file shows as
    no signatures (fsck says what is wrong with it)."""
    path = _path(repo, family)
    try:
        st = path.stat()
    except OSError:
        return {}
    key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    seen = _SEEN.get(path)
    if seen is not None and seen[0] == key:
        return seen[1]
    try:
        versions = parse_index(path.read_bytes(), str(path))
    except (ModelregError, OSError):
        return {}
    _SEEN[path] = (key, versions)
    return versions


def shown(entries: list[dict[str, str]]) -> list[dict[str, str]]:
    """The public view of a version's signatures (``show``, ``list --json``)."""
    return [{"signer": e["signer"], "signed_at": e["signed_at"]} for e in entries]


def add(
    repo: Repository, rec: Record, bundle: bytes, actual: dict[str, str] | None = None
) -> dict[str, str]:
    """Keep ``bundle`` as a signature of the version, replacing one by the same signer. The
    statement must list exactly the version's files and sha256s (``actual``, when the
    caller has them already)."""
    statement = read_statement(bundle)
    wrong = mismatches(statement, digests(repo, rec) if actual is None else actual)
    if wrong:
        raise ModelregError(
            f"the signature does not match {rec['name']}@{rec['version']}: {'; '.join(wrong)}"
        )
    with repo.gc_lock(shared=True):
        oid = repo.objects.add(bundle, loose=True)
        repo.objects.sync()
        entry = {
            "bundle": oid,
            "signer": statement.signer,
            "root": rec["root"],
            "signed_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        }

        def put(versions: dict[str, list[dict[str, str]]]) -> None:
            kept = [e for e in versions.get(rec["version"], []) if e["signer"] != entry["signer"]]
            versions[rec["version"]] = [*kept, entry]

        update(repo, rec["name"], put)
    return entry


def bundle(repo: Repository, entry: dict[str, str]) -> bytes:
    return repo.objects.get(entry["bundle"])


def _live(repo: Repository) -> Iterator[tuple[str, str, list[dict[str, str]]]]:
    """(family, vN, entries) of every signed version that exists: the signatures of a
    removed version name nothing, and gc lets their bundles go."""
    for family in families(repo):
        versions = family_view(repo, family)
        refs = repo.refs.read(family) if versions else None
        for version, entries in sorted(versions.items()):
            if refs is not None and version in refs.versions:
                yield family, version, entries


def all_bundles(repo: Repository) -> Iterator[tuple[str, str]]:
    """('name@vN', bundle id) of every signature of an existing version: what gc keeps and
    fsck checks."""
    for family, version, entries in _live(repo):
        for e in entries:
            yield f"{family}@{version}", e["bundle"]


def check_all(repo: Repository) -> dict[str, str]:
    """'name@vN' -> what is wrong, for every signature whose version's bytes (rebuilt and
    hashed with sha256) do not match it, that was made for other content than the version
    now names, or that cannot be read; and for a signatures file that cannot be read."""
    problems: dict[str, str] = {}
    for family in families(repo):
        try:
            read_index(repo, family)
        except ModelregError as e:
            problems[f"signatures of {family}"] = e.args[0]
    for family, version, entries in _live(repo):
        label = f"{family}@{version}"
        try:
            rec = repo.record(repo.family(family).versions[version])
            stale = [e for e in entries if e["root"] != rec["root"]]
            if stale:
                problems[label] = (
                    f"its signature by {short(stale[0]['signer'])} was made for other content "
                    f"(root {stale[0]['root']}, not {rec['root']})"
                )
            counted = [e for e in entries if e["root"] == rec["root"]]
            if counted and lazy.not_fetched(repo, rec):
                continue  # a lazy clone's version not fetched yet: checked when it comes
            actual = digests(repo, rec) if counted else {}
            for entry in counted:
                wrong = mismatches(read_statement(bundle(repo, entry)), actual)
                if wrong:
                    problems[label] = (
                        f"its bytes do not match the signature by {short(entry['signer'])}: "
                        + "; ".join(wrong)
                    )
        except ModelregError as e:
            problems[label] = f"its signature cannot be checked: {e.args[0]}"
    return problems


def renumbered(repo: Repository, moves: list[tuple[str, str]]) -> None:
    """After pull renumbered unpublished versions ('name@vOLD' -> 'name@vNEW'), move their
    signatures along with them (those whose root is the moved version's)."""
    for old, new in moves:
        family, _, was = old.partition("@")
        now = new.partition("@")[2]
        if was not in family_view(repo, family):
            continue
        root = repo.record(repo.family(family).versions[now])["root"]

        def move(
            versions: dict[str, list[dict[str, str]]],
            was: str = was,
            now: str = now,
            root: str = root,
        ) -> None:
            moving = [e for e in versions.get(was, []) if e["root"] == root]
            versions[was] = [e for e in versions.get(was, []) if e["root"] != root]
            signers = {e["signer"] for e in moving}
            kept = [e for e in versions.get(now, []) if e["signer"] not in signers]
            versions[now] = [*kept, *moving]

        update(repo, family, move)
