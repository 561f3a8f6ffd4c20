"""Every acquisition strategy through main.py on the synthetic set: 3 rounds, rerun identically,
and the bad inputs each strategy refuses before anything is written."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from synthetic_runs import FOLD, run, states, tree

import constants as C
from al.methods import METHODS
from al.strategies import STRATEGIES

NEW_STRATEGIES = (C.LEAST_CONFIDENCE, C.MARGIN, C.MC_ENTROPY, C.MC_BALD, C.ENSEMBLE, C.CORESET, C.HU, C.HU_KNN,
                  C.LL4AL, C.DAL)
# Small settings the tiny runs need (2 epochs: the loss-prediction module detaches after the first).
SMALL = ("--ensemble_size", "2", "--ll4al_detach_epoch", "1", "--dal_max_epochs", "50")


@pytest.fixture(scope="module")
def exp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("strategies")
    run(root, "--al_type", "WSL", "--MYSEED", "0", "--max_epochs", "1")
    run(root, "--al_type", "Random", "--al_it", "0", "--exp_id", "random")
    return root


def test_every_method_names_a_registered_strategy() -> None:
    assert set(METHODS) == set(C.METHODS)
    for method in METHODS.values():
        assert method.strategy is None or method.strategy in STRATEGIES
    assert {m.strategy for m in METHODS.values() if m.strategy} == set(STRATEGIES)


@pytest.mark.parametrize("method", NEW_STRATEGIES)
def test_three_rounds_rerun_identically(exp_root: Path, method: str) -> None:
    for exp_id in (f"{method}-a", f"{method}-b"):
        run(exp_root, "--al_type", method, "--al_it", "0", "--al_it_end", "2", "--exp_id", exp_id, *SMALL)
    first, again = states(exp_root, f"{method}-a"), states(exp_root, f"{method}-b")
    assert [s["n_labelled"] for s in first] == [6, 9, 12]
    assert first == again
    random_l0 = states(exp_root, "random")[0]["labelled"]
    assert first[0]["labelled"] == random_l0
    for state in first:
        assert len(state["selected"]) == 3 and not set(state["selected"]) & set(state["labelled"])
        # Every candidate is scored (DAL scores the sampled U' of each sub-batch), and the pick is scored.
        candidates = set(_labels()) - set(state["labelled"])
        assert set(state["scores"]) <= candidates
        assert method == C.DAL or set(state["scores"]) == candidates
        assert set(state["selected"]) <= set(state["scores"])
        assert all(np.isfinite(v) for v in state["scores"].values())


def test_scoring_strategies_pick_the_top_of_each_class(exp_root: Path) -> None:
    for method in (C.MARGIN, C.HU_KNN, C.MC_BALD):
        state = states(exp_root, f"{method}-a")[1]
        labels = _labels()
        for chosen in state["selected"]:
            same_class = [v for i, v in state["scores"].items() if labels[i] == labels[chosen]]
            assert state["scores"][chosen] == max(same_class)


def test_ensemble_reports_its_best_member(exp_root: Path) -> None:
    ensemble, random = states(exp_root, f"{C.ENSEMBLE}-a")[0], states(exp_root, "random")[0]
    assert set(ensemble["history"]) == {"cycle0", "cycle0_member1"}
    # Member 0 trains exactly as the single model of the other strategies does.
    assert ensemble["history"]["cycle0"] == random["history"]["cycle0"]
    scores = {0: max(ensemble["history"]["cycle0"]["valid"]), 1: max(ensemble["history"]["cycle0_member1"]["valid"])}
    member = ensemble["best"]["member"]
    assert scores[member] == max(scores.values()) and ensemble["best"]["valid_score"] == scores[member]


def test_ll4al_with_weight_0_trains_the_head_as_random_does(exp_root: Path) -> None:
    run(exp_root, "--al_type", C.LL4AL, "--al_it", "0", "--exp_id", "ll4al-w0", "--ll4al_weight", "0", *SMALL)
    (ll4al,), random = states(exp_root, "ll4al-w0"), states(exp_root, "random")[0]
    assert ll4al["history"] == random["history"] and ll4al["metrics"] == random["metrics"]
    assert ll4al["selected"] != random["selected"]  # picked by predicted loss, not at random
    trained = states(exp_root, f"{C.LL4AL}-a")[0]
    assert trained["history"]["cycle0"]["loss"] != random["history"]["cycle0"]["loss"]


@pytest.mark.parametrize("method", [C.ENTROPY, C.RANDOM, C.MC_BALD])
def test_region_level_rounds_reveal_regions_and_rerun_identically(exp_root: Path, method: str) -> None:
    for exp_id in (f"region-{method}-a", f"region-{method}-b"):
        run(exp_root, "--al_type", method, "--al_it", "0", "--al_it_end", "2", "--exp_id", exp_id,
            "--annotation_unit", "region", "--regions_per_image", "8")
    first, again = states(exp_root, f"region-{method}-a"), states(exp_root, f"region-{method}-b")
    assert first == again and [s["unit"] for s in first] == ["region"] * 3
    l0 = states(exp_root, "random")[0]["labelled"]
    revealed: dict[str, set[int]] = {}
    for state in first:
        assert state["labelled"] == l0  # whole images stay L0; the oracle reveals regions of the others
        assert {u: set(k) for u, k in state["revealed"].items()} == revealed
        picked = state["selected_regions"]
        assert sum(map(len, picked.values())) == 3 * 8  # 3 images' worth of regions per round
        assert not set(picked) & set(l0)
        for u, ks in picked.items():
            assert not set(ks) & revealed.get(u, set())
            revealed.setdefault(u, set()).update(ks)
        assert sorted(picked) == state["selected"]
    pixels = [s["percent_pixels"] for s in first]
    assert pixels[0] == pytest.approx(100 * 6 / 75) and pixels[0] < pixels[1] < pixels[2]


def test_region_budget_in_pixels_matches_image_level_pixels(exp_root: Path) -> None:
    run(exp_root, "--al_type", C.ENTROPY, "--al_it", "0", "--al_it_end", "1", "--exp_id", "region-pixels",
        "--annotation_unit", "region", "--regions_per_image", "8", "--region_budget", "pixels")
    first, second = states(exp_root, "region-pixels")
    # 3 images of 80 x 80 px per round: at most that many pixels, and at least one region.
    gained = (second["percent_pixels"] - first["percent_pixels"]) / 100 * 75 * 80 * 80
    assert 0 < gained <= 3 * 80 * 80 + 1e-6


def test_hu_with_the_pca_search_runs(exp_root: Path) -> None:
    run(exp_root, "--al_type", C.HU, "--al_it", "0", "--exp_id", "hu-pca", "--hu_pca_search", "true",
        "--hu_pca_dim", "2")
    (state,) = states(exp_root, "hu-pca")
    assert len(state["selected"]) == 3 and all(np.isfinite(v) for v in state["scores"].values())


def _labels() -> dict[str, str]:
    with open(Path(__file__).resolve().parents[1] / "folds" / "synthetic" / "split_0" / "fold_0" / "train.csv") as f:
        return {row["id"]: row["label"] for row in csv.DictReader(f)}


@pytest.mark.parametrize(("args", "words"), [
    (("--al_type", "Nope"), "al_type"),
    (("--al_type", C.ENSEMBLE, "--ensemble_size", "1"), "ensemble_size"),
    (("--al_type", C.HU, "--hu_pca_dim", "600"), "hu_pca_dim"),
    (("--al_type", C.HU, "--hu_pca_dim", "7"), "hu_pca_dim"),          # more than the 6 labelled images
    (("--al_type", C.CORESET, "--p_init_samples", "0"), "p_init_samples"),
    (("--al_type", C.HU, "--p_init_samples", "0"), "p_init_samples"),
    (("--al_type", C.HU, "--p_init_samples", "4"), "p_init_samples"),   # one labelled image per class
    (("--al_type", C.HU_KNN, "--hu_knn_k", "7"), "hu_knn_k"),
    (("--al_type", C.LL4AL, "--ll4al_detach_epoch", "3"), "ll4al_detach_epoch"),  # past max_epochs 2
    (("--al_type", C.LL4AL, "--ll4al_width", "0"), "ll4al_width"),
    (("--al_type", C.LL4AL, "--ll4al_subset", "0"), "ll4al_subset"),
    (("--al_type", C.DAL, "--dal_sub_batches", "0"), "dal_sub_batches"),
    (("--al_type", C.DAL, "--p_init_samples", "0"), "p_init_samples"),
    (("--al_type", C.ENTROPY, "--annotation_unit", "region", "--regions_per_image", "0"), "regions_per_image"),
    (("--al_type", C.CORESET, "--annotation_unit", "region"), "annotation_unit"),
    (("--al_type", C.LABEL_PROP, "--annotation_unit", "region"), "annotation_unit"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(exp_root: Path, capsys: pytest.CaptureFixture,
                                                          args: tuple[str, ...], words: str) -> None:
    before = tree(exp_root)
    with pytest.raises(SystemExit) as info:
        run(exp_root, *args, "--exp_id", "refused")
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2
    assert len(err) == 1 and words in err[0] and "Traceback" not in err[0]
    assert tree(exp_root) == before and not (exp_root / FOLD / "refused").exists()
