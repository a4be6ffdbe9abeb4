"""sign, verify, export --signature: OpenSSF model signatures of versions, checked by
model_signing's own verifier and by fsck."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import CliRun, write_bytes

pytest.importorskip("model_signing")


def _keys(folder: Path, name: str = "key") -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = folder / f"{name}.pem"
    public = folder / f"{name}.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return _keys(tmp_path)


def _model(root: Path) -> Path:
    model = root / "m"
    (model / "sub").mkdir(parents=True)
    write_bytes(model / "model.safetensors", 60_000, seed=1)
    (model / "config.json").write_text('{"a": 1}')
    (model / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    write_bytes(model / "sub" / "extra.bin", 7000, seed=2)
    return model


def _signed(repo_dir: Path, run: CliRun, keys: tuple[Path, Path]) -> tuple[Any, Path]:
    """``m@v1`` registered and signed; returns (the registry, the public key)."""
    from modelreg.repo import Repository

    private, public = keys
    run("register", "m", _model(repo_dir))
    assert run("sign", "m", "--key", private).exit_code == 0
    return Repository(repo_dir), public


def test_sign_then_verify(repo_dir: Path, run: CliRun, keys: tuple[Path, Path]) -> None:
    private, public = keys
    run("register", "m", _model(repo_dir))
    r = run("sign", "m", "--key", private)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("Signed m@v1 by key:")
    r = run("verify", "m@v1", "--public-key", public)
    assert r.exit_code == 0, r.output
    assert "3 files match" in r.stdout  # .gitattributes is left out, as model_signing does


def test_show_and_list_say_who_signed(repo_dir: Path, run: CliRun, keys: tuple[Path, Path]) -> None:
    private, _public = keys
    model = _model(repo_dir)
    run("register", "m", model)
    (model / "config.json").write_text('{"a": 2}')
    run("register", "m", model)
    run("sign", "m@v1", "--key", private)
    shown = json.loads(run("show", "m@v1", "--json").stdout)
    (sig,) = shown["signatures"]
    assert sig["signer"].startswith("key:") and len(sig["signer"]) == 4 + 64
    assert json.loads(run("show", "m@v2", "--json").stdout)["signatures"] == []
    rows = {r["version"]: r for r in json.loads(run("list", "--json").stdout)}
    assert rows["v1"]["signatures"] == shown["signatures"]
    assert rows["v2"]["signatures"] == []
    text = run("list").stdout
    assert "SIGNED BY" in text and sig["signer"][:20] in text
    assert f"signer: {sig['signer']}" in run("show", "m@v1").stdout
    assert f"signed by  {sig['signer'][:20]}" in run("log", "m").stdout


def test_exported_signature_is_accepted_by_model_signing(
    repo_dir: Path, tmp_path: Path, run: CliRun, keys: tuple[Path, Path]
) -> None:
    _repo, public = _signed(repo_dir, run, keys)
    out = tmp_path / "out"
    sig = out / "model.sig"  # inside the folder: model_signing's CLI leaves it out
    r = run("export", "m", out, "--signature", sig)
    assert r.exit_code == 0, r.output
    cli = shutil.which("model_signing") or ""
    command = [cli] if cli else [sys.executable, "-m", "model_signing"]
    done = subprocess.run(
        [*command, "verify", "key", str(out), "--signature", str(sig), "--public_key", str(public)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Verification succeeded" in done.stdout
    (out / "config.json").write_text('{"a": 3}')
    done = subprocess.run(
        [*command, "verify", "key", str(out), "--signature", str(sig), "--public_key", str(public)],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0


def test_model_signing_library_verifies_the_export(
    repo_dir: Path, tmp_path: Path, run: CliRun, keys: tuple[Path, Path]
) -> None:
    import model_signing

    _repo, public = _signed(repo_dir, run, keys)
    run("export", "m", tmp_path / "out", "--signature", tmp_path / "out.sig")
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public).verify(
        tmp_path / "out", tmp_path / "out.sig"
    )


def test_verify_with_another_key_fails(
    repo_dir: Path, tmp_path: Path, run: CliRun, keys: tuple[Path, Path]
) -> None:
    other_private, other_public = _keys(tmp_path, "other")
    _signed(repo_dir, run, keys)
    r = run("verify", "m", "--public-key", other_public)
    assert r.exit_code == 1 and "has no signature by key:" in r.stderr
    run("sign", "m", "--key", other_private)
    assert run("verify", "m", "--public-key", other_public).exit_code == 0
    assert len(json.loads(run("show", "m", "--json").stdout)["signatures"]) == 2


def test_a_forged_signature_fails_verify(
    repo_dir: Path, tmp_path: Path, run: CliRun, keys: tuple[Path, Path]
) -> None:
    """A bundle naming our key but signed by another key: the hint is not proof."""
    from modelreg import modelsign, signatures
    from modelreg.repo import Repository

    _private, public = keys
    other_private, _ = _keys(tmp_path, "other")
    run("register", "m", _model(repo_dir))
    repo = Repository(repo_dir)
    rec = repo.lookup("m")
    bundle = json.loads(
        modelsign.sign(signatures.digests(repo, rec), "m", modelsign.key_signer(other_private))
    )
    bundle["verificationMaterial"]["publicKey"]["hint"] = modelsign.public_key_id(public)[4:]
    signatures.add(repo, rec, json.dumps(bundle).encode())
    r = run("verify", "m", "--public-key", public)
    assert r.exit_code == 1 and "does not verify" in r.stderr


def test_fsck_and_verify_fail_when_bytes_differ_from_the_signature(
    repo_dir: Path, run: CliRun, keys: tuple[Path, Path]
) -> None:
    from modelreg import signatures

    repo, public = _signed(repo_dir, run, keys)
    assert run("fsck").exit_code == 0
    rec = repo.lookup("m")
    (entry,) = signatures.read_index(repo, "m")["v1"]
    # a signature entry that claims the version's root but vouches for other bytes
    statement_bundle = json.loads(signatures.bundle(repo, entry))
    import base64

    payload = json.loads(base64.b64decode(statement_bundle["dsseEnvelope"]["payload"]))
    payload["predicate"]["resources"][0]["digest"] = "0" * 64
    statement_bundle["dsseEnvelope"]["payload"] = base64.b64encode(
        json.dumps(payload).encode()
    ).decode()
    forged = repo.objects.add(json.dumps(statement_bundle).encode(), loose=True)
    repo.objects.sync()

    def swap(versions: dict[str, list[dict[str, str]]]) -> None:
        versions["v1"] = [{**entry, "bundle": forged, "root": rec["root"]}]

    signatures.update(repo, "m", swap)
    r = run("fsck")
    assert r.exit_code == 1
    assert "m@v1" in r.stdout and "do not match the signature" in r.stdout
    r = run("verify", "m", "--public-key", public)
    assert r.exit_code == 1


def test_sign_errors_are_one_line(
    repo_dir: Path, tmp_path: Path, run: CliRun, keys: tuple[Path, Path]
) -> None:
    _private, public = keys
    run("register", "m", _model(repo_dir))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    for args, words in (
        (["sign", "m", "--key", tmp_path / "missing.pem"], "no such key file"),
        (["sign", "m", "--key", garbage], "is not a usable private key"),
        (["sign", "m", "--key", public], "is not a usable private key"),
        (["verify", "m", "--public-key", public], "m@v1 is not signed"),
        (["verify", "m", "--public-key", garbage], "is not a PEM public key"),
        (["export", "m", tmp_path / "o", "--signature", tmp_path / "s"], "m@v1 is not signed"),
    ):
        r = run(*args)
        assert r.exit_code == 1, (args, r.output)
        assert r.stderr.startswith("error: ") and words in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    r = run("export", "m", "--oci", tmp_path / "o", "--signature", tmp_path / "s")
    assert r.exit_code == 2 and "--signature goes with DIR" in r.stderr


def test_export_signature_refuses_an_existing_file(
    repo_dir: Path, tmp_path: Path, run: CliRun, keys: tuple[Path, Path]
) -> None:
    _signed(repo_dir, run, keys)
    (tmp_path / "s").write_text("mine")
    r = run("export", "m", tmp_path / "o", "--signature", tmp_path / "s")
    assert r.exit_code == 1 and "already exists" in r.stderr
    assert (tmp_path / "s").read_text() == "mine" and not (tmp_path / "o").exists()


def test_gc_keeps_signatures(repo_dir: Path, run: CliRun, keys: tuple[Path, Path]) -> None:
    _repo, public = _signed(repo_dir, run, keys)
    assert run("gc").exit_code == 0
    assert run("verify", "m", "--public-key", public).exit_code == 0
    assert run("fsck").exit_code == 0


def _pushed(folder: Path, run: CliRun, key: Path, remote: str) -> None:
    """A new registry in ``folder`` (the current folder) with m@v1 signed by ``key``,
    pushed to ``remote``."""
    folder.mkdir()
    run("-C", folder, "init")
    run("-C", folder, "register", "m", _model(folder))
    run("-C", folder, "sign", "m", "--key", key)
    run("-C", folder, "remote", "add", "origin", remote)
    assert run("-C", folder, "push").exit_code == 0


def test_signatures_travel_with_push_and_pull(
    tmp_path: Path, run: CliRun, remote_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice_key, alice_pub = _keys(tmp_path, "alice")
    bob_key, bob_pub = _keys(tmp_path, "bob")
    alice = tmp_path / "alice"
    _pushed(alice, run, alice_key, remote_url)
    monkeypatch.chdir(tmp_path)
    assert run("clone", remote_url, "bob").exit_code == 0
    monkeypatch.chdir(tmp_path / "bob")
    r = run("verify", "m", "--public-key", alice_pub)
    assert r.exit_code == 0, r.output
    run("sign", "m", "--key", bob_key)
    assert run("push").exit_code == 0
    monkeypatch.chdir(alice)
    assert run("pull").exit_code == 0
    assert run("verify", "m", "--public-key", bob_pub).exit_code == 0
    assert run("verify", "m", "--public-key", alice_pub).exit_code == 0
    assert len(json.loads(run("show", "m", "--json").stdout)["signatures"]) == 2
    assert run("fsck").exit_code == 0


def test_a_signature_for_other_content_counts_for_nothing(
    repo_dir: Path, run: CliRun, keys: tuple[Path, Path]
) -> None:
    from modelreg import signatures

    repo, public = _signed(repo_dir, run, keys)

    def elsewhere(versions: dict[str, list[dict[str, str]]]) -> None:
        versions["v1"] = [{**e, "root": "0" * 32} for e in versions["v1"]]

    signatures.update(repo, "m", elsewhere)
    assert json.loads(run("show", "m", "--json").stdout)["signatures"] == []
    assert run("verify", "m", "--public-key", public).exit_code == 1
    r = run("fsck")
    assert r.exit_code == 1 and "was made for other content" in r.stdout


def test_a_junk_signatures_file_on_the_remote_is_skipped_with_a_warning(
    tmp_path: Path, run: CliRun, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "remote"
    _pushed(tmp_path / "a", run, keys[0], str(remote))
    assert (remote / "signatures" / "m.json").is_file()
    (remote / "signatures" / "m.json").write_text("{junk")
    monkeypatch.chdir(tmp_path)
    r = run("clone", remote, "b")
    assert r.exit_code == 0, r.output
    assert "its signatures were not pulled" in r.stderr
    monkeypatch.chdir(tmp_path / "b")
    assert json.loads(run("show", "m", "--json").stdout)["signatures"] == []
    assert run("fsck").exit_code == 0


def test_sign_without_model_signing_says_what_to_install(
    repo_dir: Path, run: CliRun, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    private, _public = keys
    run("register", "m", _model(repo_dir))
    for module in [m for m in sys.modules if m.startswith("model_signing")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "model_signing", None)
    r = run("sign", "m", "--key", private)
    assert r.exit_code == 1
    assert "signing needs the model-signing package" in r.stderr
    assert "pip install 'modelreg[signing]'" in r.stderr


def test_a_signed_version_renumbered_by_pull_keeps_its_signature(
    tmp_path: Path, run: CliRun, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = keys
    remote = tmp_path / "remote"
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    alice.mkdir()
    monkeypatch.chdir(alice)
    run("init")
    run("register", "m", write_bytes(alice / "a.bin", 5000, seed=1))
    run("remote", "add", "origin", remote)
    run("push")
    monkeypatch.chdir(tmp_path)
    run("clone", remote, "bob")
    monkeypatch.chdir(bob)
    run("register", "m", write_bytes(bob / "b.bin", 5000, seed=2))  # bob's v2, unpublished
    assert run("sign", "m@v2", "--key", private).exit_code == 0
    monkeypatch.chdir(alice)
    run("register", "m", write_bytes(alice / "c.bin", 5000, seed=3))  # alice's v2
    assert run("push").exit_code == 0
    monkeypatch.chdir(bob)
    r = run("pull")
    assert r.exit_code == 0, r.output
    assert json.loads(run("show", "m@v3", "--json").stdout)["source"] == "b.bin"
    assert run("verify", "m@v3", "--public-key", public).exit_code == 0
    assert json.loads(run("show", "m@v2", "--json").stdout)["signatures"] == []
    assert run("fsck").exit_code == 0


def test_the_ui_version_page_lists_signers(
    repo_dir: Path, run: CliRun, keys: tuple[Path, Path]
) -> None:
    import threading

    from modelreg.ui import make_server, url_of

    from .test_ui import fetch

    _signed(repo_dir, run, keys)
    signer = json.loads(run("show", "m", "--json").stdout)["signatures"][0]["signer"]
    server = make_server(repo_dir, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, _headers, body = fetch(url_of(server), "/m/m/v1")
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200
    section = body[body.index('id="signatures"') :]
    assert f"<code>{signer}</code>" in section
