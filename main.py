"""One active-learning round per call (or a range of rounds with --al_it_end), Algorithm 1 of the paper.

    python main.py --yaml synthetic.yaml --al_type WSL --MYSEED 0               # stage 1: theta0
    python main.py --yaml synthetic.yaml --al_type Random --MYSEED 0 --al_it 0  # one round
    python main.py --yaml synthetic.yaml --al_type Label_prop --al_it 0 --al_it_end 4

A round: start from theta0 -> train the segmentation head on L (and the pseudo-labelled P; a deep
ensemble trains several) -> evaluate at original resolution -> the method's strategy
(al/strategies) scores the candidates and picks U' -> (Label_prop) pair U'' by kNN and
pseudo-label it -> write the round's state (al.state.RoundState). A finished round is skipped when called again; an
interrupted one starts again cleanly. The run folder layout is documented in al/state.py.

With a `task: classification` configuration (digits.yaml, cifar10.yaml, ...) a round trains a
torchvision classifier on the labelled images and the oracle reveals class labels
(engine/classification.py, classification_round below).

With `--oracle files` a person answers: each round ends by writing the next request
(round_<r>/to_annotate/), and a call whose answers are not there yet says so and exits 3
(constants.EXIT_WAITING); bad answers exit 2 before anything is written (engine/oracle.py).
"""

from __future__ import annotations

import sys

from parseit import print_help

if __name__ == "__main__" and {"--help", "-h"} & set(sys.argv[1:]):
    print_help()  # answered before torch is imported (seconds on a cold start)
    sys.exit(0)

import functools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

import constants as C
from al import selection
from al.answers import AnswerError
from al.methods import METHODS, Method
from al.pseudo_label import FeatureSettings, load_or_build, merge_pairs, pair_unlabelled
from al.regions import load_or_build as regions_cache
from al.regions import partial_mask, region_means, region_sizes, top_regions
from al.state import (
    BestEpoch,
    RoundState,
    RunFolder,
    RunLockedError,
    RunStateError,
    experiment_dir,
    run_dir,
    theta0_path,
)
from al.strategies import Strategy, StrategySettings, build_strategy
from al.strategies.base import LOSS_MODULE, Evidence, Selection
from data.records import DataError
from engine.acquire import gather_evidence, pixel_score_maps
from engine.checkpoint import (
    CheckpointError,
    build_model,
    check_stage1_target,
    check_theta0_origin,
    load_theta0,
    model_from_theta0,
    save_theta0,
    theta0_digest,
)
from engine.classification import (
    ClassificationData,
    evaluate,
    load_classification_data,
    save_weights,
    train,
    train_setup,
)
from engine.classification import gather_evidence as classification_evidence
from engine.context import RunData, inference, load_data, train_settings
from engine.evaluate import (
    Inference,
    estimate_threshold,
    predict_masks,
    segmentation_metrics,
    validation_accuracy,
    validation_dice,
    wsl_metrics,
)
from engine.oracle import (
    REQUEST_DIR,
    Revealed,
    WaitingForAnswers,
    keep_answers,
    request_folder,
    reveal,
    write_next_request,
)
from engine.resident import TrainPool
from engine.runtime import DeviceError, cpu_generator, derived_seed, seed_everything, select_device, set_deterministic
from engine.train import BestModel, LossPredictionTraining, TrainingError, fit
from losses.hybrid import HybridLoss
from models.backbone import STAGE_CHANNELS, PretrainedWeightsError
from models.classifier import Classifier, build_classifier
from parseit import (
    Config,
    config_differences,
    exit_on_error,
    parse_config,
    resolve_path,
    save_config,
    summary,
)

# Keys that may change between calls on the same run folder without changing its results.
RESUME_FREE_KEYS = ("al_it", "al_it_end", "max_al_its", "progress", "cudaid", "device", "cache_dir", "exp_root",
                    "debug_subfolder", "data_root", "fold_folder", "valid_batch_size", "path_pre_trained",
                    "oracle_answers")
# Purposes of the derived seeds of one round.
AUGMENT, SELECT, MC, TRAIN = 1, 2, 3, 4


class Clock:
    """Wall time per phase of a round (train / validate / score / select / pseudo_label / write)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] += seconds


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help" in argv or "-h" in argv:
        print_help()
        return
    with exit_on_error(DataError, CheckpointError, RunStateError, RunLockedError, DeviceError,
                       PretrainedWeightsError, AnswerError, TrainingError, OSError):
        cfg = parse_config(argv)
        print(summary(cfg), flush=True)
        try:
            run_rounds(cfg)
        except WaitingForAnswers as waiting:
            print(f"waiting: {waiting}", flush=True)
            sys.exit(C.EXIT_WAITING)


def run_rounds(cfg: Config) -> None:
    device = select_device(cfg.device, cfg.cudaid)
    set_deterministic(cfg.deterministic)
    method = METHODS[cfg.al_type]
    strategy = None if method.strategy is None else build_strategy(method.strategy, strategy_settings(cfg))
    # Two generated scripts may start the same seed's stage 1 together: the second waits for the first.
    with RunFolder(run_dir(cfg), wait=method.stage == 1) as run:
        check_config(run, cfg)
        last = cfg.al_it if cfg.al_it_end is None else cfg.al_it_end
        pending = [r for r in range(cfg.al_it, last + 1) if not run.is_done(r)]
        for r in sorted(set(range(cfg.al_it, last + 1)) - set(pending)):
            run.read_state(r)  # a damaged state.json is reported, not skipped
            print(f"round {r}: already finished in {run.root}, skipped")
        if pending and pending[0] > 0 and not run.is_done(pending[0] - 1):
            raise RunStateError(f"round {pending[0] - 1} of {run.root} has not finished: run it first "
                                f"(--al_it {pending[0] - 1})")
        if not pending or (pending[0] > 0 and run.read_state(pending[0] - 1).exhausted):
            if pending:
                reason = run.read_state(pending[0] - 1).stop_reason or "the pool is exhausted"
                print(f"round {pending[0]}: the study stopped at round {pending[0] - 1} ({reason}), nothing to do")
            return
        if cfg.task == C.TASK_CLASSIFICATION:
            classification_rounds(cfg, method, strategy, run, pending, device)
            return
        data = load_data(cfg, device)
        theta0, digest = None, None
        if method.stage == 1:
            check_stage1_target(theta0_path(cfg), run.root)
        else:
            theta0, digest = checked_theta0(cfg, run, pending[0])
        previous = run.read_state(pending[0] - 1) if pending[0] > 0 else None
        if previous is not None:
            check_state_ids(previous, data.pool.ids, run.round_dir(pending[0] - 1))
        if strategy is not None:  # refuse before anything is written
            check_strategy(strategy, data, labelled_set(cfg, method, data, previous))
        regions = superpixel_maps(cfg, data) if cfg.annotation_unit == C.UNIT_REGION and strategy is not None \
            else {}
        for r in pending:
            revealed = Revealed({})
            if method.stage == 2:  # the masks round r trains on, checked before anything is written
                previous = run.read_state(r - 1) if r > 0 else None
                labelled = labelled_set(cfg, method, data, previous)
                try:
                    revealed = reveal(cfg, run, data, r, previous, labelled, regions, first=r == pending[0])
                except WaitingForAnswers:
                    save_config_once(run, cfg)
                    if r == 0 and not (request_folder(run, 0) / "index.html").is_file():
                        write_next_request(cfg, run, request_folder(run, 0), -1, data, None, inference(cfg, device),
                                           cfg.seg_threshold, data.pool.ids, labelled, {}, {}, regions)
                    raise
            save_config_once(run, cfg)
            attempt = functools.partial(write_round, cfg, method, strategy, data, run, r, theta0, digest, revealed,
                                        regions)
            state = with_fp32_retry(attempt, inference(cfg, device), run, r)
            print(round_line(state), flush=True)
            if state.exhausted and r < last:
                print(f"round {r + 1}: the pool is exhausted, nothing left to annotate")
                break


def write_round(cfg: Config, method: Method, strategy: Strategy | None, data: RunData, run: RunFolder, r: int,
                theta0: dict[str, Any] | None, digest: str | None, revealed: Revealed, regions: dict[str, torch.Tensor],
                infer: Inference, retried: str | None) -> RoundState:
    """Round r trained, evaluated and published in the run folder (stage 1 writes theta0 too)."""
    clock = Clock()
    with run.attempt(r) as partial:
        if method.stage == 1:
            state = stage1_round(cfg, data, infer, clock, run.root)
        else:
            state = stage2_round(cfg, method, strategy, data, run, r, partial, theta0, infer, clock, revealed, regions)
            state.theta0_sha256 = digest
        state.retried_fp32 = retried
        with clock("write"):
            keep_answers(partial, revealed)
            state.timings = dict(clock.seconds)
            run.finish_round(r, partial, state)
    return state


def with_fp32_retry(attempt: Callable[[Inference, str | None], RoundState], infer: Inference, run: RunFolder,
                    r: int) -> RoundState:
    """Round r; when its bf16 training diverges, the round runs again once from its start in fp32 and its
    state records why. A divergence in fp32 stops the run and is recorded in the run folder (failed.json),
    so that the curve checks of the study report the lost run."""
    try:
        return attempt(infer, None)
    except TrainingError as error:
        if not (infer.bf16 and infer.device.type == "cuda"):
            run.record_failure(r, str(error))
            raise
        first = str(error)
    print(f"round {r}: {first}; running the round again from its start in fp32", flush=True)
    try:
        return attempt(replace(infer, bf16=False), first)
    except TrainingError as error:
        run.record_failure(r, str(error))
        raise


def checked_theta0(cfg: Config, run: RunFolder, first: int) -> tuple[dict[str, Any], str]:
    """theta0 and its digest, refused when it was trained for another dataset, split, fold or seed, or
    when it is not the one the run's earlier rounds started from."""
    path = theta0_path(cfg)
    theta0 = load_theta0(path)
    expected = {"dataset": cfg.dataset, "split": cfg.split, "fold": cfg.fold}
    if not cfg.path_pre_trained:  # an explicit file may serve several seeds, as in the paper's scripts
        expected["seed"] = cfg.MYSEED
    check_theta0_origin(theta0, path, expected)
    digest = theta0_digest(path)
    recorded = next((s.theta0_sha256 for s in (run.read_state(j) for j in run.done_rounds() if j < first)
                     if s.theta0_sha256), None)
    if recorded is not None and recorded != digest:
        raise CheckpointError(f"{path} is not the theta0 this run started from (sha256 {recorded[:12]}... recorded, "
                              f"{digest[:12]}... now): restore that file, or start a new run with another --exp_id")
    return theta0, digest


def check_state_ids(state: RoundState, ids: Sequence[str], folder: Path) -> None:
    """A hand-edited state.json may name samples the fold does not have."""
    unknown = sorted((set(state.labelled) | set(state.selected) | set(state.pseudo_pairs)) - set(ids))
    if unknown:
        raise RunStateError(f"{folder / 'state.json'} names samples that are not in the train set of the fold "
                            f"({', '.join(unknown[:3])}{' ...' if len(unknown) > 3 else ''}): delete that round's "
                            "folder and run the round again")


def classification_rounds(cfg: Config, method: Method, strategy: Strategy | None, run: RunFolder, pending: list[int],
                          device: torch.device) -> None:
    """The rounds of a classification study (engine/classification.py), checked before anything is written."""
    data = load_classification_data(cfg, device)
    model = classifier(cfg, data.n_classes, strategy)  # an unknown model or missing weights stop here
    previous = run.read_state(pending[0] - 1) if pending[0] > 0 else None
    if previous is not None:
        check_state_ids(previous, data.train.ids, run.round_dir(pending[0] - 1))
    if strategy is not None:
        labelled = classification_labelled(cfg, method, data, previous)
        strategy.check(data.train.labels_np[[data.position[i] for i in labelled]], model.feature_dim)
    save_config_once(run, cfg)
    for r in pending:
        clock = Clock()
        with run.attempt(r) as partial:
            state = classification_round(cfg, method, strategy, data, run, r, partial, device, clock)
            with clock("write"):
                state.timings = dict(clock.seconds)
                run.finish_round(r, partial, state)
        print(round_line(state), flush=True)
        if state.exhausted:
            if r < pending[-1]:
                print(f"round {r + 1}: the study stopped at round {r} ({state.stop_reason})")
            break


def classifier(cfg: Config, n_classes: int, strategy: Strategy | None) -> Classifier:
    k = cfg.classification
    return build_classifier(k.model, n_classes, k.pretrained,
                            None if k.weights_dir is None else resolve_path(k.weights_dir),
                            loss_prediction_width=cfg.ll4al_width if loss_prediction_training(cfg, strategy) else 0,
                            dropout=k.head_dropout)


def classification_labelled(cfg: Config, method: Method, data: ClassificationData,
                            previous: RoundState | None) -> list[str]:
    """L_r: n_start random images per class at round 0 (init_sampling_seed), then L_{r-1} plus U'_r."""
    if method.single_round:
        return sorted(data.train.ids)
    if previous is None:
        seed = cfg.MYSEED if cfg.classification.init_sampling_seed is None else cfg.classification.init_sampling_seed
        return sorted(selection.initial_labelled(data.train.ids, data.train.labels_np, cfg.classification.n_start,
                                                 seed))
    return sorted(set(previous.labelled) | set(previous.selected))


def classification_round(cfg: Config, method: Method, strategy: Strategy | None, data: ClassificationData,
                         run: RunFolder, r: int, partial: Path, device: torch.device, clock: Clock) -> RoundState:
    """Train on L_r (fresh or warm-started), evaluate, stop on patience, else pick n_new images."""
    k = cfg.classification
    previous = run.read_state(r - 1) if r > 0 else None
    labelled = classification_labelled(cfg, method, data, previous)
    position = data.position
    rows = [position[i] for i in labelled]
    loss_prediction = loss_prediction_training(cfg, strategy) is not None
    setup = train_setup(cfg, data.flippable, loss_prediction)
    members, history, valid = [], {}, []
    for m in range(1 if strategy is None else strategy.n_models()):
        extra = (m,) if m else ()
        seed_everything(derived_seed(cfg.MYSEED, r, 0, TRAIN, *extra))
        model = classifier(cfg, data.n_classes, strategy).to(device)
        if k.warm_start and previous is not None:
            model.load_state_dict(torch.load(run.round_dir(r - 1) / f"model{m}.pt", map_location=device,
                                             weights_only=True))
        with clock("train"):
            losses = train(model, data.train.images[rows], data.train.labels[rows], setup,
                           cpu_generator(derived_seed(cfg.MYSEED, r, 0, AUGMENT, *extra)),
                           f"{cfg.al_type} round {r}" + (f" member {m}" if m else ""))
        with clock("validate"):
            valid.append(evaluate(model, data.valid, cfg.valid_batch_size))
        members.append(model)
        history["cycle0" if m == 0 else f"cycle0_member{m}"] = {"loss": losses, "valid": [valid[-1]["acc"]]}
    best = max(range(len(members)), key=lambda m: (valid[m]["acc"], -m))  # ties: the smaller index
    members.insert(0, members.pop(best))
    model = members[0]
    with clock("validate"):
        metrics = {"valid": valid[best], "test": evaluate(model, data.test, cfg.valid_batch_size)}

    # Patience (002): rounds since validation accuracy last beat its best.
    history_acc = [run.read_state(j).metric("valid", "acc") for j in range(r)] + [metrics["valid"]["acc"]]
    stale, top = 0, -1.0
    for acc in history_acc:
        stale, top = (0, acc) if acc > top else (stale + 1, top)
    leftovers = [i for i in data.train.ids if i not in set(labelled)]
    stop = (C.STOP_ROUNDS if r == cfg.max_al_its - 1 and not method.single_round else
            C.STOP_PATIENCE if k.patience and stale >= k.patience else
            C.STOP_EXHAUSTED if not leftovers else None)

    picked = Selection([])
    if strategy is not None and stop is None:
        rng = np.random.default_rng(derived_seed(cfg.MYSEED, r, 0, SELECT))
        candidates = strategy.candidate_subset(leftovers, rng)
        # The oracle reveals the class, so candidates are ranked together, not class by class.
        evidence = Evidence(candidates=candidates, candidate_labels=np.zeros(len(candidates), dtype=np.int64),
                            labelled=labelled, labelled_labels=data.train.labels_np[rows])
        with clock("score"):
            classification_evidence(strategy, members, data, evidence, [position[i] for i in candidates], rows,
                                    cfg.valid_batch_size, derived_seed(cfg.MYSEED, r, 0, MC))
        with clock("select"):
            picked = strategy.select(evidence, min(k.n_new, len(candidates)), rng)
        if len(picked.selected) == len(leftovers):
            stop = C.STOP_EXHAUSTED
    with clock("write"):
        if k.warm_start:
            for m, member in enumerate(members):
                save_weights(member, partial / f"model{m}.pt")
    asked = sorted(set(labelled) - set(previous.labelled if previous else ()))
    return RoundState(round=r, method=cfg.al_type, seed=cfg.MYSEED, dataset=cfg.dataset, n_train=len(data.train),
                      labelled=labelled, selected=picked.selected, exhausted=method.single_round or stop is not None,
                      best=BestEpoch(epoch=cfg.max_epochs - 1, cycle=0, valid_score=valid[best]["acc"], member=best),
                      metrics=metrics, history=history, scores=picked.scores, task=C.TASK_CLASSIFICATION,
                      stop_reason=stop, annotations={i: {"source": C.SOURCE_SIMULATED, "reference": None,
                                                         "lead_time": None} for i in asked})


def save_config_once(run: RunFolder, cfg: Config) -> None:
    """config.yaml is written by the first call that gets past every check."""
    if not (run.root / "config.yaml").is_file():
        save_config(cfg, run.root / "config.yaml")


def check_config(run: RunFolder, cfg: Config) -> None:
    """Later calls on a run folder must agree with its saved config.yaml on what shapes the results."""
    path = run.root / "config.yaml"
    if path.is_file():
        try:
            saved = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError):
            saved = None
        if not isinstance(saved, dict):
            raise RunStateError(f"{path} is empty or corrupt: delete it (the finished rounds stay and the next call "
                                "writes it again) or use another --exp_id")
        changed = config_differences(saved, cfg.to_dict(), ignore=RESUME_FREE_KEYS)
        if changed:
            raise RunStateError(f"{run.root} was run with another configuration ({', '.join(changed[:3])} differ): "
                                "use the same values or a new --exp_id")


def strategy_settings(cfg: Config) -> StrategySettings:
    """The strategies' hyper-parameters: the keys of the same name (T of the MC passes is mcdropout_t)."""
    names = [f.name for f in fields(StrategySettings)]
    return StrategySettings(**{name: cfg.mcdropout_t if name == "mc_passes" else cfg[name] for name in names})


def check_strategy(strategy: Strategy, data: RunData, labelled: list[str]) -> None:
    """The strategy's own preconditions on the labelled set and the feature size."""
    labels = data.pool.labels[[data.pool.position[i] for i in labelled]]
    strategy.check(labels, STAGE_CHANNELS[-1])


def stage1_round(cfg: Config, data: RunData, infer: Inference, clock: Clock, run_root: Path) -> RoundState:
    """WSL: backbone + WILDCAT on every training image's class label; writes theta0."""
    seed_everything(cfg.MYSEED)
    model = build_model(cfg, data.n_classes, infer.device, imagenet=True)
    items = data.pool.items([(p, C.U, None) for p in range(len(data.pool))], with_masks=False)
    loss = HybridLoss(cfg.scale_cl, 0.0, 0.0, normalisation=cfg.seg_loss_normalisation, train_classifier=True)
    best = BestModel(model)
    stats = fit(model, items, loss, train_settings(cfg, data.pool.geometry.train_crop, False, cfg.hflip, cfg.vflip), infer,
                lambda m: validation_accuracy(m, data.valid, infer), best, cycle=0,
                generator=cpu_generator(derived_seed(cfg.MYSEED, 0, 0, AUGMENT)), desc="WSL")
    clock.add("train", stats.train_seconds)
    clock.add("validate", stats.validate_seconds)
    best.restore(model)
    with clock("validate"):
        metrics = {}
        for name, eval_set in (("valid", data.valid), ("test", data.test)):
            both = wsl_metrics(model, eval_set, infer)
            metrics[name] = {**both["predicted_class"].summary(),
                             "dice_idx_true_class": both["true_class"].summary()["dice_idx"]}
    with clock("write"):
        save_theta0(theta0_path(cfg), model, {"dataset": cfg.dataset, "split": cfg.split, "fold": cfg.fold,
                                              "seed": cfg.MYSEED, "num_classes": data.n_classes,
                                              "run": str(run_root),
                                              "valid_acc": best.score, "epoch": best.epoch})
    return RoundState(round=0, method=cfg.al_type, seed=cfg.MYSEED, dataset=cfg.dataset, n_train=len(data.pool),
                      labelled=[], selected=[], exhausted=True, theta0=str(theta0_path(cfg)),
                      best=BestEpoch(best.epoch, 0, best.score), metrics=metrics,
                      history={"cycle0": stats.curves()})


def stage2_round(cfg: Config, method: Method, strategy: Strategy | None, data: RunData, run: RunFolder, r: int,
                 partial: Path, theta0: dict[str, Any], infer: Inference, clock: Clock, revealed: Revealed,
                 regions: dict[str, torch.Tensor]) -> RoundState:
    """One round of a stage-2 method: Algorithm 1 of the paper, with Label_prop's second cycle.
    The oracle's masks are in `revealed` (a person's) or in the dataset (simulated)."""
    pool = data.pool
    previous = run.read_state(r - 1) if r > 0 else None
    labelled = labelled_set(cfg, method, data, previous)
    leftovers = [i for i in pool.ids if i not in set(labelled)]

    # P_{r-1} (the previous round's pairs with their final masks) and, for Label_prop, this round's U''.
    carried = carried_pseudo_masks(run, r, previous, pool)
    pairs = dict(previous.pseudo_pairs) if previous else {}
    if method.pseudo_labels:
        with clock("pseudo_label"):
            pairs = merge_pairs(pairs, pair_by_colour(cfg, data, labelled, infer.device))

    # Region-level annotation: the regions revealed so far, whose images train on partial masks.
    revealed_so_far = revealed_regions(previous)

    # Cycle 0: theta0 -> L_r plus P_{r-1}; a deep ensemble trains several members, the best one reports.
    n_models = 1 if strategy is None else strategy.n_models()
    entries = [(pool.position[i], C.L, revealed.mask_for(data, i)) for i in labelled]
    entries += [(pool.position[u], C.L, revealed.mask_for(data, u) if u in revealed.masks
                 else partial_mask_view(data, regions, u, ks)) for u, ks in revealed_so_far.items()]
    entries += [(pool.position[u], C.PL, mask) for u, mask in carried.items()]
    members, best, history = train_members(cfg, data, theta0, entries, infer, r, n_models, clock,
                                           loss_prediction_training(cfg, strategy))
    model = members[0]

    # Cycle 1 (Label_prop): pseudo-label every pair with the best model so far, retrain from theta0.
    if method.pseudo_labels and pairs:
        with clock("pseudo_label"):
            pseudo = pseudo_masks(cfg, model, data, infer, list(pairs))
        entries = [(pool.position[i], C.L, revealed.mask_for(data, i)) for i in labelled]
        positions = [pool.position[u] for u in pairs]
        entries += [(p, C.PL, pool.mask_view(p, pseudo.masks[p])) for p in positions]
        model, best, history["cycle1"] = train_cycle(cfg, data, theta0, entries, infer, r, 1, best, clock)
        best.restore(model)
        members = [model]

    # Evaluate the reported model at original resolution with the threshold estimated on validation.
    with clock("validate"):
        threshold = estimate_threshold(model, data.valid, infer)[0] if cfg.estimate_seg_thres else cfg.seg_threshold
        test = segmentation_metrics(model, data.test, infer, threshold)
        metrics = {"valid": segmentation_metrics(model, data.valid, infer, threshold).summary(),
                   "test": test.summary()}
        positions = [pool.position[i] for i in labelled]
        if all(data.train_eval.mask(p) is not None for p in positions):  # a person's pool may have none
            metrics["train_labelled"] = segmentation_metrics(model, data.train_eval, infer, threshold,
                                                             positions).summary()

    # Re-annotate the pairs with the final model; their Dice against the true masks is the paper's Fig. 6.
    final = PseudoMasks({}, {}, None)
    if method.pseudo_labels and pairs:
        with clock("pseudo_label"):
            # Same model and validation set: the round's threshold is reused when both are estimated (or fixed).
            reuse = threshold if cfg.estimate_pseg_thres == cfg.estimate_seg_thres else None
            final = pseudo_masks(cfg, model, data, infer, list(pairs), reuse)
            metrics["pseudo"] = {"dice_idx": 100 * float(np.mean(list(final.dice.values()))) if final.dice
                                 else None, "n": len(pairs)}

    # The oracle picks U'_{r+1}: images, or regions of images.
    picked, picked_regions = Selection([]), RegionPick({}, {}, exhausted=True)
    if regions:
        picked_regions = acquire_regions(cfg, strategy, members, data, infer, regions, leftovers, revealed_so_far, r,
                                         clock)
        picked = Selection(sorted(picked_regions.regions), picked_regions.scores)
    elif strategy is not None:
        candidates = selection.oracle_candidates(leftovers, list(pairs), data.n_classes, cfg.protect_pl) \
            if method.pseudo_labels else leftovers
        picked = acquire(cfg, strategy, members, data, infer, candidates, labelled, r, clock)

    # P_r for the next round: the pairs not picked by the oracle, with their final masks.
    next_pairs = {u: lab for u, lab in pairs.items() if u not in set(picked.selected)}
    exhausted = picked_regions.exhausted if regions else len(leftovers) == len(picked.selected)
    with clock("write"):
        for u in next_pairs:
            run.write_mask(partial, u, final.masks[pool.position[u]].cpu().numpy())
        if cfg.oracle == C.ORACLE_FILES and picked.selected and not method.single_round:
            write_next_request(cfg, run, partial / REQUEST_DIR, r, data, model, infer, threshold, leftovers,
                               picked.selected, picked.scores, picked_regions.regions, regions)
    return RoundState(round=r, method=cfg.al_type, seed=cfg.MYSEED, dataset=cfg.dataset, n_train=len(pool),
                      labelled=labelled, selected=picked.selected, pseudo_pairs=next_pairs,
                      n_pseudo_trained=len(pairs), exhausted=method.single_round or exhausted,
                      unit=C.UNIT_REGION if regions else C.UNIT_IMAGE,
                      revealed={u: sorted(k) for u, k in revealed_so_far.items()},
                      selected_regions=picked_regions.regions,
                      pixels_annotated=annotated_pixels(data, labelled, regions, revealed_so_far),
                      annotations=revealed.provenance, annotation_seconds=revealed.seconds,
                      n_pixels=sum(s.image.shape[-2] * s.image.shape[-1] for s in data.train),
                      threshold=threshold, pseudo_threshold=final.threshold, best=best_epoch(best),
                      metrics=metrics, test_dice_per_image=dict(zip(test.ids, test.dice)),
                      scores=picked.scores, history=history)


def labelled_set(cfg: Config, method: Method, data: RunData, previous: RoundState | None) -> list[str]:
    """L_r, the fully annotated images: every train image (Full_sup), L_0 shared by all methods of a seed,
    or L_{r-1} plus U'_r (region-level rounds keep L_0 and reveal regions of other images)."""
    pool = data.pool
    if method.single_round:
        return sorted(pool.ids)
    if previous is None:
        per_class = selection.initial_per_class(cfg.p_init_samples, len(pool), data.n_classes)
        return sorted(selection.initial_labelled(pool.ids, pool.labels, per_class, cfg.MYSEED))
    if previous.unit == C.UNIT_REGION:  # the region pick only reveals regions (revealed_regions)
        return sorted(previous.labelled)
    return sorted(set(previous.labelled) | set(previous.selected))


def revealed_regions(previous: RoundState | None) -> dict[str, set[int]]:
    """The regions revealed before round r: those of round r-1 plus its region pick."""
    if previous is None:
        return {}
    out = {u: set(k) for u, k in previous.revealed.items()}
    for u, k in previous.selected_regions.items():
        out.setdefault(u, set()).update(k)
    return dict(sorted(out.items()))


def superpixel_maps(cfg: Config, data: RunData) -> dict[str, torch.Tensor]:
    """Every train image's superpixels at original resolution, computed once per fold and cached."""
    return regions_cache(experiment_dir(cfg) / "superpixels", data.pool.ids, [s.image for s in data.train],
                         cfg.regions_per_image, cfg.superpixel_method, cfg.progress)


def partial_mask_view(data: RunData, regions: dict[str, torch.Tensor], u: str, revealed: set[int]) -> torch.Tensor:
    """Image u's true mask on its revealed regions and IGNORE elsewhere, in the training geometry."""
    p = data.pool.position[u]
    return data.pool.mask_view(p, partial_mask(data.train[p].mask, regions[u], sorted(revealed)))


def annotated_pixels(data: RunData, labelled: list[str], regions: dict[str, torch.Tensor],
                     revealed: dict[str, set[int]]) -> int:
    """Pixels the oracle annotated for this round's training: whole images of L_r and revealed regions."""
    total = sum(int(data.train[data.pool.position[i]].image[0].numel()) for i in labelled)
    for u, ks in revealed.items():
        total += int(torch.isin(regions[u], torch.tensor(sorted(ks), dtype=regions[u].dtype)).sum())
    return total


def carried_pseudo_masks(run: RunFolder, r: int, previous: RoundState | None,
                         pool: TrainPool) -> dict[str, torch.Tensor]:
    """P_{r-1}: the previous round's pseudo-masks, brought to the training geometry."""
    if previous is None:
        return {}
    return {u: pool.mask_view(pool.position[u], torch.from_numpy(run.read_mask(r - 1, u)))
            for u in previous.pseudo_pairs}


def pair_by_colour(cfg: Config, data: RunData, labelled: list[str], device: torch.device) -> dict[str, str]:
    """Label_prop's U'': unlabelled samples paired with a labelled class-mate by colour-histogram kNN."""
    pool = data.pool
    cache = load_or_build(experiment_dir(cfg) / "knn_cache", pool.ids, pool.labels.tolist(),
                          [s.image for s in data.train], feature_settings(cfg), cfg.knn_block_size,
                          device, cfg.progress)
    return pair_unlabelled(cache, set(labelled), cfg.knn, cfg.knn_block_size, device)


@dataclass
class PseudoMasks:
    masks: dict[int, torch.Tensor]   # pool position -> binary mask at original resolution, on the device
    dice: dict[int, float]           # pool position -> Dice against the true mask
    threshold: float | None


def pseudo_masks(cfg: Config, model: Any, data: RunData, infer: Any, ids: list[str],
                 threshold: float | None = None) -> PseudoMasks:
    """Masks the model draws for `ids`, cut at `threshold` or at the pseudo-label threshold of the config."""
    if threshold is None:
        threshold = estimate_threshold(model, data.valid, infer)[0] if cfg.estimate_pseg_thres else cfg.seg_threshold
    masks, dice = predict_masks(model, data.train_eval, infer, threshold, [data.pool.position[u] for u in ids])
    return PseudoMasks(masks, dice, threshold)


def loss_prediction_training(cfg: Config, strategy: Strategy | None) -> LossPredictionTraining | None:
    """LL4AL's joint training of the loss-prediction module, for the strategies that need one."""
    if strategy is None or LOSS_MODULE not in strategy.required():
        return None
    return LossPredictionTraining(weight=cfg.ll4al_weight, margin=cfg.ll4al_margin,
                                  detach_epoch=cfg.ll4al_detach_epoch)


def train_members(cfg: Config, data: RunData, theta0: dict[str, Any], entries: list, infer: Any, r: int,
                  n_models: int, clock: Clock, loss_prediction: LossPredictionTraining | None = None
                  ) -> tuple[list[Any], BestModel, dict[str, Any]]:
    """Cycle 0 for each of `n_models` members; each ends on its best weights, the best member comes first."""
    trained = []
    history: dict[str, Any] = {}
    for m in range(n_models):
        model, best, curves = train_cycle(cfg, data, theta0, entries, infer, r, 0, None, clock, member=m,
                                          loss_prediction=loss_prediction)
        best.restore(model)
        trained.append((best.score, -m, model, best))
        history["cycle0" if m == 0 else f"cycle0_member{m}"] = curves
    trained.sort(key=lambda t: (t[0], t[1]), reverse=True)  # ties: the member with the smaller index
    _, neg_member, _, best = trained[0]
    best.member = -neg_member
    return [t[2] for t in trained], best, history


def train_cycle(cfg: Config, data: RunData, theta0: dict[str, Any], entries: list, infer: Any, r: int, cycle: int,
                best: BestModel | None, clock: Clock, member: int = 0,
                loss_prediction: LossPredictionTraining | None = None) -> tuple[Any, BestModel, dict[str, list[float]]]:
    """A fresh model from theta0 trained on `entries`; the best weights over cycles stay in `best`."""
    # Dropout draws from the global generators: seed them per (round, cycle), so that a round's
    # training does not depend on what ran before it in the process (one round per call or several).
    # Ensemble members other than the first differ by their seeds only.
    extra = (member,) if member else ()
    seed_everything(derived_seed(cfg.MYSEED, r, cycle, TRAIN, *extra))
    model = model_from_theta0(cfg, theta0, data.n_classes, infer.device, theta0_path(cfg),
                              loss_prediction_width=0 if loss_prediction is None else cfg.ll4al_width)
    best = best or BestModel(model)
    loss = HybridLoss(cfg.scale_cl, cfg.scale_seg,
                      cfg.scale_seg_u / max(1, sum(t == C.PL for _, t, _ in entries)) if cfg.weight_pseudo_loss
                      else cfg.scale_seg_u, normalisation=cfg.seg_loss_normalisation, train_classifier=False,
                      ignore_unrevealed=cfg.annotation_unit == C.UNIT_REGION)
    stats = fit(model, data.pool.items(entries), loss,
                train_settings(cfg, data.pool.geometry.train_crop, True, cfg.hflip, cfg.vflip), infer,
                lambda m: validation_dice(m, data.valid, infer, cfg.seg_threshold), best, cycle,
                generator=cpu_generator(derived_seed(cfg.MYSEED, r, cycle, AUGMENT, *extra)),
                desc=f"{cfg.al_type} r{r} c{cycle}" + (f" m{member}" if member else ""),
                loss_prediction=loss_prediction)
    clock.add("train", stats.train_seconds)
    clock.add("validate", stats.validate_seconds)
    return model, best, stats.curves()


def acquire(cfg: Config, strategy: Strategy, members: list[Any], data: RunData, infer: Any, candidates: list[str],
            labelled: list[str], r: int, clock: Clock) -> Selection:
    """The strategy's class-balanced pick among the candidates (the one dispatch point of the strategy axis)."""
    pool = data.pool
    # The budget comes from the whole candidate pool, even when the strategy scores a sample of it.
    per_class = selection.per_class_quota(selection.round_count(cfg.p_samples, len(pool)),
                                          pool.labels[[pool.position[i] for i in candidates]])
    rng = np.random.default_rng(derived_seed(cfg.MYSEED, r, 0, SELECT))
    candidates = strategy.candidate_subset(candidates, rng)
    evidence = Evidence(candidates=candidates, candidate_labels=pool.labels[[pool.position[i] for i in candidates]],
                        labelled=labelled, labelled_labels=pool.labels[[pool.position[i] for i in labelled]])
    with clock("score"):
        gather_evidence(strategy, members, data.train_eval, data.valid, infer, evidence,
                        [pool.position[i] for i in candidates], [pool.position[i] for i in labelled],
                        derived_seed(cfg.MYSEED, r, 0, MC))
    with clock("select"):
        return strategy.select(evidence, per_class, rng)


@dataclass
class RegionPick:
    regions: dict[str, list[int]]   # image id -> regions the oracle reveals next
    scores: dict[str, float]        # image id -> highest score among its candidate regions
    exhausted: bool                 # no unrevealed region is left after this pick


def acquire_regions(cfg: Config, strategy: Strategy, members: list[Any], data: RunData, infer: Any,
                    regions: dict[str, torch.Tensor], leftovers: list[str], revealed: dict[str, set[int]], r: int,
                    clock: Clock) -> RegionPick:
    """The top regions of the images not fully labelled, by the mean of the strategy's pixel score over
    each region (a random draw for Random); the budget is that of image-level AL, in regions or pixels."""
    pool = data.pool
    rng = np.random.default_rng(derived_seed(cfg.MYSEED, r, 0, SELECT))
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}   # image id -> (region means, region sizes)
    with clock("score"):
        if strategy.required():
            maps = pixel_score_maps(strategy, members, data.train_eval, infer, [pool.position[u] for u in leftovers],
                                    derived_seed(cfg.MYSEED, r, 0, MC))
            for p, pixel_map in maps:
                labels = regions[pool.ids[p]].to(pixel_map.device, torch.int64)
                n = int(labels.max()) + 1
                rows[pool.ids[p]] = (region_means(pixel_map, labels, n).cpu().numpy(),
                                     region_sizes(labels, n).cpu().numpy())
        else:
            for u in sorted(leftovers):
                labels = regions[u].to(torch.int64)
                n = int(labels.max()) + 1
                rows[u] = (rng.random(n), region_sizes(labels, n).numpy())
    ids, index, values, sizes = [], [], [], []
    for u in sorted(rows):
        means, counts = rows[u]
        for k in range(len(means)):
            if k not in revealed.get(u, ()):
                ids.append(u)
                index.append(k)
                values.append(means[k])
                sizes.append(counts[k])
    images = selection.round_count(cfg.p_samples, len(pool))
    budget = images * cfg.regions_per_image if cfg.region_budget == "regions" else \
        images * sum(s.image[0].numel() for s in data.train) // len(pool)
    with clock("select"):
        picks = top_regions(ids, np.asarray(index), np.asarray(values), np.asarray(sizes), budget, cfg.region_budget)
    picked: dict[str, list[int]] = {}
    for u, k in picks:
        picked.setdefault(u, []).append(int(k))
    best = {u: float(rows[u][0][[k for k in range(len(rows[u][0])) if k not in revealed.get(u, ())]].max())
            for u in rows if len(rows[u][0]) > len(revealed.get(u, ()))}
    return RegionPick({u: sorted(k) for u, k in sorted(picked.items())}, best, exhausted=len(picks) == len(ids))


def best_epoch(best: BestModel) -> BestEpoch:
    return BestEpoch(epoch=best.epoch, cycle=best.cycle, valid_score=best.score, member=best.member)


def feature_settings(cfg: Config) -> FeatureSettings:
    return FeatureSettings(bins=cfg.nbr_bins_histc, lo=cfg.min_histc, hi=cfg.max_histc,
                           resize_h=cfg.resize_h_to_opt_mask, smooth=cfg.smooth_img, smooth_ksize=cfg.smooth_img_ksz,
                           smooth_sigma=cfg.smooth_img_sigma, enhance_color=cfg.enhance_color,
                           enhance_factor=cfg.enhance_color_fact)


def round_line(state: RoundState) -> str:
    parts = [(f"round {state.round} {state.method} seed {state.seed}: "
              f"{state.n_labelled} labelled ({state.percent_labelled:.1f} %)")]
    if state.task == C.TASK_CLASSIFICATION:
        parts += [f"test acc {state.metric('test', 'acc'):.2f}", f"valid acc {state.metric('valid', 'acc'):.2f}"]
        if state.stop_reason:
            parts.append(f"stopped: {state.stop_reason}")
    else:
        parts += [f"test Dice {state.metric('test', 'dice_idx'):.2f}", f"acc {state.metric('test', 'acc'):.2f}"]
    if state.threshold is not None:
        parts.append(f"threshold {state.threshold:.2f}")
    if state.metric("pseudo", "dice_idx") is not None:
        parts.append(f"pseudo-mask Dice {state.metric('pseudo', 'dice_idx'):.2f} ({state.metrics['pseudo']['n']})")
    if state.unit == C.UNIT_REGION:
        parts.append(f"{sum(map(len, state.revealed.values()))} regions revealed in {len(state.revealed)} images, "
                     f"{state.percent_pixels:.1f} % of pixels")
    if state.selected_regions:
        parts.append(f"selected {sum(map(len, state.selected_regions.values()))} regions")
    elif state.selected:
        parts.append(f"selected {len(state.selected)}")
    parts.append(f"{sum(state.timings.values()):.1f} s")
    return " | ".join(parts)


if __name__ == "__main__":
    main()
