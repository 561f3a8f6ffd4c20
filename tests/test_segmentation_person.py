"""A person as the oracle of the segmentation task: K-class label maps asked for (one label per class in
Label Studio, one colour per class in the pictures), answered as PNG label maps or a Label Studio export,
and trained on exactly as the dataset's own maps; bad maps refused before anything is written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from synthetic_runs import tree

import constants as C
import main
from al.brush_rle import encode
from engine.segmentation import load_segmentation_data
from parseit import parse_config

FOLD = Path("scenes") / "split_0-fold_0"
CLASSES = ["background", "disc", "square", "triangle"]
FILES = ["--oracle", "files"]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("seg-person")
    args = ["--yaml", "scenes.yaml", "--max_epochs", "2", "--progress", "false", "--device", "cpu",
            "--deterministic", "true", "--image_height", "32", "--image_width", "32", "--seg_width", "4",
            "--seg_n_start", "4", "--seg_n_new", "4", "--al_type", C.ENTROPY,
            "--data_root", str(root / "scenes"), "--exp_root", str(root / "exps")]
    main.main([*args, "--al_it", "0", "--al_it_end", "1", "--exp_id", "simulated"])
    return args


@pytest.fixture(scope="module")
def true_maps(base: list[str]) -> dict[str, np.ndarray]:
    """The dataset's label maps at the network's resolution: what a perfect annotator paints."""
    data = load_segmentation_data(parse_config(base), torch.device("cpu"))
    return {i: data.train.labels[k].numpy() for k, i in enumerate(data.train.ids)}


def _run_dir(base: list[str], exp_id: str) -> Path:
    return Path(base[base.index("--exp_root") + 1]) / FOLD / exp_id


def _states(base: list[str], exp_id: str) -> list[dict]:
    out = []
    for path in sorted(_run_dir(base, exp_id).glob("round_[0-9][0-9][0-9]/state.json")):
        state = json.loads(path.read_text())
        out.append({k: v for k, v in state.items() if k not in ("timings", "annotations", "annotation_seconds")})
    return out


def _picked(request: Path) -> list[str]:
    with open(request / "ranking.csv") as f:
        return [row["id"] for row in csv.DictReader(f) if row["picked"] == "1"]


def _call(base: list[str], exp_id: str, *args: str) -> int:
    try:
        main.main([*base, "--al_it", "0", "--al_it_end", "1", "--exp_id", exp_id, *FILES, *args])
    except SystemExit as exit_:
        return exit_.code
    return 0


def _latest_request(base: list[str], exp_id: str) -> Path:
    done = sorted(_run_dir(base, exp_id).glob("round_[0-9][0-9][0-9]"))
    return done[-1] / "to_annotate" if done else _run_dir(base, exp_id) / "initial" / "to_annotate"


def _answer_until_done(base: list[str], exp_id: str, maps: dict[str, np.ndarray], *args: str) -> list[int]:
    codes = []
    for _ in range(4):
        codes.append(_call(base, exp_id, *args))
        if codes[-1] != C.EXIT_WAITING:
            return codes
        request = _latest_request(base, exp_id)
        (request / "answers").mkdir(exist_ok=True)
        for i in _picked(request):
            Image.fromarray(maps[i]).save(request / "answers" / f"{i}.png")
    return codes


def test_png_label_maps_give_the_simulated_rounds(base: list[str], true_maps: dict[str, np.ndarray],
                                                  capsys: pytest.CaptureFixture) -> None:
    assert _answer_until_done(base, "pngs", true_maps) == [3, 3, 0]   # L_0, then round 0's pick
    assert "round 0 waits for 4 label maps from a person" in capsys.readouterr().out
    assert _states(base, "pngs") == _states(base, "simulated")
    kept = _run_dir(base, "pngs") / "round_001" / "annotations"
    for path in kept.glob("*.png"):   # kept as label maps, not binarised
        assert np.array_equal(np.asarray(Image.open(path)), true_maps[path.stem])
    assert len(list(kept.glob("*.png"))) == 4


def test_the_request_asks_for_every_class(base: list[str]) -> None:
    request = _run_dir(base, "pngs") / "round_000" / "to_annotate"
    config = (request / "label_studio_config.xml").read_text()
    assert all(config.count(f'<Label value="{name}"') == 2 for name in CLASSES)   # brush and polygon
    tasks = json.loads((request / "label_studio_tasks.json").read_text())
    assert sorted(t["data"]["sample_id"] for t in tasks) == sorted(_picked(request))
    for task in tasks:   # one brush per class the model predicts, to correct
        names = [result["value"]["brushlabels"] for result in task["predictions"][0]["result"]]
        assert names and all(len(n) == 1 and n[0] in CLASSES for n in names) and len(set(map(tuple, names))) == len(names)
    i = tasks[0]["data"]["sample_id"]
    prediction = np.asarray(Image.open(request / "predictions" / f"{i}.png"))
    assert prediction.shape == (32, 32, 3)
    assert np.asarray(Image.open(request / "heatmaps" / f"{i}.png")).shape == (32, 32, 3)
    assert "0 background, 1 disc, 2 square, 3 triangle; 255 unlabelled" in (request / "index.html").read_text()


def _export(request: Path, path: Path, true_maps: dict[str, np.ndarray], names: dict[int, str] | None = None) -> None:
    """A Label Studio export painting each class of the true map with its own brush (background unpainted)."""
    names = names or dict(enumerate(CLASSES))
    exported = []
    for k, task in enumerate(json.loads((request / "label_studio_tasks.json").read_text())):
        label = true_maps[task["data"]["sample_id"]]
        results = [{"type": "brushlabels", "from_name": "mask", "to_name": "image", "original_width": 32,
                    "original_height": 32, "value": {"format": "rle", "rle": encode(label == c),
                                                     "brushlabels": [names[c]]}}
                   for c in range(1, len(CLASSES)) if (label == c).any()]
        exported.append({"id": k, "data": task["data"],
                         "annotations": [{"id": 100 + k, "result": results, "lead_time": 3.0}]})
    path.write_text(json.dumps(exported))


def test_a_label_studio_export_of_class_brushes_gives_the_simulated_round(base: list[str], tmp_path: Path,
                                                                          true_maps: dict[str, np.ndarray]) -> None:
    assert _call(base, "studio") == C.EXIT_WAITING
    _export(_latest_request(base, "studio"), tmp_path / "export.json", true_maps)
    main.main([*base, "--al_it", "0", "--exp_id", "studio", *FILES, "--oracle_answers", str(tmp_path / "export.json")])
    (person,) = _states(base, "studio")
    assert person == _states(base, "simulated")[0]
    state = json.loads((_run_dir(base, "studio") / "round_000" / "state.json").read_text())
    assert state["annotation_seconds"] == 4 * 3.0


@pytest.mark.parametrize("bad", ["value", "class"])
def test_bad_label_maps_are_one_line_exit_2_and_nothing_written(base: list[str], tmp_path: Path, bad: str,
                                                                true_maps: dict[str, np.ndarray],
                                                                capsys: pytest.CaptureFixture) -> None:
    exp_id = f"bad-{bad}"
    assert _call(base, exp_id) == C.EXIT_WAITING
    request = _latest_request(base, exp_id)
    if bad == "value":   # a class index past K - 1
        answers = tmp_path / "answers"
        answers.mkdir()
        for i in _picked(request):
            Image.fromarray(np.where(true_maps[i] == 3, 7, true_maps[i]).astype(np.uint8)).save(answers / f"{i}.png")
        message = "values other than the class indices 0..3 and 255"
    else:                # a brush labelled with a class the dataset does not have
        answers = tmp_path / "export.json"
        _export(request, answers, true_maps, {1: "disc", 2: "sqaure", 3: "triangle"})
        message = "expected one of the classes background, disc, square, triangle"
    before = tree(_run_dir(base, exp_id))
    capsys.readouterr()
    assert _call(base, exp_id, "--oracle_answers", str(answers)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert tree(_run_dir(base, exp_id)) == before


def test_the_person_s_maps_are_what_the_round_trains_on(base: list[str], true_maps: dict[str, np.ndarray]) -> None:
    # Everything painted "disc" (an all-background map would be refused as empty).
    wrong = {i: np.ones_like(m) for i, m in true_maps.items()}
    assert _answer_until_done(base, "all-disc", wrong) == [3, 3, 0]
    person, simulated = _states(base, "all-disc"), _states(base, "simulated")
    assert person[0]["labelled"] == simulated[0]["labelled"]
    assert person[0]["history"] != simulated[0]["history"]


def test_region_answers_give_the_simulated_region_rounds(base: list[str], true_maps: dict[str, np.ndarray]) -> None:
    region = ["--annotation_unit", "region", "--regions_per_image", "8"]
    main.main([*base, "--al_it", "0", "--al_it_end", "1", "--exp_id", "regions-simulated", *region])
    assert _answer_until_done(base, "regions-person", true_maps, *region) == [3, 3, 0]
    person, simulated = _states(base, "regions-person"), _states(base, "regions-simulated")
    assert person == simulated and simulated[1]["revealed"]
