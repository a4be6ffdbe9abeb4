"""Remote failures a user meets: each is one line on stderr, exit 1, nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import CliRun, _free_port, new_bucket, start_moto, tree_snapshot, write_bytes


@pytest.fixture
def project(repo_dir: Path, run: CliRun) -> Path:
    run("register", "m", write_bytes(repo_dir / "m.bin", 20_000))
    return repo_dir


def _refused(run: CliRun, root: Path, args: list[str], message: str) -> None:
    before = tree_snapshot(root / ".modelreg" / "refs")
    r = run(*args)
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr, r.stderr
    assert tree_snapshot(root / ".modelreg" / "refs") == before


def test_missing_bucket(project: Path, run: CliRun, s3) -> None:
    run("remote", "add", "origin", "s3://no-such-bucket-here/x")
    _refused(run, project, ["push"], "bucket 'no-such-bucket-here' does not exist")
    _refused(run, project, ["pull"], "bucket 'no-such-bucket-here' does not exist")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.com/x", "unsupported remote URL 'http://example.com/x'"),
        ("gs://bucket/x", "unsupported remote URL"),
        ("s3://Bad_Bucket/x", "invalid S3 bucket name 'Bad_Bucket'"),
        ("s3://", "invalid S3 bucket name ''"),
        ("", "unsupported remote URL"),
    ],
)
def test_bad_urls_are_refused_when_added(
    project: Path, run: CliRun, url: str, message: str
) -> None:
    _refused(run, project, ["remote", "add", "origin", url], message)
    assert run("remote", "list").stdout == ""


def test_wrong_credentials(project: Path, run: CliRun, s3, monkeypatch: pytest.MonkeyPatch) -> None:
    proc, url = start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})  # this server checks keys
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAREALKEY00000")
        run("remote", "add", "origin", "s3://some-bucket/x")
        _refused(run, project, ["push"], "access denied to s3://some-bucket/x")
        _refused(run, project, ["push"], "check the AWS credentials")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_unreachable_endpoint(project: Path, run: CliRun, s3) -> None:
    closed = f"http://127.0.0.1:{_free_port()}"
    run("remote", "add", "origin", "s3://some-bucket/x", "--endpoint-url", closed)
    _refused(run, project, ["push"], f"cannot reach the S3 endpoint {closed}")


def test_folder_that_is_not_a_remote(project: Path, run: CliRun, tmp_path: Path) -> None:
    other = tmp_path / "stuff"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    run("remote", "add", "origin", other)
    _refused(run, project, ["pull"], "is not a modelreg remote")
    _refused(run, project, ["push"], "is not empty and not a modelreg remote")
    assert [p.name for p in other.iterdir()] == ["keep.txt"]


def test_remote_config_mistakes(project: Path, run: CliRun, tmp_path: Path) -> None:
    run("remote", "add", "origin", tmp_path / "r1")
    _refused(
        run, project, ["remote", "add", "origin", tmp_path / "r2"], "remote 'origin' already exists"
    )
    _refused(run, project, ["remote", "remove", "nope"], "no remote named 'nope'")
    _refused(run, project, ["remote", "add", "no/slash", tmp_path / "r2"], "invalid remote name")
    run("remote", "add", "backup", tmp_path / "r2")
    run("remote", "remove", "origin")
    run("remote", "add", "third", tmp_path / "r3")
    _refused(run, project, ["push"], "this registry has several remotes; say which one")
    assert run("push", "backup").exit_code == 0


def test_pull_of_a_family_the_remote_lacks(project: Path, run: CliRun, tmp_path: Path) -> None:
    run("remote", "add", "origin", tmp_path / "r")
    run("push")
    _refused(run, project, ["pull", "origin", "other"], "remote origin has no model named 'other'")


def test_clone_refuses_a_non_empty_folder_and_leaves_nothing_on_failure(
    project: Path, run: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3
) -> None:
    run("remote", "add", "origin", tmp_path / "r")
    run("push")
    monkeypatch.chdir(tmp_path)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    r = run("clone", tmp_path / "r", busy)
    assert r.exit_code == 1 and "already exists and is not empty" in r.stderr
    r = run("clone", "s3://no-such-bucket-here/x", tmp_path / "fresh")
    assert r.exit_code == 1 and "does not exist" in r.stderr
    assert not (tmp_path / "fresh").exists()
    bucket = new_bucket(s3)
    r = run("clone", f"s3://{bucket}/empty", tmp_path / "fresh")
    assert r.exit_code == 1 and "is not a modelreg remote" in r.stderr
    assert not (tmp_path / "fresh").exists()
