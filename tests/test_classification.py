"""The classification task: strategies.md 3-5 through the task's evidence, and whole studies on
scikit-learn's digits through main.py (reruns, patience, warm start, bad input)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_runs import tree
from torch import nn

import constants as C
import main
from al.strategies import build_strategy
from al.strategies.base import Evidence, StrategySettings
from engine.classification import MEAN, STD, ClassificationData, ResidentSet, augmented, gather_evidence
from gen_configs import build_scripts
from models.classifier import ClassifierOutput

TINY = ["--yaml", "digits.yaml", "--max_epochs", "3", "--progress", "false", "--device", "cpu",
        "--mcdropout_t", "3", "--ensemble_size", "2", "--dal_max_epochs", "20", "--max_al_its", "3"]
DIGITS = Path("digits") / "split_0-fold_0"


class TableModel(nn.Module):
    """Answers fixed class probabilities by the row index written in each image's first pixel; in
    stochastic mode (a dropout layer in training mode) pass t answers table t."""

    def __init__(self, tables: list[list[list[float]]]):
        super().__init__()
        self.tables = torch.tensor(tables, dtype=torch.float64)
        self.dropout = nn.Dropout(0.5)
        self.passes = 0
        self.feature_dim = 2

    def forward(self, x: torch.Tensor) -> ClassifierOutput:
        rows = ((x[:, 0, 0, 0] * STD[0] + MEAN[0]) * 255).round().long()
        table = self.tables[self.passes % len(self.tables)] if self.dropout.training else self.tables[0]
        if self.dropout.training:
            self.passes += 1
        probs = table[rows]
        return ClassifierOutput(logits=probs.log().float(), features=probs.float())


def _data(n: int) -> ClassificationData:
    images = torch.zeros(n, 3, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    pool = ResidentSet([f"x{i}" for i in range(n)], images, torch.zeros(n, dtype=torch.long))
    return ClassificationData(fold=None, train=pool, valid=pool, test=pool, flippable=False)


def _scores(method: str, members: list[nn.Module], n: int) -> np.ndarray:
    strategy = build_strategy(method, StrategySettings(mc_passes=2, ensemble_score=C.SCORE_BALD))
    evidence = Evidence(candidates=[f"x{i}" for i in range(n)], candidate_labels=np.zeros(n, dtype=np.int64),
                        labelled=[], labelled_labels=np.zeros(0, dtype=np.int64))
    gather_evidence(strategy, members, _data(n), evidence, list(range(n)), [], 64, mc_seed=0)
    return evidence.image_scores


def test_one_pass_scores_follow_strategies_3() -> None:
    model = TableModel([[[.8, .1, .1], [.45, .45, .10], [.4, .3, .3]]])
    np.testing.assert_allclose(_scores(C.LEAST_CONFIDENCE, [model], 3), [.20, .55, .60], atol=1e-6)
    np.testing.assert_allclose(_scores(C.MARGIN, [model], 3), [1 - .70, 1 - .00, 1 - .10], atol=1e-6)
    np.testing.assert_allclose(_scores(C.ENTROPY, [model], 3), [.6390, .9489, 1.0889], atol=1e-4)


def test_mc_passes_and_members_follow_strategies_4_and_5() -> None:
    passes = [[[.9, .1], [.5, .5], [.9, .1]], [[.1, .9], [.5, .5], [.9, .1]]]
    np.testing.assert_allclose(_scores(C.MC_ENTROPY, [TableModel(passes)], 3), [.6931, .6931, .3251], atol=1e-4)
    np.testing.assert_allclose(_scores(C.MC_BALD, [TableModel(passes)], 3), [.3681, 0, 0], atol=1e-4)
    members = [TableModel([table]) for table in passes]
    np.testing.assert_allclose(_scores(C.ENSEMBLE, members, 3), [.3681, 0, 0], atol=1e-4)


def _run(root: Path, *args: str) -> None:
    main.main([*TINY, "--exp_root", str(root), *args])


def _states(root: Path, exp_id: str) -> list[dict]:
    out = []
    for path in sorted((root / DIGITS / exp_id).glob("round_[0-9][0-9][0-9]/state.json")):
        state = json.loads(path.read_text())
        state.pop("timings")
        out.append(state)
    return out


STRATEGIES = (C.RANDOM, C.LEAST_CONFIDENCE, C.MARGIN, C.ENTROPY, C.MC_DROPOUT, C.MC_ENTROPY, C.MC_BALD, C.ENSEMBLE,
              C.CORESET, C.HU, C.HU_KNN, C.DAL)


@pytest.mark.parametrize("method", STRATEGIES)
def test_three_rounds_on_digits_rerun_identically(tmp_path: Path, method: str) -> None:
    for exp_id in ("a", "b"):
        _run(tmp_path, "--al_type", method, "--al_it", "0", "--al_it_end", "2", "--exp_id", exp_id)
    first, again = _states(tmp_path, "a"), _states(tmp_path, "b")
    assert first == again
    assert [s["n_labelled"] for s in first] == [20, 30, 40]
    assert [s["stop_reason"] for s in first] == [None, None, C.STOP_ROUNDS]
    for state in first[:2]:
        assert len(state["selected"]) == 10 and not set(state["selected"]) & set(state["labelled"])
        assert set(state["selected"]) <= set(state["scores"]) or method == C.RANDOM
        assert method in (C.RANDOM, C.DAL) or len(state["scores"]) == 1143 - state["n_labelled"]
    test = first[-1]["metrics"]["test"]
    assert test["n"] == 364 and np.array(test["confusion"]).sum() == 364
    assert test["acc"] == pytest.approx(100 * np.trace(test["confusion"]) / 364)


def test_ll4al_trains_its_loss_module_on_a_resnet(tmp_path: Path) -> None:
    _run(tmp_path, "--al_type", C.LL4AL, "--model", "resnet18", "--max_epochs", "2", "--ll4al_detach_epoch", "1",
         "--ll4al_width", "8", "--max_al_its", "2", "--al_it", "0", "--al_it_end", "1")
    first = _states(tmp_path, "LL4AL-seed_0")[0]
    assert len(first["selected"]) == 10 and len(first["scores"]) == 1143 - 20
    assert len(set(first["scores"].values())) > 1


def test_l0_holds_n_start_per_class_and_is_shared_by_every_method_of_a_seed(tmp_path: Path) -> None:
    _run(tmp_path, "--al_type", C.RANDOM, "--al_it", "0")
    _run(tmp_path, "--al_type", C.MARGIN, "--al_it", "0")
    _run(tmp_path, "--al_type", C.MARGIN, "--al_it", "0", "--MYSEED", "1")
    _run(tmp_path, "--al_type", C.MARGIN, "--al_it", "0", "--init_sampling_seed", "1", "--exp_id", "drawn-by-1")
    (random,), (margin,), (other,), (drawn,) = (_states(tmp_path, e) for e in (
        "Random-seed_0", "Margin-seed_0", "Margin-seed_1", "drawn-by-1"))
    assert random["labelled"] == margin["labelled"] != other["labelled"] == drawn["labelled"]
    assert random["metrics"] == margin["metrics"]  # same L0, same seed: the same model
    with open(Path(__file__).resolve().parents[1] / "folds" / "digits" / "split_0" / "fold_0" / "train.csv") as f:
        label = {row["id"]: row["label"] for row in csv.DictReader(f)}
    assert sorted(Counter(label[i] for i in random["labelled"]).values()) == [2] * 10


def test_warm_start_continues_from_the_previous_weights_and_patience_stops(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    # lr 0: the weights never change, so a warm start repeats round 0's accuracy and patience 1 stops at round 1.
    _run(tmp_path, "--al_type", C.ENTROPY, "--lr", "0", "--warm_start", "true", "--patience", "1",
         "--max_al_its", "5", "--al_it", "0", "--al_it_end", "4", "--exp_id", "warm", "--keep_models", "none")
    warm = _states(tmp_path, "warm")
    assert len(warm) == 2 and warm[1]["stop_reason"] == C.STOP_PATIENCE and warm[1]["exhausted"]
    assert warm[1]["metrics"]["valid"] == warm[0]["metrics"]["valid"]
    assert "the study stopped at round 1 (patience)" in capsys.readouterr().out
    _run(tmp_path, "--al_type", C.ENTROPY, "--lr", "0", "--patience", "1", "--max_al_its", "5", "--al_it", "0",
         "--al_it_end", "1", "--exp_id", "fresh", "--keep_models", "none")
    fresh = _states(tmp_path, "fresh")
    assert fresh[1]["metrics"]["valid"] != fresh[0]["metrics"]["valid"]  # a new initialisation each round
    # keep_models none: a warm-started run keeps its last round's model for the next round, a fresh one none.
    assert [p.parent.name for p in (tmp_path / DIGITS / "warm").glob("round_*/model.pt")] == ["round_001"]
    assert not list((tmp_path / DIGITS / "fresh").glob("round_*/model.pt"))


def test_full_sup_labels_the_whole_pool_in_one_round(tmp_path: Path) -> None:
    _run(tmp_path, "--al_type", C.FULL_SUP, "--al_it", "0")
    (state,) = _states(tmp_path, "Full_sup-seed_0")
    assert state["n_labelled"] == 1143 and state["exhausted"] and state["task"] == C.TASK_CLASSIFICATION


@pytest.mark.parametrize(("args", "words"), [
    (("--model", "resnet19"), "did you mean resnet18"),
    (("--n_start", "200"), "n_start 200 is more than class"),
    (("--n_new", "0"), "classification.n_new"),
    (("--al_type", C.LABEL_PROP), "joint task only"),
    (("--al_type", C.WSL), "joint task only"),
    (("--scale_seg", "2"), "applies to the joint task only"),
    (("--oracle", "files"), "the classification task has no person oracle yet"),
    (("--oracle_answers", "answers"), "applies to the joint and segmentation task"),
    (("--task", "joint"), "the task comes with the file"),
    (("--pretrained", "true"), "lenet5 has no ImageNet weights"),
    (("--pretrained", "true", "--model", "resnet18", "--weights_dir", "/nonexistent"), "weights not found"),
    (("--al_type", C.LL4AL, "--ll4al_detach_epoch", "1"), "LL4AL needs a ResNet"),
    (("--al_type", C.MC_BALD, "--head_dropout", "0"), "head_dropout"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                          args: tuple[str, ...], words: str) -> None:
    _run(tmp_path, "--al_type", C.RANDOM, "--al_it", "0", "--exp_id", "kept")
    capsys.readouterr()
    before = tree(tmp_path)
    with pytest.raises(SystemExit) as info:
        _run(tmp_path, "--exp_id", "refused", "--al_it", "0", *args)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2
    assert len(err) == 1 and words in err[0] and "Traceback" not in err[0]
    assert tree(tmp_path) == before and not (tmp_path / DIGITS / "refused").exists()


def test_generated_scripts_have_no_stage_1_for_classification() -> None:
    scripts = build_scripts(["digits"], [C.ENTROPY], [0, 1], 3, [], "python", chain=True)
    text = scripts["run-digits-Entropy.sh"]
    assert C.WSL not in text and text.count("--al_it 0 --al_it_end 2") == 2


def test_augmentation_shifts_within_the_padding_and_flips_only_when_allowed() -> None:
    images = torch.zeros(64, 3, 16, 16, dtype=torch.uint8)
    images[:, :, 7, 3] = 255  # one bright pixel, left of centre
    shifted = augmented(images, torch.Generator().manual_seed(0), flip=False)
    again = augmented(images, torch.Generator().manual_seed(0), flip=False)
    assert torch.equal(shifted, again) and shifted.shape == images.shape
    rows, cols = torch.nonzero(shifted[:, 0] == 255, as_tuple=True)[1:]
    assert (rows - 7).abs().max() <= 2 and (cols - 3).abs().max() <= 2 and len(set(cols.tolist())) > 1
    flipped = augmented(images, torch.Generator().manual_seed(0), flip=True)
    assert (torch.nonzero(flipped[:, 0] == 255, as_tuple=True)[2] > 8).any()  # some were mirrored
