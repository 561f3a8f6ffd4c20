"""Item 4: one complete round of every method through main.py's code path, phase by phase.

Each round runs as `python main.py` runs it (main.run_rounds on a parsed configuration) in a
temporary exp_root, WSL first (it writes theta0 for the others). Its phases (train / validate /
score / select / pseudo_label / write) are read back from round_000/state.json through
al.state.RoundState, the contract main.py writes and resume and the plot script read; "validate"
holds the per-epoch validation and the final evaluations. The wall time also counts loading the
data, so it is what a user waits for.

Random round 0 runs a second time with more epochs; the two wall times give the cost of one
epoch (training + validation) and of everything else, hence the projected wall time at the
paper's 1000 epochs, comparable with the original's measured 17 minutes (shared/docs/baseline.md).

Small size: a subset of the repository's synthetic fold (6 / 1 / 1 images per class), synthetic.yaml
otherwise. Paper size: the whole synthetic fold upscaled to the paper's geometry, and PH2 with
config_yaml/ph2.yaml when its data is there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

import constants as C
from al.state import STATE_FILE, RoundState, read_json, run_dir
from bench.measure import Measured, measure
from bench.report import Row
from bench.sizes import Size
from data.folds import load_fold, write_folds
from data.records import Fold
from main import run_rounds
from parseit import parse_config, resolve_path, resource_path

# The paper's methods, then the strategies that add training to a round (Ensemble trains
# ensemble_size heads, LL4AL its loss-prediction module, DAL a discriminator while selecting).
METHODS = (C.WSL, C.RANDOM, C.ENTROPY, C.MC_DROPOUT, C.LABEL_PROP, C.FULL_SUP, C.ENSEMBLE, C.LL4AL, C.DAL)
PHASES = ("train", "validate", "score", "select", "pseudo_label", "write")
PROJECTED_EPOCHS = 1000
# baseline.md: Random round 0, 0.48 s training + 0.49 s validation per epoch plus 17-25 s around the
# epoch loop, "about 17 min" at 1000 epochs.
ORIGINAL_RANDOM_ROUND_S = 17 * 60.0
SUBSET_PER_CLASS = {C.TRAIN: 6, C.VALID: 1, C.TEST: 1}
# The small subset has 18 training images: 34 % labels 2 per class at round 0, 12 % picks 1 per class per round.
SMALL_OVERRIDES = ("--p_init_samples", "34", "--p_samples", "12")
PAPER_OVERRIDES = ("--crop_size", "416", "--up_scale_small_dim_to", "432", "--ratio_scale_patch", "0.9",
                   "--padding_ratio", "0.01", "--batch_size", "20", "--valid_batch_size", "20", "--base_width", "24",
                   "--leak", "64", "--mcdropout_t", "50", "--knn", "40", "--resize_h_to_opt_mask", "128")


@dataclass(frozen=True)
class Study:
    """One dataset's configuration for the rounds: a YAML file and the overrides of the benchmark."""

    dataset: str
    args: tuple[str, ...]


def common_args(yaml_name: str, exp_root: Path, device: torch.device) -> tuple[str, ...]:
    return ("--yaml", yaml_name, "--exp_root", str(exp_root), "--device", device.type,
            "--cudaid", str(device.index or 0), "--progress", "false", "--deterministic", "false", "--MYSEED", "0")


def subset_fold(folds_root: Path) -> Path:
    """The first images per class of each subset of the repository's synthetic fold, written under folds_root."""
    folds = resource_path(parse_config(["--yaml", "synthetic.yaml"]).fold_folder, C.SYNTHETIC)
    fold = load_fold(folds, C.SYNTHETIC, 0, 0)

    def first(records: list, per_class: int) -> list:
        kept, counts = [], dict.fromkeys(fold.classes, 0)
        for record in records:
            if counts[record.label] < per_class:
                kept.append(record)
                counts[record.label] += 1
        return kept

    small = Fold(train=first(fold.train, SUBSET_PER_CLASS[C.TRAIN]), valid=first(fold.valid, SUBSET_PER_CLASS[C.VALID]),
                 test=first(fold.test, SUBSET_PER_CLASS[C.TEST]), classes=fold.classes)
    write_folds(folds_root, C.SYNTHETIC, {(0, 0): small}, seed=0)
    return folds_root


def synthetic_study(size: Size, work: Path, device: torch.device) -> Study:
    args = common_args("synthetic.yaml", work / "exps", device) + ("--data_root", str(work / "synthetic"))
    if size.full_fold:
        return Study(C.SYNTHETIC, args + PAPER_OVERRIDES)
    return Study(C.SYNTHETIC, args + ("--fold_folder", str(subset_fold(work / "folds"))) + SMALL_OVERRIDES)


def ph2_study(root: Path, work: Path, device: torch.device) -> Study:
    return Study(C.PH2, common_args("ph2.yaml", work / "exps", device) + ("--data_root", str(root)))


def default_ph2_root() -> Path:
    """Where config_yaml/ph2.yaml expects the PH2 data."""
    return resolve_path(parse_config(["--yaml", "ph2.yaml"]).data_root)


def read_round_state(path: Path) -> RoundState:
    """A round's state.json as the RoundState main.py wrote (RunStateError when it is not one)."""
    return RoundState.from_json(read_json(path), path)


def run_round(study: Study, method: str, epochs: int, exp_id: str, device: torch.device, *extra: str
              ) -> tuple[RoundState, Measured]:
    """Round 0 of `method` through main.run_rounds; its round state and the measured wall time."""
    # LL4AL detaches the module's inputs after 60 % of the epochs, as the paper's 120 of 200.
    detach = ("--ll4al_detach_epoch", str(epochs * 3 // 5)) if method == C.LL4AL else ()
    cfg = parse_config([*study.args, "--al_type", method, "--max_epochs", str(epochs), "--exp_id", exp_id,
                        *detach, *extra])
    with measure(device) as measured:
        run_rounds(cfg)
    return read_round_state(run_dir(cfg) / "round_000" / STATE_FILE), measured


def epochs_run(state: RoundState) -> int:
    """Training epochs of the round, over its cycles and ensemble members."""
    return sum(len(cycle["loss"]) for cycle in state.history.values())


def round_row(dataset: str, method: str, state: RoundState, measured: Measured) -> Row:
    """Seconds per phase (from the round state) and per training epoch; value = sum of the phases."""
    timings = {phase: float(state.timings.get(phase, 0.0)) for phase in PHASES}
    epochs = epochs_run(state)
    per_epoch = timings["train"] / max(epochs, 1)
    phases = " / ".join(f"{phase} {seconds:.2f}" for phase, seconds in timings.items() if phase in state.timings)
    row = Row("round", f"{dataset} {method}", "s", sum(timings.values()),
              note=f"{phases} s; {epochs} epochs, train {per_epoch:.3f} s/epoch; wall {measured.seconds:.1f} s "
                   f"with data loading").with_memory(measured)
    row.extra = {"timings": timings, "epochs": epochs, "cycles": len(state.history),
                 "train_s_per_epoch": per_epoch, "validate_s_per_epoch_upper": timings["validate"] / max(epochs, 1),
                 "wall_s": measured.seconds, "n_labelled": state.n_labelled,
                 "test_dice": state.metric("test", "dice_idx")}
    return row


def projection_row(dataset: str, short: tuple[int, float], long: tuple[int, float], size: Size) -> Row:
    """Wall time of Random round 0 at 1000 epochs from two runs: fixed cost + 1000 x cost per epoch."""
    (e1, w1), (e2, w2) = short, long
    per_epoch = (w2 - w1) / (e2 - e1)
    fixed = w1 - e1 * per_epoch
    row = Row("round", f"{dataset} Random r0 at {PROJECTED_EPOCHS} epochs (projected)", "s", None, seconds=w1 + w2,
              extra={"s_per_epoch": per_epoch, "fixed_s": fixed, "epochs": [e1, e2], "wall_s": [w1, w2]})
    if per_epoch <= 0:
        row.note = (f"not projected: the {e2}-epoch run ({w2:.1f} s) was not slower than the {e1}-epoch run "
                    f"({w1:.1f} s); timings too noisy on this machine")
        return row
    row.value = fixed + PROJECTED_EPOCHS * per_epoch
    row.note = (f"{per_epoch:.3f} s/epoch (train + validation) + {fixed:.1f} s fixed, "
                f"from {e1}- and {e2}-epoch runs")
    if size.name == "paper":
        row.reference, row.reference_value = "original", ORIGINAL_RANDOM_ROUND_S
        row.ratio = ORIGINAL_RANDOM_ROUND_S / row.value
    return row


def warm_up_row(study: Study, device: torch.device) -> Row:
    """Every method once at 1 epoch, so that the measured rounds do not pay for kernel selection.

    On CUDA the first use of each shape costs the context start and cudnn's autotuning. main.py
    pays it once per call (one round per process), the measured rounds below do not; this row
    gives its size.
    """
    with measure(device) as measured:
        for method in METHODS:
            run_round(study, method, 1, f"{method}-warmup", device)
    return Row("round", f"{study.dataset} warm-up, 1 epoch of each method", "s", measured.seconds,
               note="first use of each kernel shape in the process (CUDA context, cudnn autotuning), "
                    "paid once per main.py call; not included in the rows below").with_memory(measured)


def cache_row(study: Study, cached: RoundState, epochs: int, device: torch.device) -> Row:
    """Validation per epoch of Random round 0 without the frozen-feature cache (--frozen_cache_gb 0) against
    with it (the default, `cached`); ratio = without / with. The test Dice must not change in fp32."""
    plain, measured = run_round(study, C.RANDOM, epochs, f"{C.RANDOM}-bench-nocache", device, "--frozen_cache_gb", "0")
    on, off = (s.timings.get("validate", 0.0) / max(epochs_run(s), 1) for s in (cached, plain))
    same = plain.metric("test", "dice_idx") == cached.metric("test", "dice_idx")
    return Row("round", f"{study.dataset} Random r0 validation per epoch, frozen cache on", "s", on,
               reference="cache off", reference_value=off, ratio=off / on if on > 0 else None,
               note=f"{epochs} epochs; off: {off:.4f} s/epoch, round wall {measured.seconds:.1f} s; test Dice "
                    f"{'identical' if same else 'differs'} with and without").with_memory(measured)


def study_rows(study: Study, size: Size, device: torch.device) -> list[Row]:
    short, long = size.round_epochs
    rows, walls = ([warm_up_row(study, device)] if device.type == "cuda" else []), {}
    for method in METHODS:
        state, measured = run_round(study, method, short, f"{method}-bench", device)
        rows.append(round_row(study.dataset, method, state, measured))
        walls[method] = measured.seconds
    state, measured = run_round(study, C.RANDOM, long, f"{C.RANDOM}-bench-long", device)
    rows.append(projection_row(study.dataset, (short, walls[C.RANDOM]), (long, measured.seconds), size))
    rows.append(cache_row(study, state, long, device))
    return rows


def round_rows(size: Size, device: torch.device, work: Path, ph2_root: Path | None) -> list[Row]:
    """Rounds on the synthetic set, then on PH2 when a root is given (paper size only)."""
    rows = study_rows(synthetic_study(size, work / "synthetic-study", device), size, device)
    if ph2_root is not None and size.name == "paper":
        rows += study_rows(ph2_study(ph2_root, work / "ph2-study", device), size, device)
    return rows
