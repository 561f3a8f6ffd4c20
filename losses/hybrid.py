"""Hybrid loss: cross-entropy on the class scores plus per-sample BCE on the masks of L and PL samples.

    total = scale_cl * cl + scale_seg * seg_l + scale_seg_u * seg_pl

- ``cl``: cross-entropy of the WILDCAT scores, batch mean; only when the classifier trains (stage 1).
- per-sample ``bce_i``: binary cross-entropy with logits, averaged over the pixels of sample i. The
  original applied ``nn.BCELoss`` to sigmoid outputs, which saturates and loses precision; the logits
  form is the numerically stable equivalent.
- Samples tagged U carry no mask supervision and add nothing (their mask values never reach the loss).

Normalisation of the segmentation terms (``normalisation``):
- "sample" (default): seg_l = sum_L bce / n and seg_pl = sum_PL bce / n, with n the number of L and PL
  samples in the batch. Every L sample weighs scale_seg and every PL sample scale_seg_u, whatever the
  batch mix. The original divided both sums by the batch size B; stage-2 batches hold only L and PL
  samples, so n = B there and both agree. They differ only when U samples sit in the batch, where "/B"
  would shrink the segmentation loss by the share of U samples.
- "group": seg_l = mean over L, seg_pl = mean over PL, so each group's total weight is fixed
  (scale_seg for L, scale_seg_u for PL) whatever its size in the batch.
An empty group contributes 0 (never NaN).

The terms stay on the device; ``return_terms=True`` adds a dict of floats (cl, seg_l, seg_pl, total)
fetched with a single device-to-host copy, and ``return_terms=False`` skips that copy entirely.
Setting both segmentation scales to 0 (classification-only training) removes the segmentation term
from the graph, so the segmentation head gets no gradient at all rather than zeros.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from constants import IGNORE, NORM_GROUP, NORM_SAMPLE, PL, SEG_LOSS_NORMS, L

TERM_NAMES = ("cl", "seg_l", "seg_pl", "total")


def per_sample_bce(mask_logits: Tensor, masks: Tensor, ignore_unrevealed: bool = False) -> Tensor:
    """(B,) BCE with logits of each sample, averaged over its pixels (LL4AL's target loss too).

    With `ignore_unrevealed`, pixels whose mask is IGNORE count neither in the sum nor in the
    pixel count (a sample with no revealed pixel in its crop contributes 0).
    """
    if not ignore_unrevealed:
        target = masks.to(mask_logits.dtype)
        return F.binary_cross_entropy_with_logits(mask_logits, target, reduction="none").flatten(1).mean(dim=1)
    revealed = masks != IGNORE
    target = torch.where(revealed, masks, 0).to(mask_logits.dtype)
    bce = F.binary_cross_entropy_with_logits(mask_logits, target, reduction="none") * revealed
    return bce.flatten(1).sum(dim=1) / revealed.flatten(1).sum(dim=1).clamp(min=1)


class HybridLoss(nn.Module):
    """Classification + weighted segmentation loss; see the module docstring for the weighting."""

    def __init__(
        self,
        scale_cl: float = 1.0,
        scale_seg: float = 1.0,
        scale_seg_u: float = 0.1,
        normalisation: str = NORM_SAMPLE,
        train_classifier: bool = True,
        ignore_unrevealed: bool = False,
    ) -> None:
        super().__init__()
        if normalisation not in SEG_LOSS_NORMS:
            raise ValueError(
                f"unknown segmentation-loss normalisation {normalisation!r}; use one of "
                f"{', '.join(SEG_LOSS_NORMS)}"
            )
        if min(scale_cl, scale_seg, scale_seg_u) < 0:
            raise ValueError(
                f"loss scales must be >= 0, got scale_cl={scale_cl}, scale_seg={scale_seg}, "
                f"scale_seg_u={scale_seg_u}"
            )
        if not train_classifier and scale_seg == 0 and scale_seg_u == 0:
            raise ValueError(
                "the loss has no term: train_classifier is false and both segmentation scales are 0"
            )
        self.scale_cl = scale_cl
        self.scale_seg = scale_seg
        self.scale_seg_u = scale_seg_u
        self.normalisation = normalisation
        self.train_classifier = train_classifier
        self.ignore_unrevealed = ignore_unrevealed   # partial masks: IGNORE pixels carry no loss

    @property
    def uses_segmentation(self) -> bool:
        return self.scale_seg > 0 or self.scale_seg_u > 0

    def _segmentation_terms(
        self, mask_logits: Tensor, masks: Tensor, tags: Tensor
    ) -> tuple[Tensor, Tensor]:
        if mask_logits.dim() != 4 or mask_logits.shape[1] != 1:
            raise ValueError(f"mask logits must be (B, 1, H, W), got {tuple(mask_logits.shape)}")
        if masks.shape != mask_logits.shape:
            raise ValueError(
                f"masks {tuple(masks.shape)} and mask logits {tuple(mask_logits.shape)} differ in "
                "shape; resize the masks with the images"
            )
        tags = torch.as_tensor(tags, device=mask_logits.device)
        if tags.shape != (mask_logits.shape[0],):
            raise ValueError(
                f"tags must hold one tag per sample ({mask_logits.shape[0]}), got shape "
                f"{tuple(tags.shape)}"
            )
        dtype = torch.promote_types(mask_logits.dtype, torch.float32)
        is_l = tags == L
        is_pl = tags == PL
        supervised = is_l | is_pl
        # U samples may carry placeholder masks: zero them so no value of theirs can reach the loss.
        target = torch.where(supervised.view(-1, 1, 1, 1), masks.to(dtype), 0.0)
        bce = per_sample_bce(mask_logits.to(dtype), target, self.ignore_unrevealed)
        sum_l = torch.where(is_l, bce, 0.0).sum()
        sum_pl = torch.where(is_pl, bce, 0.0).sum()
        if self.normalisation == NORM_GROUP:
            return sum_l / is_l.sum().clamp(min=1), sum_pl / is_pl.sum().clamp(min=1)
        count = supervised.sum().clamp(min=1)
        return sum_l / count, sum_pl / count

    def forward(
        self,
        scores: Tensor | None,
        mask_logits: Tensor | None,
        labels: Tensor | None,
        masks: Tensor | None,
        tags: Tensor | None,
        *,
        return_terms: bool = True,
    ) -> tuple[Tensor, dict[str, float]]:
        """Total loss and, if asked, its terms as floats.

        scores (B, C) logits and labels (B,) are read only when the classifier trains; mask_logits and
        masks (B, 1, H, W, masks 0/1 of any dtype) and tags (B,) only when a segmentation scale is > 0.
        """
        if self.train_classifier and (scores is None or labels is None):
            raise ValueError("the classifier trains, so scores and labels are required")
        if self.uses_segmentation and (mask_logits is None or masks is None or tags is None):
            raise ValueError(
                "a segmentation scale is > 0, so mask logits, masks and tags are required"
            )
        zero = torch.zeros((), device=(scores if mask_logits is None else mask_logits).device)
        cl = seg_l = seg_pl = total = zero
        if self.train_classifier:
            cl = F.cross_entropy(
                scores.to(torch.promote_types(scores.dtype, torch.float32)), labels
            )
            total = self.scale_cl * cl
        if self.uses_segmentation:
            seg_l, seg_pl = self._segmentation_terms(mask_logits, masks, tags)
            total = total + self.scale_seg * seg_l + self.scale_seg_u * seg_pl
        if not return_terms:
            return total, {}
        values = torch.stack([t.detach().float() for t in (cl, seg_l, seg_pl, total)]).tolist()
        return total, dict(zip(TERM_NAMES, values, strict=True))
