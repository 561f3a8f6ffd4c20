"""Qualitative figures: the rule that chooses the images, and the figures drawn from run folders written by
hand (states of test_plot_curves, the synthetic set's real fold and images, masks saved as main.py saves them)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from test_plot_curves import state, write_cls_run

import plot_active_learning_curves as plot
from al.state import MASKS_DIR, TEST_MASKS_DIR, RunFolder
from data.folds import load_fold
from parseit import resolve_path
from report.qualitative import choose_images

FOLD = Path("synthetic") / "split_0-fold_0"
# method -> seeds and rounds; Label_prop lacks seed 0 and reached fewer rounds than Random.
RUNS = {"WSL": ((0, 1, 2), 1), "Random": ((0, 1, 2), 3), "Label_prop": ((1, 2), 2)}


def ids(picks: list) -> list[tuple[str, str]]:
    return [(p.id, p.rule) for p in picks]


def test_three_images_are_the_best_the_median_and_the_worst() -> None:
    scores = {"a": 0.1, "b": 0.9, "c": 0.5, "d": 0.7, "e": 0.3}
    assert ids(choose_images(scores, 3)) == [("b", "best"), ("c", "median"), ("a", "worst")]
    assert ids(choose_images(scores, 2)) == [("b", "best"), ("a", "worst")]
    assert ids(choose_images(scores, 1)) == [("c", "median")]
    assert [p.rank for p in choose_images(scores, 5)] == [1, 2, 3, 4, 5]


def test_more_images_are_evenly_spaced_quantiles_and_ties_go_by_id() -> None:
    scores = {f"i{k}": float(k // 2) for k in range(9)}   # pairs of equal scores
    picks = choose_images(scores, 5)
    assert [p.rank for p in picks] == [1, 3, 5, 7, 9]
    # ranking: i8, i6, i7, i4, i5, i2, i3, i0, i1 (equal scores by id)
    assert ids(picks) == [("i8", "best"), ("i7", "rank 3/9"), ("i5", "median"), ("i3", "rank 7/9"), ("i1", "worst")]
    assert ids(choose_images({"b": 0.5, "a": 0.5}, 2)) == [("a", "best"), ("b", "worst")]
    four = {"a": 0.4, "b": 0.3, "c": 0.2, "d": 0.1}
    assert ids(choose_images(four, 3))[1] == ("c", "median")   # even count: the lower of the two middle images


def test_more_images_than_the_test_set_are_clipped_and_none_refused() -> None:
    assert ids(choose_images({"x": 0.2, "y": 0.4}, 10)) == [("y", "best"), ("x", "worst")]
    with pytest.raises(ValueError, match="n >= 1"):
        choose_images({"x": 0.2}, 0)


def write_runs(root: Path, test_masks: bool = True) -> dict[tuple[str, int], list[dict[str, float]]]:
    """The RUNS, each round with a per-image test Dice and (stage 2) its test masks; Label_prop with pseudo-masks
    of five pool images in round 1. Returns each run's per-round test Dice."""
    fold = load_fold(resolve_path("folds"), "synthetic", 0, 0)
    rng = np.random.default_rng(0)
    dice = {}
    for method, (seeds, rounds) in RUNS.items():
        for seed in seeds:
            folder = root / FOLD / f"{method}-seed_{seed}"
            folder.mkdir(parents=True)
            (folder / "config.yaml").write_text(yaml.safe_dump(
                {"al_type": method, "MYSEED": seed, "dataset": "synthetic", "split": 0, "fold": 0,
                 "debug_subfolder": "", "data_root": "datasets/synthetic", "fold_folder": "folds"}))
            dice[(method, seed)] = [{r.id: round(float(rng.random()), 3) for r in fold.test} for _ in range(rounds)]
            for r in range(rounds):
                out = folder / f"round_{r:03d}"
                out.mkdir()
                payload = state(method, seed, r, 50.0, 60.0 if r else None, single=method == "WSL")
                (out / "state.json").write_text(json.dumps({**payload, "test_dice_per_image": dice[(method, seed)][r]}))
                if method != "WSL" and test_masks:
                    for record in fold.test:
                        RunFolder.write_mask(out, record.id, rng.random((80, 80)) > 0.5, TEST_MASKS_DIR)
                if method == "Label_prop" and r == 1:
                    for record in fold.train[:5]:
                        RunFolder.write_mask(out, record.id, np.ones((80, 80), bool), MASKS_DIR)
    return dice


def draw(root: Path, out: Path, *extra: str) -> None:
    plot.main(["--dataset", "synthetic", "--exp_root", str(root), "--out", str(out), "--qualitative", "2", *extra])


def test_the_figures_show_the_images_the_rule_chooses(tmp_path: Path) -> None:
    dice = write_runs(tmp_path / "exps")
    draw(tmp_path / "exps", tmp_path / "out")
    for name in ("qualitative.png", "qualitative.pdf", "pseudo-masks.png", "pseudo-masks.pdf"):
        assert (tmp_path / "out" / f"synthetic-{name}").stat().st_size > 0
    rows = list(csv.DictReader((tmp_path / "out" / "synthetic-qualitative.csv").open()))
    # Label_prop (the default reference) at round 1, the last round every method reached, over its seeds 1 and 2.
    mean = {i: (dice[("Label_prop", 1)][1][i] + dice[("Label_prop", 2)][1][i]) / 2 for i in dice[("Label_prop", 1)][1]}
    ranked = sorted(mean, key=lambda i: (-mean[i], i))
    assert list(dict.fromkeys(r["image"] for r in rows)) == [ranked[0], ranked[-1]]
    assert [(r["rule"], r["method"], r["round"]) for r in rows[:4]] == [
        ("best", "Random", "0"), ("best", "Random", "1"), ("best", "Label_prop", "0"), ("best", "Label_prop", "1")]
    assert {r["seed"] for r in rows} == {"1"}   # the smallest seed that every method has
    for r in rows:
        assert float(r["dice"]) == pytest.approx(100 * dice[(r["method"], 1)][int(r["round"])][r["image"]])
        assert float(r["reference_dice"]) == pytest.approx(100 * mean[r["image"]])


def test_another_reference_chooses_by_its_own_dice(tmp_path: Path) -> None:
    dice = write_runs(tmp_path / "exps")
    draw(tmp_path / "exps", tmp_path / "out", "--qualitative_reference", "Random")
    rows = list(csv.DictReader((tmp_path / "out" / "synthetic-qualitative.csv").open()))
    mean = {i: float(np.mean([dice[("Random", s)][1][i] for s in (0, 1, 2)])) for i in dice[("Random", 0)][1]}
    assert rows[0]["image"] == max(sorted(mean), key=lambda i: mean[i])
    assert Image.open(tmp_path / "out" / "synthetic-qualitative.png").size[1] > 0


@pytest.mark.parametrize(("extra", "message"), [
    ((), "Random-seed_1 round 0 has no test_masks/"),
    (("--qualitative_reference", "WSL"), "--qualitative_reference WSL is not a stage-2 method drawn"),
])
def test_runs_without_test_masks_or_a_wrong_reference_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                   extra: tuple[str, ...], message: str) -> None:
    write_runs(tmp_path / "exps", test_masks=False)
    with pytest.raises(SystemExit) as stop:
        draw(tmp_path / "exps", tmp_path / "out", *extra)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_classification_runs_are_drawn_without_the_qualitative_figure(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    write_cls_run(tmp_path / "exps" / "digits" / "split_0-fold_0", "Random", 0, [50.0, 60.0], None)
    plot.main(["--dataset", "digits", "--exp_root", str(tmp_path / "exps"), "--out", str(tmp_path / "out"),
               "--qualitative", "3"])
    assert "--qualitative skipped: classification runs have no binary masks" in capsys.readouterr().out
    assert (tmp_path / "out" / "digits-acc-test.png").is_file()
    assert not list((tmp_path / "out").glob("*qualitative*"))
