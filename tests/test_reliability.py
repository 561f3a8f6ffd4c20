"""Nothing lost, nothing silently swapped, every bad input one line: theta0 bookkeeping, diverged
training, damaged run folders, bad paths and seeds, two generated scripts at once, fast --help."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from synthetic_runs import FOLD, TINY, run, states, tree

import constants as C
import main
from al.state import BestEpoch, RoundState, RunFolder
from engine.evaluate import Inference
from engine.train import TrainingError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reliability")
    run(root, "--al_type", "WSL", "--MYSEED", "0", "--max_epochs", "1")
    run(root, "--al_type", "Random", "--al_it", "0", "--exp_id", "kept")
    return root


def _refused(root: Path, capsys: pytest.CaptureFixture, *args: str, watch: Path | None = None) -> str:
    """Run a call that must be refused: exit 2, one line, no traceback, no file changed under `watch`."""
    watch = watch or root
    capsys.readouterr()
    before = tree(watch)
    with pytest.raises(SystemExit) as info:
        run(root, *args)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2, err
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    assert tree(watch) == before
    return err[0]


def _copy_of_kept(exp_root: Path, exp_id: str) -> Path:
    """A copy of the finished run 'kept' under another exp_id (its config.yaml says so)."""
    folder = exp_root / FOLD / exp_id
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(exp_root / FOLD / "kept", folder)
    config = folder / "config.yaml"
    config.write_text(config.read_text().replace("exp_id: kept", f"exp_id: {exp_id}"))
    return folder


def test_stage_1_never_replaces_a_theta0_that_runs_depend_on(exp_root: Path, capsys: pytest.CaptureFixture) -> None:
    # The fixture's stage 1 ran one epoch: another run of another configuration is refused.
    line = _refused(exp_root, capsys, "--al_type", "WSL", "--MYSEED", "0", "--exp_id", "another-wsl")
    assert "stage-2 runs depend on it" in line and "--path_pre_trained" in line and "with other max_epochs" in line
    assert not (exp_root / FOLD / "another-wsl").exists()


def test_stage_1_of_the_same_configuration_uses_the_theta0_there(exp_root: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    """Another exp_id (another --exp_tag of gen_configs) asking for the same theta0 finds it: nothing trained or
    written, exit code 0."""
    before = tree(exp_root)
    capsys.readouterr()
    run(exp_root, "--al_type", "WSL", "--MYSEED", "0", "--max_epochs", "1", "--exp_id", "WSL-seed_0-tagged")
    out = capsys.readouterr().out
    assert f"was written by {exp_root / FOLD / 'WSL-seed_0'} with this configuration: using it" in out
    assert tree(exp_root) == before and not (exp_root / FOLD / "WSL-seed_0-tagged").exists()


def test_a_run_refuses_to_continue_from_another_theta0(exp_root: Path, capsys: pytest.CaptureFixture,
                                                      tmp_path: Path) -> None:
    run(exp_root, "--al_type", "Random", "--al_it", "0", "--exp_id", "swapped")
    (first,) = states(exp_root, "swapped")
    theta0 = exp_root / FOLD / "theta0" / "seed_0.pt"
    assert first["theta0_sha256"] and len(first["theta0_sha256"]) == 64
    saved = tmp_path / "theta0.pt"
    shutil.copy(theta0, saved)
    payload = torch.load(theta0, weights_only=True)
    payload["state_dict"] = {k: v + 1 if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    torch.save(payload, theta0)
    try:
        line = _refused(exp_root, capsys, "--al_type", "Random", "--al_it", "1", "--exp_id", "swapped",
                        watch=exp_root / FOLD / "swapped")
        assert "is not the theta0 this run started from" in line
    finally:
        shutil.copy(saved, theta0)


def test_theta0_of_another_fold_is_refused(exp_root: Path, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    payload = torch.load(exp_root / FOLD / "theta0" / "seed_0.pt", weights_only=True)
    payload["meta"]["fold"] = 3
    other = tmp_path / "other.pt"
    torch.save(payload, other)
    line = _refused(exp_root, capsys, "--al_type", "Random", "--al_it", "0", "--exp_id", "other-fold",
                    "--path_pre_trained", str(other))
    assert "was trained for another run: fold 3 (run: 0)" in line


def test_a_diverged_round_stops_with_one_line_and_writes_nothing(exp_root: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    line = _refused(exp_root, capsys, "--al_type", "Random", "--al_it", "0", "--exp_id", "diverged", "--lr", "1e30",
                    watch=exp_root / FOLD / "kept")
    assert "the training loss became" in line and "at epoch" in line and "--lr" in line
    assert not list((exp_root / FOLD / "diverged").glob("round_*"))
    # The run folder says which round stopped it, so that the study's curve checks report the lost run.
    assert RunFolder(exp_root / FOLD / "diverged").failure() == (0, line.removeprefix("error: "))


def test_a_spike_that_diverged_without_clipping_trains_with_the_default_clipping(exp_root: Path,
                                                                                 capsys: pytest.CaptureFixture) -> None:
    # Found while investigating: at lr 4 a step's gradient spikes (norm 4e4), SGD with momentum overshoots and the
    # loss becomes NaN in epoch 3; the default --grad_clip_norm (5) caps each step and the round finishes.
    spiky = ("--al_type", "Random", "--al_it", "0", "--lr", "4", "--batch_size", "3", "--max_epochs", "5")
    line = _refused(exp_root, capsys, *spiky, "--grad_clip_norm", "0", "--exp_id", "unclipped",
                    watch=exp_root / FOLD / "kept")
    assert "the training loss became nan" in line and "--grad_clip_norm, now 0, off" in line
    run(exp_root, *spiky, "--exp_id", "clipped")
    (state,) = states(exp_root, "clipped")
    assert max(state["history"]["cycle0"]["grad_norm"]) > 5   # the spike happened, and was capped
    assert all(math.isfinite(x) for x in state["history"]["cycle0"]["loss"])


def test_a_diverged_bf16_round_runs_again_in_fp32_and_records_it(tmp_path: Path) -> None:
    calls = []

    def attempt(infer: Inference, retried: str | None) -> str:
        calls.append((infer.bf16, retried))
        if infer.bf16:
            raise TrainingError("Random r0 c0: the training loss became nan at epoch 26")
        return "finished"

    with RunFolder(tmp_path / "run") as run:
        assert main.with_fp32_retry(attempt, Inference(torch.device("cuda"), bf16=True), run, 0) == "finished"
        assert calls == [(True, None), (False, "Random r0 c0: the training loss became nan at epoch 26")]
        assert run.failure() is None


def test_a_divergence_without_bf16_stops_the_run_and_finishing_the_round_clears_it(tmp_path: Path) -> None:
    def attempt(infer: Inference, retried: str | None) -> str:
        raise TrainingError(f"diverged (bf16 {infer.bf16})")

    with RunFolder(tmp_path / "run") as run:
        for infer, last in ((Inference(torch.device("cpu"), bf16=True), "diverged (bf16 True)"),   # bf16 is CUDA only
                            (Inference(torch.device("cuda"), bf16=True), "diverged (bf16 False)")):  # fp32 retry too
            with pytest.raises(TrainingError):
                main.with_fp32_retry(attempt, infer, run, 2)
            assert run.failure() == (2, last)
        partial = run.begin_round(2)
        run.finish_round(2, partial, RoundState(round=2, method="Random", seed=0, dataset="synthetic", n_train=4,
                                                labelled=[], selected=[], exhausted=False,
                                                best=BestEpoch(0, 0, 0.0), metrics={}, history={}))
        assert run.failure() is None


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_non_finite_float_values_are_refused(exp_root: Path, capsys: pytest.CaptureFixture, value: str) -> None:
    assert "optimizer.lr" in _refused(exp_root, capsys, "--al_type", "Random", "--lr", value)


def test_config_is_saved_only_after_the_data_checks(exp_root: Path, capsys: pytest.CaptureFixture) -> None:
    line = _refused(exp_root, capsys, "--al_type", "Random", "--al_it", "0", "--exp_id", "fixed",
                    "--crop_size", "16", "--ratio_scale_patch", "0.5")
    assert "raise --crop_size" in line and not (exp_root / FOLD / "fixed").exists()
    run(exp_root, "--al_type", "Random", "--al_it", "0", "--exp_id", "fixed")  # the corrected command runs
    assert len(states(exp_root, "fixed")) == 1


@pytest.mark.parametrize(("edit", "words"), [
    (lambda s: s.update(labelled=[*s["labelled"], "disc_9999"]), "not in the train set"),
    (lambda s: s.pop("selected"), "key 'selected' is missing"),
    (lambda s: s.update(selected="disc_0001"), "key 'selected' has type str"),
    (lambda s: s.update(selected=[*s["selected"], s["labelled"][0]]), "which is already labelled"),
    (lambda s: s.update(selected=[*s["selected"], s["selected"][0]]), "twice in 'selected'"),
])
def test_a_hand_edited_state_is_refused(exp_root: Path, capsys: pytest.CaptureFixture, edit, words: str) -> None:
    folder = _copy_of_kept(exp_root, "edited")
    path = folder / "round_000" / "state.json"
    state = json.loads(path.read_text())
    edit(state)
    path.write_text(json.dumps(state))
    assert words in _refused(exp_root, capsys, "--al_type", "Random", "--al_it", "1", "--exp_id", "edited",
                             watch=folder)


def test_a_truncated_state_of_a_finished_round_is_noticed(exp_root: Path, capsys: pytest.CaptureFixture) -> None:
    folder = _copy_of_kept(exp_root, "truncated")
    path = folder / "round_000" / "state.json"
    path.write_text(path.read_text()[:200])
    assert "is corrupt" in _refused(exp_root, capsys, "--al_type", "Random", "--al_it", "0", "--exp_id",
                                    "truncated", watch=folder)


@pytest.mark.parametrize("content", ["", "al_type: [unclosed\n", "just text\n"])
def test_a_corrupt_or_empty_run_config_is_refused(exp_root: Path, capsys: pytest.CaptureFixture,
                                                  content: str) -> None:
    folder = _copy_of_kept(exp_root, "bad-config")
    (folder / "config.yaml").write_text(content)
    assert "is empty or corrupt" in _refused(exp_root, capsys, "--al_type", "Random", "--al_it", "1", "--exp_id",
                                             "bad-config", watch=folder)


def test_paths_that_are_files_or_cannot_be_written(exp_root: Path, capsys: pytest.CaptureFixture,
                                                   tmp_path: Path) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    assert "cannot use" in _refused(tmp_path, capsys, "--al_type", "Random", "--exp_root", str(a_file))
    assert "cannot use" in _refused(exp_root, capsys, "--al_type", "Random", "--exp_id", "cache",
                                    "--cache_dir", str(a_file))
    assert "cannot use" in _refused(tmp_path, capsys, "--al_type", "Random", "--exp_root", "/proc/no-write")


@pytest.mark.parametrize(("args", "words"), [
    (("--MYSEED", str(2**32)), "MYSEED"),
    (("--debug_subfolder", "../outside"), "debug_subfolder"),
    (("--debug_subfolder", "/abs"), "debug_subfolder"),
])
def test_bad_seeds_and_folders_are_refused(exp_root: Path, capsys: pytest.CaptureFixture, args: tuple[str, ...],
                                           words: str) -> None:
    assert words in _refused(exp_root, capsys, "--al_type", "Random", *args)


def test_an_empty_split_is_refused_before_training(exp_root: Path, capsys: pytest.CaptureFixture,
                                                   tmp_path: Path) -> None:
    folds = tmp_path / "folds"
    shutil.copytree(REPO / "folds" / "synthetic", folds / "synthetic")
    valid = folds / "synthetic" / "split_0" / "fold_0" / "valid.csv"
    valid.write_text(valid.read_text().splitlines()[0] + "\n")
    line = _refused(exp_root, capsys, "--al_type", "Random", "--exp_id", "empty", "--fold_folder", str(folds))
    assert "valid" in line and "empty" in line


def test_an_empty_pseudo_mask_is_refused(exp_root: Path, capsys: pytest.CaptureFixture) -> None:
    run(exp_root, "--al_type", C.LABEL_PROP, "--al_it", "0", "--exp_id", "lp")
    folder = exp_root / FOLD / "lp"
    mask = next((folder / "round_000" / "pseudo_masks").glob("*.png"))
    mask.write_bytes(b"")
    assert "unreadable" in _refused(exp_root, capsys, "--al_type", C.LABEL_PROP, "--al_it", "1", "--exp_id", "lp",
                                    watch=folder)


def test_progress_bars_stay_off_when_the_output_is_not_a_terminal(exp_root: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    run(exp_root, "--al_type", "Random", "--al_it", "0", "--exp_id", "bars", "--progress", "true")
    err = capsys.readouterr().err
    assert "it/s" not in err and "\r" not in err


def test_help_answers_without_importing_torch() -> None:
    out = subprocess.run([sys.executable, "-X", "importtime", "main.py", "--help"], cwd=REPO, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.startswith("usage: python main.py")
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()}
    assert "parseit" in imported and "torch" not in imported


def test_generated_scripts_started_together_train_the_seeds_theta0_once(tmp_path: Path) -> None:
    """Three scripts at once, one with --exp_tag (its WSL run has another exp_id): stage 1 runs in one process,
    the second script waits for its run folder, the tagged one for its theta0; then all run their method."""
    extras = [*TINY[2:], "--exp_root", str(tmp_path / "exps"), "--max_al_its", "1"]
    for out, methods, tag in (("plain", ["Random", "Entropy"], []), ("tagged", ["Random"], ["--exp_tag", "tagged"])):
        subprocess.run([sys.executable, "gen_configs.py", "--datasets", "synthetic", "--methods", *methods, "--seeds",
                        "0", "--rounds", "1", "--out", str(tmp_path / out), "--python", sys.executable, *tag, "--",
                        *extras], cwd=REPO, check=True, capture_output=True, timeout=120)
    scripts = [tmp_path / "plain" / "run-synthetic-Random.sh", tmp_path / "plain" / "run-synthetic-Entropy.sh",
               tmp_path / "tagged" / "run-synthetic-Random.sh"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(["bash", str(script)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for script in scripts]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    fold = tmp_path / "exps" / FOLD
    for run_id in ("Random-seed_0", "Entropy-seed_0", "Random-seed_0-tagged"):
        assert (fold / run_id / "round_000" / "state.json").is_file()
    trained = [p.parent.parent.name for p in fold.glob("WSL-seed_0*/round_000/state.json")]
    assert len(trained) == 1 and [p.name for p in fold.glob("WSL-seed_0*")] == trained, outputs
    assert torch.load(fold / "theta0" / "seed_0.pt", weights_only=True)["meta"]["run"] == str(fold / trained[0])
    assert not list(fold.glob("theta0/*.lock"))
