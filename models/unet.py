"""U-Net-like segmentation head of the hybrid network (the original architecture, kept as is).

With bw = base_width and lk = leak:
  - full-resolution branch: conv3x3 3->F + ReLU, conv3x3 F->F + ReLU (bias, no BN), on the input,
    with F = full_res_width (64 in the paper; smaller widths make small CPU experiments affordable,
    since this branch and the final fusion run at full resolution and dominate the head's cost);
  - bridges: one conv3x3 *without padding* + ReLU per backbone stage, to lk channels (each shrinks its
    map by 2 px, hence the minimum input size below);
  - down path: five DoubleConv blocks (conv3x3 stride 2 no bias, BN, ReLU, twice: /4 per block) with
    widths 2bw, 4bw, 8bw, 16bw, 32bw. Block K reads [previous output resized (bilinear) to bridge K's
    size, bridge K]; block 0's "previous output" is the full-resolution branch. The resized tensors are
    the skips of the up path;
  - up path: x2 bilinear (align_corners=True), resize to the skip's size, concatenate, conv3x3 + ReLU
    to 256, 128, 128, 64; then x2, resize to the input size, concatenate with the full-resolution
    branch, conv3x3 (64+F)->F + ReLU and a 1x1 conv to one logit per pixel.
Worked example, 374x374: stages 187/94/47/24/12, bridges 185/92/45/22/10, down outputs 47/23/12/6/3,
logits 374x374.

``dropout`` (the network's "backbone dropout", used for MC dropout) acts on every backbone stage the
head reads, on every down block output and on every up conv output, and nowhere else. The original
also fed the dropped stages into the next backbone stage and into the classifier; here the backbone and
classifier never see it, so their outputs can be computed once and reused across stochastic passes.

The fusion conv is linear in its input, so it splits into a term on the upsampled path and a term on
the full-resolution branch. ``sampling_features`` computes the second term (and the branch resized for
down block 0) once; ``forward`` then runs only the stochastic part per pass, which halves the
full-resolution work of each MC-dropout pass and never repeats a full-resolution tensor.
"""

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# layer4 has stride 32 and each bridge removes 2 px, so layer4 needs >= 3 px: ceil(n / 32) >= 3.
MIN_INPUT_SIZE = 2 * 32 + 1
_UP_WIDTHS = (256, 128, 128, 64)


def check_input_size(height: int, width: int) -> None:
    """Fail early, with the limit, on images the bridges cannot process."""
    if height < MIN_INPUT_SIZE or width < MIN_INPUT_SIZE:
        raise ValueError(
            f"input {height}x{width} is too small for the segmentation head: both sides must be "
            f">= {MIN_INPUT_SIZE} px (crop or rescale images to at least that size)"
        )


def _conv_relu(in_channels: int, out_channels: int, padding: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=padding),
        nn.ReLU(inplace=True),
    )


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _resize(x: Tensor, size: Sequence[int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def _upsample2(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class SamplingFeatures(NamedTuple):
    """The full-resolution branch, prepared once for repeated stochastic passes.

    ``down_input``: the branch resized to down block 0's input size (B, F, h, w).
    ``fusion``: the branch's half of the fusion conv, bias included (B, F, H, W), at output size.
    """

    down_input: Tensor
    fusion: Tensor


class UNetHead(nn.Module):
    """Mask logits (B, 1, H, W) from the five backbone stages and the full-resolution branch."""

    def __init__(
        self,
        stage_channels: Sequence[int],
        base_width: int = 24,
        leak: int = 64,
        dropout: float = 0.0,
        in_channels: int = 3,
        full_res_width: int = 64,
    ) -> None:
        super().__init__()
        if len(stage_channels) != 5:
            raise ValueError(f"the head expects 5 backbone stages, got {len(stage_channels)}")
        if min(base_width, leak, full_res_width) < 1:
            raise ValueError(f"base_width, leak and full_res_width must be >= 1, got {base_width}, {leak} "
                             f"and {full_res_width}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"backbone_dropout must lie in [0, 1), got {dropout}")
        down_widths = [base_width * 2**i for i in range(1, 6)]
        down_inputs = [full_res_width, *down_widths[:-1]]
        self.full_res = nn.Sequential(
            _conv_relu(in_channels, full_res_width, padding=1),
            _conv_relu(full_res_width, full_res_width, padding=1),
        )
        self.bridges = nn.ModuleList(_conv_relu(c, leak, padding=0) for c in stage_channels)
        self.downs = nn.ModuleList(
            _double_conv(c + leak, w) for c, w in zip(down_inputs, down_widths, strict=True)
        )
        up_inputs = [down_widths[-1], *_UP_WIDTHS[:-1]]
        up_skips = down_widths[-2::-1]
        self.ups = nn.ModuleList(
            _conv_relu(c + s, w, padding=1)
            for c, s, w in zip(up_inputs, up_skips, _UP_WIDTHS, strict=True)
        )
        self.fuse = _conv_relu(_UP_WIDTHS[-1] + full_res_width, full_res_width, padding=1)
        self.out = nn.Conv2d(full_res_width, 1, kernel_size=1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def full_resolution(self, x: Tensor) -> Tensor:
        """The branch that reads the input image directly; deterministic."""
        check_input_size(x.shape[-2], x.shape[-1])
        return self.full_res(x)

    def _fusion_weights(self) -> tuple[Tensor, Tensor]:
        """The fusion conv's kernel split into its upsampled-path and full-resolution halves."""
        weight = self.fuse[0].weight
        return weight[:, : _UP_WIDTHS[-1]], weight[:, _UP_WIDTHS[-1]:]

    def sampling_features(self, full_res: Tensor, stage0_hw: Sequence[int]) -> SamplingFeatures:
        """What the head needs of the branch when it runs several passes (``stage0_hw``: layer0's size)."""
        bridge_hw = (stage0_hw[0] - 2, stage0_hw[1] - 2)
        _, full_half = self._fusion_weights()
        fusion = F.conv2d(full_res, full_half, self.fuse[0].bias, padding=1)
        return SamplingFeatures(down_input=_resize(full_res, bridge_hw), fusion=fusion)

    @property
    def tap_channels(self) -> tuple[int, ...]:
        """Channels of the down blocks' outputs, the multi-scale maps ``forward`` can tap."""
        return tuple(block[0].out_channels for block in self.downs)

    def forward(self, stages: Sequence[Tensor], full_res: Tensor | SamplingFeatures,
                taps: list[Tensor] | None = None) -> Tensor:
        """Mask logits from the stages and the branch (or its ``sampling_features``).

        With sampling features, the stages may hold t rows per image (``Encoded.repeat``): the fusion
        term of image i is added to rows i*t .. i*t+t-1. A list passed as ``taps`` receives the
        output of every down block (finest first), e.g. for a loss-prediction module.
        """
        bridges = [bridge(self.dropout(s)) for bridge, s in zip(self.bridges, stages, strict=True)]
        sampling = isinstance(full_res, SamplingFeatures)
        x = full_res.down_input if sampling else full_res
        skips = []
        for down, bridge in zip(self.downs, bridges, strict=True):
            x = _resize(x, bridge.shape[-2:])
            skips.append(x)
            x = self.dropout(down(torch.cat([x, bridge], dim=1)))
            if taps is not None:
                taps.append(x)
        # skips[0] is the resized full-resolution branch: the last fusion uses it at full size.
        for up, skip in zip(self.ups, reversed(skips[1:]), strict=True):
            x = _resize(_upsample2(x), skip.shape[-2:])
            x = self.dropout(up(torch.cat([x, skip], dim=1)))
        if not sampling:
            x = _resize(_upsample2(x), full_res.shape[-2:])
            return self.out(self.fuse(torch.cat([x, full_res], dim=1)))
        fusion = full_res.fusion
        x = _resize(_upsample2(x), fusion.shape[-2:])
        up_half, _ = self._fusion_weights()
        x = F.conv2d(x, up_half, padding=1)
        x = (x.unflatten(0, (fusion.shape[0], -1)) + fusion.unsqueeze(1)).flatten(0, 1)
        return self.out(F.relu(x))
