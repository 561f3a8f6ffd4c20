"""Evaluation at original resolution (padding removed, sizes batched apart) and the theta0 checkpoint round trip."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from data.decoded import DecodedSample
from data.views import Geometry
from engine.checkpoint import (
    CheckpointError,
    check_theta0_origin,
    load_theta0,
    save_theta0,
    theta0_digest,
)
from engine.evaluate import Inference, estimate_threshold, predict_masks, segmentation_metrics, validation_dice
from engine.resident import EvalSet
from models.hybrid import HybridModel

# No rescaling: the evaluation view is the image padded by 10 % (reflect), so only the padding must go.
GEOMETRY = Geometry(crop_size=32, up_scale_small_dim_to=None, ratio_scale_patch=1.0, padding_ratio=0.1,
                    pad_eval=True, padding_mode="reflect", scale_algo="LANCZOS")


class BrightIsForeground(nn.Module):
    """Logit `inside` where the red channel is bright, `outside` elsewhere; class 1 wins when any pixel is
    bright. The hybrid model's encode / classify / segment interface, nothing learned."""

    def __init__(self, inside: float, outside: float = -20.0):
        super().__init__()
        self.inside, self.outside = inside, outside

    def encode(self, x: Tensor, with_full_res: bool = True, keys: object = None) -> Tensor:
        return x

    def classify(self, x: Tensor) -> tuple[Tensor, None]:
        share = (x[:, 0] > 0).float().mean(dim=(1, 2))
        return torch.stack([torch.zeros_like(share), share], dim=1), None

    def segment(self, x: Tensor) -> Tensor:
        return torch.where(x[:, :1] > 0, self.inside, self.outside)


def sample(name: str, height: int, width: int, box: tuple[int, int, int, int], truth_box: tuple[int, int, int, int],
           label: int) -> DecodedSample:
    """An image bright inside `box`, whose true mask is `truth_box` (rows, cols as start, stop)."""
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    image[:, box[0]:box[1], box[2]:box[3]] = 255
    mask = torch.zeros(height, width, dtype=torch.uint8)
    mask[truth_box[0]:truth_box[1], truth_box[2]:truth_box[3]] = 1
    return DecodedSample(name, label, image, mask)


def eval_set() -> EvalSet:
    return EvalSet([
        sample("a", 40, 50, (10, 20, 10, 30), (10, 20, 10, 30), 1),   # predicted exactly
        sample("b", 36, 44, (0, 6, 0, 44), (0, 12, 0, 44), 0),         # half the true rows predicted
        sample("c", 40, 50, (0, 0, 0, 0), (5, 10, 5, 10), 0),          # nothing predicted, 25 pixels missed
    ], GEOMETRY, torch.device("cpu"), batch_size=2)


def test_metrics_are_per_image_at_original_resolution() -> None:
    metrics = segmentation_metrics(BrightIsForeground(inside=5.0), eval_set(), Inference(torch.device("cpu")), 0.5)
    assert metrics.ids == ["a", "b", "c"]
    # b: predicted 6 x 44 of the true 12 x 44 -> Dice 2*264 / (264 + 528); c: nothing -> 0.
    assert metrics.dice == pytest.approx([1.0, 2 * 264 / (264 + 528), 0.0])
    b_miou = ((264 + 1) / (528 + 1) + (36 * 44 - 528 + 1) / (36 * 44 - 264 + 1)) / 2
    c_miou = (1 / 26 + (2000 - 25 + 1) / (2000 + 1)) / 2
    assert metrics.miou == pytest.approx([1.0, b_miou, c_miou])
    assert metrics.correct == [True, False, True]   # b is bright somewhere but of class 0
    summary = metrics.summary()
    assert summary["dice_idx"] == pytest.approx(100 * (1 + 2 * 264 / 792) / 3) and summary["n"] == 3
    assert summary["acc"] == pytest.approx(200 / 3)


def test_validation_dice_threshold_and_masks_share_the_same_predictions() -> None:
    model = BrightIsForeground(inside=math.log(0.3 / 0.7))   # probability 0.3 inside the bright box
    data, infer = eval_set(), Inference(torch.device("cpu"))
    assert validation_dice(model, data, infer, 0.5) == 0.0
    assert validation_dice(model, data, infer, 0.3) == pytest.approx((1 + 2 * 264 / 792) / 3)
    threshold, _ = estimate_threshold(model, data, infer)
    assert threshold == pytest.approx(0.05)   # every threshold up to 0.30 ties: the lowest wins
    masks, dice = predict_masks(model, data, infer, 0.3, [1, 0])
    assert masks[0].shape == (40, 50) and masks[1].shape == (36, 44)
    assert int(masks[1].sum()) == 6 * 44 and dice == pytest.approx({0: 1.0, 1: 2 * 264 / 792})


def test_theta0_round_trip_digest_and_origin(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = HybridModel(2, base_width=2, leak=2, full_res_width=2)
    path = tmp_path / "theta0" / "seed_0.pt"
    path.parent.mkdir()
    meta = {"dataset": "synthetic", "split": 0, "fold": 0, "seed": 0}
    save_theta0(path, model, meta)
    loaded = load_theta0(path)
    assert loaded["meta"] == meta
    assert all(torch.equal(loaded["state_dict"][k], v) for k, v in model.state_dict().items())
    digest = theta0_digest(path)
    assert len(digest) == 64 and digest == theta0_digest(path)
    check_theta0_origin(loaded, path, meta)
    with pytest.raises(CheckpointError, match="trained for another run: fold 0 \\(run: 3\\)"):
        check_theta0_origin(loaded, path, {**meta, "fold": 3})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="is damaged or not a torch file"):
        load_theta0(path)
    with pytest.raises(CheckpointError, match="not found: run the WSL round first"):
        load_theta0(tmp_path / "missing.pt")


def test_pseudo_masks_refined_by_a_dense_crf_follow_the_image() -> None:
    pytest.importorskip("pydensecrf.densecrf", reason="pydensecrf2 is not installed: run bash dependencies/setup.sh")
    from engine.crf import CRF_PRESETS

    # Probability 0.9 on the bright box, 0.2 on the dark rest: at threshold 0.15 everything is foreground,
    # until the CRF pulls the uniform dark background to the confident background class.
    model = BrightIsForeground(inside=math.log(0.9 / 0.1), outside=math.log(0.2 / 0.8))
    data, infer = eval_set(), Inference(torch.device("cpu"))
    plain, plain_dice = predict_masks(model, data, infer, 0.15, [0])
    refined, refined_dice = predict_masks(model, data, infer, 0.15, [0], crf=CRF_PRESETS["default"])
    assert int(plain[0].sum()) == 40 * 50 and plain_dice[0] == pytest.approx(2 * 200 / 2200)
    assert refined_dice[0] > 0.95 and int(refined[0].sum()) < 260
