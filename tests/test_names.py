"""Names, versions, tags and object ids are matched whole: a trailing newline is not a name."""

from __future__ import annotations

import pytest

from modelreg import names
from modelreg.errors import CorruptObjectError, InvalidNameError
from modelreg.hashing import is_oid
from modelreg.refs import FamilyRefs
from modelreg.remotes import check_remote_name, normalize_url

from .conftest import CliRun, write_bytes

OID = "0" * 32


@pytest.mark.parametrize(
    ("check", "good"),
    [
        (names.check_family, "fam"),
        (names.check_version, "v1"),
        (names.check_tag, "production"),
        (check_remote_name, "origin"),
    ],
)
@pytest.mark.parametrize("tail", ["\n", "\r\n", " ", "\x00"])
def test_a_trailing_character_makes_a_name_invalid(check, good: str, tail: str) -> None:  # type: ignore[no-untyped-def]
    assert check(good) == good
    with pytest.raises(InvalidNameError):
        check(good + tail)


def test_refs_with_a_trailing_newline_are_refused() -> None:
    with pytest.raises(InvalidNameError):
        names.normalize_ref("v1\n")
    with pytest.raises(InvalidNameError):
        names.parse_spec("fam\n@v1")
    assert not is_oid(OID + "\n")
    with pytest.raises(InvalidNameError):
        normalize_url("s3://bucket\n/x")


def test_a_refs_file_with_a_newline_in_a_version_is_damaged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = f'name: fam\nversions:\n  "v1\\n": {OID}\n  v1: {OID}\n'.encode()
    with pytest.raises(CorruptObjectError):
        FamilyRefs.from_yaml("fam", text, tmp_path / "fam.yaml")
    text = f'name: fam\nversions:\n  v1: "{OID}\\n"\n'.encode()
    with pytest.raises(CorruptObjectError):
        FamilyRefs.from_yaml("fam", text, tmp_path / "fam.yaml")


def test_cli_refuses_a_tag_that_prints_like_another(repo_dir, run: CliRun) -> None:  # type: ignore[no-untyped-def]
    write_bytes(repo_dir / "a.bin", 100)
    assert run("register", "fam", "a.bin").exit_code == 0
    result = run("tag", "fam@v1", "production\n")
    assert result.exit_code == 1
    assert "invalid tag" in result.stderr
    result = run("register", "fam\n", "a.bin")
    assert result.exit_code == 1
    assert "invalid model name" in result.stderr
    assert run("tag", "fam").stdout == ""
