"""Signing and verifying with the ``model-signing`` package (OpenSSF model signing), which is
optional (``pip install 'modelreg[signing]'``) and imported only here, only when called.

model_signing's public API hashes a folder on disk. modelreg already has the files' sha256s
from the bytes it rebuilds from its store, so it builds the same manifest from those and
hands it to model_signing's own payload, signer and verifier (the classes its public API
uses, pinned to model-signing 1.x). The result is what ``model_signing sign key`` writes for
the exported folder: ``model_signing verify key DIR --signature FILE --public_key PUB.pem``
accepts it (tests/test_signing.py runs that command).

A signer is any model_signing signer, so Sigstore keyless signing (which needs the network
for an identity token, Fulcio and Rekor) is a new ``signer_*`` function away; the bundle,
its storage and its transfer do not change.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import signatures
from .errors import CorruptObjectError, InvalidInputError, ModelregError, NotFoundError
from .repo import Record, Repository
from .signatures import GIT_PATHS

PASSWORD_ENV = "MODELREG_KEY_PASSWORD"


@contextlib.contextmanager
def _model_signing() -> Iterator[None]:
    try:
        yield
    except ImportError as e:
        raise ModelregError(
            f"signing needs the model-signing package ({e.name or e} is missing)",
            hint="pip install 'modelreg[signing]'",
        ) from None


def key_signer(private_key: Path) -> Any:
    """A model_signing signer for an elliptic-curve private key in PEM (P-256, P-384 or
    P-521), its password taken from MODELREG_KEY_PASSWORD when it is encrypted."""
    with _model_signing():
        from model_signing._signing import sign_ec_key
    password = os.environ.get(PASSWORD_ENV)
    try:
        return sign_ec_key.Signer(Path(private_key), password)
    except FileNotFoundError:
        raise InvalidInputError(f"no such key file: {private_key}", hint="check the path") from None
    except TypeError:
        raise InvalidInputError(
            f"{private_key} is encrypted", hint=f"set {PASSWORD_ENV} to its password"
        ) from None
    except ValueError as e:
        raise InvalidInputError(
            f"{private_key} is not a usable private key ({_first(e)})",
            hint="give a PEM elliptic-curve key (openssl ecparam -name prime256v1 -genkey)",
        ) from None


def _first(e: Exception) -> str:
    return " ".join(str(e).split())[:120] or type(e).__name__


def sign(files: dict[str, str], model_name: str, signer: Any) -> bytes:
    """The Sigstore bundle (JSON bytes) of an in-toto statement of ``files`` (path ->
    sha256), signed by ``signer``."""
    with _model_signing():
        from model_signing import manifest
        from model_signing._hashing import hashing
        from model_signing._signing import signing

    serialization = manifest._FileSerialization(
        "sha256", allow_symlinks=False, ignore_paths=[pathlib.Path(p) for p in GIT_PATHS]
    )
    items = [
        manifest.FileManifestItem(
            path=pathlib.PurePosixPath(rel), digest=hashing.Digest("sha256", bytes.fromhex(sha))
        )
        for rel, sha in sorted(files.items())
    ]
    payload = signing.Payload(manifest.Manifest(model_name, items, serialization))
    signature = signer.sign(payload)
    return str(signature.bundle.to_json()).encode()


def public_key_id(public_key: Path) -> str:
    """``key:<sha256 of the PEM public key>``, the id model_signing puts in a bundle."""
    with _model_signing():
        from cryptography.hazmat.primitives import serialization
    try:
        key = serialization.load_pem_public_key(Path(public_key).read_bytes())
    except FileNotFoundError:
        raise InvalidInputError(f"no such key file: {public_key}", hint="check the path") from None
    except ValueError as e:
        raise InvalidInputError(
            f"{public_key} is not a PEM public key ({_first(e)})",
            hint="give the public key (openssl ec -in PRIVATE.pem -pubout)",
        ) from None
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "key:" + hashlib.sha256(pem).hexdigest()


def verify(bundle: bytes, public_key: Path) -> dict[str, str]:
    """Check the bundle's signature with ``public_key``; return the files (path -> sha256)
    it vouches for. Raises ModelregError when it does not verify."""
    with _model_signing():
        from model_signing._signing import sign_ec_key, sign_sigstore_pb
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle.sig"
        path.write_bytes(bundle)
        try:
            verifier = sign_ec_key.Verifier(Path(public_key))
            manifest = verifier.verify(sign_sigstore_pb.Signature.read(path))
        except FileNotFoundError:
            raise InvalidInputError(
                f"no such key file: {public_key}", hint="check the path"
            ) from None
        except Exception as e:  # cryptography and model_signing raise several kinds
            raise ModelregError(
                f"the signature does not verify with {public_key}: {_first(e)}",
                hint="check that this is the public key of the key that signed it",
            ) from None
    return {rd.identifier: rd.digest.digest_hex for rd in manifest.resource_descriptors()}


def sign_version(repo: Repository, rec: Record, signer: Any) -> dict[str, str]:
    """Sign the version's files (sha256 of the bytes rebuilt from the store) and keep the
    bundle with it; returns its entry (signatures.py)."""
    files = signatures.digests(repo, rec)
    bundle = sign(files, rec["name"], signer)
    return signatures.add(repo, rec, bundle, files)


def verify_version(repo: Repository, rec: Record, public_key: Path) -> tuple[dict[str, str], int]:
    """Check the version's signature by ``public_key``: the signature itself, then every
    file's sha256 against the bytes modelreg rebuilds. Returns (its entry, files checked)."""
    label = f"{rec['name']}@{rec['version']}"
    key_id = public_key_id(public_key)
    entries = signatures.of(repo, rec)
    if not entries:
        raise NotFoundError(
            f"{label} is not signed", hint="sign it with 'modelreg sign NAME@REF --key KEY.pem'"
        )
    mine = [e for e in entries if e["signer"] == key_id]
    if not mine:
        others = ", ".join(signatures.short(e["signer"]) for e in entries)
        raise ModelregError(
            f"{label} has no signature by {signatures.short(key_id)} (signed by {others})",
            hint="give the public key of one of its signers",
        )
    vouched = verify(signatures.bundle(repo, mine[0]), public_key)
    actual = signatures.digests(repo, rec)
    statement = signatures.Statement(vouched, key_id, rec["name"])
    wrong = signatures.mismatches(statement, actual)
    if wrong:
        raise CorruptObjectError(f"{label} does not match its signature: {'; '.join(wrong)}")
    return mine[0], len(actual)
