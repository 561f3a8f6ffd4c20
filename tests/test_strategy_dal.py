from collections.abc import Iterable
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from al.strategies import dal
from al.strategies.base import FEATURES, Evidence, StrategyError, StrategySettings
from al.strategies.dal import (
    DiscriminativeAL,
    class_weights,
    discriminator,
    p_unlabelled,
    sub_batch_quotas,
    top_unlabelled,
    train_discriminator,
)

# Small, fast training for tiny tables; the stop rule and everything else stay at their defaults.
FAST = StrategySettings(dal_lr=1e-2, dal_batch_size=16, dal_max_epochs=200)


def _blobs(n_labelled: int, n_unlabelled: int, dim: int, shift: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Labelled rows around 0, unlabelled rows around `shift` on the first axis."""
    gen = torch.Generator().manual_seed(seed)
    labelled = torch.randn(n_labelled, dim, generator=gen)
    unlabelled = torch.randn(n_unlabelled, dim, generator=gen)
    unlabelled[:, 0] += shift
    return labelled, unlabelled


def _evidence(labelled: torch.Tensor, pool: torch.Tensor, pool_labels: list[int], ids: list[str] | None = None) -> Evidence:
    ids = ids if ids is not None else [f"c{i:02d}" for i in range(pool.shape[0])]
    return Evidence(
        candidates=ids,
        candidate_labels=np.asarray(pool_labels, dtype=np.int64),
        labelled=[f"l{i:02d}" for i in range(labelled.shape[0])],
        labelled_labels=np.zeros(labelled.shape[0], dtype=np.int64),
        candidate_features=pool,
        labelled_features=labelled,
    )


def test_top_unlabelled_worked_example_from_the_spec() -> None:
    assert top_unlabelled(np.array([0.9, 0.6, 0.95, 0.2, 0.7]), 2) == [2, 0]
    assert top_unlabelled(np.array([0.5, 0.7, 0.5, 0.5]), 3) == [1, 0, 2]  # ties: first index
    assert top_unlabelled(np.array([0.5, 0.7]), 0) == []
    many = np.tile([0.5, 0.7], 100)  # long enough for an unstable sort to reorder ties
    assert top_unlabelled(many, 150) == list(range(1, 200, 2)) + list(range(0, 100, 2))
    with pytest.raises(ValueError, match="k=3"):
        top_unlabelled(np.array([0.5, 0.7]), 3)
    with pytest.raises(ValueError, match="NaN"):
        top_unlabelled(np.array([0.5, np.nan]), 1)


def test_class_weights_are_balanced() -> None:
    w = class_weights(2, 8)
    assert w.dtype == torch.float32
    assert w.tolist() == pytest.approx([2.5, 0.625])
    assert 2 * w[0].item() == pytest.approx(8 * w[1].item())  # both sides weigh n/2, not 1:1
    assert class_weights(5, 5).tolist() == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError):
        class_weights(0, 8)


def test_sub_batch_quotas() -> None:
    assert sub_batch_quotas(7, 3) == [3, 2, 2]
    assert sub_batch_quotas(3, 10) == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert sum(sub_batch_quotas(23, 10)) == 23


def test_discriminator_shape() -> None:
    small = discriminator(8, 256)
    assert [m.out_features for m in small if isinstance(m, nn.Linear)] == [20, 20, 20, 2]
    wide = discriminator(64, 32)
    assert [m.out_features for m in wide if isinstance(m, nn.Linear)] == [32, 32, 32, 2]
    assert sum(isinstance(m, nn.ReLU) for m in wide) == 3
    assert all(isinstance(m, nn.Linear | nn.ReLU) for m in wide)  # no dropout, no normalisation
    assert wide(torch.zeros(5, 64)).shape == (5, 2)
    # Initial weights follow the generator, not the global RNG.
    a = discriminator(64, 32, torch.Generator().manual_seed(1))
    torch.manual_seed(123)
    b = discriminator(64, 32, torch.Generator().manual_seed(1))
    c = discriminator(64, 32, torch.Generator().manual_seed(2))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[0].weight, c[0].weight)


def test_discriminator_learns_separable_features() -> None:
    labelled, unlabelled = _blobs(40, 40, 8, 6.0, seed=0)
    x = torch.cat([labelled, unlabelled])
    y = torch.cat([torch.zeros(40, dtype=torch.long), torch.ones(40, dtype=torch.long)])
    untrained, acc0, epochs0 = train_discriminator(
        labelled, unlabelled, replace(FAST, dal_max_epochs=0), torch.Generator().manual_seed(5))
    assert epochs0 == 0
    assert (untrained(x).argmax(dim=1) == y).float().mean().item() == pytest.approx(acc0)
    assert 0.3 <= acc0 <= 0.7 < FAST.dal_stop_accuracy  # near chance before training
    p0 = p_unlabelled(untrained, x)
    assert p0[40:].mean() - p0[:40].mean() < 0.2

    model, acc, epochs = train_discriminator(labelled, unlabelled, FAST, torch.Generator().manual_seed(5))
    assert not model.training
    assert acc > FAST.dal_stop_accuracy
    assert 1 <= epochs < FAST.dal_max_epochs  # the stop rule fired
    p = p_unlabelled(model, x)
    assert ((p > 0.5) == y.numpy()).mean() == pytest.approx(acc)
    # Same generator seed on the CPU: the same model.
    again, acc2, epochs2 = train_discriminator(labelled, unlabelled, FAST, torch.Generator().manual_seed(5))
    assert (acc2, epochs2) == (acc, epochs)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))


def test_training_runs_to_max_epochs_when_the_sets_cannot_be_told_apart() -> None:
    same = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    _, acc, epochs = train_discriminator(same, same.clone(), replace(FAST, dal_max_epochs=7), torch.Generator())
    assert epochs == 7 and acc <= 0.5 + 1e-9


def test_only_the_discriminator_is_optimised(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = torch.Generator().manual_seed(0)
    encoder = nn.Linear(3, 8)  # trainable on purpose: the discriminator must leave it alone
    before = [p.detach().clone() for p in encoder.parameters()]
    raw_l, raw_u = torch.randn(10, 3, generator=gen), torch.randn(30, 3, generator=gen) + 4.0
    labelled, unlabelled = encoder(raw_l), encoder(raw_u)  # still attached to the encoder's graph

    handed: list[list[torch.Tensor]] = []
    real_adam = torch.optim.Adam

    def recording_adam(params: Iterable[torch.Tensor], **kwargs: object) -> torch.optim.Optimizer:
        listed = list(params)
        handed.append(listed)
        return real_adam(listed, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", recording_adam)
    model, acc, _ = train_discriminator(labelled, unlabelled, FAST, torch.Generator().manual_seed(1))
    assert len(handed) == 1
    assert {id(p) for p in handed[0]} == {id(p) for p in model.parameters()}
    assert all(p.grad is None for p in encoder.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, encoder.parameters()))
    assert acc > FAST.dal_stop_accuracy


def _two_class_pool(seed: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    gen = torch.Generator().manual_seed(seed)
    labelled = torch.randn(4, 6, generator=gen)
    pool = torch.randn(24, 6, generator=gen)
    pool[::3] += 3.0  # a third of the pool lies away from L
    return labelled, pool, [i % 2 for i in range(24)]


def test_same_rng_state_gives_the_same_selection() -> None:
    labelled, pool, labels = _two_class_pool(0)
    strategy = DiscriminativeAL(replace(FAST, dal_sub_batches=2, dal_pool_ratio=2))
    first = strategy.select(_evidence(labelled, pool, labels), 3, np.random.default_rng(7))
    second = strategy.select(_evidence(labelled, pool, labels), 3, np.random.default_rng(7))
    assert first.selected == second.selected and first.scores == second.scores
    other = strategy.select(_evidence(labelled, pool, labels), 3, np.random.default_rng(8))
    assert other.scores != first.scores  # the rng drives the subsample and the initial weights


def test_each_sub_batch_scores_a_random_subsample_of_the_pool() -> None:
    labelled, pool, labels = _two_class_pool(4)
    strategy = DiscriminativeAL(replace(FAST, dal_sub_batches=1, dal_pool_ratio=2))
    scored = []
    for seed in range(4):
        sel = strategy.select(_evidence(labelled, pool, labels), 1, np.random.default_rng(seed))
        assert len(sel.scores) == 8  # |U'| = min(2 * |L|, |U|) = 8; no shortfall to fill here
        assert set(sel.selected) <= set(sel.scores)
        scored.append(frozenset(sel.scores))
    assert len(set(scored)) > 1  # drawn from the rng, not the first ids


def test_collection_order_does_not_matter() -> None:
    labelled, pool, labels = _two_class_pool(1)
    ids = [f"c{i:02d}" for i in range(24)]
    strategy = DiscriminativeAL(replace(FAST, dal_sub_batches=2, dal_pool_ratio=2))
    straight = strategy.select(_evidence(labelled, pool, labels, ids), 3, np.random.default_rng(0))
    perm = np.random.default_rng(1).permutation(24)
    shuffled = strategy.select(
        _evidence(labelled, pool[torch.as_tensor(perm)], [labels[i] for i in perm], [ids[i] for i in perm]),
        3, np.random.default_rng(0))
    assert shuffled.selected == straight.selected
    assert shuffled.scores == pytest.approx(straight.scores)


def test_class_balanced_pick_over_sub_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    labelled, pool, labels = _two_class_pool(2)
    calls: list[tuple[int, int]] = []
    real_train = dal.train_discriminator

    def counting_train(
        lab: torch.Tensor, unl: torch.Tensor, settings: StrategySettings, generator: torch.Generator
    ) -> tuple[nn.Module, float, int]:
        calls.append((lab.shape[0], unl.shape[0]))
        return real_train(lab, unl, settings, generator)

    monkeypatch.setattr(dal, "train_discriminator", counting_train)
    ev = _evidence(labelled, pool, labels)
    sel = DiscriminativeAL(replace(FAST, dal_sub_batches=2)).select(ev, 3, np.random.default_rng(0))
    assert len(sel.selected) == 6 and len(set(sel.selected)) == 6
    assert not set(sel.selected) & set(ev.labelled)
    by_id = dict(zip(ev.candidates, labels))
    assert sorted(by_id[i] for i in sel.selected) == [0, 0, 0, 1, 1, 1]
    # Sub-batch quotas (2, 2) then (1, 1); the second sub-batch sees the 4 first picks as labelled.
    assert [by_id[i] for i in sel.selected] == [0, 0, 1, 1, 0, 1]
    assert calls == [(4, 24), (8, 20)]
    assert set(sel.scores) == set(ev.candidates)

    # Quotas of 0 are skipped: 3 per class over 10 sub-batches trains 3 discriminators.
    calls.clear()
    sel = DiscriminativeAL(replace(FAST, dal_sub_batches=10)).select(ev, 3, np.random.default_rng(0))
    assert len(calls) == 3 and len(set(sel.selected)) == 6
    # A class smaller than per_class gives all it has.
    sel = DiscriminativeAL(FAST).select(_evidence(labelled, pool[:14], [0] * 12 + [1] * 2), 4, np.random.default_rng(0))
    assert len(sel.selected) == 6 and len(set(sel.selected)) == 6 and {"c12", "c13"} <= set(sel.selected)


def test_shortfall_is_filled_from_the_whole_pool() -> None:
    # |L| = 1 and pool ratio 1: each sub-batch scores one candidate, so most picks come from the fill.
    labelled, pool, labels = _two_class_pool(3)
    labels = [0] * 20 + [1] * 4
    strategy = DiscriminativeAL(replace(FAST, dal_sub_batches=2, dal_pool_ratio=1))
    ev = _evidence(labelled[:1], pool, labels)
    sel = strategy.select(ev, 3, np.random.default_rng(0))
    by_id = dict(zip(ev.candidates, labels))
    assert sorted(by_id[i] for i in sel.selected) == [0, 0, 0, 1, 1, 1]
    assert len(set(sel.selected)) == 6
    # The fill scored every remaining candidate of the short classes.
    assert len(sel.scores) > 2


def test_golden_far_candidates_are_chosen() -> None:
    # L sits near the origin; the near candidates are copies of L rows (no discriminator can tell
    # them from L), and each class has two candidates far from L.
    labelled = torch.tensor([[0.0, 0.0], [0.2, 0.1], [-0.1, 0.2], [0.1, -0.2]])
    pool = torch.stack([
        labelled[0], torch.tensor([5.0, 5.0]), labelled[1], labelled[2], torch.tensor([4.0, -4.0]), labelled[3],
        labelled[3], labelled[2], torch.tensor([-5.0, 4.0]), labelled[1], torch.tensor([-4.5, -4.5]), labelled[0],
    ])
    labels = [0] * 6 + [1] * 6  # far: c01, c04 (class 0), c08, c10 (class 1)
    strategy = DiscriminativeAL(replace(FAST, dal_sub_batches=1))
    sel = strategy.select(_evidence(labelled, pool, labels), 2, np.random.default_rng(0))
    # Class 0 first, then class 1; the far scores saturate at ~1, so their order within a class is open.
    assert sorted(sel.selected[:2]) == ["c01", "c04"] and sorted(sel.selected[2:]) == ["c08", "c10"]
    far = {"c01", "c04", "c08", "c10"}
    assert min(sel.scores[i] for i in far) > 0.99
    # A copy of an L row (weight 16/8 = 2) has two unlabelled copies (16/24 each): the weighted
    # optimum is P = (4/3) / (4/3 + 2) = 0.4. Unweighted (1:1) training would give 2/3.
    near = [v for i, v in sel.scores.items() if i not in far]
    assert len(near) == 8 and near == pytest.approx([0.4] * 8, abs=0.01)


def test_sub_batches_avoid_duplicates() -> None:
    # c00 and c01 are the same far point, c02 lies between them and L. In one shot the two
    # copies score highest; with two sub-batches the first copy joins L, which makes the other
    # look labelled, and c02 is taken instead.
    labelled = torch.tensor([[0.0, 0.0], [0.3, 0.1], [-0.1, 0.3], [0.2, -0.3], [-0.3, -0.2]])
    pool = torch.tensor([[6.0, 6.0], [6.0, 6.0], [3.0, 3.0]])
    ev = _evidence(labelled, pool, [0, 0, 0])
    for seed in range(3):
        one = DiscriminativeAL(replace(FAST, dal_sub_batches=1)).select(ev, 2, np.random.default_rng(seed))
        two = DiscriminativeAL(replace(FAST, dal_sub_batches=2)).select(ev, 2, np.random.default_rng(seed))
        assert one.selected == ["c00", "c01"]
        assert two.selected == ["c00", "c02"]
        assert two.scores["c01"] < two.scores["c02"]


def test_needs_and_empty_labelled_set() -> None:
    strategy = DiscriminativeAL(StrategySettings())
    assert strategy.name == "DAL" and strategy.required() == frozenset({FEATURES})
    with pytest.raises(StrategyError, match="p_init_samples") as err:
        strategy.check(np.zeros(0, dtype=np.int64), 512)
    assert "\n" not in str(err.value)
    strategy.check(np.zeros(3, dtype=np.int64), 512)
    with pytest.raises(StrategyError, match="p_init_samples"):
        strategy.select(_evidence(torch.zeros(0, 4), torch.zeros(3, 4), [0, 0, 1]), 1, np.random.default_rng(0))
    with pytest.raises(StrategyError, match="dal_sub_batches") as err:
        DiscriminativeAL(StrategySettings(dal_sub_batches=0)).check(np.zeros(3, dtype=np.int64), 512)
    assert "\n" not in str(err.value)


def test_empty_pool_and_zero_quota() -> None:
    strategy = DiscriminativeAL(FAST)
    labelled = torch.zeros(2, 4)
    sel = strategy.select(_evidence(labelled, torch.zeros(0, 4), []), 3, np.random.default_rng(0))
    assert sel.selected == [] and sel.scores == {}
    sel = strategy.select(_evidence(labelled, torch.ones(3, 4), [0, 1, 1]), 0, np.random.default_rng(0))
    assert sel.selected == [] and sel.scores == {}
