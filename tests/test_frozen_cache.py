"""The frozen backbone's stages on evaluation images, computed once per theta0 (models/frozen.py): the
same metrics and selections with and without the cache, served from it after the first epoch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from synthetic_runs import TINY, run, states

from al.state import theta0_path
from engine.checkpoint import load_theta0, model_from_theta0
from engine.context import inference, load_data
from engine.evaluate import validation_dice
from models.frozen import FrozenFeatures
from parseit import parse_config


@pytest.fixture(scope="module")
def exp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("frozen")
    run(root, "--al_type", "WSL", "--MYSEED", "0", "--max_epochs", "1")
    return root


@pytest.mark.parametrize("method", ["Entropy", "MC_Dropout", "Label_prop", "Coreset"])
def test_the_cache_changes_no_metric_and_no_selection(exp_root: Path, method: str) -> None:
    for gib in ("0", "1"):
        run(exp_root, "--al_type", method, "--al_it", "0", "--al_it_end", "1", "--exp_id", f"{method}-{gib}",
            "--frozen_cache_gb", gib)
    without, with_cache = states(exp_root, f"{method}-0"), states(exp_root, f"{method}-1")
    assert len(with_cache) == 2 and with_cache == without


def test_validation_is_served_from_the_cache_filled_once(exp_root: Path) -> None:
    cfg = parse_config([*TINY, "--exp_root", str(exp_root), "--al_type", "Entropy"])
    data, device = load_data(cfg, torch.device("cpu")), torch.device("cpu")
    theta0, infer = load_theta0(theta0_path(cfg)), inference(cfg, device)
    cache = FrozenFeatures(1 << 30, [data.valid], infer.prepare)
    cached = model_from_theta0(cfg, theta0, data.n_classes, device, theta0_path(cfg), frozen=cache)
    plain = model_from_theta0(cfg, theta0, data.n_classes, device, theta0_path(cfg))
    scores = [validation_dice(cached, data.valid, infer, 0.5) for _ in range(3)]
    assert cache.misses == 0 and cache.hits == 3 * len(data.valid) and len(cache) == len(data.valid)
    assert scores == [validation_dice(plain, data.valid, infer, 0.5)] * 3


class _Counting(torch.nn.Module):
    """A stand-in backbone that counts its calls and returns two 'stages'."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        return x * 2, x.mean(dim=1, keepdim=True)


@dataclass
class _Batch:
    keys: list[tuple[int, int]]
    images: torch.Tensor


@dataclass
class _Set:
    """An evaluation set of 5 images in batches of 2, 2 and 1."""

    uid: int = 7
    images: torch.Tensor = field(default_factory=lambda: torch.randn(5, 2, 4, 4))

    def batches(self) -> list[_Batch]:
        return [_Batch([(self.uid, p) for p in rows], self.images[rows]) for rows in ([0, 1], [2, 3], [4])]


def test_the_first_request_fills_the_whole_set_in_its_own_batches() -> None:
    backbone, source = _Counting(), _Set()
    cache = FrozenFeatures(1 << 20, [source], lambda images: images)
    served = cache.stages(backbone, [(7, 3), (7, 0)], source.images[[3, 0]])
    assert backbone.calls == 3 and len(cache) == 5 and cache.hits == 2     # the set's 3 batches, once
    assert torch.equal(served[0], source.images[[3, 0]] * 2)
    cache.stages(backbone, [(7, 4), (7, 1), (7, 2)], source.images[[4, 1, 2]])
    assert backbone.calls == 3 and cache.hits == 5
    cache.stages(backbone, [(7, 0), (9, 0)], torch.randn(2, 2, 4, 4))    # an image of no known set: computed
    assert backbone.calls == 4 and cache.misses == 2


def test_a_new_compute_dtype_empties_and_refills_the_cache() -> None:
    backbone, source = _Counting(), _Set()
    cache = FrozenFeatures(1 << 20, [source], lambda images: images)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cache.stages(backbone, [(7, 0)], source.images[[0]])
    conv = torch.nn.Conv2d(2, 2, 1)
    (fp32, _) = cache.stages(torch.nn.Sequential(conv, _Pair()), [(7, 0), (7, 1)], source.images[[0, 1]])
    assert fp32.dtype == torch.float32 and torch.allclose(fp32, conv(source.images[[0, 1]]))


class _Pair(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x


def test_the_budget_stops_the_cache_growing() -> None:
    backbone, source = _Counting(), _Set()
    per_image = (2 * 4 * 4 + 1 * 4 * 4) * 4   # both stages of one image, float32
    cache = FrozenFeatures(3 * per_image, [source], lambda images: images)
    cache.stages(backbone, [(7, 0)], source.images[[0]])
    assert len(cache) == 3 and cache.bytes == 3 * per_image and backbone.calls == 2
    cache.stages(backbone, [(7, 4)], source.images[[4]])                 # not kept: computed
    assert backbone.calls == 3 and len(cache) == 3


def test_a_frozen_backbone_keeps_no_graph_while_the_head_trains(exp_root: Path) -> None:
    cfg = parse_config([*TINY, "--exp_root", str(exp_root), "--al_type", "Random"])
    model = model_from_theta0(cfg, load_theta0(theta0_path(cfg)), 3, torch.device("cpu"), theta0_path(cfg))
    model.train()
    enc = model.encode(torch.randn(2, 3, 96, 96))
    assert all(s.grad_fn is None and not s.requires_grad for s in enc.stages)
    model.segment(enc).sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert any(p.grad is not None for p in model.seg_head.parameters())
