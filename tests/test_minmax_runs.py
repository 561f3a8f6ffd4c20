"""Min-max entropy as stage 1 through main.py on the synthetic set: its outputs, its theta0 under stage 2,
reproducibility, and the refusals (a theta0 of the other localiser, a CRF that is not installed)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import torch

import main
from tests.synthetic_runs import FOLD, states

MINMAX = ["--yaml", "synthetic-minmax.yaml", "--max_epochs", "2", "--batch_size", "8", "--progress", "false",
          "--device", "cpu", "--deterministic", "true", "--erase_steps", "2", "--erase_from_epoch", "1"]


def run(exp_root: Path, *args: str) -> None:
    main.main([*MINMAX, "--exp_root", str(exp_root), *args])


@pytest.fixture(scope="module")
def minmax_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A min-max WSL round with the CRF, then Random round 0 from its theta0."""
    pytest.importorskip("pydensecrf.densecrf", reason="pydensecrf2 is not installed: run bash dependencies/setup.sh")
    root = tmp_path_factory.mktemp("minmax")
    run(root, "--al_type", "WSL", "--crf", "true")
    run(root, "--al_type", "Random", "--al_it", "0")
    return root


def test_wsl_round_reports_f1_plus_f1_minus_and_the_error_on_every_set(minmax_root: Path) -> None:
    (state,) = states(minmax_root, "WSL-seed_0")
    assert state["wsl_method"] == "minmax_entropy"
    assert set(state["metrics"]) == {"train", "valid", "test"}
    for subset in state["metrics"].values():
        assert 0 <= subset["dice_idx"] <= 100 and 0 <= subset["dice_bg"] <= 100
        assert subset["cl_error"] == pytest.approx(100 - subset["acc"])
        assert {"dice_idx_crf", "dice_bg_crf", "miou_crf"} <= set(subset)
    assert len(state["history"]["cycle0"]["loss"]) == 2


def test_theta0_has_its_own_file_and_stage2_records_which_localiser_made_it(minmax_root: Path) -> None:
    folder = minmax_root / FOLD / "theta0"
    assert sorted(p.name for p in folder.iterdir()) == ["minmax_entropy-seed_0.pt"]
    theta0 = torch.load(folder / "minmax_entropy-seed_0.pt", weights_only=True)
    assert theta0["meta"]["wsl_method"] == "minmax_entropy"
    assert any(k.startswith("masked_classifier.") for k in theta0["state_dict"])
    (state,) = states(minmax_root, "Random-seed_0")
    digest = hashlib.sha256((folder / "minmax_entropy-seed_0.pt").read_bytes()).hexdigest()
    assert state["wsl_method"] == "minmax_entropy" and state["theta0_sha256"] == digest
    assert state["metrics"]["test"]["n"] > 0


def test_same_seed_same_machine_gives_the_same_localiser(minmax_root: Path, tmp_path: Path) -> None:
    run(tmp_path, "--al_type", "WSL", "--crf", "true")
    first = torch.load(minmax_root / FOLD / "theta0" / "minmax_entropy-seed_0.pt", weights_only=True)["state_dict"]
    again = torch.load(tmp_path / FOLD / "theta0" / "minmax_entropy-seed_0.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert states(tmp_path, "WSL-seed_0")[0]["metrics"] == states(minmax_root, "WSL-seed_0")[0]["metrics"]


def test_stage2_refuses_a_theta0_of_the_other_localiser(minmax_root: Path, capsys: pytest.CaptureFixture) -> None:
    theta0 = minmax_root / FOLD / "theta0" / "minmax_entropy-seed_0.pt"
    with pytest.raises(SystemExit) as exit_info:
        main.main(["--yaml", "synthetic.yaml", "--device", "cpu", "--progress", "false", "--exp_root",
                   str(minmax_root), "--al_type", "Random", "--exp_id", "wildcat-run", "--path_pre_trained",
                   str(theta0)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1
    assert "wsl_method 'minmax_entropy' (run: 'wildcat')" in err[0]


def test_a_crf_that_is_not_installed_is_one_line_before_any_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    for name in ("pydensecrf", "pydensecrf.densecrf"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(SystemExit) as exit_info:
        run(tmp_path, "--al_type", "WSL", "--crf", "true")
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and "pydensecrf2" in err[0] and "--crf false" in err[0]
    assert not any(tmp_path.rglob("*.pt"))
