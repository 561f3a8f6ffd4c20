"""The per-epoch training logs of a round: training_log.csv and TensorBoard event files in the round's folder,
equal to the curves of state.json, written in the partial folder while the round trains."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from synthetic_runs import FOLD, TINY, run, states
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import constants as C
import main
from engine import training_log
from engine.classification import train_setup
from engine.context import train_settings
from engine.train import lr_at
from engine.training_log import CSV_FILE, NOT_INSTALLED, TENSORBOARD_DIR, TrainingLog
from parseit import parse_config
from tasks.joint.stage2 import JointTask

# Three epochs with a step of 1: the learning rate changes within the round (0.2, 0.2, 0.14).
EPOCHS = ["--max_epochs", "3", "--step_size", "1"]
DIGITS = ["--yaml", "digits.yaml", "--max_epochs", "3", "--step_size", "1", "--gamma", "0.5", "--progress", "false",
          "--device", "cpu", "--ensemble_size", "2"]


@pytest.fixture(scope="module")
def exp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """theta0 of seed 0, then a Label_prop round 0 (cycles 0 and 1)."""
    root = tmp_path_factory.mktemp("logs")
    run(root, "--al_type", "WSL", "--max_epochs", "1")
    run(root, "--al_type", C.LABEL_PROP, "--al_it", "0", *EPOCHS)
    return root


def rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / CSV_FILE, newline="") as handle:
        return list(csv.DictReader(handle))


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the event files under folder/tensorboard: tag -> (step, value)."""
    events = EventAccumulator(str(folder / TENSORBOARD_DIR))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def column(table: list[dict[str, str]], name: str, **where: int) -> list[float | None]:
    picked = [row for row in table if all(int(row[k]) == v for k, v in where.items())]
    return [float(row[name]) if row[name] else None for row in picked]


def test_csv_holds_each_epoch_of_each_cycle_as_state_json_has_it(exp_root: Path) -> None:
    folder = exp_root / FOLD / "Label_prop-seed_0" / "round_000"
    (state,) = states(exp_root, "Label_prop-seed_0")
    table = rows(folder)
    assert list(table[0]) == ["cycle", "member", "epoch", "lr", "loss", "valid_dice", "grad_norm", "logit_peak"]
    assert [(int(r["cycle"]), int(r["member"]), int(r["epoch"])) for r in table] == [
        (c, 0, e) for c in (0, 1) for e in range(3)]
    settings = train_settings(parse_config([*TINY, "--al_type", C.LABEL_PROP, *EPOCHS]), 80, True, True, True)
    schedule = [lr_at(settings, e) for e in range(3)]
    assert schedule[0] != schedule[2]
    for cycle in (0, 1):
        curves = state["history"][f"cycle{cycle}"]
        assert column(table, "lr", cycle=cycle) == schedule
        assert column(table, "loss", cycle=cycle) == curves["loss"]
        assert column(table, "valid_dice", cycle=cycle) == curves["valid"]
        assert column(table, "grad_norm", cycle=cycle) == curves["grad_norm"]
        assert column(table, "logit_peak", cycle=cycle) == curves["logit_peak"]


def test_tensorboard_holds_the_same_scalars_grouped_by_round(exp_root: Path) -> None:
    folder = exp_root / FOLD / "Label_prop-seed_0" / "round_000"
    (state,) = states(exp_root, "Label_prop-seed_0")
    found = scalars(folder)
    assert {"round_000/loss", "round_000/lr", "round_000/valid_dice", "round_000/loss_cycle1"} <= set(found)
    assert all(tag.startswith("round_000/") for tag in found)
    for tag, curve in (("round_000/loss", "cycle0"), ("round_000/loss_cycle1", "cycle1")):
        assert [step for step, _ in found[tag]] == [0, 1, 2]
        assert [value for _, value in found[tag]] == pytest.approx(state["history"][curve]["loss"], rel=1e-6)
    (wsl,) = states(exp_root, "WSL-seed_0")
    assert [v for _, v in scalars(exp_root / FOLD / "WSL-seed_0" / "round_000")["round_000/valid_acc"]] == \
        pytest.approx(wsl["history"]["cycle0"]["valid"], rel=1e-6)


def test_tensorboard_false_writes_the_csv_only_and_trains_the_same(exp_root: Path) -> None:
    run(exp_root, "--al_type", C.LABEL_PROP, "--al_it", "0", *EPOCHS, "--tensorboard", "false", "--exp_id", "csv")
    folder = exp_root / FOLD / "csv" / "round_000"
    assert not (folder / TENSORBOARD_DIR).exists() and not list(folder.rglob("events.out.tfevents*"))
    assert rows(folder) == rows(exp_root / FOLD / "Label_prop-seed_0" / "round_000")
    assert states(exp_root, "csv") == states(exp_root, "Label_prop-seed_0")


def test_an_interrupted_round_leaves_its_logs_in_its_partial_folder_only(exp_root: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(JointTask, "evaluate", interrupted)   # after training, before the round is written
    with pytest.raises(SystemExit):
        run(exp_root, "--al_type", C.RANDOM, "--al_it", "0", *EPOCHS, "--exp_id", "cut")
    folder = exp_root / FOLD / "cut"
    partial = folder / "round_000.partial"
    assert len(rows(partial)) == 3 and list((partial / TENSORBOARD_DIR).iterdir())
    logs = [p for p in folder.rglob("*") if p.name == CSV_FILE or p.name.startswith("events.out")]
    assert logs and all(partial in p.parents for p in logs)
    monkeypatch.undo()
    run(exp_root, "--al_type", C.RANDOM, "--al_it", "0", *EPOCHS, "--exp_id", "cut")
    assert not partial.exists() and len(rows(folder / "round_000")) == 3
    assert len(list((folder / "round_000" / TENSORBOARD_DIR).iterdir())) == 1
    assert len(scalars(folder / "round_000")["round_000/loss"]) == 3


def test_classification_members_validate_once_on_their_last_epoch(tmp_path: Path) -> None:
    main.main([*DIGITS, "--exp_root", str(tmp_path), "--al_type", C.ENSEMBLE, "--al_it", "0"])
    folder = tmp_path / "digits" / "split_0-fold_0" / f"{C.ENSEMBLE}-seed_0" / "round_000"
    history = json.loads((folder / "state.json").read_text())["history"]
    table = rows(folder)
    assert [(int(r["member"]), int(r["epoch"])) for r in table] == [(m, e) for m in (0, 1) for e in range(3)]
    settings = train_setup(parse_config([*DIGITS, "--al_type", C.ENSEMBLE]), False, False).settings
    schedule = [lr_at(settings, e) for e in range(3)]
    assert schedule[0] != schedule[2]
    for member, key in ((0, "cycle0"), (1, "cycle0_member1")):
        assert column(table, "lr", member=member) == schedule
        assert column(table, "loss", member=member) == history[key]["loss"]
        assert column(table, "valid_acc", member=member) == [None, None, *history[key]["valid"]]
        assert column(table, "grad_norm", member=member) == [None] * 3
    found = scalars(folder)
    assert [v for _, v in found["round_000/valid_acc_member1"]] == pytest.approx(history["cycle0_member1"]["valid"])
    assert [s for s, _ in found["round_000/valid_acc"]] == [2]


def test_rows_are_on_disk_as_epochs_finish_and_a_missing_tensorboard_is_said_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)   # import tensorboard -> ImportError
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    training_log.summary_writer.cache_clear()
    try:
        for r in (0, 1):
            with TrainingLog(tmp_path / str(r), r, "acc", tensorboard=True) as log:
                log.member(0).epoch(0, 0.1, 1.5)
                assert [row["loss"] for row in rows(tmp_path / str(r))] == ["1.5"]
                log.member(0, 1).epoch(0, 0.1, 2.5)
                log.member(0).validated(75.0)
            assert [row["valid_acc"] for row in rows(tmp_path / str(r))] == ["75.0", ""]
    finally:
        training_log.summary_writer.cache_clear()
    assert capsys.readouterr().out.splitlines() == [NOT_INSTALLED]
    assert not list(tmp_path.rglob(TENSORBOARD_DIR))


def test_segmentation_logs_the_validation_miou_on_the_last_epoch(tmp_path: Path) -> None:
    main.main(["--yaml", "scenes.yaml", "--max_epochs", "2", "--progress", "false", "--device", "cpu",
               "--image_height", "32", "--image_width", "32", "--seg_width", "4", "--seg_n_start", "4",
               "--data_root", str(tmp_path / "scenes"), "--exp_root", str(tmp_path / "exps"), "--al_type",
               C.RANDOM, "--al_it", "0"])
    folder = tmp_path / "exps" / "scenes" / "split_0-fold_0" / f"{C.RANDOM}-seed_0" / "round_000"
    history = json.loads((folder / "state.json").read_text())["history"]["cycle0"]
    table = rows(folder)
    assert column(table, "loss") == history["loss"]
    assert column(table, "valid_miou") == [None, *history["valid"]]
    assert [v for _, v in scalars(folder)["round_000/valid_miou"]] == pytest.approx(history["valid"])
