"""Multi-class semantic segmentation networks, by name: a small U-Net for CPU runs and torchvision's
segmentation models (DeepLabv3, FCN, LR-ASPP).

``SegmentationNet`` gives the strategies what they need besides the per-pixel logits: pooled encoder
features (core-set) and dropout that MC passes can switch on alone (models.classifier.dropout_train).
Weights are never downloaded: a torchvision model starts from random weights, or from a state dict
in a local file (`weights_path`, e.g. torchvision's COCO-trained weights saved beforehand), whose
classifier layers are replaced when their number of classes differs.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from parseit import ConfigError
from torch_io import TorchFileError, load_torch

UNET = "unet"
TORCHVISION_MODELS = ("deeplabv3_resnet50", "deeplabv3_resnet101", "deeplabv3_mobilenet_v3_large", "fcn_resnet50",
                      "fcn_resnet101", "lraspp_mobilenet_v3_large")
MODELS = (UNET, *TORCHVISION_MODELS)


class SegmentationModelError(ConfigError):
    """An unknown model name or an unusable weights file (one line naming the fix)."""


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallUNet(nn.Module):
    """A three-level U-Net (widths w, 2w, 4w) with dropout before the per-pixel classifier."""

    def __init__(self, num_classes: int, width: int = 16, dropout: float = 0.1) -> None:
        super().__init__()
        self.down = nn.ModuleList([_block(3, width), _block(width, 2 * width), _block(2 * width, 4 * width)])
        self.up = nn.ModuleList([_block(6 * width, 2 * width), _block(3 * width, width)])
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def encode(self, x: Tensor) -> list[Tensor]:
        skips = [self.down[0](x)]
        for block in self.down[1:]:
            skips.append(block(F.max_pool2d(skips[-1], 2)))
        return skips

    def forward(self, x: Tensor) -> Tensor:
        skips = self.encode(x)
        y = skips[-1]
        for block, skip in zip(self.up, reversed(skips[:-1])):
            y = block(torch.cat([F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], 1))
        return self.classifier(self.dropout(y))


class SegmentationNet(nn.Module):
    """Per-pixel logits (B, K, H, W) at the input's size, and pooled encoder features (B, D)."""

    def __init__(self, name: str, net: nn.Module) -> None:
        super().__init__()
        self.name, self.net = name, net

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)
        return out["out"] if isinstance(out, dict) else out

    def features(self, x: Tensor) -> Tensor:
        if isinstance(self.net, SmallUNet):
            deepest = self.net.encode(x)[-1]
        else:
            stages = self.net.backbone(x)   # DeepLab / FCN: "out" (and "aux"); LR-ASPP: "low", "high"
            deepest = stages["out"] if "out" in stages else stages["high"]
        return deepest.float().mean(dim=(2, 3))


def build_segmentation_model(name: str, num_classes: int, width: int = 16, dropout: float = 0.1,
                             weights_path: Path | None = None) -> SegmentationNet:
    """`name` from MODELS; torchvision's models are built without downloading anything."""
    key = name.strip().lower()
    if key not in MODELS:
        close = difflib.get_close_matches(key, MODELS, n=3, cutoff=0.5)
        raise SegmentationModelError(f"unknown segmentation model {name!r}"
                                     f"{': did you mean ' + ', '.join(close) + '?' if close else ''} "
                                     f"(use one of {', '.join(MODELS)})")
    if key == UNET:
        if weights_path is not None:
            raise SegmentationModelError("the unet has no published weights: drop --seg_weights_path")
        return SegmentationNet(key, SmallUNet(num_classes, width, dropout))
    net = torchvision.models.get_model(key, weights=None, weights_backbone=None, num_classes=num_classes,
                                       aux_loss=None)
    if weights_path is not None:
        _load_weights(net, weights_path)
    return SegmentationNet(key, net)


def _load_weights(net: nn.Module, path: Path) -> None:
    """Every tensor of the file whose name and shape match (the classifier's last layer is left out when
    its number of classes differs); a file that matches nothing is refused."""
    if not path.is_file():
        raise SegmentationModelError(f"weights file {path} does not exist: save the model's state dict there "
                                     "(torch.save(model.state_dict(), path)) or drop --seg_weights_path")
    try:
        state = load_torch(path)
    except TorchFileError as error:
        raise SegmentationModelError(f"{error}: save a state dict there with torch.save(model.state_dict(), "
                                     "path)") from None
    if not isinstance(state, dict):
        raise SegmentationModelError(f"{path} holds a {type(state).__name__}, not a state dict: save one with "
                                     "torch.save(model.state_dict(), path)")
    own = net.state_dict()
    kept = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not kept:
        raise SegmentationModelError(f"no tensor of {path} matches the model: check that it holds the weights "
                                     "of the same architecture")
    net.load_state_dict(kept, strict=False)
