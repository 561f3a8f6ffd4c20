"""Stage 2 of the joint task: Algorithm 1 of the paper. From theta0, the segmentation head learns
from the oracle's masks (and, for Label_prop, from pseudo-masks); the round's model is evaluated at
original resolution and the strategy picks the images (or regions) the oracle annotates next."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import constants as C
from al import selection
from al.pseudo_label import merge_pairs
from al.regions import pick_regions
from al.state import TEST_MASKS_DIR, BestEpoch, RoundState, RunFolder, theta0_path
from al.strategies.base import Evidence
from engine.acquire import gather_evidence
from engine.context import inference
from engine.evaluate import Inference, estimate_threshold, segmentation_metrics
from engine.prediction import Predictor
from engine.round_model import RoundModel
from engine.runtime import derived_seed
from engine.training_log import TrainingLog
from models.frozen import GIB, FrozenFeatures
from tasks.base import MC, SELECT, Clock, Pick, RoundWork, loss_prediction_training
from tasks.joint.common import JointTaskBase
from tasks.joint.label_prop import PseudoMasks, carried_pseudo_masks, pair_by_colour, pseudo_masks
from tasks.joint.predict import JointPredictor
from tasks.joint.regions import annotated_pixels, partial_mask_view, region_budget, region_rows, superpixel_maps
from tasks.joint.theta0 import checked_theta0
from tasks.joint.training import train_cycle, train_members


@dataclass
class JointWork(RoundWork):
    pairs: dict[str, str] = field(default_factory=dict)   # P_{r-1} and, for Label_prop, this round's U''
    threshold: float | None = None
    test_dice: dict[str, float] = field(default_factory=dict)
    test_masks: dict[str, np.ndarray] = field(default_factory=dict)   # as measured, for the qualitative figures
    final: PseudoMasks = field(default_factory=lambda: PseudoMasks({}, {}, None))


class JointTask(JointTaskBase):
    valid_metric = "dice"    # Dice of the masks on validation

    def load(self, run: RunFolder, first: int) -> None:
        super().load(run, first)
        self.theta0, self.digest = checked_theta0(self.cfg, run, first)
        if self.cfg.frozen_cache_gb > 0:
            data = self.data
            self.data.frozen = FrozenFeatures(int(self.cfg.frozen_cache_gb * GIB),
                                              [data.valid, data.test, data.train_eval],
                                              inference(self.cfg, self.device).prepare)
        if self.cfg.annotation_unit == C.UNIT_REGION and self.strategy is not None:
            self.regions = superpixel_maps(self.cfg, self.data)

    def new_work(self, r: int, ledger: Any, revealed: Any, previous: RoundState | None) -> JointWork:
        return JointWork(r, ledger, revealed, previous)

    def train(self, work: JointWork, infer: Inference, clock: Clock, log: TrainingLog) -> None:
        """Cycle 0: theta0 -> L_r, the revealed regions and P_{r-1}; a deep ensemble trains several members.
        Label_prop pairs U'' first, then pseudo-labels every pair with cycle 0's model and trains cycle 1."""
        cfg, data, pool, ledger = self.cfg, self.data, self.data.pool, work.ledger
        carried = carried_pseudo_masks(self.run, work.r, work.previous, pool)
        work.pairs = dict(ledger.pseudo)
        if self.method.pseudo_labels:
            with clock("pseudo_label"):
                work.pairs = merge_pairs(work.pairs, pair_by_colour(cfg, data, ledger.labelled, infer.device))
        entries = self.labelled_entries(work)
        entries += [(pool.position[u], C.L, self.mask_for(work.revealed, u) if u in work.revealed.masks
                     else partial_mask_view(data, self.regions, u, ks)) for u, ks in ledger.revealed.items()]
        entries += [(pool.position[u], C.PL, mask) for u, mask in carried.items()]
        n_models = 1 if self.strategy is None else self.strategy.n_models()
        work.members, work.best, work.history = train_members(
            cfg, data, self.theta0, entries, infer, work.r, n_models, clock, log,
            loss_prediction_training(cfg, self.strategy))
        if self.method.pseudo_labels and work.pairs:
            with clock("pseudo_label"):
                pseudo = pseudo_masks(cfg, work.members[0], data, infer, list(work.pairs))
            entries = self.labelled_entries(work)
            entries += [(p, C.PL, pool.mask_view(p, pseudo.masks[p])) for p in (pool.position[u] for u in work.pairs)]
            model, work.best, work.history["cycle1"] = train_cycle(cfg, data, self.theta0, entries, infer, work.r, 1,
                                                                   work.best, clock, log.member(1))
            work.best.restore(model)
            work.members = [model]

    def labelled_entries(self, work: JointWork) -> list[tuple[int, int, Any]]:
        pool = self.data.pool
        return [(pool.position[i], C.L, self.mask_for(work.revealed, i)) for i in work.ledger.labelled]

    def evaluate(self, work: JointWork, infer: Inference, clock: Clock) -> None:
        """At original resolution, with the threshold estimated on validation (or the configured one)."""
        cfg, data, model = self.cfg, self.data, work.members[0]
        with clock("validate"):
            work.threshold = estimate_threshold(model, data.valid, infer)[0] if cfg.estimate_seg_thres \
                else cfg.seg_threshold
            test = segmentation_metrics(model, data.test, infer, work.threshold, keep_masks=True)
            work.test_dice, work.test_masks = dict(zip(test.ids, test.dice)), test.masks
            work.metrics.update(valid=segmentation_metrics(model, data.valid, infer, work.threshold).summary(),
                                test=test.summary())
            positions = [data.pool.position[i] for i in work.ledger.labelled]
            if all(data.train_eval.mask(p) is not None for p in positions):  # a person's pool may have none
                work.metrics["train_labelled"] = segmentation_metrics(model, data.train_eval, infer, work.threshold,
                                                                      positions).summary()

    def select(self, work: JointWork, infer: Inference, clock: Clock) -> None:
        """U'_{r+1}: images, class by class, or regions of the images not fully labelled."""
        if self.method.single_round:
            work.pick = Pick(exhausted=True, final=True)
            return
        rng = np.random.default_rng(derived_seed(self.cfg.MYSEED, work.r, 0, SELECT))
        leftovers = work.ledger.unlabelled
        if self.regions:
            with clock("score"):
                rows = region_rows(self.strategy, work.members, self.data, infer, self.regions, leftovers, rng,
                                   derived_seed(self.cfg.MYSEED, work.r, 0, MC))
            with clock("select"):
                regions = pick_regions(rows, work.ledger.revealed, region_budget(self.cfg, self.data),
                                       self.cfg.region_budget)
            work.pick = Pick(sorted(regions.regions), regions.scores, regions.regions, regions.exhausted)
            return
        candidates = selection.oracle_candidates(leftovers, list(work.pairs), self.data.n_classes,
                                                 self.cfg.protect_pl) if self.method.pseudo_labels else leftovers
        picked = acquire(self.cfg, self.strategy, work.members, self.data, infer, candidates, work.ledger.labelled,
                         work.r, clock)
        work.pick = Pick(picked.selected, picked.scores, exhausted=len(leftovers) == len(picked.selected))

    def pseudo_label(self, work: JointWork, infer: Inference, clock: Clock) -> None:
        """Label_prop: the pairs re-annotated by the final model (their Dice against the true masks is the
        paper's Fig. 6); the threshold is the round's when both are estimated (or both fixed)."""
        if not (self.method.pseudo_labels and work.pairs):
            return
        with clock("pseudo_label"):
            reuse = work.threshold if self.cfg.estimate_pseg_thres == self.cfg.estimate_seg_thres else None
            work.final = pseudo_masks(self.cfg, work.members[0], self.data, infer, list(work.pairs), reuse)
            dice = work.final.dice
            work.metrics["pseudo"] = {"dice_idx": 100 * float(np.mean(list(dice.values()))) if dice else None,
                                      "n": len(work.pairs)}

    def kept_weights(self, model: Any) -> dict[str, Any]:
        """The tensors that differ from theta0 (the segmentation head, LL4AL's module): the rest is theta0."""
        start = self.theta0["state_dict"]
        return {k: v for k, v in model.state_dict().items()
                if k not in start or start[k].shape != v.shape or not torch.equal(start[k], v.detach().cpu())}

    def model_extra(self, work: JointWork) -> dict[str, Any]:
        ll4al = loss_prediction_training(self.cfg, self.strategy)
        return {"threshold": work.threshold, "theta0": str(theta0_path(self.cfg).resolve()),
                "theta0_sha256": self.digest, "wsl_method": self.cfg.wsl_method,
                "loss_prediction_width": 0 if ll4al is None else self.cfg.ll4al_width}

    def predictor(self, model: RoundModel, infer: Inference) -> Predictor:
        return JointPredictor.load(model, infer)

    def publish(self, work: JointWork, partial: Path, clock: Clock) -> RoundState:
        """P_r (the pairs not picked by the oracle, with their final masks) and the round's state."""
        cfg, data, ledger, pick = self.cfg, self.data, work.ledger, work.pick
        next_pairs = {u: mate for u, mate in work.pairs.items() if u not in set(pick.selected)}
        with clock("write"):
            for u in next_pairs:
                self.run.write_mask(partial, u, work.final.masks[data.pool.position[u]].cpu().numpy())
            for i, mask in work.test_masks.items():
                self.run.write_mask(partial, i, mask, TEST_MASKS_DIR)
        return RoundState(round=work.r, method=cfg.al_type, seed=cfg.MYSEED, dataset=cfg.dataset,
                          n_train=len(data.pool), labelled=ledger.labelled, selected=pick.selected,
                          pseudo_pairs=next_pairs, n_pseudo_trained=len(work.pairs),
                          exhausted=self.method.single_round or pick.exhausted,
                          unit=C.UNIT_REGION if self.regions else C.UNIT_IMAGE, revealed=ledger.revealed_lists(),
                          selected_regions=pick.regions,
                          pixels_annotated=annotated_pixels(data, ledger.labelled, self.regions, ledger.revealed),
                          annotations=work.revealed.provenance, annotation_seconds=work.revealed.seconds,
                          n_pixels=sum(s.image.shape[-2] * s.image.shape[-1] for s in data.train),
                          threshold=work.threshold, pseudo_threshold=work.final.threshold,
                          best=BestEpoch(epoch=work.best.epoch, cycle=work.best.cycle, valid_score=work.best.score,
                                         member=work.best.member),
                          metrics=work.metrics, test_dice_per_image=work.test_dice, scores=pick.scores,
                          history=work.history, theta0_sha256=self.digest, wsl_method=self.cfg.wsl_method)


def acquire(cfg: Any, strategy: Any, members: list[Any], data: Any, infer: Inference, candidates: list[str],
            labelled: list[str], r: int, clock: Clock) -> Any:
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
