"""Round models and predict.py: a finished round keeps the model it reports, and predicting the test images with
it gives back the round's test Dice."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from synthetic_runs import FOLD, run

import main
import predict
from al.state import MODEL_FILE
from data.arrays import gather, read_arrays
from data.folds import load_fold
from engine.metrics import dice
from engine.round_model import RoundModelError, load_round_model
from parseit import resolve_path

RUN = "Random-seed_0"


@pytest.fixture(scope="module")
def exps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """WSL, then Random rounds 0..2 keeping every round's model."""
    root = tmp_path_factory.mktemp("exps")
    run(root, "--al_type", "WSL", "--max_epochs", "1")
    run(root, "--al_type", "Random", "--al_it", "0", "--al_it_end", "2", "--keep_models", "all")
    return root


def test_test_images_predicted_with_round_2_give_the_rounds_test_dice(exps: Path, tmp_path: Path) -> None:
    folder = exps / FOLD / RUN
    test = load_fold(resolve_path("folds"), "synthetic", 0, 0).test
    data_root = resolve_path("datasets/synthetic")
    predict.main(["--run", str(folder), "--round", "2", "--device", "cpu", "--out", str(tmp_path / "out"),
                  "--images", *(str(data_root / r.image) for r in test)])
    scores = []
    for record in test:
        predicted = np.asarray(Image.open(tmp_path / "out" / "masks" / f"{Path(record.image).stem}.png")) > 127
        truth = np.asarray(Image.open(data_root / record.mask)) > 127
        scores.append(float(dice(torch.from_numpy(predicted)[None], torch.from_numpy(truth)[None])[0]))
    state = json.loads((folder / "round_002" / "state.json").read_text())
    assert 100 * np.mean(scores) == pytest.approx(state["metrics"]["test"]["dice_idx"], abs=1e-9)
    rows = list(csv.reader((tmp_path / "out" / "probabilities.csv").open()))
    assert rows[0] == ["image", "predicted_class", *load_round_model(folder / "round_002" / MODEL_FILE).classes]
    assert len(rows) == len(test) + 1 and all(abs(sum(map(float, row[2:])) - 1) < 1e-4 for row in rows[1:])
    accuracy = np.mean([row[1] == r.label for row, r in zip(rows[1:], test)])
    assert 100 * accuracy == pytest.approx(state["metrics"]["test"]["acc"])
    assert len(list((tmp_path / "out" / "overlays").glob("*.png"))) == len(test)


def test_a_round_model_holds_what_predicting_needs_and_loads_without_pickled_code(exps: Path) -> None:
    path = exps / FOLD / RUN / "round_001" / MODEL_FILE
    payload = torch.load(path, map_location="cpu", weights_only=True)
    state = json.loads((path.parent / "state.json").read_text())
    model = load_round_model(path)
    assert (model.task, model.round, model.config.al_type) == ("joint", 1, "Random")
    assert model.metrics == state["metrics"] and model.extra["threshold"] == state["threshold"]
    assert model.extra["theta0_sha256"] == state["theta0_sha256"]
    # Stage 2 trains the segmentation head on a frozen theta0: only the head's tensors are in the file.
    assert len(payload["members"]) == 1 and {k.split(".")[0] for k in model.weights} == {"seg_head"}


def test_keep_models_last_keeps_only_the_last_finished_rounds_model(exps: Path) -> None:
    run(exps, "--al_type", "Random", "--al_it", "0", "--al_it_end", "1", "--exp_id", "last")   # theta0 of exps
    folder = exps / FOLD / "last"
    assert sorted(p.parent.name for p in folder.glob(f"round_*/{MODEL_FILE}")) == ["round_001"]
    test_ids = {r.id for r in load_fold(resolve_path("folds"), "synthetic", 0, 0).test}
    assert {p.stem for p in (folder / "round_000" / "test_masks").glob("*.png")} == test_ids
    run(exps, "--al_type", "Random", "--al_it", "2", "--exp_id", "last", "--keep_models", "none")
    assert not list(folder.glob(f"round_*/{MODEL_FILE}"))


@pytest.mark.parametrize(("make", "problem"), [
    ("no_model", "kept no round model"), ("greyscale", "has 1 channel (L) but the model was trained on colour (RGB)"),
    ("text", "cannot be read as an image"), ("not_a_run", "is not a run folder"),
    ("theta0_gone", "which is missing: restore that file")])
def test_bad_inputs_get_one_line_and_exit_2(exps: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                            make: str, problem: str) -> None:
    folder, image = exps / FOLD / RUN, tmp_path / "image.png"
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(image)
    args = ["--run", str(folder), "--round", "2"]
    if make == "no_model":
        args = ["--run", str(exps / FOLD / "WSL-seed_0")]
    elif make == "greyscale":
        Image.fromarray(np.zeros((40, 50), np.uint8)).save(image)
    elif make == "text":
        image.write_text("not an image\n")
    elif make == "not_a_run":
        args = ["--run", str(tmp_path)]
    elif make == "theta0_gone":   # a copy of round 2 whose theta0 is no longer where it was
        copy = tmp_path / "run" / "round_002"
        copy.mkdir(parents=True)
        (copy / "state.json").write_text((folder / "round_002" / "state.json").read_text())
        payload = torch.load(folder / "round_002" / MODEL_FILE, weights_only=True)
        payload["extra"]["theta0"] = str(tmp_path / "moved.pt")
        torch.save(payload, copy / MODEL_FILE)
        args = ["--run", str(copy.parent)]
    with pytest.raises(SystemExit) as exit_info:
        predict.main([*args, "--device", "cpu", "--images", str(image), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and problem in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_label_studio_tasks_carry_the_masks_as_pre_annotations(exps: Path, tmp_path: Path) -> None:
    image = tmp_path / "images" / "lesion.png"
    image.parent.mkdir()
    Image.open(resolve_path("datasets/synthetic") / load_fold(resolve_path("folds"), "synthetic", 0, 0).test[0].image) \
        .save(image)
    predict.main(["--run", str(exps / FOLD / RUN), "--device", "cpu", "--images", str(image.parent),
                  "--out", str(tmp_path / "out"), "--label_studio"])
    tasks = json.loads((tmp_path / "out" / "label_studio_tasks.json").read_text())
    assert tasks[0]["data"]["image"] == "/data/local-files/?d=lesion.png"
    result = tasks[0]["predictions"][0]["result"]
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / "lesion.png")) > 0
    assert mask.any() and len(result) == 1 and result[0]["value"]["brushlabels"] == ["foreground"]
    assert tasks[0]["predictions"][0]["model_version"] == f"{RUN} round 2"
    assert (tmp_path / "out" / "label_studio_config.xml").is_file()


def test_a_missing_round_model_says_how_to_keep_one(exps: Path) -> None:
    with pytest.raises(RoundModelError, match="--keep_models all"):
        load_round_model(exps / FOLD / RUN / "round_009" / MODEL_FILE)


def test_a_classification_round_model_classifies_new_images_as_the_round_measured(tmp_path: Path) -> None:
    exps = tmp_path / "exps"
    main.main(["--yaml", "digits.yaml", "--max_epochs", "3", "--progress", "false", "--device", "cpu",
               "--deterministic", "true", "--exp_root", str(exps), "--al_type", "Random", "--al_it", "0"])
    fold = load_fold(resolve_path("folds"), "digits", 0, 0)
    images, _ = gather(read_arrays("digits"), fold.test)
    for record, image in zip(fold.test, images):
        Image.fromarray(image[..., 0]).save(tmp_path / f"{record.id}.png")   # greyscale, as the set is
    folder = exps / "digits" / "split_0-fold_0" / "Random-seed_0"
    predict.main(["--run", str(folder), "--device", "cpu", "--images", str(tmp_path), "--out", str(tmp_path / "out")])
    rows = {row["image"]: row["predicted_class"] for row in csv.DictReader((tmp_path / "out" / "probabilities.csv").open())}
    accuracy = np.mean([rows[f"{r.id}.png"] == r.label for r in fold.test])
    state = json.loads((folder / "round_000" / "state.json").read_text())
    assert 100 * accuracy == pytest.approx(state["metrics"]["test"]["acc"])
    assert not (tmp_path / "out" / "masks").exists()
    colour = tmp_path / "colour.png"
    Image.fromarray(images[0]).save(colour)
    with pytest.raises(SystemExit):
        predict.main(["--run", str(folder), "--device", "cpu", "--images", str(colour), "--out", str(tmp_path / "o2")])


def test_a_segmentation_round_model_writes_label_maps_at_the_images_size(tmp_path: Path) -> None:
    exps, data = tmp_path / "exps", tmp_path / "scenes"
    main.main(["--yaml", "scenes.yaml", "--max_epochs", "1", "--progress", "false", "--device", "cpu",
               "--image_height", "32", "--image_width", "32", "--seg_width", "4", "--seg_n_start", "4",
               "--data_root", str(data), "--exp_root", str(exps), "--al_type", "Random", "--al_it", "0"])
    record = load_fold(resolve_path("folds"), "scenes", 0, 0).test[0]
    predict.main(["--run", str(exps / "scenes" / "split_0-fold_0" / "Random-seed_0"), "--device", "cpu",
                  "--images", str(data / record.image), "--out", str(tmp_path / "out")])
    label = np.asarray(Image.open(tmp_path / "out" / "masks" / f"{Path(record.image).stem}.png"))
    with Image.open(data / record.image) as image:
        assert label.shape == (image.height, image.width)
    assert label.max() < len(load_round_model(next(exps.rglob(MODEL_FILE))).classes)
    (row,) = csv.DictReader((tmp_path / "out" / "probabilities.csv").open())
    assert sum(float(v) for k, v in row.items() if k not in ("image", "predicted_class")) == pytest.approx(1, abs=1e-4)
