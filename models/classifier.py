"""Any torchvision classification model, by name, wrapped for active learning.

The classification task trains one of torchvision's classifiers (ResNet-34 and SqueezeNet in the
systems studied, any other by name) and its strategies need more than the logits: MC dropout needs
dropout alone in train mode, core-set, HU and DAL need the penultimate features, Learning Loss for AL
(LL4AL) needs a loss-prediction module fed by the ResNet stages. ``Classifier`` adds these around the
unchanged torchvision ``net``, so that its parameter names stay torchvision's.

- Features: the input of the final classification layer (the "head": the last ``nn.Linear``, or
  SqueezeNet's final 1x1 convolution), flattened, and averaged over space when it is a map
  (SqueezeNet's (B, 512, h, w)). When a dropout layer sits right before the head it is read at that
  layer's input, so that the features are the same with dropout on (MC passes) or off.
- Small inputs: families whose pooling chain cannot take 8x8 digits or 28x28 letters get their inputs
  upsampled (bilinear) until the shorter side reaches ``MIN_INPUT_SIZE`` (SqueezeNet: 32 px; aspect
  ratio kept). Vision transformers (ViT, MaxViT) only accept the size they were built for: every input
  is resized to it. The other families (ResNet, MobileNet, EfficientNet, RegNet, ...) see the input as
  given.
- Pretrained weights are never downloaded: the file of torchvision's DEFAULT weights is read from
  ``weights_dir`` or torch hub's cache, and a missing file is a ``ClassifierError`` naming it and its URL.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn
from torchvision.models import MaxVit, ResNet, VisionTransformer

import constants as C
from models.lenet import LeNet5
from models.loss_prediction import LossPredictionModule
from parseit import ConfigError

# Smallest input side each family's pooling chain accepts (measured: SqueezeNet 1.1 fails below 17 px,
# 1.0 below 21, GoogLeNet below 15, DenseNet below 29, VGG and ConvNeXt below 32, AlexNet below 63),
# rounded up to 32 px multiples; Inception v3's is torchvision's own minimum. Prefix of the model name.
MIN_INPUT_SIZE: dict[str, int] = {
    "squeezenet": 32,
    "googlenet": 32,
    "densenet": 32,
    "vgg": 32,
    "convnext": 32,
    "alexnet": 64,
    "inception": 75,
}
# The LL4AL taps: the four residual stages of a torchvision ResNet (also ResNeXt and Wide ResNet).
LL4AL_TAPS = ("layer1", "layer2", "layer3", "layer4")
# Builder arguments for a model without ImageNet weights: no auxiliary classifiers (their logits would
# replace the plain tensor output in train mode) and torchvision's initialisation, chosen explicitly.
# Networks of the project's own, for inputs too small for torchvision's families (no ImageNet weights).
PROJECT_MODELS: dict[str, Callable[[int], nn.Module]] = {"lenet5": LeNet5}
_SCRATCH_KWARGS: dict[str, dict[str, object]] = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}
# Auxiliary classifiers that the builders keep with ImageNet weights (GoogLeNet's builder drops its
# own): removed after loading, so that the network returns one logits tensor in train mode too.
_AUX_HEADS = ("AuxLogits", "aux1", "aux2")
_DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
_WEIGHTS_LOCK = threading.Lock()


class ClassifierError(ConfigError):
    """A model that cannot be built as configured; the message is one line with the fix."""


@dataclass
class ClassifierOutput:
    """What one forward pass gives the strategies."""

    logits: Tensor                         # (B, C)
    features: Tensor                       # (B, D): the head's input, pooled over space when a map
    predicted_loss: Tensor | None = None   # (B,), with a loss-prediction module only


def model_names() -> list[str]:
    """torchvision's classification models (no detection, segmentation, video or quantized ones)."""
    return sorted([*torchvision.models.list_models(module=torchvision.models), *PROJECT_MODELS])


def has_dropout(model: nn.Module) -> bool:
    """Whether MC dropout can sample anything: a dropout layer with a positive rate.

    Layers with p = 0 (the ViT and Swin defaults) do not count: their passes would all be equal.
    """
    return any(isinstance(m, _DROPOUT_TYPES) and m.p > 0 for m in model.modules())


@contextmanager
def dropout_train(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode everywhere except the dropout layers, for the block (MC dropout passes).

    Batch norm keeps using (and not updating) its running statistics, and stochastic depth stays off,
    so that the passes differ by their dropout masks only. Every module's mode is restored after.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    for m in model.modules():
        if isinstance(m, _DROPOUT_TYPES):
            m.train()
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


def _find_head(net: nn.Module) -> tuple[str, nn.Linear | nn.Conv2d]:
    """(dotted name, module) of the final classification layer.

    The last ``nn.Linear`` registered is the head in every torchvision classifier (auxiliary heads come
    earlier); SqueezeNet, the one family without any, classifies with a last 1x1 convolution.
    """
    linear = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if linear:
        return linear[-1]
    convs = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    if convs:
        return convs[-1]
    raise ClassifierError(f"{type(net).__name__} has no final nn.Linear or 1x1 convolution to classify with")


def _head_size(head: nn.Linear | nn.Conv2d) -> tuple[int, int]:
    """(input width, number of outputs) of a head."""
    if isinstance(head, nn.Linear):
        return head.in_features, head.out_features
    return head.in_channels, head.out_channels


def _parent(net: nn.Module, dotted: str) -> tuple[nn.Module, str]:
    parent, _, leaf = dotted.rpartition(".")
    return (net.get_submodule(parent) if parent else net), leaf


def _replace_head(net: nn.Module, num_classes: int) -> None:
    """Swap the final classification layer for a fresh one with `num_classes` outputs (fine-tuning)."""
    path, old = _find_head(net)
    width, _ = _head_size(old)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(width, num_classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(width, num_classes, kernel_size=1, bias=old.bias is not None)
        # torchvision's initialisation of SqueezeNet's final convolution (a ReLU follows it).
        nn.init.normal_(new.weight, mean=0.0, std=0.01)
        if new.bias is not None:
            nn.init.zeros_(new.bias)
    parent, leaf = _parent(net, path)
    setattr(parent, leaf, new.to(device=old.weight.device, dtype=old.weight.dtype))


def _dropout_before(net: nn.Module, head_path: str) -> nn.Module | None:
    """The dropout layer right before the head in the same nn.Sequential (SqueezeNet, VGG, MobileNet,
    EfficientNet, ...), or None (ResNet, DenseNet, ViT, ...)."""
    parent, leaf = _parent(net, head_path)
    if not isinstance(parent, nn.Sequential):
        return None
    names = list(parent._modules)
    position = names.index(leaf)
    if position == 0:
        return None
    previous = parent._modules[names[position - 1]]
    return previous if isinstance(previous, _DROPOUT_TYPES) else None


def _input_sizes(name: str, net: nn.Module) -> tuple[int, int | None]:
    """(smallest accepted side, exact side or None) of the family's inputs."""
    if isinstance(net, VisionTransformer):
        return 1, int(net.image_size)
    if isinstance(net, MaxVit):
        # Built for torchvision's default size, which is also its weights' (min_size in their meta).
        return 1, int(torchvision.models.get_model_weights(name).DEFAULT.meta["min_size"][0])
    for prefix, size in MIN_INPUT_SIZE.items():
        if name.startswith(prefix):
            return size, None
    return 1, None


class Classifier(nn.Module):
    """A torchvision classifier (``net``) giving logits, penultimate features and, optionally, LL4AL's
    predicted loss in one forward pass.

    ``dropout``: None keeps the architecture's own dropout; a rate sets the dropout layer right before
    the head (SqueezeNet, VGG, MobileNet, EfficientNet, ...) or, where there is none (ResNet, DenseNet,
    ...), adds one on the head's input (``head_dropout``), so that MC dropout works with every family.
    ``loss_prediction_width`` > 0 adds LL4AL's module (ResNets only), fed by the four stages; set
    ``detach_taps`` (or call ``predict_loss_detached``) to feed it the stages without a gradient path
    back into the network, as LL4AL does after its first epochs.
    """

    def __init__(self, name: str, net: nn.Module, loss_prediction_width: int = 0,
                 dropout: float | None = None) -> None:
        super().__init__()
        self.name = name
        self.net = net
        self._head_path, head = _find_head(net)
        self._feature_dim, self.num_classes = _head_size(head)
        self.min_input_size, self.input_size = _input_sizes(name, net)
        self.detach_taps = False

        before = _dropout_before(net, self._head_path)
        self.head_dropout: nn.Dropout | None = None
        if dropout is not None:
            if not 0.0 <= dropout < 1.0:
                raise ClassifierError(f"dropout {dropout} of {name} must be in [0, 1)")
            if before is not None:
                before.p = dropout
            elif dropout > 0:
                self.head_dropout = nn.Dropout(dropout)
        # Read the features before any dropout, so that MC passes share them.
        self._feature_path = self._head_path if before is None else _module_path(net, before)

        self.loss_head: LossPredictionModule | None = None
        if loss_prediction_width > 0:
            if not isinstance(net, ResNet):
                raise ClassifierError(f"{name}: LL4AL needs a ResNet (layer1..layer4 taps); use a resnet, resnext "
                                      "or wide_resnet model")
            channels = self._tap_channels()
            # Initial weights from a fork of the CPU generator seeded with the run's seed, so that
            # adding the module changes nothing else a seeded run draws (as in the hybrid model).
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(torch.initial_seed())
                self.loss_head = LossPredictionModule(channels, loss_prediction_width)

    @property
    def feature_dim(self) -> int:
        """D of ``ClassifierOutput.features``."""
        return self._feature_dim

    @property
    def head(self) -> nn.Module:
        """The final classification layer of ``net``."""
        return self.net.get_submodule(self._head_path)

    def predict_loss_detached(self, flag: bool = True) -> None:
        """Feed the loss-prediction module detached stages from now on (or again attached)."""
        self.detach_taps = bool(flag)

    def _tap_channels(self) -> list[int]:
        """Channels of layer1..layer4, from one small forward pass in eval mode (no state changes)."""
        maps: list[Tensor] = []
        handles = [self.net.get_submodule(t).register_forward_hook(lambda _m, _i, out: maps.append(out))
                   for t in LL4AL_TAPS]
        modes = [(m, m.training) for m in self.net.modules()]
        weight = next(self.net.parameters())
        try:
            self.net.eval()
            with torch.no_grad():
                self.net(torch.zeros(1, 3, 32, 32, device=weight.device, dtype=weight.dtype))
        finally:
            for h in handles:
                h.remove()
            for m, mode in modes:
                m.training = mode
        return [int(m.shape[1]) for m in maps]

    def sized(self, x: Tensor) -> Tensor:
        """The input as the network sees it: resized to the exact size of a transformer, upsampled
        (bilinear, aspect ratio kept) when its shorter side is below the family's minimum."""
        h, w = x.shape[-2:]
        if self.input_size is not None:
            target = (self.input_size, self.input_size)
        elif min(h, w) < self.min_input_size:
            scale = self.min_input_size / min(h, w)
            target = (max(self.min_input_size, round(h * scale)), max(self.min_input_size, round(w * scale)))
        else:
            return x
        if target == (h, w):
            return x
        shrinking = target[0] < h or target[1] < w
        return F.interpolate(x, size=target, mode="bilinear", align_corners=False, antialias=shrinking)

    def forward(self, x: Tensor) -> ClassifierOutput:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.name} expects (B, 3, H, W) images, got shape {tuple(x.shape)}")
        features: list[Tensor] = []
        taps: list[Tensor] = []

        def read_features(_module: nn.Module, args: tuple) -> None:
            features.append(args[0])

        def drop(_module: nn.Module, args: tuple) -> tuple:
            return (self.head_dropout(args[0]), *args[1:])

        # Hooks live for one call only, so that copies of the model (deep ensembles) stay independent.
        handles = [self.net.get_submodule(self._feature_path).register_forward_pre_hook(read_features)]
        if self.head_dropout is not None:
            handles.append(self.head.register_forward_pre_hook(drop))
        if self.loss_head is not None:
            handles += [self.net.get_submodule(t).register_forward_hook(lambda _m, _i, out: taps.append(out))
                        for t in LL4AL_TAPS]
        try:
            logits = self.net(self.sized(x))
        finally:
            for h in handles:
                h.remove()
        if not isinstance(logits, Tensor) or len(features) != 1:
            raise RuntimeError(f"{self.name}: expected one logits tensor and one head call, got "
                               f"{type(logits).__name__} and {len(features)} calls")
        f = features[0]
        f = f.mean(dim=tuple(range(2, f.ndim))) if f.ndim > 2 else f
        predicted = None
        if self.loss_head is not None:
            predicted = self.loss_head([t.detach() for t in taps] if self.detach_taps else taps)
        return ClassifierOutput(logits=logits, features=f.flatten(1), predicted_loss=predicted)


def _module_path(net: nn.Module, module: nn.Module) -> str:
    return next(n for n, m in net.named_modules() if m is module)


def weights_file(name: str, weights_dir: Path | str | None = None) -> tuple[Path, str]:
    """(local path, URL) of the DEFAULT ImageNet weights of `name`: in `weights_dir`, or torch hub's
    cache (``torch.hub.get_dir()/checkpoints``) where torchvision itself would keep them."""
    url = torchvision.models.get_model_weights(name).DEFAULT.url
    folder = Path(weights_dir) if weights_dir is not None else Path(torch.hub.get_dir()) / "checkpoints"
    return folder / Path(urlparse(url).path).name, url


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _pretrained_net(name: str, weights_dir: Path | str | None) -> nn.Module:
    """`name` with its DEFAULT ImageNet weights read from the local file (never downloaded).

    torchvision's builder runs with the weights enum, so that whatever it adapts to them (Inception's
    input transform, ViT's image size, DenseNet's old key names, MNASNet's versions) happens as usual;
    only the enum's ``get_state_dict``, the one place that would download, is replaced by the file.
    """
    weights = torchvision.models.get_model_weights(name).DEFAULT
    path, url = weights_file(name, weights_dir)
    if not path.is_file():
        raise ClassifierError(f"{name} ImageNet weights not found: put {path.name} (from {url}) in {path.parent}, "
                              "or pass --pretrained false")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ClassifierError(f"{name} ImageNet weights {path} cannot be read ({type(exc).__name__}: "
                              f"{_one_line(exc, 120)}): replace it with {url}, or pass --pretrained false") from exc
    if not isinstance(state, dict):
        raise ClassifierError(f"{name} ImageNet weights {path} hold a {type(state).__name__}, not a state_dict: "
                              f"replace it with {url}, or pass --pretrained false")

    def local_state_dict(member: object, *_args: object, **_kwargs: object) -> dict[str, Tensor]:
        if member is not weights:
            raise ClassifierError(f"{name}: the builder asked for {member} instead of {weights}")
        return state  # as read: mnasnet checks the version kept in the state_dict's _metadata

    with _WEIGHTS_LOCK, mock.patch.object(type(weights), "get_state_dict", local_state_dict):
        try:
            net = torchvision.models.get_model(name, weights=weights)
        except ClassifierError:
            raise
        except (RuntimeError, KeyError, ValueError) as exc:
            raise ClassifierError(f"{path} does not fit {name} ({_one_line(exc)}): replace it with {url}, "
                                  "or pass --pretrained false") from exc
    if getattr(net, "aux_logits", False):
        net.aux_logits = False
        for aux in _AUX_HEADS:
            if hasattr(net, aux):
                setattr(net, aux, None)
    return net


def build_classifier(name: str, num_classes: int, pretrained: bool, weights_dir: Path | None = None,
                     loss_prediction_width: int = 0, *, dropout: float | None = None) -> Classifier:
    """A ``Classifier`` of torchvision's `name` with `num_classes` outputs.

    `pretrained`: torchvision's DEFAULT ImageNet weights, read from `weights_dir` (or torch hub's cache)
    and never downloaded, with a fresh head for `num_classes`; otherwise torchvision's random
    initialisation. `loss_prediction_width` > 0 adds LL4AL's loss-prediction module (ResNets only);
    `dropout`: see ``Classifier``.
    """
    key = name.strip().lower()
    names = model_names()
    if key not in names:
        close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
        hint = f": did you mean {', '.join(close)}?" if close else ""
        raise ClassifierError(f"unknown classification model {name!r}{hint} (see torchvision.models.list_models())")
    if num_classes < 1:
        raise ClassifierError(f"num_classes must be >= 1, got {num_classes}")
    if loss_prediction_width < 0:
        raise ClassifierError(f"loss_prediction_width must be >= 0, got {loss_prediction_width}")
    if loss_prediction_width > 0 and not key.startswith(C.LL4AL_MODEL_PREFIXES):
        # Refused before any weights are read; Classifier checks the built network again.
        raise ClassifierError(f"{key}: LL4AL needs a ResNet (layer1..layer4 taps); use a resnet, resnext or "
                              "wide_resnet model")
    if pretrained and key in PROJECT_MODELS:
        raise ClassifierError(f"{key} has no ImageNet weights: pass --pretrained false")
    if pretrained:
        net = _pretrained_net(key, weights_dir)
        expected = len(torchvision.models.get_model_weights(key).DEFAULT.meta["categories"])
        _, outputs = _head_size(_find_head(net)[1])
        if outputs != expected:
            raise ClassifierError(f"{key}: the last layer found has {outputs} outputs, not the {expected} ImageNet "
                                  "classes; this model's head cannot be replaced automatically")
        _replace_head(net, num_classes)
    else:
        net = PROJECT_MODELS[key](num_classes) if key in PROJECT_MODELS else \
            torchvision.models.get_model(key, weights=None, num_classes=num_classes, **_SCRATCH_KWARGS.get(key, {}))
    return Classifier(key, net, loss_prediction_width, dropout=dropout)


__all__ = [
    "LL4AL_TAPS",
    "MIN_INPUT_SIZE",
    "Classifier",
    "ClassifierError",
    "ClassifierOutput",
    "build_classifier",
    "dropout_train",
    "has_dropout",
    "model_names",
    "weights_file",
]
