"""Bad input is one line and exit code 2, and nothing written before is lost: configuration files, method
overrides, empty paths, damaged torch files, file-system errors, folds, symbolic links in the data folder;
a seed's theta0 is trained by one process while the others wait for it."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest
import torch
import yaml
from synthetic_runs import TINY, tree

import create_folds
import main
from al.locks import wait_for_lock
from al.state import AlreadyDone, RunFolder, RunStateError, run_dir, theta0_lock, theta0_path
from atomic_io import atomic_write
from data.folds import load_fold, write_folds
from data.records import DataError, Fold, SampleRecord
from data.synthetic import generate_synthetic
from engine.checkpoint import CheckpointError, load_theta0
from engine.classification import load_weights
from engine.round_model import save_round_model
from models.classifier import build_classifier
from parseit import CONFIG_DIR, exit_on_error, parse_config, save_config
from tasks.joint.theta0 import claim_theta0
from torch_io import save_torch

SYNTHETIC_YAML = CONFIG_DIR / "synthetic.yaml"


def _refused(capsys: pytest.CaptureFixture, *args: str) -> str:
    """main.py's one error line for a call that must stop with exit code 2."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main.main(list(args))
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# --- configuration files and the command line --------------------------------------------------------

def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(SYNTHETIC_YAML.read_bytes().replace(b"# training epochs", b"# \xe9poques"))
    assert "is not UTF-8 text" in _refused(capsys, "--yaml", str(path))


@pytest.mark.parametrize("extra", ["max_epochs: 7\n", "optimizer:\n  lr: 0.5\n"])
def test_a_key_given_twice_in_a_config_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                      extra: str) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(SYNTHETIC_YAML.read_text() + extra)
    line = _refused(capsys, "--yaml", str(path))
    assert "is given twice, at lines" in line and (f"'{extra.split(':')[0]}'") in line


@pytest.mark.parametrize(("key", "value"), [("al_type", "Random"), ("exp_root", "elsewhere"), ("MYSEED", 3),
                                            ("fold_folder", "other_folds")])
def test_method_overrides_cannot_change_which_run_a_call_is(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                            key: str, value: object) -> None:
    config = yaml.safe_load(SYNTHETIC_YAML.read_text())
    config["method_overrides"]["WSL"][key] = value
    path = tmp_path / "overrides.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    line = _refused(capsys, "--yaml", str(path), "--al_type", "WSL")
    assert f"method_overrides.WSL.{key}" in line and "cannot differ by method" in line


def test_p_samples_0_is_refused_for_the_methods_that_select(capsys: pytest.CaptureFixture) -> None:
    assert "p_samples 0 asks the oracle for nothing" in _refused(capsys, "--yaml", "synthetic.yaml", "--al_type",
                                                                  "Random", "--p_samples", "0")
    assert parse_config(["--yaml", "synthetic.yaml", "--al_type", "WSL", "--p_samples", "0"]).p_samples == 0


@pytest.mark.parametrize("key", ["exp_root", "fold_folder", "cache_dir"])
def test_an_empty_folder_is_refused(capsys: pytest.CaptureFixture, key: str) -> None:
    assert f"{key} is empty" in _refused(capsys, "--yaml", "synthetic.yaml", "--al_type", "Random", f"--{key}", " ")


def test_ll4al_on_lenet_names_the_resnet_it_needs_first(capsys: pytest.CaptureFixture) -> None:
    # digits.yaml trains LeNet-5, and its ll4al_detach_epoch (18) is past 2 epochs: the model is what to change.
    line = _refused(capsys, "--yaml", "digits.yaml", "--al_type", "LL4AL", "--max_epochs", "2")
    assert "LL4AL needs a ResNet" in line and "lenet5" in line and "ll4al_detach_epoch" not in line


# --- torch files that are not what they should be ----------------------------------------------------

DAMAGES = {"text": b"not a checkpoint\n", "garbage": b"\x00\xff" * 40, "empty": b""}


@pytest.mark.parametrize("damage", [*DAMAGES, "list"])
def test_a_theta0_that_is_not_a_checkpoint_is_refused_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                damage: str) -> None:
    path = tmp_path / "seed_0.pt"
    if damage == "list":
        save_torch(path, [1, 2])
    else:
        path.write_bytes(DAMAGES[damage])
    with pytest.raises(SystemExit) as info, exit_on_error(CheckpointError):
        load_theta0(path)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and str(path) in line and "run the WSL round again" in line
    assert "check that the path" not in line


def test_a_stage_2_call_from_a_file_that_is_no_theta0_stops_with_one_line(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "theta0.pt"
    bad.write_text("not a checkpoint\n")
    line = _refused(capsys, *TINY, "--exp_root", str(tmp_path / "exps"), "--al_type", "Random",
                    "--path_pre_trained", str(bad))
    assert f"stage-1 checkpoint {bad} is damaged or not a torch file" in line
    assert not (tmp_path / "exps").exists()


@pytest.mark.parametrize(("damage", "problem"), [("missing", "(missing: keep_models"),
                                                ("text", "(damaged or not a round model)"),
                                                ("other_model", "(the weights of another model)")])
def test_a_warm_start_from_weights_that_cannot_be_used_is_refused(tmp_path: Path, damage: str, problem: str) -> None:
    path = tmp_path / "round_002" / "model.pt"
    path.parent.mkdir()
    if damage == "text":
        path.write_text("not a checkpoint\n")
    elif damage == "other_model":
        cfg = parse_config(["--yaml", "digits.yaml"])
        save_round_model(path, [build_classifier("lenet5", 4, False).state_dict()], 0, cfg, list("abcd"),
                         {"task": "classification", "round": 2, "metrics": {}}, {})
    with pytest.raises(RunStateError) as info:
        load_weights(build_classifier("lenet5", 10, False), path, 0)
    assert str(path) in str(info.value) and f"delete {path.parent}" in str(info.value) and problem in str(info.value)


# --- file-system errors ------------------------------------------------------------------------------

def test_a_full_disk_names_the_file_and_says_to_free_space(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "round_000" / "state.json"

    def full(tmp: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))   # as a failed write: no file name

    with pytest.raises(SystemExit), exit_on_error(OSError):
        atomic_write(path, full)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(path) in line and "free space on that disk" in line and "check that the path" not in line
    assert list(path.parent.iterdir()) == []   # nor a temporary file left


# --- folds -------------------------------------------------------------------------------------------

def test_an_id_twice_in_one_subset_is_named_so(tmp_path: Path) -> None:
    records = [SampleRecord(f"s{i}", f"images/s{i}.png", None, "cat") for i in range(3)]
    write_folds(tmp_path, "generic", {(0, 0): Fold(train=[records[0], records[0]], valid=records[1:2],
                                                   test=records[2:], classes=["cat"])}, seed=0)
    with pytest.raises(DataError, match="sample 's0' is twice in train"):
        load_fold(tmp_path, "generic", 0, 0)


def test_create_folds_never_replaces_other_folds_without_force(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = generate_synthetic(tmp_path / "data", n_per_class=6, image_size=40)
    args = ["--dataset", "synthetic", "--data_root", str(data), "--out", str(tmp_path / "folds"), "--nbr_folds", "2"]
    assert create_folds.main(args) == 0
    written = tree(tmp_path / "folds")
    assert create_folds.main(args) == 0 and tree(tmp_path / "folds") == written   # the same folds again: harmless
    capsys.readouterr()
    assert create_folds.main([*args, "--seed", "1"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "already holds other folds" in line and "--force" in line and "runs made with them" in line
    assert tree(tmp_path / "folds") == written
    assert create_folds.main([*args, "--seed", "1", "--force"]) == 0 and tree(tmp_path / "folds") != written


# --- symbolic links in the data folder ---------------------------------------------------------------

def test_the_synthetic_set_never_replaces_a_link(tmp_path: Path) -> None:
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(DataError, match="symbolic link"):
        generate_synthetic(dangling, n_per_class=2, image_size=40)
    assert dangling.is_symlink() and not (tmp_path / "nowhere").exists()

    data = generate_synthetic(tmp_path / "data", n_per_class=2, image_size=40)
    image = data / "images" / "disc_0000.png"
    image.unlink()
    image.symlink_to(tmp_path / "mine.png")   # the user's link, to a file gone
    with pytest.raises(DataError, match="disc_0000.png is a symbolic link"):
        generate_synthetic(data, n_per_class=2, image_size=40)
    assert image.is_symlink()


def test_the_synthetic_set_is_written_through_a_link_to_a_folder(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "data").symlink_to(tmp_path / "target")
    generate_synthetic(tmp_path / "data", n_per_class=2, image_size=40)
    assert (tmp_path / "data").is_symlink() and (tmp_path / "target" / "labels.csv").is_file()


# --- run folders and theta0: nothing left by a refused call, one stage-1 process per seed ------------

def test_a_refused_call_leaves_no_folder(tmp_path: Path) -> None:
    with RunFolder(tmp_path / "exps" / "synthetic" / "split_0-fold_0" / "run") as run:
        run.hold(tmp_path / "exps" / "synthetic" / "split_0-fold_0" / "theta0" / "seed_0.pt.lock", "stage 1")
    assert list(tmp_path.iterdir()) == []


def test_a_second_stage_1_waits_for_the_first_and_uses_its_theta0(tmp_path: Path) -> None:
    """The first stage-1 process holds the seed's theta0; a second one (another exp_id) and a stage-2 run wait
    until it is written, then the second stage 1 finds it (same configuration) and has nothing to do."""
    cfg = parse_config([*TINY, "--exp_root", str(tmp_path), "--al_type", "WSL"])
    tagged = cfg.replace(exp_id="WSL-seed_0-tagged")
    outcome: dict[str, str] = {}

    def second_stage_1() -> None:
        with RunFolder(run_dir(tagged)) as run:
            try:
                claim_theta0(tagged, run)
            except AlreadyDone as done:
                outcome["stage 1"] = str(done)

    def stage_2() -> None:
        wait_for_lock(theta0_lock(theta0_path(cfg)), "stage 1")
        outcome["stage 2"] = "theta0 there" if theta0_path(cfg).is_file() else "no theta0"

    with RunFolder(run_dir(cfg)) as first:
        claim_theta0(cfg, first)
        threads = [threading.Thread(target=second_stage_1), threading.Thread(target=stage_2)]
        for thread in threads:
            thread.start()
        threads[0].join(1.0)
        assert all(thread.is_alive() for thread in threads) and outcome == {}   # both wait for the first
        save_config(cfg, first.root / "config.yaml")
        save_torch(theta0_path(cfg), {"state_dict": {}, "meta": {"run": str(first.root)}})
    for thread in threads:
        thread.join(30)
    assert "with this configuration: using it" in outcome["stage 1"] and outcome["stage 2"] == "theta0 there"
    assert not run_dir(tagged).exists() and not theta0_lock(theta0_path(cfg)).exists()
    assert torch.load(theta0_path(cfg), weights_only=True)["meta"]["run"] == str(run_dir(cfg))
