"""End to end through main.py on the synthetic set with tiny settings: rounds, determinism, resume, lock."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest
import torch
from synthetic_runs import run, states

from al.state import RunFolder
from tasks.joint import stage2

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """theta0 of seeds 0 and 1 (stage 1, one epoch), shared by the tests of this module."""
    root = tmp_path_factory.mktemp("exps")
    for seed in ("0", "1"):
        run(root, "--al_type", "WSL", "--MYSEED", seed, "--max_epochs", "1")
    return root


@pytest.fixture(scope="module")
def random_run(exp_root: Path) -> list[dict]:
    run(exp_root, "--al_type", "Random", "--al_it", "0", "--al_it_end", "2", "--exp_id", "rand-a")
    return states(exp_root, "rand-a")


def test_wsl_writes_theta0_and_metrics(exp_root: Path) -> None:
    assert (exp_root / "synthetic" / "split_0-fold_0" / "theta0" / "seed_0.pt").is_file()
    (state,) = states(exp_root, "WSL-seed_0")
    test = state["metrics"]["test"]
    assert state["method"] == "WSL" and state["exhausted"]
    assert 0 <= test["acc"] <= 100 and 0 <= test["dice_idx"] <= 100 and "dice_idx_true_class" in test


def test_random_rounds_grow_the_labelled_set(random_run: list[dict]) -> None:
    assert [s["round"] for s in random_run] == [0, 1, 2]
    assert [s["n_labelled"] for s in random_run] == [6, 9, 12]  # 2 per class, then 1 per class per round
    for before, after in itertools.pairwise(random_run):
        assert set(after["labelled"]) == set(before["labelled"]) | set(before["selected"])
        assert not set(before["selected"]) & set(before["labelled"])
    for state in random_run:
        assert 0.05 <= state["threshold"] <= 0.99
        assert set(state["metrics"]) >= {"valid", "test", "train_labelled"}


def test_same_seed_same_selections_and_metrics(exp_root: Path, random_run: list[dict]) -> None:
    run(exp_root, "--al_type", "Random", "--al_it", "0", "--al_it_end", "2", "--exp_id", "rand-b")
    assert states(exp_root, "rand-b") == random_run


def test_other_seed_other_selections(exp_root: Path, random_run: list[dict]) -> None:
    run(exp_root, "--al_type", "Random", "--MYSEED", "1", "--al_it", "0", "--al_it_end", "1", "--exp_id", "rand-s1")
    other = states(exp_root, "rand-s1")
    assert other[0]["labelled"] != random_run[0]["labelled"]
    assert other[0]["selected"] != random_run[0]["selected"]


def test_every_method_of_a_seed_starts_from_the_same_l0(exp_root: Path, random_run: list[dict]) -> None:
    run(exp_root, "--al_type", "Entropy", "--al_it", "0", "--exp_id", "ent")
    run(exp_root, "--al_type", "MC_Dropout", "--al_it", "0", "--exp_id", "mc")
    entropy, mc = states(exp_root, "ent")[0], states(exp_root, "mc")[0]
    assert entropy["labelled"] == mc["labelled"] == random_run[0]["labelled"]
    with open(REPO / "folds" / "synthetic" / "split_0" / "fold_0" / "train.csv") as handle:
        label_of = {row["id"]: row["label"] for row in csv.DictReader(handle)}
    for state in (entropy, mc):
        # Scored methods score every leftover and pick the highest score of each class.
        assert set(state["scores"]) == set(label_of) - set(state["labelled"])
        assert sorted(label_of[i] for i in state["selected"]) == sorted(set(label_of.values()))
        for chosen in state["selected"]:
            same_class = [state["scores"][i] for i in state["scores"] if label_of[i] == label_of[chosen]]
            assert state["scores"][chosen] == max(same_class)


def test_ctrl_c_mid_round_then_resume_gives_the_same_state(exp_root: Path, random_run: list[dict],
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    real = stage2.acquire

    def interrupt_round_1(cfg, strategy, members, data, infer, candidates, labelled, r, clock):
        if r == 1:
            raise KeyboardInterrupt
        return real(cfg, strategy, members, data, infer, candidates, labelled, r, clock)

    monkeypatch.setattr(stage2, "acquire", interrupt_round_1)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run(exp_root, "--al_type", "Random", "--al_it", "0", "--al_it_end", "2", "--exp_id", "rand-crash")
    assert exit_info.value.code == 130
    assert capsys.readouterr().err.strip().splitlines() == ["interrupted; run the same command again to resume"]
    folder = exp_root / "synthetic" / "split_0-fold_0" / "rand-crash"
    assert (folder / "round_000" / "state.json").is_file()
    # The interrupted round's scratch folder is no finished round: not skipped, not read.
    assert (folder / "round_001.partial").is_dir() and not (folder / "round_001").exists()
    assert RunFolder(folder).done_rounds() == [0]
    monkeypatch.setattr(stage2, "acquire", real)
    run(exp_root, "--al_type", "Random", "--al_it", "0", "--al_it_end", "2", "--exp_id", "rand-crash")
    assert not (folder / "round_001.partial").exists()
    assert states(exp_root, "rand-crash") == random_run


def test_rounds_with_dropout_do_not_depend_on_the_process_history(exp_root: Path) -> None:
    # MC_Dropout trains with dropout, which draws from the global generators: rounds run one per
    # call, after unrelated random work, must equal rounds run in one process.
    mc = ("--al_type", "MC_Dropout", "--backbone_dropout", "0.3")
    run(exp_root, *mc, "--al_it", "0", "--al_it_end", "1", "--exp_id", "mc-one-process")
    for r in ("0", "1"):
        torch.manual_seed(int(r) + 99)
        torch.rand(1000)
        run(exp_root, *mc, "--al_it", r, "--exp_id", "mc-per-call")
    one, per_call = states(exp_root, "mc-one-process"), states(exp_root, "mc-per-call")
    assert len(one) == 2 and one == per_call


def test_finished_round_is_skipped(exp_root: Path, random_run: list[dict], capsys: pytest.CaptureFixture) -> None:
    folder = exp_root / "synthetic" / "split_0-fold_0" / "rand-a" / "round_000" / "state.json"
    before = folder.stat().st_mtime_ns
    run(exp_root, "--al_type", "Random", "--al_it", "0", "--exp_id", "rand-a")
    assert "already finished" in capsys.readouterr().out
    assert folder.stat().st_mtime_ns == before


def test_second_process_on_the_same_run_is_refused(exp_root: Path, random_run: list[dict],
                                                   capsys: pytest.CaptureFixture) -> None:
    with RunFolder(exp_root / "synthetic" / "split_0-fold_0" / "rand-a"), pytest.raises(SystemExit) as exit_info:
        run(exp_root, "--al_type", "Random", "--al_it", "3", "--exp_id", "rand-a")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "in use by another process" in err[0]


def test_changed_configuration_on_resume_is_refused(exp_root: Path, random_run: list[dict],
                                                    capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(exp_root, "--al_type", "Random", "--al_it", "3", "--exp_id", "rand-a", "--lr", "0.5")
    assert exit_info.value.code == 2
    assert "optimizer.lr" in capsys.readouterr().err


def test_round_before_its_predecessor_is_refused(exp_root: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        run(exp_root, "--al_type", "Random", "--al_it", "2", "--exp_id", "rand-gap")
    assert "round 1" in capsys.readouterr().err


def test_missing_theta0_is_one_clear_line_and_leaves_no_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(tmp_path / "exps", "--al_type", "Random")
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and "not found: run the WSL round first" in err[0]
    assert "check that the path" not in err[0]   # its own line, not the one of a folder that cannot be written
    assert not (tmp_path / "exps").exists()      # not even an empty <dataset>/split_0-fold_0


def test_exhausted_pool_ends_the_loop_cleanly(exp_root: Path, capsys: pytest.CaptureFixture) -> None:
    run(exp_root, "--al_type", "Random", "--p_samples", "100", "--al_it", "0", "--al_it_end", "3",
        "--exp_id", "rand-all")
    out = capsys.readouterr().out
    (state,) = states(exp_root, "rand-all")
    assert state["exhausted"] and len(state["selected"]) == state["n_train"] - state["n_labelled"]
    assert "exhausted" in out


def test_label_prop_pseudo_labels_and_reuses_them(exp_root: Path) -> None:
    run(exp_root, "--al_type", "Label_prop", "--al_it", "0", "--al_it_end", "1", "--exp_id", "lp")
    first, second = states(exp_root, "lp")
    folder = exp_root / "synthetic" / "split_0-fold_0" / "lp"
    assert first["n_pseudo_trained"] > 0 and "cycle1" in first["history"]
    assert 0 <= first["metrics"]["pseudo"]["dice_idx"] <= 100
    assert not set(first["pseudo_pairs"]) & (set(first["labelled"]) | set(first["selected"]))
    for u, lab in first["pseudo_pairs"].items():
        assert (folder / "round_000" / "pseudo_masks" / f"{u}.png").is_file()
        assert lab in first["labelled"]
    # Round 1 trains its first cycle on round 0's pseudo-labels.
    assert second["n_pseudo_trained"] >= len(first["pseudo_pairs"])
    assert (exp_root / "synthetic" / "split_0-fold_0" / "knn_cache").is_dir()


def test_full_sup_labels_everything_in_one_round(exp_root: Path) -> None:
    run(exp_root, "--al_type", "Full_sup", "--exp_id", "full")
    (state,) = states(exp_root, "full")
    assert state["n_labelled"] == state["n_train"] and state["exhausted"] and not state["selected"]
