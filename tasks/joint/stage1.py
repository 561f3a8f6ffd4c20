"""Stage 1 of the joint task (WSL): backbone + WILDCAT trained on every image's class label; its best
weights are theta0, the starting point of every stage-2 round of the seed."""

from __future__ import annotations

from pathlib import Path

import constants as C
from al.ledger import Ledger
from al.state import BestEpoch, RoundState, RunFolder, theta0_path
from engine.checkpoint import build_model, check_stage1_target, save_theta0
from engine.context import train_settings
from engine.evaluate import Inference, validation_accuracy, wsl_metrics
from engine.runtime import cpu_generator, derived_seed, seed_everything
from engine.train import BestModel, fit
from losses.hybrid import HybridLoss
from tasks.base import AUGMENT, Clock, RoundWork
from tasks.joint.common import JointTaskBase


class WSLTask(JointTaskBase):
    asks_oracle = False

    def load(self, run: RunFolder, first: int) -> None:
        check_stage1_target(theta0_path(self.cfg), run.root)
        super().load(run, first)

    def ledger(self, previous: RoundState | None) -> Ledger:
        return Ledger(tuple(self.ids()), [], [])   # image labels only: nothing is asked of the oracle

    def train(self, work: RoundWork, infer: Inference, clock: Clock) -> None:
        cfg, data = self.cfg, self.data
        seed_everything(cfg.MYSEED)
        model = build_model(cfg, data.n_classes, infer.device, imagenet=True)
        items = data.pool.items([(p, C.U, None) for p in range(len(data.pool))], with_masks=False)
        loss = HybridLoss(cfg.scale_cl, 0.0, 0.0, normalisation=cfg.seg_loss_normalisation, train_classifier=True)
        best = BestModel(model)
        stats = fit(model, items, loss, train_settings(cfg, data.pool.geometry.train_crop, False, cfg.hflip,
                                                       cfg.vflip), infer,
                    lambda m: validation_accuracy(m, data.valid, infer), best, cycle=0,
                    generator=cpu_generator(derived_seed(cfg.MYSEED, 0, 0, AUGMENT)), desc="WSL")
        clock.add("train", stats.train_seconds)
        clock.add("validate", stats.validate_seconds)
        best.restore(model)
        work.members, work.history, work.best = [model], {"cycle0": stats.curves()}, best

    def evaluate(self, work: RoundWork, infer: Inference, clock: Clock) -> None:
        with clock("validate"):
            for name, eval_set in (("valid", self.data.valid), ("test", self.data.test)):
                both = wsl_metrics(work.members[0], eval_set, infer)
                work.metrics[name] = {**both["predicted_class"].summary(),
                                      "dice_idx_true_class": both["true_class"].summary()["dice_idx"]}

    def publish(self, work: RoundWork, partial: Path, clock: Clock) -> RoundState:
        cfg, best = self.cfg, work.best
        with clock("write"):
            save_theta0(theta0_path(cfg), work.members[0], {
                "dataset": cfg.dataset, "split": cfg.split, "fold": cfg.fold, "seed": cfg.MYSEED,
                "num_classes": self.data.n_classes, "run": str(self.run.root), "valid_acc": best.score,
                "epoch": best.epoch})
        return RoundState(round=0, method=cfg.al_type, seed=cfg.MYSEED, dataset=cfg.dataset,
                          n_train=len(self.data.pool), labelled=[], selected=[], exhausted=True,
                          theta0=str(theta0_path(cfg)), best=BestEpoch(best.epoch, 0, best.score),
                          metrics=work.metrics, history=work.history)
