"""``studio train`` and ``studio eval``: impossible numbers are usage errors, and an evaluation
leaves ``models/`` alone unless ``--update-card`` asks it to write the card.

The evaluations themselves are replaced by stand-ins that write their card and figures the way
the real ones do (through ``studio.ml.cards`` and into their folder): what is tested is that the
command keeps them from landing in the model folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.cli import main
from studio.ml import cards


@pytest.mark.parametrize("argv,message", [
    (["train", "variation", "--minutes", "nan"], "argument --minutes: nan is not a finite number"),
    (["train", "harmonizer", "--minutes", "inf"], "argument --minutes: inf is not a finite number"),
    (["train", "continuation", "--minutes", "0"], "argument --minutes: 0 must be above 0 and at most 10080"),
    (["train", "variation", "--minutes", "1e9"], "argument --minutes: 1e+09 must be above 0 and at most 10080"),
    (["train", "variation", "--seed", "-1"], "argument --seed: -1 is outside 0..4294967295"),
    (["eval", "harmonizer", "--limit", "-1"], "argument --limit: -1 must be 1 or more"),
    (["eval", "variation", "--limit", "0"], "argument --limit: 0 must be 1 or more"),
])
def test_impossible_numbers_are_refused(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"studio: error: {message}\n"


def _model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "models" / "m"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text(json.dumps({"config": {"d": 1}}))
    cards.write(folder, {"metrics": "shipped"})
    return folder


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _stand_ins(monkeypatch):
    from studio.ml.continuation import eval as ce
    from studio.ml.harmonizer import eval as he
    from studio.ml.variation import eval as ve

    def harmonizer_eval(weights=None, limit=None, device="auto", out=None, **kw):
        cards.write(weights, {"metrics": "new"})  # as the real one does, at its end
        return {"limit": limit}

    def variation_eval(weights=None, out=None, device="auto", limit=None, log=print):
        out = Path(out) if out else Path(weights)  # the real default: beside the weights
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval.json").write_text("{}")
        (out / "strength_curve.png").write_bytes(b"png")
        cards.write(weights, {"metrics": "new"})
        return {"limit": limit}

    monkeypatch.setattr(he, "evaluate", harmonizer_eval)
    monkeypatch.setattr(he, "table", lambda report: "table")
    monkeypatch.setattr(ce, "evaluate", lambda folder, device="auto", limit=60, log=None: {
        "limit": limit, "continuation": {"pieces": 1}, "test_pieces": 1, "heldout": "new"})
    monkeypatch.setattr(ve, "run_eval", variation_eval)


@pytest.mark.parametrize("model", ["harmonizer", "continuation", "variation"])
def test_eval_leaves_the_model_folder_alone_unless_asked(tmp_path, monkeypatch, capsys, model):
    _stand_ins(monkeypatch)
    folder = _model_folder(tmp_path)
    before = _snapshot(folder)
    assert main(["eval", model, "--weights", str(folder), "--limit", "2"]) == 0
    assert _snapshot(folder) == before
    assert "card.json was left as it is" in capsys.readouterr().err
    assert main(["eval", model, "--weights", str(folder), "--update-card"]) == 0
    card = json.loads((folder / "card.json").read_text())
    assert card != {"metrics": "shipped"} and _snapshot(folder) != before


def test_cards_unchanged_block(tmp_path):
    cards.write(tmp_path, {"a": 1})
    with cards.unchanged():
        cards.write(tmp_path, {"a": 2})
    assert cards.read(tmp_path) == {"a": 1}
    cards.write(tmp_path, {"a": 3})
    assert cards.read(tmp_path) == {"a": 3}


@pytest.mark.parametrize("model,args,message", [
    ("variation", ["--minutes", "inf"], "--minutes: inf is not a finite number"),
    ("harmonizer", ["--seed", "-1"], "--seed: -1 is outside 0..4294967295"),
    ("continuation", ["--max-steps", "0"], "--max-steps: 0 must be 1 or more"),
])
def test_training_entry_points_check_numbers_too(model, args, message):
    """``python -m studio.ml.MODEL.train`` (what torchrun launches) shares the command line's types."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", f"studio.ml.{model}.train", *args], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and message in r.stderr, r.stderr[-500:]
