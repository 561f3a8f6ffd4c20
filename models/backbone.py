"""ResNet-18 feature extractor of the hybrid network, and where its ImageNet weights come from.

Parameter names stay torchvision's (``conv1``, ``bn1``, ``layer1`` .. ``layer4``) so that a torchvision
``resnet18`` state_dict loads strictly (its ``fc`` keys are ignored: the classifier is WILDCAT). The
forward pass returns the five stages the heads read:

    layer0 = conv1 + bn1 + relu  (64 ch, /2)     layer1 = maxpool + layer1  (64 ch, /4)
    layer2 (128 ch, /8)          layer3 (256 ch, /16)         layer4 (512 ch, /32)

Weights, in order of precedence:
  1. ``weights_path``: that file, nothing else is tried.
  2. ``pretrained``: torchvision's ``ResNet18_Weights.IMAGENET1K_V1``. The torch hub cache
     (``torch.hub.get_dir()/checkpoints/<file name of the URL>``) is read first, so a machine without
     network works once the file is there. Otherwise the file is downloaded into that cache; any failure
     raises ``PretrainedWeightsError`` naming the cache path and the alternatives. torch.hub's download
     has no timeout: on a network that resolves names but silently drops connections it waits for the
     operating system's connect timeout, so offline machines should get the file in the cache (or use
     ``--imagenet_weights_path``) instead of relying on the failure.
  3. neither: torchvision's random initialisation.
"""

from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn
from torchvision.models import ResNet18_Weights, resnet18

STAGE_CHANNELS = (64, 64, 128, 256, 512)
_IGNORED_PREFIX = "fc."


class PretrainedWeightsError(RuntimeError):
    """The ImageNet weights are neither in the torch hub cache nor downloadable."""


class WeightsFileError(ValueError):
    """A weights file exists but is not a usable torchvision resnet18 state_dict."""


def imagenet_cache_path() -> Path:
    """Where torch hub keeps (or would keep) the ImageNet ResNet-18 weights file."""
    name = Path(urlparse(ResNet18_Weights.IMAGENET1K_V1.url).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def read_weights_file(path: str | Path) -> dict[str, Tensor]:
    """Load a state_dict from disk on the CPU, without executing pickled code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights file not found: {path}; give an existing torchvision resnet18 "
            "state_dict file or use --pre_trained false"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsFileError(
            f"cannot read weights file {path} ({type(exc).__name__}); expected a torchvision "
            "resnet18 state_dict saved with torch.save"
        ) from exc
    if not isinstance(state, dict):
        raise WeightsFileError(
            f"weights file {path} holds a {type(state).__name__}, not a state_dict; save "
            "model.state_dict() of a torchvision resnet18"
        )
    return state


def imagenet_state_dict() -> dict[str, Tensor]:
    """ImageNet ResNet-18 weights from the hub cache, downloading them only when absent."""
    weights = ResNet18_Weights.IMAGENET1K_V1
    cached = imagenet_cache_path()
    if cached.is_file():
        return read_weights_file(cached)
    try:
        return torch.hub.load_state_dict_from_url(
            weights.url, progress=False, check_hash=True, weights_only=True
        )
    except Exception as exc:
        raise PretrainedWeightsError(
            f"ImageNet ResNet-18 weights missing and not downloadable ({type(exc).__name__}): "
            f"put {weights.url} at {cached}, or pass --imagenet_weights_path FILE, "
            "or use --pre_trained false"
        ) from exc


class ResNet18Backbone(nn.Module):
    """ResNet-18 without its fc layer, returning the five stage outputs."""

    out_channels = STAGE_CHANNELS

    def __init__(self, pretrained: bool = False, weights_path: str | Path | None = None) -> None:
        super().__init__()
        net = resnet18(weights=None)
        self.conv1 = net.conv1
        self.bn1 = net.bn1
        self.relu = net.relu
        self.maxpool = net.maxpool
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        self.layer4 = net.layer4
        if weights_path is not None:
            self.load_torchvision_state(read_weights_file(weights_path), str(weights_path))
        elif pretrained:
            self.load_torchvision_state(imagenet_state_dict(), str(imagenet_cache_path()))

    def load_torchvision_state(self, state: dict[str, Tensor], source: str) -> None:
        """Strict load of every backbone key; the fc keys of a full resnet18 are dropped."""
        state = {k: v for k, v in state.items() if not k.startswith(_IGNORED_PREFIX)}
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        wrong_shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
        if missing or unexpected or wrong_shape:
            raise WeightsFileError(
                f"{source} is not a torchvision resnet18 state_dict: {len(missing)} missing keys "
                f"{missing[:3]}, {len(unexpected)} unexpected keys {unexpected[:3]}, "
                f"{len(wrong_shape)} shape mismatches {wrong_shape[:3]}"
            )
        self.load_state_dict(state, strict=True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        layer0 = self.relu(self.bn1(self.conv1(x)))
        layer1 = self.layer1(self.maxpool(layer0))
        layer2 = self.layer2(layer1)
        layer3 = self.layer3(layer2)
        layer4 = self.layer4(layer3)
        return layer0, layer1, layer2, layer3, layer4
