"""The segmentation task end to end on the synthetic scenes (tiny settings): rounds, every strategy it runs,
determinism, refusals, models by name, and the figures."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import synthetic_runs
import torch

import constants as C
import main
import plot_active_learning_curves
from al.regions import partial_label
from models.segmentation import SegmentationModelError, build_segmentation_model

FOLD = Path("scenes") / "split_0-fold_0"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("seg")
    return ["--yaml", "scenes.yaml", "--max_epochs", "2", "--progress", "false", "--device", "cpu",
            "--deterministic", "true", "--mcdropout_t", "2", "--ensemble_size", "2", "--image_height", "32",
            "--image_width", "32", "--seg_width", "4", "--seg_n_start", "4", "--seg_n_new", "4",
            "--data_root", str(root / "scenes"), "--exp_root", str(root / "exps")]


def states(base: list[str], exp_id: str) -> list[dict]:
    return synthetic_runs.states(Path(base[base.index("--exp_root") + 1]), exp_id, FOLD)


def test_entropy_rounds_grow_the_labelled_set_and_print_miou(base: list[str], capsys: pytest.CaptureFixture) -> None:
    main.main([*base, "--al_type", "Entropy", "--al_it", "0", "--al_it_end", "2", "--exp_id", "entropy"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("round ")]
    assert len(lines) == 3 and all("test mIoU" in line and "pixel acc" in line for line in lines)
    runs = states(base, "entropy")
    assert [len(s["labelled"]) for s in runs] == [4, 8, 12]
    for before, after in itertools.pairwise(runs):
        assert not set(before["selected"]) & set(before["labelled"])
        assert sorted(after["labelled"]) == sorted(before["labelled"] + before["selected"])
    test = runs[-1]["metrics"]["test"]
    assert 0 <= test["miou"] <= 100 and set(test["per_class_iou"]) == {"background", "disc", "square", "triangle"}
    assert runs[0]["task"] == C.TASK_SEGMENTATION and len(runs[0]["scores"]) == 76 - 4
    assert runs[0]["annotations"] == {i: {"source": "simulated", "reference": None, "lead_time": None}
                                      for i in runs[0]["labelled"]}


def test_same_seed_same_selections_and_metrics(base: list[str]) -> None:
    for exp_id in ("again-1", "again-2"):
        main.main([*base, "--al_type", "MC_Dropout", "--al_it", "0", "--al_it_end", "1", "--exp_id", exp_id])
    assert states(base, "again-1") == states(base, "again-2")


@pytest.mark.parametrize("method", [C.RANDOM, C.LEAST_CONFIDENCE, C.MARGIN, C.MC_ENTROPY, C.MC_BALD, C.ENSEMBLE,
                                    C.CORESET])
def test_every_strategy_of_the_task_picks_its_batch(base: list[str], method: str) -> None:
    main.main([*base, "--al_type", method, "--al_it", "0"])
    (state,) = states(base, f"{method}-seed_0")
    assert len(state["selected"]) == 4 and not set(state["selected"]) & set(state["labelled"])
    assert state["best"]["member"] in ((0, 1) if method == C.ENSEMBLE else (0,))


def test_full_sup_labels_the_whole_pool_in_one_round(base: list[str]) -> None:
    main.main([*base, "--al_type", C.FULL_SUP, "--al_it", "0"])
    (state,) = states(base, "Full_sup-seed_0")
    assert len(state["labelled"]) == 76 and state["exhausted"] and state["selected"] == []


@pytest.mark.parametrize(("args", "message"), [
    (["--al_type", C.WSL], "runs on the joint task only"),
    (["--al_type", C.HU], "does not run on the segmentation task"),
    (["--hu_ridge", "1"], "applies to the joint and classification task"),
    (["--oracle_answers", "answers"], "read only when a person is the oracle"),
    (["--dataset", "ph2"], "dataset ph2 has no segmentation labels"),
    (["--al_type", C.MC_DROPOUT, "--seg_dropout", "0"], "pass --seg_dropout 0.2"),
    (["--seg_model", "deeplabv3_resnet5O"], "did you mean deeplabv3_resnet50"),
    (["--seg_model", "unet", "--seg_weights_path", "w.pt"], "the unet has no published weights"),
    (["--seg_model", "lraspp_mobilenet_v3_large", "--seg_weights_path", "/nonexistent/w.pt"], "does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(base: list[str], tmp_path: Path, capsys: pytest.CaptureFixture,
                                          args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main.main([*base, "--exp_root", str(tmp_path / "exps"), *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "exps" / FOLD).exists() or not any((tmp_path / "exps" / FOLD).rglob("state.json"))


def test_a_torchvision_model_starts_from_a_local_state_dict(tmp_path: Path) -> None:
    torch.manual_seed(0)
    trained = build_segmentation_model("lraspp_mobilenet_v3_large", 4)
    torch.save(trained.net.state_dict(), tmp_path / "same.pt")
    loaded = build_segmentation_model("lraspp_mobilenet_v3_large", 4, weights_path=tmp_path / "same.pt")
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), loaded.state_dict().values()))
    # Another number of classes: the backbone is taken, the classifier layers (other shapes) are not.
    other = build_segmentation_model("lraspp_mobilenet_v3_large", 7, weights_path=tmp_path / "same.pt")
    assert torch.equal(other.net.backbone["0"][0].weight, trained.net.backbone["0"][0].weight)
    assert other.net.classifier.low_classifier.weight.shape[0] == 7
    torch.save({"unrelated": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(SegmentationModelError, match="no tensor of"):
        build_segmentation_model("lraspp_mobilenet_v3_large", 4, weights_path=tmp_path / "foreign.pt")
    x = torch.rand(2, 3, 40, 56)
    assert loaded.eval()(x).shape == (2, 4, 40, 56) and loaded.features(x).shape == (2, 960)


def test_the_figures_draw_miou(base: list[str], tmp_path: Path) -> None:
    exp_root = base[base.index("--exp_root") + 1]
    for args in (["--al_type", C.ENTROPY, "--al_it", "0", "--al_it_end", "2", "--exp_id", "entropy"],
                 ["--al_type", C.FULL_SUP, "--al_it", "0"]):
        main.main([*base, *args])   # finished rounds (of the tests above) are skipped
    runs = [str(Path(exp_root) / FOLD / name) for name in ("entropy", "Full_sup-seed_0")]
    assert plot_active_learning_curves.main(["--dataset", "scenes", "--runs", *runs, "--out", str(tmp_path)]) in (None, 0)
    table = (tmp_path / "scenes-auc.md").read_text()
    assert table.startswith("AUC of test mIoU (%) on scenes") and "| Entropy |" in table
    assert (tmp_path / "scenes-miou-test.png").is_file()
    assert (tmp_path / "scenes-rounds.csv").read_text().splitlines()[0].split(",")[4] == "test_miou_mean"


def test_region_rounds_reveal_superpixels_and_train_on_partial_label_maps(base: list[str]) -> None:
    main.main([*base, "--al_type", C.ENTROPY, "--annotation_unit", "region", "--regions_per_image", "8",
               "--al_it", "0", "--al_it_end", "2", "--exp_id", "regions"])
    runs = states(base, "regions")
    assert [len(s["labelled"]) for s in runs] == [4, 4, 4] and all(s["unit"] == "region" for s in runs)
    picked = runs[0]["selected_regions"]
    assert sum(map(len, picked.values())) == 4 * 8            # seg_n_new images' worth of regions
    assert runs[1]["revealed"] == picked                      # round 1 trains on them
    revealed_2 = {u: sorted(set(runs[1]["revealed"].get(u, [])) | set(runs[1]["selected_regions"].get(u, [])))
                  for u in set(runs[1]["revealed"]) | set(runs[1]["selected_regions"])}
    assert runs[2]["revealed"] == revealed_2
    for u, ks in runs[1]["selected_regions"].items():         # never a region twice
        assert not set(ks) & set(runs[1]["revealed"].get(u, []))
    per_image = 32 * 32
    assert runs[0]["pixels_annotated"] == 4 * per_image
    assert runs[0]["pixels_annotated"] < runs[1]["pixels_annotated"] < runs[2]["pixels_annotated"]
    assert runs[0]["n_pixels"] == 76 * per_image


def test_partial_label_maps_ignore_what_is_not_revealed() -> None:
    label = torch.tensor([[0, 3, 2], [1, 1, 0]], dtype=torch.uint8)
    regions = torch.tensor([[0, 0, 1], [2, 2, 1]])
    assert partial_label(label, regions, {1}).tolist() == [[255, 255, 2], [255, 255, 0]]
    assert partial_label(label, regions, {0, 2}).tolist() == [[0, 3, 255], [1, 1, 255]]
