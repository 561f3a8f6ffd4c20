"""The hybrid network: ResNet-18 backbone, WILDCAT classifier and U-Net-like segmentation head.

The forward pass is split where active learning needs it:
  - ``encode(x)``: everything upstream of the first stochastic layer (the five backbone stages and the
    full-resolution branch of the segmentation head), deterministic in eval mode. The full-resolution
    branch trains in stage 2, so ``encode`` must run with gradients there;
  - ``classify(enc)``: WILDCAT scores and class maps (layer4 grid);
  - ``segment(enc)``: mask logits; applies the backbone dropout, so MC-dropout scoring runs
    ``encode(x, sampling=True)`` once (which also precomputes the full-resolution half of the fusion
    conv) and ``segment`` T times, batched through ``Encoded.repeat``.

Stage 2 loads the stage-1 checkpoint with ``load_matching_state`` and calls ``freeze_classifier``:
the backbone and WILDCAT stop learning and their BatchNorm/Dropout stay in eval mode even in
``train()``, so only the segmentation head (bridges, full-resolution branch, down/up blocks) trains.
"""

from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.backbone import ResNet18Backbone
from models.frozen import FrozenFeatures
from models.loss_prediction import LossPredictionModule
from models.unet import SamplingFeatures, UNetHead
from models.wildcat import WildcatHead


def _repeat_batch(x: Tensor, t: int) -> Tensor:
    """Each sample t times in a row, keeping a channels_last layout channels_last."""
    channels_last = (
        x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last)
        and not x.is_contiguous()
    )
    out = x.repeat_interleave(t, dim=0)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


@dataclass(frozen=True, eq=False)
class Encoded:
    """Deterministic features of a batch: backbone stages (layer0..4) and the full-resolution branch.

    ``full_res`` is None when encoding for classification only (it is the costliest part of the head),
    and the head's ``SamplingFeatures`` when encoding for repeated stochastic passes.
    """

    stages: tuple[Tensor, ...]
    full_res: Tensor | SamplingFeatures | None

    @property
    def batch_size(self) -> int:
        return self.stages[0].shape[0]

    def repeat(self, t: int) -> "Encoded":
        """Features of a batch where sample i occupies rows i*t .. i*t+t-1 (for T stochastic passes)."""
        if t < 1:
            raise ValueError(f"repeat count must be >= 1, got {t}")
        if t == 1:
            return self
        full_res = self.full_res
        if isinstance(full_res, SamplingFeatures):
            # The fusion term stays one row per image: the head broadcasts it over the t rows.
            full_res = full_res._replace(down_input=_repeat_batch(full_res.down_input, t))
        elif full_res is not None:
            full_res = _repeat_batch(full_res, t)
        return Encoded(stages=tuple(_repeat_batch(s, t) for s in self.stages), full_res=full_res)


class HybridOutput(NamedTuple):
    """Raw outputs: class logits (B, C), mask logits (B, 1, H, W), class maps on the layer4 grid."""

    scores: Tensor
    masks: Tensor
    maps: Tensor


def class_maps_at(maps: Tensor, size: Sequence[int]) -> Tensor:
    """Class maps upsampled to an image size (bilinear, align_corners=True), for WSL masks."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=tuple(size), mode="bilinear", align_corners=True)


class HybridModel(nn.Module):
    """Joint classifier and segmenter; see the module docstring for the split of the forward pass."""

    def __init__(
        self,
        num_classes: int,
        *,
        modalities: int = 5,
        kmax: float = 0.1,
        kmin: float = 0.1,
        alpha: float = 0.6,
        dropout: float = 0.1,
        base_width: int = 24,
        leak: int = 64,
        backbone_dropout: float = 0.0,
        full_res_width: int = 64,
        pretrained: bool = False,
        weights_path: str | Path | None = None,
        loss_prediction_width: int = 0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = ResNet18Backbone(pretrained=pretrained, weights_path=weights_path)
        self.classifier = WildcatHead(
            self.backbone.out_channels[-1],
            num_classes,
            modalities=modalities,
            kmax=kmax,
            kmin=kmin,
            alpha=alpha,
            dropout=dropout,
        )
        self.seg_head = UNetHead(
            self.backbone.out_channels, base_width=base_width, leak=leak, dropout=backbone_dropout,
            full_res_width=full_res_width,
        )
        # Learning Loss for AL: a loss-prediction module on the head's multi-scale maps (0: none). Its
        # initial weights come from a fork of the global generator, so that adding it changes
        # nothing else a seeded run draws (e.g. dropout masks).
        self.loss_head: LossPredictionModule | None = None
        if loss_prediction_width > 0:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(torch.initial_seed())
                self.loss_head = LossPredictionModule(self.seg_head.tap_channels, loss_prediction_width)
        self._frozen = False
        # Set when built from theta0 (engine/checkpoint.model_from_theta0): the frozen backbone's stages on
        # evaluation images, shared by every model of that theta0 (models/frozen.py).
        self.frozen_features: FrozenFeatures | None = None

    @property
    def frozen(self) -> bool:
        """Whether the backbone and the classifier are frozen (stage 2)."""
        return self._frozen

    def _classifier_modules(self) -> tuple[nn.Module, nn.Module]:
        return self.backbone, self.classifier

    def freeze_classifier(self) -> None:
        """Stop training the backbone and WILDCAT: no gradients, BatchNorm and Dropout in eval."""
        for module in self._classifier_modules():
            for param in module.parameters():
                param.requires_grad_(False)
        self._frozen = True
        self.train(self.training)

    def train(self, mode: bool = True) -> "HybridModel":
        """Like nn.Module.train, but a frozen classifier stays in eval mode."""
        super().train(mode)
        if self._frozen:
            for module in self._classifier_modules():
                module.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters that receive gradients (all before freezing, the segmentation head after)."""
        return [p for p in self.parameters() if p.requires_grad]

    def enable_mc_dropout(self) -> None:
        """Eval mode everywhere except the backbone dropout, for MC-dropout sampling."""
        self.eval()
        self.seg_head.dropout.train()

    @contextmanager
    def mc_dropout(self) -> Iterator["HybridModel"]:
        """``enable_mc_dropout`` for the duration of a block; every module's mode is restored after."""
        modes = [(module, module.training) for module in self.modules()]
        self.enable_mc_dropout()
        try:
            yield self
        finally:
            for module, mode in modes:
                module.training = mode

    class_maps_at = staticmethod(class_maps_at)

    def encode(self, x: Tensor, *, with_full_res: bool = True, sampling: bool = False,
               keys: Sequence[Hashable] | None = None) -> Encoded:
        """Backbone stages and, unless only classifying, the full-resolution branch.

        ``sampling``: prepare the branch for several stochastic ``segment`` passes (MC dropout), so that
        each pass skips the branch's half of the full-resolution fusion conv.
        ``keys``: the evaluation images of the batch; with them a frozen backbone's stages come from
        ``frozen_features`` once computed.
        """
        # A frozen backbone builds no autograd graph and keeps no activation for backward.
        with torch.no_grad() if self._frozen else nullcontext():
            if keys is not None and self._frozen and self.frozen_features is not None:
                stages = self.frozen_features.stages(self.backbone, keys, x)
            else:
                stages = self.backbone(x)
        if not with_full_res:
            return Encoded(stages=stages, full_res=None)
        full_res = self.seg_head.full_resolution(x)
        if sampling:
            full_res = self.seg_head.sampling_features(full_res, stages[0].shape[-2:])
        return Encoded(stages=stages, full_res=full_res)

    def classify(self, enc: Encoded) -> tuple[Tensor, Tensor]:
        """WILDCAT (scores (B, C), class maps (B, C, h, w) on the layer4 grid)."""
        return self.classifier(enc.stages[-1])

    def segment(self, enc: Encoded, taps: list[Tensor] | None = None) -> Tensor:
        """Mask logits (B, 1, H, W); stochastic when the backbone dropout is active.

        ``taps``: a list that receives the head's multi-scale maps (for ``predict_loss``).
        """
        if enc.full_res is None:
            raise ValueError(
                "segmentation needs the full-resolution branch: encode(x, with_full_res=True)"
            )
        return self.seg_head(enc.stages, enc.full_res, taps)

    def predict_loss(self, taps: Sequence[Tensor], detach: bool = False) -> Tensor:
        """(B,) losses predicted by the loss-prediction module from the maps ``segment`` tapped.

        ``detach``: the maps enter the module without a gradient path back into the head.
        """
        if self.loss_head is None:
            raise ValueError("this model has no loss-prediction module: build it with loss_prediction_width > 0")
        return self.loss_head([t.detach() for t in taps] if detach else taps)

    def forward(self, x: Tensor) -> HybridOutput:
        enc = self.encode(x)
        scores, maps = self.classify(enc)
        return HybridOutput(scores=scores, masks=self.segment(enc), maps=maps)


def load_matching_state(model: nn.Module, state_dict: Mapping[str, Tensor]) -> list[str]:
    """Copy every entry whose name and shape match the model's; return the names copied.

    Used to start stage 2 from the stage-1 checkpoint: a different number of classes or other head
    widths leave the mismatching entries at the model's own values instead of failing. Callers compare
    the returned names with ``model.state_dict()`` to see what was not loaded.
    """
    own = model.state_dict()
    matching = {
        name: value
        for name, value in state_dict.items()
        if name in own and tuple(own[name].shape) == tuple(value.shape)
    }
    model.load_state_dict(matching, strict=False)
    return list(matching)
