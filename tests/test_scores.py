import math

import numpy as np
import pytest
import torch

from al.scores import PassStats, binary_entropy, mean_binary_entropy


def _grid() -> torch.Tensor:
    special = torch.tensor([0.0, 1e-45, 1e-30, 1e-7, 0.5, 1.0 - 1e-7, 1.0])
    return torch.cat([special, torch.linspace(0, 1, 1001)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_binary_entropy_bounds_and_maximum(dtype: torch.dtype) -> None:
    p = _grid().to(dtype)
    h = binary_entropy(p)
    assert not torch.isnan(h).any()
    assert h[0].item() == 0.0 and h[6].item() == 0.0
    assert not torch.signbit(h).any()
    assert h.min().item() >= 0.0
    assert h[4].item() == pytest.approx(math.log(2.0), rel=1e-6)
    assert h.max().item() == pytest.approx(math.log(2.0), rel=1e-6)
    assert p[h.argmax()].item() == 0.5


def test_binary_entropy_is_symmetric_and_true_entropy() -> None:
    p = torch.linspace(0, 1, 2001, dtype=torch.float64)
    assert torch.allclose(binary_entropy(p), binary_entropy(1.0 - p), atol=1e-12)
    # The original's -2 p log p would give 2 * 0.2 * ln(1/0.2) = 0.6438 here.
    expected = -(0.2 * math.log(0.2) + 0.8 * math.log(0.8))
    assert binary_entropy(torch.tensor(0.2, dtype=torch.float64)).item() == pytest.approx(expected, rel=1e-12)


def test_mean_binary_entropy_is_per_image_mean() -> None:
    gen = torch.Generator().manual_seed(0)
    p = torch.rand(3, 1, 5, 7, generator=gen)
    p[1] = 0.5
    p[2] = 0.0
    s = mean_binary_entropy(p)
    assert s.shape == (3,) and s.dtype == torch.float64
    assert s[0].item() == pytest.approx(binary_entropy(p[0]).double().mean().item(), rel=1e-6)
    assert s[1].item() == pytest.approx(math.log(2.0), rel=1e-6)
    assert s[2].item() == 0.0


def test_mean_binary_entropy_rejects_empty_maps() -> None:
    with pytest.raises(ValueError):
        mean_binary_entropy(torch.empty(2, 0))


def _passes(t: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(t, *shape, generator=gen)


def test_identical_passes_give_exactly_zero() -> None:
    # Pixels differ from each other, so the original's pooled variance would be > 0.
    p = _passes(1, (2, 1, 9, 11), 1)[0]
    stats = PassStats()
    for _ in range(50):
        stats.update(p.clone())
    assert stats.count == 50
    assert torch.equal(stats.variance(), torch.zeros(2, dtype=torch.float64))
    assert torch.equal(stats.bald(), torch.zeros(2, dtype=torch.float64))


def test_streaming_equals_full_tensor_formulas() -> None:
    t, shape = 20, (3, 1, 6, 8)
    passes = _passes(t, shape, 2)
    stats = PassStats()
    for i in range(t):
        stats.update(passes[i])
    x = passes.double().numpy().reshape(t, shape[0], -1)
    expected_var = x.var(axis=0).mean(axis=1)
    mean = x.mean(axis=0)

    def h(v: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return -np.nan_to_num(v * np.log(v)) - np.nan_to_num((1 - v) * np.log(1 - v))

    expected_bald = (h(mean) - h(x).mean(axis=0)).mean(axis=1)
    np.testing.assert_allclose(stats.variance().numpy(), expected_var, rtol=1e-10)
    np.testing.assert_allclose(stats.bald().numpy(), expected_bald, rtol=1e-10)
    assert (stats.bald() > 0).all() and (stats.variance() > 0).all()


def test_bald_is_non_negative_on_extreme_passes() -> None:
    stats = PassStats()
    for i in range(7):
        stats.update(torch.full((4, 5), float(i % 2)))
    assert stats.variance()[0].item() == pytest.approx(12 / 49)
    expected = binary_entropy(torch.tensor(3 / 7, dtype=torch.float64)).item()
    assert stats.bald()[0].item() == pytest.approx(expected)
    assert (stats.bald() >= 0).all()


def test_accumulator_rejects_misuse() -> None:
    stats = PassStats()
    with pytest.raises(ValueError):
        stats.variance()
    stats.update(torch.rand(2, 4))
    with pytest.raises(ValueError):
        stats.update(torch.rand(3, 4))
