"""Item 1: training throughput of the real stage-2 pipeline against the model alone.

Pipeline: engine.train.fit itself, on device-resident uint8 views (random crop and flips on the
device, normalisation, forward, backward, SGD step) with a frozen backbone and a training U-Net
head, as every stage-2 round runs it; its train_seconds exclude the per-epoch validation, which
is stubbed out here. Model-only: the same model, loss and optimiser fed one batch that was
cropped and normalised beforehand and stays on the device, i.e. the limit the pipeline
approaches when data handling costs nothing. The ratio pipeline / model-only is the share of
the hardware limit the pipeline reaches.
"""

from __future__ import annotations

import torch

import constants as C
from bench.measure import Measured, measure
from bench.report import Row
from bench.sizes import Size
from data.augment import random_crop_flip
from engine.evaluate import Inference
from engine.resident import TrainingItems
from engine.runtime import autocast, cpu_generator, set_deterministic, sync
from engine.train import BestModel, HybridObjective, TrainSettings, fit
from losses.hybrid import HybridLoss
from models.hybrid import HybridModel

LR = 0.01                   # any value: the cost of a step does not depend on it
DISTINCT_VIEWS_PER_BATCH = 2


def variants(device: torch.device) -> list[tuple[bool, bool]]:
    """(bf16, channels_last) pairs worth timing: both only mean something on CUDA."""
    if device.type != "cuda":
        return [(False, False)]
    return [(False, False), (True, False), (False, True), (True, True)]


def variant_name(bf16: bool, channels_last: bool) -> str:
    return ("bf16" if bf16 else "fp32") + ("+channels_last" if channels_last else "")


def stage2_model(size: Size, device: torch.device, channels_last: bool, seed: int) -> HybridModel:
    """A stage-2 model as main.py builds it: classifier frozen, segmentation head training."""
    torch.manual_seed(seed)
    model = HybridModel(size.num_classes, base_width=size.base_width, leak=size.leak).to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    model.freeze_classifier()
    return model


def resident_items(size: Size, n: int, device: torch.device, seed: int) -> TrainingItems:
    """n pixel-labelled items over a few random device-resident views (content does not change the cost)."""
    gen = cpu_generator(seed)
    h, w = size.view_hw
    distinct = DISTINCT_VIEWS_PER_BATCH * size.batch
    views = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen).to(device) for _ in range(distinct)]
    masks = [torch.randint(0, 2, (h, w), dtype=torch.uint8, generator=gen).to(device) for _ in range(distinct)]
    labels = torch.randint(0, size.num_classes, (n,), generator=gen).to(device)
    return TrainingItems(images=[views[i % distinct] for i in range(n)], masks=[masks[i % distinct] for i in range(n)],
                         labels=labels, tags=torch.full((n,), C.L, dtype=torch.int64, device=device))


def settings(size: Size) -> TrainSettings:
    return TrainSettings(epochs=1, batch_size=size.batch, lr=LR, momentum=0.9, nesterov=True, dampening=0.0,
                         weight_decay=1e-4, scheduler="none", step_size=1, gamma=1.0, min_lr=0.0, crop=size.crop,
                         hflip=True, vflip=True, segmentation=True)


def stage2_loss() -> HybridLoss:
    return HybridLoss(1.0, 1.0, 0.1, normalisation=C.NORM_SAMPLE, train_classifier=False)


def pipeline_rate(model: HybridModel, size: Size, inference: Inference, seed: int) -> tuple[float, Measured]:
    """Images per second of engine.train.fit over `size.iterations` batches, after a warm-up."""
    loss = HybridObjective(stage2_loss(), inference)
    best = BestModel(model)
    gen = cpu_generator(seed)
    fit(model, resident_items(size, size.warmup * size.batch, inference.device, seed), loss, settings(size),
        inference, lambda m: 0.0, best, cycle=0, generator=gen)
    items = resident_items(size, size.iterations * size.batch, inference.device, seed + 1)
    with measure(inference.device) as measured:
        stats = fit(model, items, loss, settings(size), inference, lambda m: 0.0, best, cycle=0, generator=gen)
    return len(items) / stats.train_seconds, measured


def model_only_rate(model: HybridModel, size: Size, inference: Inference, seed: int) -> tuple[float, Measured]:
    """Images per second of forward, loss, backward and step on a batch already prepared on the device."""
    device = inference.device
    items = resident_items(size, size.batch, device, seed)
    gen = cpu_generator(seed)
    images, masks = random_crop_flip(items.images, items.masks, size.crop, True, True, gen)
    x = inference.prepare(images)
    loss_fn = stage2_loss()
    optimiser = torch.optim.SGD(model.trainable_parameters(), lr=LR, momentum=0.9, nesterov=True,
                                weight_decay=1e-4)
    model.train()

    def step() -> None:
        with autocast(device, inference.bf16):
            enc = model.encode(x, with_full_res=True)
            scores, _ = model.classify(enc)
            logits = model.segment(enc)
        loss, _ = loss_fn(scores.float(), logits.float(), items.labels, masks, items.tags, return_terms=False)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    for _ in range(size.warmup):
        step()
    sync(device)
    with measure(device) as measured:
        for _ in range(size.iterations):
            step()
    return size.iterations * size.batch / measured.seconds, measured


def train_rows(size: Size, device: torch.device, seed: int = 0) -> list[Row]:
    """Model-only and pipeline rows for each precision / memory-format variant."""
    set_deterministic(False)
    rows = []
    shape = f"batch {size.batch}, crop {size.crop}, bw {size.base_width}, leak {size.leak}"
    for bf16, channels_last in variants(device):
        name = variant_name(bf16, channels_last)
        inference = Inference(device=device, bf16=bf16, channels_last=channels_last)
        model = stage2_model(size, device, channels_last, seed)
        limit, limit_measured = model_only_rate(model, size, inference, seed)
        rate, measured = pipeline_rate(model, size, inference, seed)
        del model   # before the next variant's model is built, so that device peaks do not add up
        rows.append(Row("train", f"model-only {name}", "images/s", limit,
                        note=f"{shape}; pre-made batch on the device").with_memory(limit_measured))
        rows.append(Row("train", f"pipeline {name}", "images/s", rate, reference="model-only", reference_value=limit,
                        ratio=rate / limit, note=f"{shape}; engine.train.fit, {size.iterations} iterations"
                        ).with_memory(measured))
    return rows
