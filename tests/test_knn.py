import math

import numpy as np
import pytest
import torch
from PIL import Image

from al.knn import class_normalisers, colour_features, colour_histograms, jsd, knn_pairs


def _random_hists(n: int, seed: int, channels: int = 3, bins: int = 16) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    h = torch.rand(n, channels, bins, generator=gen) ** 3 + 1e-8
    return h / h.sum(dim=-1, keepdim=True)


def brute_force_knn_pairs(
    hists: torch.Tensor,
    labels: torch.Tensor,
    labelled: torch.Tensor,
    k: int,
    normalisers: dict[int, torch.Tensor],
) -> dict[int, int]:
    """The walk of method-spec 4.4 on the full distance matrix, self excluded by index."""
    full = jsd(hists, hists).double()
    pairs = {}
    for u in range(hists.shape[0]):
        if labelled[u]:
            continue
        c = int(labels[u])
        mates = [v for v in range(hists.shape[0]) if int(labels[v]) == c and v != u]
        dist = {v: float((full[u, v] / normalisers[c]).sum()) for v in mates}
        ordered = sorted(mates, key=lambda v: (dist[v], v))
        # Everything before the first labelled one is unlabelled; the walk gives up after k of them.
        first = next((i for i, v in enumerate(ordered) if labelled[v]), None)
        if first is not None and first < k:
            pairs[u] = ordered[first]
    return pairs


def _problem(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    n = 45
    hists = _random_hists(n, seed)
    labels = torch.randint(0, 4, (n,), generator=gen)
    labelled = torch.rand(n, generator=gen) < 0.3
    labels[-5:] = 7  # a class without any labelled sample
    labelled[-5:] = False
    return hists, labels, labelled


@pytest.mark.parametrize("block_size", [1, 4, 64])
@pytest.mark.parametrize("k", [1, 3, 100])
def test_blockwise_equals_brute_force(block_size: int, k: int) -> None:
    hists, labels, labelled = _problem(seed=k + block_size)
    z = class_normalisers(hists, labels, block_size)
    got = knn_pairs(hists, labels, labelled, k, z, block_size)
    assert got == brute_force_knn_pairs(hists, labels, labelled, k, z)
    for u, lab in got.items():
        assert labels[u] == labels[lab] and labelled[lab] and not labelled[u]
    assert not any(int(labels[u]) == 7 for u in got)


def test_k_larger_than_class_pairs_everyone_with_a_labelled_classmate() -> None:
    hists, labels, labelled = _problem(seed=11)
    got = knn_pairs(hists, labels, labelled, 1000, class_normalisers(hists, labels, 8), 8)
    expected = {
        u
        for u in range(len(labels))
        if not labelled[u] and bool((labelled & (labels == labels[u])).any())
    }
    assert set(got) == expected
    assert len(got) < int((~labelled).sum())  # the class without labels pairs nothing


def test_small_k_leaves_some_unpaired() -> None:
    hists, labels, labelled = _problem(seed=3)
    z = class_normalisers(hists, labels, 16)
    assert len(knn_pairs(hists, labels, labelled, 1, z)) < len(knn_pairs(hists, labels, labelled, 100, z))


def test_duplicates_exclude_self_by_index() -> None:
    hists = _random_hists(8, seed=4)
    labels = torch.zeros(8, dtype=torch.int64)
    labelled = torch.tensor([False, False, False, True, False, False, True, False])
    # Samples 1, 2, 5 are identical images; the labelled ones (3, 6) are different images.
    hists[2] = hists[1]
    hists[5] = hists[1]
    z = class_normalisers(hists, labels, 3)
    got = knn_pairs(hists, labels, labelled, 1, z, block_size=3)
    # With k=1 each copy first meets another (unlabelled) copy at distance 0: none is paired.
    assert not {1, 2, 5} & set(got)
    assert got == brute_force_knn_pairs(hists, labels, labelled, 1, z)
    # A labelled copy at index 6: copy 1 meets copies 2 and 5 first (ties go to the lower index), so
    # it needs k >= 3, while exactly k unlabelled neighbours before it block the pairing.
    hists[6] = hists[1]
    z = class_normalisers(hists, labels, 3)
    assert 1 not in knn_pairs(hists, labels, labelled, 2, z, block_size=3)
    got = knn_pairs(hists, labels, labelled, 3, z, block_size=3)
    assert got[1] == got[2] == got[5] == 6
    assert got == brute_force_knn_pairs(hists, labels, labelled, 3, z)
    # A labelled copy with the lowest index comes first for every copy, even with k=1.
    hists[0] = hists[1]
    labelled[0] = True
    z = class_normalisers(hists, labels, 3)
    got = knn_pairs(hists, labels, labelled, 1, z, block_size=3)
    assert got[1] == got[2] == got[5] == 0
    assert got == brute_force_knn_pairs(hists, labels, labelled, 1, z)


def test_exactly_k_closer_unlabelled_block_the_pairing() -> None:
    base, far = _random_hists(2, seed=12)
    near = base + 0.01 * _random_hists(4, seed=13)
    hists = torch.cat([near / near.sum(dim=-1, keepdim=True), far.unsqueeze(0)])
    labels = torch.zeros(5, dtype=torch.int64)
    labelled = torch.tensor([False, False, False, False, True])
    z = class_normalisers(hists, labels)
    # Each unlabelled sample has its 3 unlabelled class-mates before the labelled one.
    assert knn_pairs(hists, labels, labelled, 3, z) == {}
    assert knn_pairs(hists, labels, labelled, 4, z) == {0: 4, 1: 4, 2: 4, 3: 4}


def test_ties_go_to_the_lower_index() -> None:
    hists = _random_hists(4, seed=6)
    hists[3] = hists[1]  # two labelled copies at the same distance from sample 0
    labels = torch.zeros(4, dtype=torch.int64)
    labelled = torch.tensor([False, True, False, True])
    for block in (1, 2, 4):
        assert knn_pairs(hists, labels, labelled, 5, class_normalisers(hists, labels, block), block)[0] == 1


def test_class_normalisers_match_full_sum() -> None:
    hists, labels, _ = _problem(seed=2)
    full = jsd(hists, hists).double()
    for block in (1, 5, 100):
        z = class_normalisers(hists, labels, block)
        assert set(z) == set(torch.unique(labels).tolist())
        for c, zc in z.items():
            idx = torch.nonzero(labels == c).flatten()
            expected = full[idx][:, idx].sum(dim=(0, 1))
            assert torch.allclose(zc, expected, rtol=1e-6)
    single = class_normalisers(hists[:1], torch.tensor([3]), 4)
    assert torch.equal(single[3], torch.ones(3, dtype=torch.float64))


def test_knn_rejects_bad_arguments() -> None:
    hists, labels, labelled = _problem(seed=1)
    z = class_normalisers(hists, labels, 8)
    with pytest.raises(ValueError):
        knn_pairs(hists, labels, labelled, 0, z)
    with pytest.raises(ValueError):
        knn_pairs(hists, labels, labelled[:-1], 2, z)
    with pytest.raises(ValueError):
        knn_pairs(hists, labels, labelled, 2, z, block_size=0)
    with pytest.raises(ValueError):
        knn_pairs(hists, labels, labelled, 2, {})


def test_jsd_properties() -> None:
    p, q = _random_hists(5, seed=7), _random_hists(4, seed=8)
    d = jsd(p, q)
    assert d.shape == (5, 4, 3)
    assert torch.equal(d, jsd(q, p).transpose(0, 1))
    assert torch.equal(jsd(p, p).diagonal(dim1=0, dim2=1), torch.zeros(3, 5))
    pn, qn = p.double().numpy()[:, None], q.double().numpy()[None]
    m = (pn + qn) / 2
    ref = 0.5 * (pn * np.log(pn / m)).sum(-1) + 0.5 * (qn * np.log(qn / m)).sum(-1)
    np.testing.assert_allclose(d.numpy(), ref, atol=1e-6)
    disjoint = jsd(torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[0.0, 1.0]]]))
    assert disjoint.item() == pytest.approx(math.log(2.0), rel=1e-6)
    assert (d >= 0).all() and (d <= math.log(2.0) + 1e-6).all()


def _soft_histogram(x: torch.Tensor, bins: int, sigma: float) -> torch.Tensor:
    """The original's SoftHistogram on [0, 1] (difference of two sigmoids per bin), in float64."""
    delta = 1.0 / bins
    centers = delta * (torch.arange(bins, dtype=torch.float64) + 0.5)
    z = x.double().reshape(x.shape[0], 1, -1) - centers.view(1, bins, 1)
    h = (torch.sigmoid(sigma * (z + delta / 2)) - torch.sigmoid(sigma * (z - delta / 2))).sum(dim=-1) + 1e-8
    return h / h.sum(dim=-1, keepdim=True)


def test_hard_histogram_matches_soft_histogram() -> None:
    gen = torch.Generator().manual_seed(0)
    bins = 256
    # Values at least 2e-4 from any bin edge, plus exact edges and the end points 0 and 1.
    centre = (torch.randint(0, bins, (3, 12, 12), generator=gen) + 0.5) / bins
    x = centre + (torch.rand(3, 12, 12, generator=gen) - 0.5) * (1.0 / bins - 4e-4)
    x[:, 0, :6] = 0.0
    x[:, 0, 6:] = 1.0
    x[:, 1, :] = torch.randint(0, bins + 1, (3, 12), generator=gen) / bins
    hard = colour_histograms(x, bins=bins)
    soft = _soft_histogram(x, bins, 1e5)
    assert torch.allclose(hard.double(), soft, atol=1e-6)


def test_histograms_sum_to_one_and_batch() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 10, 9, generator=gen)
    h = colour_histograms(x)
    assert h.shape == (2, 3, 256)
    assert torch.allclose(h.sum(dim=-1), torch.ones(2, 3))
    assert torch.equal(h[1], colour_histograms(x[1]))
    counts = colour_histograms(torch.tensor([[[0.1, 0.1, 0.6, 2.0]]]), bins=2, eps=0.0)
    assert torch.allclose(counts, torch.tensor([[2 / 3, 1 / 3]]))


def test_colour_features_pipeline() -> None:
    gen = torch.Generator().manual_seed(2)
    image = torch.randint(0, 256, (3, 40, 70), generator=gen, dtype=torch.uint8)
    f = colour_features(image, resize_h=16)
    assert f.shape == (3, 16, int(16 / 40 * 70)) and f.dtype == torch.float32
    assert f.min() >= 0.0 and f.max() <= 1.0
    plain = colour_features(image, resize_h=16, enhance_color=False, smooth=False)
    pil = Image.fromarray(image.permute(1, 2, 0).numpy()).resize((28, 16), Image.Resampling.BICUBIC)
    assert torch.equal(plain, torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1).float() / 255.0)
    # Smoothing keeps a flat image flat; the saturation boost leaves a grey image alone.
    grey = torch.full((3, 20, 30), 77, dtype=torch.uint8)
    assert torch.allclose(colour_features(grey, resize_h=10), torch.full((3, 10, 15), 77 / 255.0))
    assert not torch.equal(colour_features(image, resize_h=16, smooth=False), plain)
