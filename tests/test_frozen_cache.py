"""The frozen backbone's stages on evaluation images, computed once per theta0 (models/frozen.py): the
same metrics and selections with and without the cache, served from it after the first epoch."""

from __future__ import annotations

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


def test_validation_is_served_from_the_cache_after_the_first_epoch(exp_root: Path) -> None:
    cfg = parse_config([*TINY, "--exp_root", str(exp_root), "--al_type", "Entropy"])
    data, device = load_data(cfg, torch.device("cpu")), torch.device("cpu")
    theta0, infer = load_theta0(theta0_path(cfg)), inference(cfg, device)
    cache = FrozenFeatures(budget_bytes=1 << 30)
    cached = model_from_theta0(cfg, theta0, data.n_classes, device, theta0_path(cfg), frozen=cache)
    plain = model_from_theta0(cfg, theta0, data.n_classes, device, theta0_path(cfg))
    scores = [validation_dice(cached, data.valid, infer, 0.5) for _ in range(3)]
    assert cache.misses == len(data.valid) and cache.hits == 2 * len(data.valid) and len(cache) == len(data.valid)
    assert scores == [validation_dice(plain, data.valid, infer, 0.5)] * 3


class _Counting(torch.nn.Module):
    """A stand-in backbone that counts its calls and returns two 'stages'."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        return x * 2, x.mean(dim=1, keepdim=True)


def test_a_batch_is_computed_once_and_then_served_whole() -> None:
    backbone, cache = _Counting(), FrozenFeatures(budget_bytes=1 << 20)
    x = torch.randn(3, 2, 4, 4)
    first = cache.stages(backbone, ["a", "b", "c"], x)
    again = cache.stages(backbone, ["c", "a"], x[[2, 0]])
    assert backbone.calls == 1 and cache.hits == 2 and cache.misses == 3
    assert torch.equal(again[0], first[0][[2, 0]]) and torch.equal(again[1], first[1][[2, 0]])
    cache.stages(backbone, ["a", "d"], torch.randn(2, 2, 4, 4))   # one image missing: the batch is computed
    assert backbone.calls == 2 and len(cache) == 4


def test_the_budget_stops_the_cache_growing() -> None:
    backbone = _Counting()
    per_image = (2 * 4 * 4 + 1 * 4 * 4) * 4   # both stages of one image, float32
    cache = FrozenFeatures(budget_bytes=2 * per_image)
    cache.stages(backbone, ["a", "b", "c"], torch.randn(3, 2, 4, 4))
    assert len(cache) == 2 and cache.bytes == 2 * per_image
    cache.stages(backbone, ["a", "b"], torch.randn(2, 2, 4, 4))
    assert backbone.calls == 1
    cache.stages(backbone, ["c"], torch.randn(1, 2, 4, 4))
    assert backbone.calls == 2 and len(cache) == 2


def test_a_frozen_backbone_keeps_no_graph_while_the_head_trains(exp_root: Path) -> None:
    cfg = parse_config([*TINY, "--exp_root", str(exp_root), "--al_type", "Random"])
    model = model_from_theta0(cfg, load_theta0(theta0_path(cfg)), 3, torch.device("cpu"), theta0_path(cfg))
    model.train()
    enc = model.encode(torch.randn(2, 3, 96, 96))
    assert all(s.grad_fn is None and not s.requires_grad for s in enc.stages)
    model.segment(enc).sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert any(p.grad is not None for p in model.seg_head.parameters())
