"""Curves and AUC table from run folders written by hand with known Dice values."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

import plot_active_learning_curves as plot
from al.state import BestEpoch, RoundState, RunFolder, RunStateError
from report import aggregate, checks, figures, loading, tables

REPO = Path(__file__).resolve().parents[1]
N_TRAIN = 50
# method -> seed -> per-round test Dice (%)
TEST_DICE = {
    "WSL": {0: [40.0], 1: [42.0]},
    "Random": {0: [60.0, 70.0, 80.0], 1: [62.0, 74.0, 80.0]},
    "Label_prop": {0: [65.0, 75.0, 85.0], 1: [67.0, 77.0, 87.0, 90.0]},
    "Full_sup": {0: [90.0], 1: [88.0]},
}
# Label_prop's pseudo-mask Dice per round (None: no pair that round).
PSEUDO_DICE = {0: [None, 70.0, 80.0], 1: [None, 72.0, 84.0, 86.0]}
OUTPUTS = ("synthetic-dice-test.png", "synthetic-dice-test.pdf", "synthetic-pseudo-dice.png", "synthetic-auc.md",
           "synthetic-auc.csv", "synthetic-rounds.csv")


def state(method: str, seed: int, r: int, dice: float, pseudo: float | None = None, single: bool = False) -> dict:
    n_labelled = 0 if method == "WSL" else N_TRAIN if single else 5 + 5 * r
    metrics = {"valid": {"dice_idx": dice - 1, "miou": 50.0, "acc": 90.0, "n": 10},
               "test": {"dice_idx": dice, "miou": 50.0, "acc": 80.0 + seed, "n": 20},
               "train_labelled": {"dice_idx": 95.0, "miou": 90.0, "acc": 100.0, "n": n_labelled}}
    if method == "Label_prop":
        metrics["pseudo"] = {"dice_idx": pseudo, "n": 0 if pseudo is None else 7}
    return {"round": r, "method": method, "seed": seed, "dataset": "synthetic", "n_train": N_TRAIN,
            "labelled": [f"img{i:03d}" for i in range(n_labelled)], "n_labelled": n_labelled,
            "percent_labelled": 100 * n_labelled / N_TRAIN, "selected": [], "pseudo_pairs": {}, "exhausted": single,
            "threshold": 0.5, "best": {"epoch": 0, "cycle": 0, "valid_score": 0.5}, "metrics": metrics,
            "history": {}, "timings": {"train": 1.0}}


def write_run(fold_dir: Path, method: str, seed: int, dices: list[float], dataset: str = "synthetic",
              extra: Sequence[dict[str, Any]] = (), exp_id: str | None = None) -> Path:
    """One run folder (named by exp_id, as main.py does, when one is given); extra[r] overrides keys of
    round r's state."""
    folder = fold_dir / (exp_id or f"{method}-seed_{seed}")
    folder.mkdir(parents=True)
    cfg = {"al_type": method, "MYSEED": seed, "dataset": dataset, "split": 0, "fold": 0, "debug_subfolder": ""}
    (folder / "config.yaml").write_text(yaml.safe_dump({**cfg, "exp_id": exp_id} if exp_id else cfg))
    for r, dice in enumerate(dices):
        pseudo = PSEUDO_DICE[seed][r] if method == "Label_prop" else None
        (folder / f"round_{r:03d}").mkdir()
        (folder / f"round_{r:03d}" / "state.json").write_text(
            json.dumps({**state(method, seed, r, dice, pseudo, single=method in ("WSL", "Full_sup")),
                        **(extra[r] if extra else {})}))
    return folder


@pytest.fixture()
def exp_root(tmp_path: Path) -> Path:
    """Two seeds of WSL, Random, Label_prop (seed 1 one round ahead) and Full_sup, plus folders to skip."""
    root = tmp_path / "exps"
    fold_dir = root / "synthetic" / "split_0-fold_0"
    for method, seeds in TEST_DICE.items():
        for seed, dices in seeds.items():
            write_run(fold_dir, method, seed, dices)
    # An unfinished round: a state.json inside round_003.partial must not count.
    partial = fold_dir / "Random-seed_0" / "round_003.partial"
    partial.mkdir()
    (partial / "state.json").write_text(json.dumps(state("Random", 0, 3, 0.0)))
    (fold_dir / "theta0").mkdir()
    (fold_dir / "theta0" / "seed_0.pt").write_bytes(b"not a run")
    (fold_dir / "knn_cache").mkdir()
    write_run(root / "glas" / "split_0-fold_0", "Random", 0, [10.0, 20.0], dataset="glas")
    return root


def by_method(summaries: list[aggregate.MethodSummary]) -> dict[str, aggregate.MethodSummary]:
    return {s.method: s for s in summaries}


def test_auc_is_the_normalised_trapezoid() -> None:
    assert aggregate.auc([60, 70, 80]) == pytest.approx(70.0)  # (65 + 75) / (100 * 2) * 100
    assert aggregate.auc([62, 74, 80]) == pytest.approx(72.5)
    assert aggregate.auc([0, 100]) == pytest.approx(50.0)
    assert aggregate.auc([55.5]) == 55.5
    with pytest.raises(ValueError):
        aggregate.auc([])


def test_auc_over_x_is_weighted_by_the_spacing() -> None:
    assert aggregate.auc([60, 70, 80], [0, 1, 2]) == pytest.approx(aggregate.auc([60, 70, 80]))
    assert aggregate.auc([60, 70, 80], [30, 90, 120]) == pytest.approx((65 * 60 + 75 * 30) / 90)
    assert aggregate.auc([50, 70], [5, 5]) == pytest.approx(60.0)  # no time spent: unit spacing
    assert aggregate.auc([55.5], [12.0]) == 55.5


def test_mean_std_is_population_std_and_skips_missing() -> None:
    stat = aggregate.mean_std([70.0, None, 72.5])
    assert (stat.mean, stat.std, stat.n) == (pytest.approx(71.25), pytest.approx(1.25), 2)
    assert aggregate.mean_std([None]).n == 0


def test_summary_over_seeds(exp_root: Path) -> None:
    runs = loading.load_runs([exp_root], "synthetic", 0, 0, None)
    summaries = checks.checked_summaries(runs)
    assert [s.method for s in summaries] == ["WSL", "Random", "Label_prop", "Full_sup"]
    s = by_method(summaries)

    random = s["Random"]
    assert len(random.rows) == 3  # round_003.partial is ignored
    assert random.seed_aucs == (pytest.approx(70.0), pytest.approx(72.5))
    assert (random.auc.mean, random.auc.std) == (pytest.approx(71.25), pytest.approx(1.25))
    row1 = random.rows[1]
    assert (row1.test_dice.mean, row1.test_dice.std, row1.test_dice.n) == (pytest.approx(72.0), pytest.approx(2.0), 2)
    assert row1.n_labelled.mean == 10 and row1.x.mean == pytest.approx(20.0)
    assert row1.test_acc.mean == pytest.approx(80.5)
    assert not random.notes

    label_prop = s["Label_prop"]
    assert len(label_prop.rows) == 3  # seed 1's fourth round is not shared by seed 0
    assert any("only the 3 rounds" in w for w in label_prop.warnings) and not label_prop.notes
    assert label_prop.seed_aucs == (pytest.approx(75.0), pytest.approx(77.0))
    assert label_prop.rows[0].pseudo_dice.n == 0
    assert label_prop.rows[2].pseudo_dice.mean == pytest.approx(82.0)

    assert (s["WSL"].auc.mean, s["WSL"].auc.std) == (pytest.approx(41.0), pytest.approx(1.0))
    assert (s["Full_sup"].auc.mean, s["Full_sup"].auc.std) == (pytest.approx(89.0), pytest.approx(1.0))


def test_runs_of_one_method_and_seed_twice_are_rejected(tmp_path: Path) -> None:
    runs = [aggregate.Run("Random", 0, tmp_path / "a", ()), aggregate.Run("Random", 0, tmp_path / "b", ())]
    with pytest.raises(RunStateError, match="two runs of Random seed 0"):
        aggregate.group_runs(runs)


def test_a_seed_without_finished_round_is_left_out_with_a_note(tmp_path: Path) -> None:
    done = aggregate.Run("Entropy", 0, tmp_path, tuple(RoundState.from_json(state("Entropy", 0, r, d))
                                                       for r, d in enumerate([50.0, 60.0])))
    summary = aggregate.summarise([done, aggregate.Run("Entropy", 1, tmp_path, ())])[0]
    assert summary.seeds == (0,) and summary.auc.mean == pytest.approx(55.0)
    assert any("seed 1 has no finished round" in note for note in summary.notes)


def test_outputs_are_written(exp_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "paper"
    summaries = checks.checked_summaries(loading.load_runs([exp_root], "synthetic", 0, 0, None))
    written = plot.write_outputs(summaries, "synthetic", out)
    assert sorted(p.name for p in written) == sorted(OUTPUTS)
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    table = (out / "synthetic-auc.md").read_text()
    assert "| Random | 71.25 ± 1.25 | 2 | 3 | 0 |" in table and "| Label_prop | 76.00 ± 1.00 | 2 | 3 | 1 |" in table
    assert "Warning: Label_prop: seeds finished 3 to 4 rounds" in table
    rows = (out / "synthetic-rounds.csv").read_text().splitlines()
    assert len(rows) == 1 + 1 + 3 + 3 + 1
    assert rows[0].startswith("method,round,n_labelled,percent_labelled,test_dice_mean,test_dice_std")
    assert any(row.startswith("Random,1,10.0,20.00,72.0000,2.0000,71.0000,2.0000,80.5000,0.5000,,,2")
               for row in rows)
    auc_rows = (out / "synthetic-auc.csv").read_text().splitlines()
    assert auc_rows[2].startswith("Random,71.2500,1.2500,2,3")


def test_cli_writes_figures_and_prints_the_table(exp_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "figs"
    result = subprocess.run([sys.executable, "plot_active_learning_curves.py", "--dataset", "synthetic",
                             "--exp_root", str(exp_root), "--out", str(out)],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    assert "| Label_prop | 76.00 ± 1.00 | 2 | 3 |" in result.stdout
    assert str(out) in result.stdout


def test_cli_without_runs_exits_2_naming_where_it_looked(exp_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "none"
    result = subprocess.run([sys.executable, "plot_active_learning_curves.py", "--dataset", "cub",
                             "--exp_root", str(exp_root), "--out", str(out)],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no finished run of cub" in result.stderr
    assert str(exp_root) in result.stderr
    assert not out.exists()


def test_every_method_gets_its_own_colour() -> None:
    import constants as C
    summaries = [aggregate.MethodSummary(m, (0,), (), (50.0,), ()) for m in C.METHODS]
    colour = figures.colours(summaries)
    assert len(C.METHODS) > 10 and len({str(c) for c in colour.values()}) == len(C.METHODS)
    assert figures.colours(summaries[:3]) == {m: f"C{i}" for i, m in enumerate(C.METHODS[:3])}


def test_region_runs_are_their_own_curve_against_annotated_pixels(tmp_path: Path) -> None:
    image = [RoundState.from_json({**state("Entropy", 0, r, d), "pixels_annotated": 100 * (5 + 5 * r),
                                   "n_pixels": 100 * N_TRAIN}) for r, d in enumerate([50.0, 60.0])]
    region = [RoundState.from_json({**state("Entropy", 0, r, d), "unit": "region", "labelled": image[0].labelled,
                                    "pixels_annotated": 100 * 5 + 30 * r, "n_pixels": 100 * N_TRAIN})
              for r, d in enumerate([50.0, 55.0])]
    assert loading.method_label({"al_type": "Entropy", "annotation_unit": "region"}) == "Entropy (regions)"
    assert loading.method_label({"al_type": "Entropy"}) == "Entropy"
    runs = [aggregate.Run("Entropy", 0, tmp_path / "a", tuple(image)),
            aggregate.Run("Entropy (regions)", 0, tmp_path / "b", tuple(region))]
    summaries = aggregate.summarise(runs)
    assert [s.method for s in summaries] == ["Entropy", "Entropy (regions)"]
    assert all(s.x == aggregate.X_PIXELS for s in summaries)
    assert [row.x.mean for row in summaries[1].rows] == pytest.approx([10.0, 10.6])
    assert [row.x.mean for row in summaries[0].rows] == pytest.approx([10.0, 20.0])
    assert aggregate.summarise(runs[:1])[0].x == aggregate.X_IMAGES


# Random's annotators' seconds so far, per seed and round (a Label Studio-answered run).
SECONDS = {0: [30.0, 90.0, 120.0], 1: [40.0, 80.0, 160.0]}


@pytest.fixture()
def timed_root(tmp_path: Path) -> Path:
    """WSL and Full_sup (simulated: no time) and Random with the annotators' seconds in every round."""
    root = tmp_path / "timed"
    fold_dir = root / "synthetic" / "split_0-fold_0"
    for method in ("WSL", "Random", "Full_sup"):
        for seed, dices in TEST_DICE[method].items():
            times = [{"annotation_seconds": t} for t in SECONDS[seed]] if method == "Random" else ()
            write_run(fold_dir, method, seed, dices, extra=times)
    return root


def test_seconds_axis_draws_the_annotators_time_and_weights_the_auc(timed_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "figs"
    result = subprocess.run([sys.executable, "plot_active_learning_curves.py", "--dataset", "synthetic",
                             "--exp_root", str(timed_root), "--out", str(out), "--x", "seconds"],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = (out / "synthetic-rounds.csv").read_text().splitlines()
    assert rows[0].startswith("method,round,n_labelled,annotation_seconds,test_dice_mean")
    assert [row.split(",")[3] for row in rows if row.startswith("Random,")] == ["35.00", "85.00", "140.00"]
    assert any(row.startswith("WSL,0,0.0,,41.0000,") for row in rows)  # flat lines need no time
    # Per seed: trapezoid over the seconds / seconds spanned: 68.33 and 74.00 (71.25 ± 1.25 over rounds).
    seed_aucs = ((65 * 60 + 75 * 30) / 90, (68 * 40 + 77 * 80) / 120)
    mean, std = sum(seed_aucs) / 2, abs(seed_aucs[0] - seed_aucs[1]) / 2
    auc_rows = (out / "synthetic-auc.csv").read_text().splitlines()
    assert auc_rows[2] == f"Random,{mean:.4f},{std:.4f},2,3,{seed_aucs[0]:.4f} {seed_aucs[1]:.4f},0,0"
    assert f"| Random | {mean:.2f} ± {std:.2f} | 2 | 3 |" in result.stdout
    assert "weighted by the annotators' time" in result.stdout

    summaries = aggregate.summarise(loading.load_runs([timed_root], "synthetic", 0, 0, None), aggregate.X_SECONDS)
    ax = figures.dice_figure(summaries, "synthetic").axes[0]
    random = next(line for line in ax.lines if line.get_label().startswith("Random"))
    assert list(random.get_xdata()) == pytest.approx([35.0, 85.0, 140.0])
    assert ax.get_xlabel() == "annotators' time (s)"


def test_pixels_axis_on_image_runs_draws_the_annotated_share_of_pixels(tmp_path: Path) -> None:
    # Images of different sizes: the share of pixels is not the share of images (10, 20, 30 %).
    fold_dir = tmp_path / "exps" / "synthetic" / "split_0-fold_0"
    pixels = [{"pixels_annotated": p, "n_pixels": 100 * N_TRAIN} for p in (400, 1200, 1500)]
    write_run(fold_dir, "Random", 0, TEST_DICE["Random"][0], extra=pixels)
    runs = loading.load_runs([tmp_path / "exps"], "synthetic", 0, 0, None)

    by_pixels = aggregate.summarise(runs, aggregate.X_PIXELS)[0]
    assert by_pixels.x == aggregate.X_PIXELS
    assert [row.x.mean for row in by_pixels.rows] == pytest.approx([8.0, 24.0, 30.0])
    assert tables.rounds_csv([by_pixels]).splitlines()[0].startswith("method,round,n_labelled,percent_pixels,")
    assert figures.dice_figure([by_pixels], "synthetic").axes[0].get_xlabel() == "annotated training pixels (%)"
    assert by_pixels.seed_aucs == (pytest.approx(70.0),)  # over rounds, as for images

    default = aggregate.summarise(runs)[0]  # auto: image-level runs only, so images
    assert default.x == aggregate.X_IMAGES
    assert [row.x.mean for row in default.rows] == pytest.approx([10.0, 20.0, 30.0])
    assert [row.x.mean for row in aggregate.summarise(runs, aggregate.X_IMAGES)[0].rows] == pytest.approx([10.0, 20.0, 30.0])


def test_cli_seconds_without_times_exits_2_naming_the_runs(exp_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "none"
    result = subprocess.run([sys.executable, "plot_active_learning_curves.py", "--dataset", "synthetic",
                             "--exp_root", str(exp_root), "--out", str(out), "--x", "seconds"],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--x seconds needs the annotators' time" in result.stderr
    fold_dir = exp_root / "synthetic" / "split_0-fold_0"
    for run in ("Random-seed_0", "Random-seed_1", "Label_prop-seed_0", "Label_prop-seed_1"):
        assert str(fold_dir / run) in result.stderr, run
    assert "WSL-seed" not in result.stderr and "Full_sup-seed" not in result.stderr
    assert "use --x images" in result.stderr and "lead_time" in result.stderr
    assert not out.exists()


# ------------------------------------------------------------------------------------------------
# Classification runs: test accuracy, seeds stopped at different rounds (patience)
# ------------------------------------------------------------------------------------------------
CLS_TRAIN = 100
# method -> seed -> (per-round test accuracy (%), stop_reason of its last round; None: not stopped yet)
TEST_ACC: dict[str, dict[int, tuple[list[float], str | None]]] = {
    "Full_sup": {0: ([95.0], "pool exhausted"), 1: ([96.0], "pool exhausted"), 2: ([97.0], "pool exhausted")},
    "Random": {0: ([50.0, 60.0, 70.0, 80.0], "max_al_its reached"), 1: ([52.0, 62.0], "patience"),
               2: ([54.0, 64.0, 74.0], "patience")},
    "Entropy": {0: ([55.0, 65.0, 75.0], None), 1: ([57.0, 67.0, 77.0], "pool exhausted")},
}
CLS_OUTPUTS = ("digits-acc-test.png", "digits-acc-test.pdf", "digits-auc.md", "digits-auc.csv", "digits-rounds.csv")


def cls_state(method: str, seed: int, r: int, acc: float, stop: str | None, last: bool) -> dict:
    """Round r of a classification study as main.py writes it (no Dice, accuracy metrics)."""
    n_labelled = CLS_TRAIN if method == "Full_sup" else 20 + 20 * r

    def evaluation(a: float, n: int) -> dict:
        return {"acc": a, "per_class_acc": [a] * 10, "confusion": [[n // 10 if i == j else 0 for j in range(10)]
                                                                   for i in range(10)], "n": n}

    return RoundState(round=r, method=method, seed=seed, dataset="digits", n_train=CLS_TRAIN,
                      labelled=[f"d{i:03d}" for i in range(n_labelled)],
                      selected=[] if last else [f"d{i:03d}" for i in range(n_labelled, n_labelled + 20)],
                      exhausted=last and (stop is not None or method == "Full_sup"),
                      best=BestEpoch(epoch=9, cycle=0, valid_score=acc - 1),
                      metrics={"valid": evaluation(acc - 1, 50), "test": evaluation(acc, 80)}, history={},
                      task="classification", stop_reason=stop if last else None).to_json()


def write_cls_run(fold_dir: Path, method: str, seed: int, accs: list[float], stop: str | None,
                  dataset: str = "digits", task: str | None = "classification") -> Path:
    folder = fold_dir / f"{method}-seed_{seed}"
    folder.mkdir(parents=True)
    cfg = {"al_type": method, "MYSEED": seed, "dataset": dataset, "split": 0, "fold": 0, "debug_subfolder": ""}
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg if task is None else {**cfg, "task": task}))
    for r, acc in enumerate(accs):
        (folder / f"round_{r:03d}").mkdir()
        (folder / f"round_{r:03d}" / "state.json").write_text(
            json.dumps(cls_state(method, seed, r, acc, stop, last=r == len(accs) - 1)))
    return folder


@pytest.fixture()
def cls_root(exp_root: Path) -> Path:
    """The joint runs of exp_root plus classification studies of digits next to them."""
    fold_dir = exp_root / "digits" / "split_0-fold_0"
    for method, seeds in TEST_ACC.items():
        for seed, (accs, stop) in seeds.items():
            write_cls_run(fold_dir, method, seed, accs, stop)
    return exp_root


# Random: per round over the seeds that ran it; per seed, the AUC over its own rounds.
RANDOM_SEED_AUCS = (65.0, 57.0, 64.0)  # (55+65+75)/3, (52+62)/2, (59+69)/2
RANDOM_AUC_MEAN = 62.0
RANDOM_AUC_STD = (((65 - 62) ** 2 + (57 - 62) ** 2 + (64 - 62) ** 2) / 3) ** 0.5  # 3.559
# Next to Entropy, which reached rounds 0-2 only, Random's AUC is over rounds 0-2: seed 0 over its first
# three rounds, (55+65)/2; seeds 1 and 2 stopped by then and keep their own rounds.
RANDOM_COMMON_AUCS = (60.0, 57.0, 64.0)
RANDOM_COMMON_MEAN = 181 / 3
RANDOM_COMMON_STD = (sum((a - 181 / 3) ** 2 for a in RANDOM_COMMON_AUCS) / 3) ** 0.5  # 2.867


def test_classification_draws_test_accuracy_against_labelled_images(cls_root: Path) -> None:
    summaries = aggregate.summarise(loading.load_runs([cls_root], "digits", 0, 0, None))
    assert [s.method for s in summaries] == ["Random", "Entropy", "Full_sup"]
    s = by_method(summaries)
    assert all(x.classification and x.x == aggregate.X_LABELLED for x in summaries)
    random = s["Random"]
    assert [row.x.mean for row in random.rows] == pytest.approx([20.0, 40.0, 60.0, 80.0])
    assert [row.test_acc.mean for row in random.rows] == pytest.approx([52.0, 62.0, 72.0, 80.0])
    assert random.seed_aucs == pytest.approx(RANDOM_COMMON_AUCS)  # over rounds 0-2, which Entropy reached
    assert random.own_seed_aucs == pytest.approx(RANDOM_SEED_AUCS)
    assert all(x.common_rounds == 3 for x in summaries)
    assert (s["Full_sup"].auc.mean, s["Full_sup"].auc.std) == (pytest.approx(96.0), pytest.approx((2 / 3) ** 0.5))
    assert not any(row.test_dice.n for x in summaries for row in x.rows)  # no Dice in classification runs

    ax = figures.acc_figure(summaries, "digits").axes[0]
    assert ax.get_ylabel() == "test accuracy (%)" and ax.get_xlabel() == "labelled images"
    assert ax.get_title().startswith("digits: test accuracy, mean ± std over 2-3 seeds")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"Random (AUC {RANDOM_COMMON_MEAN:.2f} ± {RANDOM_COMMON_STD:.2f})", "Entropy (AUC 66.00 ± 1.00)",
                      "Full_sup (AUC 96.00 ± 0.82)"]
    assert ax.get_legend().get_title().get_text() == "AUC over rounds 0-2 (all methods)"
    lines = {line.get_label(): line for line in ax.lines}
    solid = lines[legend[0]]  # rounds every seed ran
    assert list(solid.get_xdata()) == pytest.approx([20.0, 40.0])
    assert list(solid.get_ydata()) == pytest.approx([52.0, 62.0])
    dotted = lines["_Random: fewer seeds"]  # then over the seeds that went on, dotted
    assert dotted.get_linestyle() == ":"
    assert list(dotted.get_xdata()) == pytest.approx([40.0, 60.0, 80.0])
    assert list(dotted.get_ydata()) == pytest.approx([62.0, 72.0, 80.0])
    assert "_Entropy: fewer seeds" not in lines  # both seeds ran every round
    assert list(lines[legend[2]].get_ydata()) == pytest.approx([96.0, 96.0])  # Full_sup: a flat line
    assert [t.get_text() for t in ax.get_xticklabels()] == ["20", "40", "60", "80"]


def test_seeds_stopped_at_different_rounds_aggregate_over_the_seeds_that_ran_each_round(tmp_path: Path) -> None:
    fold_dir = tmp_path / "exps" / "digits" / "split_0-fold_0"
    for seed, (accs, stop) in TEST_ACC["Random"].items():
        write_cls_run(fold_dir, "Random", seed, accs, stop)
    random = aggregate.summarise(loading.load_runs([tmp_path / "exps"], "digits", 0, 0, None))[0]
    # Every round any seed ran is kept (not cut to the shortest seed's 2 rounds).
    assert len(random.rows) == 4 and random.seed_rounds == (4, 2, 3)
    stats = [(row.test_acc.mean, row.test_acc.std, row.test_acc.n) for row in random.rows]
    assert stats == [(pytest.approx(52.0), pytest.approx((8 / 3) ** 0.5), 3),
                     (pytest.approx(62.0), pytest.approx((8 / 3) ** 0.5), 3),
                     (pytest.approx(72.0), pytest.approx(2.0), 2),  # seed 1 stopped after round 1: not a 0
                     (pytest.approx(80.0), pytest.approx(0.0), 1)]
    assert [row.n_labelled.mean for row in random.rows] == pytest.approx([20.0, 40.0, 60.0, 80.0])
    # Each seed's AUC over its own rounds; truncating to 2 rounds would give 55, 57, 59, padding with 0
    # would give seed 1 (57 + 31) / 3.
    assert random.seed_aucs == pytest.approx(RANDOM_SEED_AUCS)
    assert (random.auc.mean, random.auc.std) == (pytest.approx(RANDOM_AUC_MEAN), pytest.approx(RANDOM_AUC_STD))
    assert not random.notes  # every seed stopped: nothing to warn about


def test_classification_tables_name_where_and_why_each_seed_stopped(cls_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "paper"
    summaries = aggregate.summarise(loading.load_runs([cls_root], "digits", 0, 0, None))
    written = plot.write_outputs(summaries, "digits", out)
    assert sorted(p.name for p in written) == sorted(CLS_OUTPUTS)
    assert sorted(p.name for p in out.iterdir()) == sorted(CLS_OUTPUTS)  # no Dice or pseudo-mask figure
    for name in CLS_OUTPUTS:
        assert (out / name).stat().st_size > 0, name

    table = (out / "digits-auc.md").read_text().splitlines()
    assert table[0].startswith("AUC of test accuracy (%) on digits: mean ± std (ddof 0) over seeds, each seed's "
                               "AUC over the rounds it ran within rounds 0-2, which every method reached")
    assert table[2] == ("| method | AUC over rounds 0-2 (all methods) | AUC over own rounds* | seeds | rounds | stopped | "
                        "warnings |")
    assert table[4] == (f"| Random | {RANDOM_COMMON_MEAN:.2f} ± {RANDOM_COMMON_STD:.2f} | {RANDOM_AUC_MEAN:.2f} ± "
                        f"{RANDOM_AUC_STD:.2f} | 3 | 2-4 | seed 0: r3 max_al_its reached, seed 1: r1 patience, "
                        "seed 2: r2 patience | 0 |")
    assert table[5] == ("| Entropy | 66.00 ± 1.00 | 66.00 ± 1.00 | 2 | 3 | seed 0: r2 not stopped, "
                        "seed 1: r2 pool exhausted | 0 |")
    assert table[6] == ("| Full_sup | 96.00 ± 0.82 | 96.00 ± 0.82 | 3 | 1 | seed 0: r0 pool exhausted, "
                        "seed 1: r0 pool exhausted, seed 2: r0 pool exhausted | 0 |")
    assert table[8].startswith("*: over every round the method reached")
    assert "Note: Entropy seed 0 has not stopped (last finished round r2)" in "\n".join(table)

    auc_rows = (out / "digits-auc.csv").read_text().splitlines()
    assert auc_rows[0] == ("method,auc_mean,auc_std,n_seeds,n_rounds,seed_aucs,seed_rounds,stopped,warnings,auc_rounds,"
                           "own_auc_mean,own_auc_std,own_seed_aucs")
    assert auc_rows[1] == (f"Random,{RANDOM_COMMON_MEAN:.4f},{RANDOM_COMMON_STD:.4f},3,4,60.0000 57.0000 64.0000,"
                           '4 2 3,"seed 0: r3 max_al_its reached, seed 1: r1 patience, seed 2: r2 patience",0,0-2,'
                           f"{RANDOM_AUC_MEAN:.4f},{RANDOM_AUC_STD:.4f},65.0000 57.0000 64.0000")

    rows = (out / "digits-rounds.csv").read_text().splitlines()
    assert rows[0] == ("method,round,n_labelled,percent_labelled,test_acc_mean,test_acc_std,valid_acc_mean,"
                       "valid_acc_std,n_seeds")
    std = f"{(8 / 3) ** 0.5:.4f}"
    assert [row for row in rows if row.startswith("Random,")] == [
        f"Random,0,20.0,20.00,52.0000,{std},51.0000,{std},3", f"Random,1,40.0,40.00,62.0000,{std},61.0000,{std},3",
        "Random,2,60.0,60.00,72.0000,2.0000,71.0000,2.0000,2", "Random,3,80.0,80.00,80.0000,0.0000,79.0000,0.0000,1"]
    assert "Full_sup,0,100.0,100.00,96.0000,0.8165,95.0000,0.8165,3" in rows
    assert len(rows) == 1 + 4 + 3 + 1


def test_cli_on_classification_runs(cls_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "figs"
    result = subprocess.run([sys.executable, "plot_active_learning_curves.py", "--dataset", "digits",
                             "--exp_root", str(cls_root), "--out", str(out)],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(CLS_OUTPUTS)
    assert ("| Random | 60.33 ± 2.87 | 62.00 ± 3.56 | 3 | 2-4 | seed 0: r3 max_al_its reached, seed 1: r1 patience"
            in result.stdout)
    assert "digits-acc-test.png" in result.stdout and "dice" not in result.stdout

    # Whole images are annotated: no pixels axis; the share of images is still available.
    result = subprocess.run([sys.executable, "plot_active_learning_curves.py", "--dataset", "digits",
                             "--exp_root", str(cls_root), "--out", str(out / "pixels"), "--x", "pixels"],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "classification runs annotate whole images" in result.stderr
    by_images = aggregate.summarise(loading.load_runs([cls_root], "digits", 0, 0, None), aggregate.X_IMAGES)
    assert by_images[0].x == aggregate.X_IMAGES
    assert figures.acc_figure(by_images, "digits").axes[0].get_xlabel() == "labelled training images (%)"
    assert [row.x.mean for row in by_images[0].rows] == pytest.approx([20.0, 40.0, 60.0, 80.0])  # of 100 images


# The joint tables of exp_root, as written before classification runs existed.
JOINT_AUC_MD = """\
AUC of test Dice (%) on synthetic: mean ± std (ddof 0) over seeds

| method | AUC | seeds | rounds | warnings |
|---|---|---|---|---|
| WSL | 41.00 ± 1.00 | 2 | 1 | 0 |
| Random | 71.25 ± 1.25 | 2 | 3 | 0 |
| Label_prop | 76.00 ± 1.00 | 2 | 3 | 1 |
| Full_sup | 89.00 ± 1.00 | 2 | 1 | 0 |

Warning: Label_prop: seeds finished 3 to 4 rounds (seed 0: 3, seed 1: 4); only the 3 rounds every seed finished count.
"""
JOINT_AUC_CSV = """\
method,auc_mean,auc_std,n_seeds,n_rounds,seed_aucs,warnings,not_comparable
WSL,41.0000,1.0000,2,1,40.0000 42.0000,0,0
Random,71.2500,1.2500,2,3,70.0000 72.5000,0,0
Label_prop,76.0000,1.0000,2,3,75.0000 77.0000,1,0
Full_sup,89.0000,1.0000,2,1,90.0000 88.0000,0,0
"""
JOINT_ROUNDS_CSV = """\
method,round,n_labelled,percent_labelled,test_dice_mean,test_dice_std,valid_dice_mean,valid_dice_std,\
test_acc_mean,test_acc_std,pseudo_dice_mean,pseudo_dice_std,n_seeds
WSL,0,0.0,0.00,41.0000,1.0000,40.0000,1.0000,80.5000,0.5000,,,2
Random,0,5.0,10.00,61.0000,1.0000,60.0000,1.0000,80.5000,0.5000,,,2
Random,1,10.0,20.00,72.0000,2.0000,71.0000,2.0000,80.5000,0.5000,,,2
Random,2,15.0,30.00,80.0000,0.0000,79.0000,0.0000,80.5000,0.5000,,,2
Label_prop,0,5.0,10.00,66.0000,1.0000,65.0000,1.0000,80.5000,0.5000,,,2
Label_prop,1,10.0,20.00,76.0000,1.0000,75.0000,1.0000,80.5000,0.5000,71.0000,1.0000,2
Label_prop,2,15.0,30.00,86.0000,1.0000,85.0000,1.0000,80.5000,0.5000,82.0000,2.0000,2
Full_sup,0,50.0,100.00,89.0000,1.0000,88.0000,1.0000,80.5000,0.5000,,,2
"""


def test_joint_outputs_are_unchanged_next_to_classification_runs(cls_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "paper"
    result = subprocess.run([sys.executable, "plot_active_learning_curves.py", "--dataset", "synthetic",
                             "--exp_root", str(cls_root), "--out", str(out)],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    assert (out / "synthetic-auc.md").read_text() == JOINT_AUC_MD
    assert (out / "synthetic-auc.csv").read_text() == JOINT_AUC_CSV
    assert (out / "synthetic-rounds.csv").read_text() == JOINT_ROUNDS_CSV
    assert result.stdout.endswith(JOINT_AUC_MD)

    summaries = aggregate.summarise(loading.load_runs([cls_root], "synthetic", 0, 0, None))
    assert all(s.x == aggregate.X_IMAGES for s in summaries)
    ax = figures.dice_figure(summaries, "synthetic").axes[0]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == (
        "synthetic: test Dice, mean ± std over 2 seeds", "labelled training images (%)", "test Dice (%)")
    assert [line.get_label() for line in ax.lines] == [
        "WSL (AUC 41.00 ± 1.00)", "Random (AUC 71.25 ± 1.25)", "Label_prop (AUC 76.00 ± 1.00)",
        "Full_sup (AUC 89.00 ± 1.00)"]
    assert ax.get_legend().get_title().get_text() == ""  # every method reached rounds 0-2: no heading
    assert not any(s.common_rounds or s.own_seed_aucs for s in summaries)
    assert list(ax.lines[2].get_ydata()) == pytest.approx([66.0, 76.0, 86.0])  # cut to the rounds all seeds ran


def test_task_comes_from_the_config_and_one_dataset_holds_one_task(tmp_path: Path) -> None:
    assert loading.run_task({}) == "joint" and loading.run_task({"task": "SEGMENTATION"}) == "joint"
    assert loading.run_task({"task": "classification"}) == "classification"
    fold_dir = tmp_path / "exps" / "digits" / "split_0-fold_0"
    write_cls_run(fold_dir, "Random", 0, [50.0, 60.0], "patience")
    write_run(fold_dir, "Entropy", 0, [40.0, 50.0], dataset="digits")  # a joint run: no task key
    runs = loading.load_runs([tmp_path / "exps"], "digits", 0, 0, None)
    assert sorted((r.method, r.task) for r in runs) == [("Entropy", "joint"), ("Random", "classification")]
    with pytest.raises(RunStateError, match="mix the joint and classification tasks"):
        aggregate.summarise(runs)


def test_a_classification_round_without_test_accuracy_is_rejected(tmp_path: Path) -> None:
    folder = write_cls_run(tmp_path / "exps", "Random", 0, [50.0], "patience")
    payload = json.loads((folder / "round_000" / "state.json").read_text())
    del payload["metrics"]["test"]
    (folder / "round_000" / "state.json").write_text(json.dumps(payload))
    with pytest.raises(RunStateError, match="lacks the test accuracy"):
        loading.load_runs([tmp_path / "exps"], "digits", 0, 0, None)


# ------------------------------------------------------------------------------------------------
# AUCs over the rounds every method reached; ablations of one method grouped by their tag
# ------------------------------------------------------------------------------------------------
# Entropy reached 5 rounds, Random 3: over rounds 0-2 Entropy's seeds score (55+65)/2 = 60 and 62,
# over its own 5 rounds (55+65+75+85)/4 = 70 and 72.
UNEVEN_DICE = {"WSL": TEST_DICE["WSL"], "Random": TEST_DICE["Random"],
               "Entropy": {0: [50.0, 60.0, 70.0, 80.0, 90.0], 1: [52.0, 62.0, 72.0, 82.0, 92.0]}}
UNEVEN_AUC_MD = """\
AUC of test Dice (%) on synthetic: mean ± std (ddof 0) over seeds, over rounds 0-2, which every method reached

| method | AUC over rounds 0-2 (all methods) | AUC over own rounds* | seeds | rounds | warnings |
|---|---|---|---|---|---|
| WSL | 41.00 ± 1.00 | 41.00 ± 1.00 | 2 | 1 | 0 |
| Random | 71.25 ± 1.25 | 71.25 ± 1.25 | 2 | 3 | 0 |
| Entropy | 61.00 ± 1.00 | 71.00 ± 1.00 | 2 | 5 | 0 |

*: over every round the method reached (rounds): not comparable between methods that reached different rounds.
"""
UNEVEN_AUC_CSV = """\
method,auc_mean,auc_std,n_seeds,n_rounds,seed_aucs,warnings,not_comparable,auc_rounds,own_auc_mean,own_auc_std,\
own_seed_aucs
WSL,41.0000,1.0000,2,1,40.0000 42.0000,0,0,0-2,41.0000,1.0000,40.0000 42.0000
Random,71.2500,1.2500,2,3,70.0000 72.5000,0,0,0-2,71.2500,1.2500,70.0000 72.5000
Entropy,61.0000,1.0000,2,5,60.0000 62.0000,0,0,0-2,71.0000,1.0000,70.0000 72.0000
"""


def test_methods_that_reached_different_rounds_are_compared_over_the_rounds_all_reached(tmp_path: Path) -> None:
    root = tmp_path / "exps"
    for method, seeds in UNEVEN_DICE.items():
        for seed, dices in seeds.items():
            write_run(root / "synthetic" / "split_0-fold_0", method, seed, dices)
    out = tmp_path / "paper"
    result = subprocess.run([sys.executable, "plot_active_learning_curves.py", "--dataset", "synthetic",
                             "--exp_root", str(root), "--out", str(out)],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (out / "synthetic-auc.md").read_text() == UNEVEN_AUC_MD
    assert (out / "synthetic-auc.csv").read_text() == UNEVEN_AUC_CSV
    assert result.stdout.endswith(UNEVEN_AUC_MD)

    summaries = aggregate.summarise(loading.load_runs([root], "synthetic", 0, 0, None))
    entropy = by_method(summaries)["Entropy"]
    assert entropy.seed_aucs == (pytest.approx(60.0), pytest.approx(62.0))
    assert entropy.own_seed_aucs == (pytest.approx(70.0), pytest.approx(72.0))
    ax = figures.dice_figure(summaries, "synthetic").axes[0]
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "AUC over rounds 0-2 (all methods)"
    assert [t.get_text() for t in legend.get_texts()] == [
        "WSL (AUC 41.00 ± 1.00)", "Random (AUC 71.25 ± 1.25)", "Entropy (AUC 61.00 ± 1.00)"]
    curve = next(line for line in ax.lines if line.get_label().startswith("Entropy"))
    assert list(curve.get_ydata()) == pytest.approx([51.0, 61.0, 71.0, 81.0, 91.0])  # drawn over all its rounds


def test_run_tag_is_the_run_id_less_its_seed() -> None:
    import gen_configs
    assert aggregate.run_tag("Label_prop-seed_0", 0) == "Label_prop"
    assert aggregate.run_tag(gen_configs.exp_id("Label_prop", 3, "knn10"), 3) == "Label_prop-knn10"
    assert aggregate.run_tag("Label_prop-knn10-seed_1", 1) == "Label_prop-knn10"
    assert aggregate.run_tag("Label_prop-seed_10", 1) == "Label_prop-seed_10"  # another seed's number is kept
    assert aggregate.run_tag("lp-k10", 0) == "lp-k10"
    assert loading.config_tag({"al_type": "Entropy", "MYSEED": 0, "annotation_unit": "region"}) == "Entropy (regions)"


@pytest.fixture()
def ablation_root(tmp_path: Path) -> Path:
    """Label_prop with the default kNN (seed 0) and with --knn 10 (seeds 0 and 1, the tag in both places
    an exp_id may carry it), and WSL with and without the tag, as gen_configs.py --exp_tag writes them."""
    import gen_configs
    root = tmp_path / "exps"
    fold_dir = root / "synthetic" / "split_0-fold_0"
    write_run(fold_dir, "WSL", 0, [40.0])
    write_run(fold_dir, "WSL", 0, [44.0], exp_id=gen_configs.exp_id("WSL", 0, "knn10"))
    write_run(fold_dir, "Label_prop", 0, [65.0, 75.0, 85.0])
    write_run(fold_dir, "Label_prop", 0, [70.0, 80.0, 90.0], exp_id=gen_configs.exp_id("Label_prop", 0, "knn10"))
    write_run(fold_dir, "Label_prop", 1, [72.0, 82.0, 92.0], exp_id="Label_prop-knn10-seed_1")
    return root


def test_group_by_tag_draws_ablations_of_one_method_side_by_side(ablation_root: Path, tmp_path: Path) -> None:
    summaries = aggregate.summarise(loading.load_runs([ablation_root], "synthetic", 0, 0, None),
                               group_by=aggregate.GROUP_TAG)
    assert [s.method for s in summaries] == ["WSL", "WSL-knn10", "Label_prop", "Label_prop-knn10"]
    s = by_method(summaries)
    assert s["Label_prop"].seeds == (0,) and s["Label_prop"].seed_aucs == (pytest.approx(75.0),)
    assert s["Label_prop-knn10"].seeds == (0, 1)
    assert s["Label_prop-knn10"].seed_aucs == (pytest.approx(80.0), pytest.approx(82.0))
    assert s["WSL-knn10"].single_round and not s["Label_prop-knn10"].single_round

    ax = figures.dice_figure(summaries, "synthetic").axes[0]
    labels = {line.get_label(): line for line in ax.lines}
    assert list(labels) == ["WSL (AUC 40.00 ± 0.00)", "WSL-knn10 (AUC 44.00 ± 0.00)",
                            "Label_prop (AUC 75.00 ± 0.00)", "Label_prop-knn10 (AUC 81.00 ± 1.00)"]
    assert list(labels["WSL-knn10 (AUC 44.00 ± 0.00)"].get_ydata()) == pytest.approx([44.0, 44.0])  # flat
    assert list(labels["Label_prop-knn10 (AUC 81.00 ± 1.00)"].get_ydata()) == pytest.approx([71.0, 81.0, 91.0])

    out = tmp_path / "paper"
    result = subprocess.run([sys.executable, "plot_active_learning_curves.py", "--dataset", "synthetic",
                             "--exp_root", str(ablation_root), "--out", str(out), "--group_by", "tag"],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    table = (out / "synthetic-auc.md").read_text()
    assert "| Label_prop | 75.00 ± 0.00 | 1 | 3 |" in table and "| Label_prop-knn10 | 81.00 ± 1.00 | 2 | 3 |" in table
    assert "Label_prop-knn10,1,10.0,20.00,81.0000,1.0000," in (out / "synthetic-rounds.csv").read_text()


def test_by_method_two_runs_of_one_seed_are_refused_with_the_tag_hint(ablation_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "paper"
    result = subprocess.run([sys.executable, "plot_active_learning_curves.py", "--dataset", "synthetic",
                             "--exp_root", str(ablation_root), "--out", str(out)],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "two runs of Label_prop seed 0" in result.stderr
    assert "--group_by tag" in result.stderr
    assert not out.exists()


def test_a_tag_shared_by_two_methods_is_refused(tmp_path: Path) -> None:
    runs = [aggregate.Run("Entropy", 0, tmp_path / "a", (), tag="ablation"),
            aggregate.Run("Margin", 1, tmp_path / "b", (), tag="ablation")]
    assert set(aggregate.group_runs(runs)) == {"Entropy", "Margin"}
    with pytest.raises(RunStateError, match="tagged ablation are of two methods, Entropy .* and Margin"):
        aggregate.group_runs(runs, aggregate.GROUP_TAG)
    same = [aggregate.Run("Random", 0, tmp_path / "a", ()), aggregate.Run("Random", 0, tmp_path / "b", ())]
    with pytest.raises(RunStateError, match="two runs of Random seed 0") as error:
        aggregate.group_runs(same)
    assert "--group_by" not in str(error.value)  # the same tag: grouping by tag would not separate them


# ------------------------------------------------------------------------------------------------
# Curve checks: a fall while labels grow, a diverged run, seeds at different rounds, regions' budget
# ------------------------------------------------------------------------------------------------
def checked(root: Path, points: float = checks.DEFAULT_DROP_POINTS) -> dict[str, aggregate.MethodSummary]:
    return by_method(checks.checked_summaries(loading.load_runs([root], "synthetic", 0, 0, None), points=points))


def test_clean_curves_raise_no_warning(tmp_path: Path) -> None:
    fold_dir = tmp_path / "exps" / "synthetic" / "split_0-fold_0"
    for seed, dices in TEST_DICE["Random"].items():
        write_run(fold_dir, "Random", seed, dices)
    write_run(fold_dir, "Entropy", 0, [60.0, 59.0, 70.0])   # falls 1 point only: within the default 2
    write_run(fold_dir, "Entropy", 1, [60.0, 59.0, 70.0])
    s = checked(tmp_path / "exps")
    assert s["Random"].warnings == () and s["Entropy"].warnings == () and s["Entropy"].drop_rounds == ()
    table = tables.auc_markdown(list(s.values()), "synthetic")
    assert "Warning" not in table and "| Entropy | 62.00 ± 0.00 | 2 | 3 | 0 |" in table
    assert "WARNING" not in figures.dice_figure(list(s.values()), "synthetic").axes[0].get_title()
    assert checked(tmp_path / "exps", points=0.5)["Entropy"].drop_rounds == (1,)   # a stricter threshold sees it


def test_a_fall_while_labels_grow_is_warned_marked_and_counted(tmp_path: Path) -> None:
    root = tmp_path / "exps"
    fold_dir = root / "synthetic" / "split_0-fold_0"
    write_run(fold_dir, "Random", 0, [70.0, 80.0, 74.0, 81.0])
    write_run(fold_dir, "Random", 1, [72.0, 82.0, 78.0, 83.0])
    random = checked(root)["Random"]
    assert random.warnings == (("Random: mean test Dice falls 5.0 points from round 1 (81.00) to round 2 (76.00) "
                               "while the labelled set grows (10 -> 15 images)"),)
    assert random.drop_rounds == (2,)
    out = tmp_path / "paper"
    result = subprocess.run([sys.executable, "plot_active_learning_curves.py", "--dataset", "synthetic",
                             "--exp_root", str(root), "--out", str(out)],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"Warning: {random.warnings[0]}." in result.stdout
    assert "| Random | 77.83 ± 1.33 | 2 | 4 | 1 |" in (out / "synthetic-auc.md").read_text()
    assert (out / "synthetic-auc.csv").read_text().splitlines()[1].split(",")[6] == "1"
    ax = figures.dice_figure([random], "synthetic").axes[0]
    assert "WARNING: 1 warning" in ax.get_title()
    marks = [line for line in ax.lines if line.get_label() == "mean fell while labels grew"]
    assert len(marks) == 1 and list(marks[0].get_ydata()) == [76.0] and list(marks[0].get_xdata()) == [30.0]


def test_a_run_stopped_by_a_diverged_round_is_warned_once(tmp_path: Path) -> None:
    root = tmp_path / "exps"
    fold_dir = root / "synthetic" / "split_0-fold_0"
    write_run(fold_dir, "Entropy", 0, [60.0, 70.0, 80.0])
    folder = write_run(fold_dir, "Entropy", 1, [61.0])
    reason = "Entropy r1 c0: the training loss became nan at epoch 26, so nothing of this round is written"
    RunFolder(folder).record_failure(1, reason)
    entropy = checked(root)["Entropy"]
    assert entropy.warnings == (f"Entropy seed 1 stopped at round 1: {reason}",)   # not also "uneven seeds"
    assert len(entropy.rows) == 1
    (folder / "failed.json").write_text("{")
    with pytest.raises(RunStateError, match="failed.json is not a failure record: delete it"):
        checked(root)


def test_seeds_at_different_rounds_are_warned(tmp_path: Path) -> None:
    fold_dir = tmp_path / "exps" / "synthetic" / "split_0-fold_0"
    write_run(fold_dir, "Random", 0, [60.0, 70.0, 80.0])
    write_run(fold_dir, "Random", 1, [60.0, 70.0])
    assert checked(tmp_path / "exps")["Random"].warnings == (
        "Random: seeds finished 2 to 3 rounds (seed 0: 3, seed 1: 2); only the 2 rounds every seed finished count",)


def test_a_region_run_that_annotated_more_pixels_is_marked_not_comparable(tmp_path: Path) -> None:
    def rounds(unit: str, pixels: list[int]) -> tuple[RoundState, ...]:
        return tuple(RoundState.from_json({**state("Entropy", 0, r, 60.0 + r), "unit": unit,
                                           "pixels_annotated": p, "n_pixels": 100 * N_TRAIN})
                     for r, p in enumerate(pixels))
    image = aggregate.Run("Entropy", 0, tmp_path / "a", rounds("image", [500, 1000]))
    equal = aggregate.Run("Entropy (regions)", 0, tmp_path / "b", rounds("region", [500, 1000]))
    wide = aggregate.Run("Entropy (regions)", 0, tmp_path / "c", rounds("region", [500, 1400]))
    assert not checks.checked_summaries([image, equal])[1].more_pixels
    summaries = checks.checked_summaries([image, wide])
    assert summaries[1].more_pixels and not summaries[1].warnings
    table = tables.auc_markdown(summaries, "synthetic")
    assert "| Entropy (regions) † |" in table and "†: annotated more pixels than an image-level method" in table
    labels = [t.get_text() for t in figures.dice_figure(summaries, "synthetic").axes[0].get_legend().get_texts()]
    assert labels[1].startswith("Entropy (regions) † (AUC") and labels[-1].startswith("† annotated more pixels")


def test_the_legend_sits_beside_the_axes(exp_root: Path) -> None:
    fig = figures.dice_figure(checks.checked_summaries(loading.load_runs([exp_root], "synthetic", 0, 0, None)),
                              "synthetic")
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
