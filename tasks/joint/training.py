"""Training the segmentation head from theta0: one cycle, or the members of a deep ensemble."""

from __future__ import annotations

from typing import Any

import constants as C
from al.state import theta0_path
from engine.checkpoint import model_from_theta0
from engine.context import RunData, train_settings
from engine.evaluate import Inference, validation_dice
from engine.runtime import cpu_generator, derived_seed, seed_everything
from engine.train import BestModel, HybridObjective, LossPredictionTraining, fit
from engine.training_log import MemberLog, TrainingLog
from losses.hybrid import HybridLoss
from parseit import Config
from tasks.base import AUGMENT, TRAIN, Clock


def train_members(cfg: Config, data: RunData, theta0: dict[str, Any], entries: list, infer: Inference, r: int,
                  n_models: int, clock: Clock, log: TrainingLog,
                  loss_prediction: LossPredictionTraining | None = None) -> tuple[list[Any], BestModel, dict[str, Any]]:
    """Cycle 0 for each of `n_models` members; each ends on its best weights, the best member comes first."""
    trained = []
    history: dict[str, Any] = {}
    for m in range(n_models):
        model, best, curves = train_cycle(cfg, data, theta0, entries, infer, r, 0, None, clock, log.member(0, m),
                                          member=m, loss_prediction=loss_prediction)
        best.restore(model)
        trained.append((best.score, -m, model, best))
        history["cycle0" if m == 0 else f"cycle0_member{m}"] = curves
    trained.sort(key=lambda t: (t[0], t[1]), reverse=True)  # ties: the member with the smaller index
    _, neg_member, _, best = trained[0]
    best.member = -neg_member
    return [t[2] for t in trained], best, history


def train_cycle(cfg: Config, data: RunData, theta0: dict[str, Any], entries: list, infer: Inference, r: int,
                cycle: int, best: BestModel | None, clock: Clock, log: MemberLog, member: int = 0,
                loss_prediction: LossPredictionTraining | None = None) -> tuple[Any, BestModel, dict[str, list[float]]]:
    """A fresh model from theta0 trained on `entries`; the best weights over cycles stay in `best`, the epochs
    go to `log`."""
    # Dropout draws from the global generators: seed them per (round, cycle), so that a round's
    # training does not depend on what ran before it in the process (one round per call or several).
    # Ensemble members other than the first differ by their seeds only.
    extra = (member,) if member else ()
    seed_everything(derived_seed(cfg.MYSEED, r, cycle, TRAIN, *extra))
    model = model_from_theta0(cfg, theta0, data.n_classes, infer.device, theta0_path(cfg),
                              loss_prediction_width=0 if loss_prediction is None else cfg.ll4al_width,
                              frozen=data.frozen)
    best = best or BestModel(model)
    loss = HybridLoss(cfg.scale_cl, cfg.scale_seg,
                      cfg.scale_seg_u / max(1, sum(t == C.PL for _, t, _ in entries)) if cfg.weight_pseudo_loss
                      else cfg.scale_seg_u, normalisation=cfg.seg_loss_normalisation, train_classifier=False,
                      ignore_unrevealed=cfg.annotation_unit == C.UNIT_REGION)
    stats = fit(model, data.pool.items(entries), HybridObjective(loss, infer, loss_prediction),
                train_settings(cfg, data.pool.geometry.train_crop, True, cfg.hflip, cfg.vflip), infer,
                lambda m: validation_dice(m, data.valid, infer, cfg.seg_threshold), best, cycle,
                generator=cpu_generator(derived_seed(cfg.MYSEED, r, cycle, AUGMENT, *extra)),
                desc=f"{cfg.al_type} r{r} c{cycle}" + (f" m{member}" if member else ""), log=log)
    clock.add("train", stats.train_seconds)
    clock.add("validate", stats.validate_seconds)
    return model, best, stats.curves()
