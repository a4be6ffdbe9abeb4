"""Model cards: register --card, show, diff, and the card travelling with its version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelreg import ModelRegistry
from modelreg.repo import Repository

from .conftest import CliRun, tree_snapshot, write_bytes

CARD = """---
license: apache-2.0
library_name: transformers
datasets:
  - imdb
tags: [text-classification, tiny]
metrics:
  - accuracy
model-index:
  - name: tiny-bert
    results:
      - task: {type: text-classification}
        metrics:
          - type: accuracy
            value: 0.87
          - type: f1
            value: 0.81
---
# tiny-bert

Fine-tuned on IMDB for a test.
"""


def _card(root: Path, text: str = CARD, name: str = "README.md") -> Path:
    path = root / name
    path.write_text(text, encoding="utf-8")
    return path


def test_register_with_a_card_fills_fields_and_show_prints_it(repo_dir: Path, run: CliRun) -> None:
    model = write_bytes(repo_dir / "m.bin", 3000)
    r = run("register", "bert", model, "--card", _card(repo_dir), "--metric", "f1=0.9")
    assert r.exit_code == 0, r.output
    shown = json.loads(run("show", "bert", "--json").stdout)
    assert shown["card"] == CARD
    assert shown["metrics"] == {"accuracy": 0.87, "f1": 0.9}  # --metric wins over the card
    assert shown["dataset"] == "imdb" and shown["framework"] == "transformers"
    assert shown["params"] == {"license": "apache-2.0", "tags": "text-classification, tiny"}
    text = run("show", "bert").stdout
    assert "card: |\n  ---\n  license: apache-2.0" in text and "  # tiny-bert" in text
    assert ModelRegistry(".").get("bert")["card"] == CARD


def test_explicit_fields_win_over_the_front_matter(repo_dir: Path, run: CliRun) -> None:
    model = write_bytes(repo_dir / "m.bin", 3000)
    card = _card(repo_dir)
    run("register", "bert", model, "--card", card, "--dataset", "sst2", "--param", "tags=x")
    shown = json.loads(run("show", "bert", "--json").stdout)
    assert shown["dataset"] == "sst2" and shown["params"]["tags"] == "x"


def test_a_version_without_a_card_shows_none_and_a_plain_card_fills_nothing(
    repo_dir: Path, run: CliRun
) -> None:
    model = write_bytes(repo_dir / "m.bin", 3000)
    run("register", "m", model)
    assert json.loads(run("show", "m", "--json").stdout)["card"] is None
    assert "card:" not in run("show", "m").stdout
    run("register", "m", model, "--card", _card(repo_dir, "# just text\n", "plain.md"))
    shown = json.loads(run("show", "m", "--json").stdout)
    assert shown["card"] == "# just text\n" and shown["metrics"] == {} and shown["dataset"] is None


def test_the_same_card_is_stored_once_and_diff_says_whether_it_changed(
    repo_dir: Path, run: CliRun, repo: Repository
) -> None:
    model = write_bytes(repo_dir / "m.bin", 3000)
    card = _card(repo_dir)
    for _ in range(2):
        run("register", "m", model, "--card", card)
    first, second = (repo.lookup(f"m@v{n}") for n in (1, 2))
    assert first["card"] == second["card"]
    assert json.loads(run("diff", "m@1", "m@2", "--json").stdout)["card"] == "unchanged"
    assert "model card" not in run("diff", "m@1", "m@2").stdout
    card.write_text(CARD + "\nMore text.\n", encoding="utf-8")
    run("register", "m", model, "--card", card)
    run("register", "m", model)
    assert "model card: changed" in run("diff", "m@2", "m@3").stdout
    assert "model card: removed" in run("diff", "m@3", "m@4").stdout
    assert json.loads(run("diff", "m@4", "m@1", "--json").stdout)["card"] == "added"


def test_the_card_survives_gc_fsck_and_a_push_to_a_clone(
    repo_dir: Path, run: CliRun, tmp_path: Path
) -> None:
    model = write_bytes(repo_dir / "m.bin", 3000)
    run("register", "m", model, "--card", _card(repo_dir))
    assert run("gc").exit_code == 0
    assert run("fsck").exit_code == 0
    assert json.loads(run("show", "m", "--json").stdout)["card"] == CARD
    remote = tmp_path / "remote"
    assert run("remote", "add", "origin", remote).exit_code == 0
    assert run("push").exit_code == 0
    clone = tmp_path / "clone"
    assert run("clone", remote, clone).exit_code == 0
    assert json.loads(run("-C", clone, "show", "m", "--json").stdout)["card"] == CARD


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "---\nlicense: [mit\n---\n# x\n",
            "error: the model card's front matter is not valid YAML (line 3)",
        ),
        (
            "---\nlicense: mit\n# x\n",
            "error: the model card's front matter has no closing '---' line",
        ),
        ("---\n- a\n- b\n---\n", "error: the model card's front matter is not a mapping"),
        ("---\na: &x 1\nb: *x\n---\n", "anchors or aliases"),
        ("# title \x1b[31m red\n", "error: the model card holds a control character (U+001B)"),
    ],
)
def test_a_bad_card_is_one_line_and_registers_nothing(
    repo_dir: Path, run: CliRun, text: str, message: str
) -> None:
    model = write_bytes(repo_dir / "m.bin", 3000)
    card = _card(repo_dir, text)
    before = tree_snapshot(repo_dir / ".modelreg")
    r = run("register", "m", model, "--card", card)
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert tree_snapshot(repo_dir / ".modelreg") == before


def test_a_missing_or_binary_card_is_refused(repo_dir: Path, run: CliRun) -> None:
    model = write_bytes(repo_dir / "m.bin", 3000)
    r = run("register", "m", model, "--card", repo_dir / "nope.md")
    assert r.exit_code == 1 and "error: no such model card" in r.stderr
    (repo_dir / "bin.md").write_bytes(b"\xff\xfe\x00junk")
    r = run("register", "m", model, "--card", repo_dir / "bin.md")
    assert r.exit_code == 1 and "is not UTF-8 text; save it as UTF-8 Markdown" in r.stderr


def test_the_api_takes_card_text(repo_dir: Path) -> None:
    registry = ModelRegistry(".")
    registry.register("m", write_bytes(repo_dir / "m.bin", 3000), card_text=CARD)
    assert registry.get("m")["card"] == CARD and registry.get("m")["dataset"] == "imdb"


def test_windows_line_ends_are_stored_as_newlines(repo_dir: Path, run: CliRun) -> None:
    model = write_bytes(repo_dir / "m.bin", 3000)
    card = repo_dir / "README.md"
    card.write_bytes(CARD.replace("\n", "\r\n").encode())
    assert run("register", "m", model, "--card", card).exit_code == 0
    shown = json.loads(run("show", "m", "--json").stdout)
    assert shown["card"] == CARD and shown["dataset"] == "imdb"


def test_front_matter_fields_take_only_values_of_the_expected_type() -> None:
    from modelreg.cards import fields_from, front_matter

    front = front_matter(
        "---\n"
        "datasets: [glue, sst2]\n"
        "license: 3\n"  # not text: left out
        "metrics: {bleu: 31.5, note: good}\n"
        "model-index:\n"
        "  - results:\n"
        "      - metrics:\n"
        "          - {type: accuracy, name: Accuracy (top-1), value: 0.8}\n"
        "          - {type: accuracy, value: 0.5}\n"
        "          - {type: f1, value: high}\n"
        "---\n# card\n"
    )
    assert fields_from(front) == {
        "dataset": "glue, sst2",
        "metrics": {"bleu": 31.5, "accuracy": 0.8},
    }
    assert front_matter("# no front matter\n---\n") == {}


def test_a_card_marks_an_older_registry_format_3_so_an_older_modelreg_cannot_gc_it_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: CliRun
) -> None:
    """A modelreg from before cards would see the card object as unreachable: the register
    that stores a card first sets the format such a modelreg refuses."""
    import tarfile

    from modelreg.refs import yaml_load

    fixture = Path(__file__).parent / "fixtures" / "format1-registry.tar.gz"
    with tarfile.open(fixture) as tar:
        tar.extractall(tmp_path, filter="data")
    root = next(p.parent.parent for p in tmp_path.rglob("config.yaml"))
    monkeypatch.chdir(root)
    config = root / ".modelreg" / "config.yaml"
    assert yaml_load(config.read_bytes())["format"] == 1
    (root / "README.md").write_text("# a card\n")
    write_bytes(root / "w.bin", 5000, seed=1)
    run("register", "newfamily", "w.bin", "--card", "README.md")  # a new family: no journal
    assert yaml_load(config.read_bytes())["format"] == 3
