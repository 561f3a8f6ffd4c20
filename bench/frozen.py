"""Item "frozen": what computing the frozen backbone once per theta0 saves (models/frozen.py).

A stage-2 model (backbone and WILDCAT frozen, as model_from_theta0 leaves it; random weights, which
cost the same) evaluates the validation set as every epoch of a round does, without the cache and
with it (the first epoch fills it, the next ones read it), then scores pool images with MC dropout
(T passes) without and with it. On PH2 when its data is there (config_yaml/ph2.yaml: PH2's own
images and geometry), else on the synthetic set. Ratios are without / with: higher is better.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

import constants as C
from bench.measure import Measured, measure
from bench.report import Row
from bench.sizes import Size
from engine.acquire import mc_pass_scores
from engine.checkpoint import build_model
from engine.context import RunData, inference, load_data
from engine.evaluate import Inference, validation_dice
from models.frozen import FrozenFeatures
from models.hybrid import HybridModel
from parseit import Config, parse_config

EPOCHS = 3                # validation passes timed per setting
SCORED_IMAGES = 20        # pool images scored with MC dropout
BUDGET_BYTES = 1 << 40    # no limit: the benchmark measures what the whole set needs


def _config(ph2: Path | None, device: torch.device, work: Path) -> Config:
    args = ["--device", device.type, "--progress", "false", "--backbone_dropout", "0.2"]
    if ph2 is not None:
        return parse_config(["--yaml", "ph2.yaml", "--data_root", str(ph2), *args])
    return parse_config(["--yaml", "synthetic.yaml", "--data_root", str(work / "synthetic"), *args])


def _model(cfg: Config, data: RunData, device: torch.device, cache: FrozenFeatures | None) -> HybridModel:
    torch.manual_seed(0)
    model = build_model(cfg, data.n_classes, device, imagenet=False)
    model.freeze_classifier()
    model.frozen_features = cache
    return model


def _timed(device: torch.device, work: Callable[[], object]) -> Measured:
    with measure(device) as measured:
        work()
    return measured


def _validation(cfg: Config, data: RunData, infer: Inference, device: torch.device, name: str) -> list[Row]:
    plain = _model(cfg, data, device, None)
    off = _timed(device, lambda: [validation_dice(plain, data.valid, infer, 0.5) for _ in range(EPOCHS)])
    cache = FrozenFeatures(BUDGET_BYTES, [data.valid], infer.prepare)
    cached = _model(cfg, data, device, cache)
    fill = _timed(device, lambda: validation_dice(cached, data.valid, infer, 0.5))
    steady = _timed(device, lambda: [validation_dice(cached, data.valid, infer, 0.5) for _ in range(EPOCHS)])
    same = validation_dice(plain, data.valid, infer, 0.5) == validation_dice(cached, data.valid, infer, 0.5)
    per_off, per_on = off.seconds / EPOCHS, steady.seconds / EPOCHS
    per_image_mb = cache.bytes / max(len(cache), 1) / 2 ** 20
    return [
        Row("frozen", f"{name} validation per epoch, cache off", "s", per_off,
            note=f"{len(data.valid)} images, mean of {EPOCHS} epochs").with_memory(off),
        Row("frozen", f"{name} validation per epoch, cache on", "s", per_on, reference="cache off",
            reference_value=per_off, ratio=per_off / per_on if per_on > 0 else None,
            note=f"after a first epoch of {fill.seconds:.2f} s that fills it; {per_image_mb:.1f} MB per image "
                 f"({'bf16' if infer.bf16 else 'fp32'}), {cache.bytes / 2 ** 20:.0f} MB for the set; validation Dice "
                 f"{'identical' if same else 'differs'}",
            extra={"fill_s": fill.seconds, "mb_per_image": per_image_mb, "cache_mb": cache.bytes / 2 ** 20,
                   "identical": same}).with_memory(steady),
    ]


def _scoring(cfg: Config, data: RunData, infer: Inference, device: torch.device, name: str, passes: int) -> Row:
    positions = list(range(min(SCORED_IMAGES, len(data.train_eval))))

    def score(model: HybridModel) -> object:
        return mc_pass_scores(model, data.train_eval, infer, positions, passes, lambda s: s.predictive_entropy(), 0)

    off = _timed(device, lambda: score(_model(cfg, data, device, None)))
    cached = _model(cfg, data, device, FrozenFeatures(BUDGET_BYTES, [data.train_eval], infer.prepare))
    score(cached)   # a previous round, or validation, filled the cache
    on = _timed(device, lambda: score(cached))
    return Row("frozen", f"{name} MC dropout T={passes}, {len(positions)} pool images, cache on", "s", on.seconds,
               reference="cache off", reference_value=off.seconds,
               ratio=off.seconds / on.seconds if on.seconds > 0 else None,
               note=f"off: {off.seconds:.2f} s").with_memory(on)


def frozen_rows(size: Size, device: torch.device, work: Path, ph2: Path | None) -> list[Row]:
    cfg = _config(ph2, device, work)
    data, infer = load_data(cfg, device), inference(cfg, device)
    name = C.PH2 if ph2 is not None else C.SYNTHETIC
    return [*_validation(cfg, data, infer, device, name), _scoring(cfg, data, infer, device, name, size.passes)]
