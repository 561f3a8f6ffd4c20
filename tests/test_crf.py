"""Dense-CRF post-processing (engine/crf.py): golden outputs of the real library, behaviour, and its absence."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import constants as C
from engine.crf import CRF_MISSING, CRF_PRESETS, CrfParams, CrfUnavailable, refine_foreground, require_crf

NEEDS_CRF = "pydensecrf2 (imported as pydensecrf) is not installed: run bash dependencies/setup.sh"
H, W = 32, 40
YY, XX = np.mgrid[0:H, 0:W]
DISC = ((YY - 14) ** 2 + (XX - 16) ** 2) <= 8**2  # 197 pixels
PATCH = (YY >= 22) & (XX >= 28)  # 120 pixels of an ambiguous mid-grey


def box_blur(a: np.ndarray, k: int = 2) -> np.ndarray:
    """Mean over a (2k+1)^2 window with edge padding: a deterministic soft version of a mask."""
    p = np.pad(a.astype(np.float64), k, mode="edge")
    out = np.zeros(a.shape)
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            out += p[k + dy : k + dy + a.shape[0], k + dx : k + dx + a.shape[1]]
    return out / (2 * k + 1) ** 2


def golden_inputs() -> tuple[np.ndarray, np.ndarray]:
    """A bright disc and a mid-grey patch on a colour ramp; a blurred, patterned, over-segmenting map."""
    image = np.stack([30 + XX, 40 + YY, 50 + 0 * XX], -1).astype(np.uint8)
    image[DISC] = (220, 200, 180)
    image[PATCH] = (125, 120, 115)
    pattern = 0.2 * np.sin(0.7 * XX) * np.cos(0.9 * YY)
    prob = np.clip(0.15 + 0.7 * box_blur(DISC) + 0.35 * PATCH + pattern, 0.0, 1.0)
    return image, prob


def test_presets_hold_the_reference_values() -> None:
    assert set(CRF_PRESETS) == set(C.CRF_PRESETS)   # every preset the configuration accepts has parameters
    assert CRF_PRESETS["glas"] == CrfParams(2, (3, 3), (13, 13), (3, 3, 3))
    assert CRF_PRESETS["cub"] == CrfParams(5, (5, 5), (19, 19), (11, 11, 11))
    assert CRF_PRESETS["default"] == CrfParams(5, (3, 3), (80, 80), (13, 13, 13))


# preset -> (pixels with Q >= 0.5, sum of Q, {pixel: Q}), computed once with pydensecrf2 1.1.
GOLDEN = {
    "default": (
        197,
        196.99820552913366,
        {(14, 16): 0.9999986886978149, (0, 0): 8.455668648821302e-06, (14, 23): 0.9999610185623169,
         (22, 28): 2.7944079192820936e-06, (28, 37): 4.3315417315170635e-06, (5, 35): 8.07532558155799e-07},
    ),
    "glas": (
        197,
        202.59401018557162,
        {(14, 16): 0.9999986886978149, (0, 0): 7.103521511453437e-06, (14, 23): 0.9999227523803711,
         (22, 28): 0.012195591814815998, (28, 37): 0.12861718237400055, (26, 34): 0.049578819423913956,
         (31, 39): 0.062031056731939316},
    ),
}  # fmt: skip


@pytest.mark.parametrize("preset", sorted(GOLDEN))
def test_golden_output(preset: str) -> None:
    pytest.importorskip("pydensecrf.densecrf", reason=NEEDS_CRF)
    image, prob = golden_inputs()
    assert int((prob >= 0.5).sum()) == 247  # before: 86 pixels disagree with the disc
    q = refine_foreground(image, prob, CRF_PRESETS[preset])
    count, total, values = GOLDEN[preset]
    assert q.dtype == np.float32 and q.shape == (H, W)
    assert int((q >= 0.5).sum()) == count
    assert np.array_equal(q >= 0.5, DISC)  # the CRF recovers the disc exactly and drops the grey patch
    assert float(q.sum(dtype=np.float64)) == pytest.approx(total, abs=1e-3)
    for pixel, value in values.items():
        assert float(q[pixel]) == pytest.approx(value, abs=1e-5), pixel


@pytest.mark.parametrize("preset", sorted(CRF_PRESETS))
def test_removes_isolated_specks_of_background_colour(preset: str) -> None:
    pytest.importorskip("pydensecrf.densecrf", reason=NEEDS_CRF)
    image = np.full((H, W, 3), (30, 40, 50), np.uint8)
    image[DISC] = (220, 200, 180)
    prob = np.where(DISC, 0.8, 0.1)
    specks = [(2, 2), (3, 35), (28, 4), (29, 33), (20, 37)]
    for pixel in specks:
        prob[pixel] = 0.9
    assert int((prob >= 0.5).sum()) == int(DISC.sum()) + len(specks)
    mask = refine_foreground(image, prob, CRF_PRESETS[preset]) >= 0.5
    assert mask.dtype == np.bool_ and mask.shape == (H, W)
    assert int(mask.sum()) == int(DISC.sum())
    assert not any(mask[pixel] for pixel in specks)


@pytest.mark.parametrize("preset", sorted(CRF_PRESETS))
def test_output_is_a_probability_map(preset: str) -> None:
    pytest.importorskip("pydensecrf.densecrf", reason=NEEDS_CRF)
    image, prob = golden_inputs()
    q = refine_foreground(image, prob.astype(np.float32), CRF_PRESETS[preset])
    assert q.shape == (H, W) and q.dtype == np.float32
    assert np.isfinite(q).all() and q.min() >= 0.0 and q.max() <= 1.0


def test_all_half_map_stays_undecided() -> None:
    pytest.importorskip("pydensecrf.densecrf", reason=NEEDS_CRF)
    image, _ = golden_inputs()
    q = refine_foreground(image, np.full((H, W), 0.5), CRF_PRESETS["default"])
    assert np.isfinite(q).all()
    np.testing.assert_allclose(q, 0.5, atol=1e-6)  # no evidence either way: both classes stay equal


@pytest.mark.parametrize(
    ("image", "prob", "message"),
    [
        (np.zeros((H, W, 3)), np.zeros((H, W)), "image must be uint8 HxWx3, got float64"),
        (np.zeros((H, W), np.uint8), np.zeros((H, W)), "image must be uint8 HxWx3"),
        (np.zeros((H, W, 4), np.uint8), np.zeros((H, W)), "image must be uint8 HxWx3"),
        (np.zeros((H, W, 3), np.uint8), np.zeros((W, H)), r"foreground map must be HxW = \(32, 40\)"),
        (np.zeros((H, W, 3), np.uint8), np.zeros((H, W, 1)), "foreground map must be HxW"),
        (np.zeros((H, W, 3), np.uint8), np.zeros((H, W), np.uint8), "must hold float probabilities"),
        (np.zeros((H, W, 3), np.uint8), np.full((H, W), np.nan), "NaN or infinite"),
        (np.zeros((H, W, 3), np.uint8), np.full((H, W), 1.5), r"must lie in \[0, 1\]"),
    ],
)
def test_bad_inputs_raise_a_clear_value_error(image: np.ndarray, prob: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        refine_foreground(image, prob, CRF_PRESETS["default"])


def test_require_crf_names_the_fix_when_the_library_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("pydensecrf", "pydensecrf.densecrf", "pydensecrf.eigen", "pydensecrf.utils"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(CrfUnavailable) as info:
        require_crf()
    assert str(info.value) == CRF_MISSING
    assert "\n" not in CRF_MISSING and "bash dependencies/setup.sh" in CRF_MISSING and "--crf false" in CRF_MISSING
    assert str(info.value) == (
        "dense CRF post-processing (crf: true) needs the pydensecrf2 package: run bash dependencies/setup.sh "
        "(it builds pydensecrf2 with the C++ compiler), or set --crf false"
    )
    image, prob = golden_inputs()
    with pytest.raises(CrfUnavailable):
        refine_foreground(image, prob, CRF_PRESETS["glas"])
