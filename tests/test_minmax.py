"""Min-max entropy WSL: the pieces by hand (numbers written here), the erasing loop, the gradient paths,
and per-sample augmentation."""

from __future__ import annotations

import math

import pytest
import torch

import constants as C
from engine.evaluate import Inference
from engine.resident import TrainingItems
from engine.train import Batch, TrainSettings, augmented_batch
from losses.minmax import (
    accumulate_mask,
    erase,
    erasing_trust,
    foreground_map,
    min_max_normalise,
    soft_foreground,
    uniform_cross_entropy,
)
from models.minmax import Localised, MinMaxEntropyModel, MinMaxSettings
from tasks.joint.minmax import MinMaxObjective

CPU = Inference(torch.device("cpu"))


def test_foreground_map_weights_the_class_maps_by_the_posterior() -> None:
    scores = torch.tensor([[0.0, math.log(3.0)]])             # softmax: 0.25, 0.75
    maps = torch.stack([torch.full((2, 2), 4.0), torch.full((2, 2), 8.0)]).unsqueeze(0)
    assert torch.allclose(foreground_map(scores, maps), torch.full((1, 1, 2, 2), 7.0))


def test_min_max_normalisation_over_the_batch_or_per_image() -> None:
    m = torch.tensor([[[[0.0, 2.0], [4.0, 6.0]]], [[[1.0, 1.0], [1.0, 3.0]]]])
    batch = min_max_normalise(m, per_image=False)
    assert torch.allclose(batch[1, 0], torch.tensor([[1 / 6, 1 / 6], [1 / 6, 0.5]]))
    per_image = min_max_normalise(m, per_image=True)
    assert torch.allclose(per_image[0, 0], torch.tensor([[0.0, 1 / 3], [2 / 3, 1.0]]))
    assert torch.allclose(per_image[1, 0], torch.tensor([[0.0, 0.0], [0.0, 1.0]]))
    assert torch.equal(min_max_normalise(torch.ones(1, 1, 2, 2), per_image=True), torch.zeros(1, 1, 2, 2))


def test_soft_foreground_is_one_half_at_sigma() -> None:
    out = soft_foreground(torch.tensor([0.5, 1.0, 0.0]), w=8.0, sigma=0.5)
    assert torch.allclose(out, torch.tensor([0.5, 0.9820138, 0.0179862]), atol=1e-6)


def test_uniform_cross_entropy_is_log_k_at_the_uniform_and_larger_elsewhere() -> None:
    assert uniform_cross_entropy(torch.zeros(3, 4)).item() == pytest.approx(math.log(4))
    # p = (0.25, 0.75): -(log 0.25 + log 0.75) / 2
    assert uniform_cross_entropy(torch.tensor([[0.0, math.log(3.0)]])).item() == pytest.approx(0.8369882, abs=1e-6)


def test_trust_of_the_first_and_a_later_step() -> None:
    ones = torch.ones(3)
    tau, history = erasing_trust(0, torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0.5, 0.2, 0.9]),
                                 torch.tensor([0.5, 0.2, 0.9]), torch.tensor([0.8, 0.6, 0.7]), ones, 10.0)
    assert torch.allclose(tau, torch.tensor([0.8, 0.0, 0.7]))
    assert torch.equal(history, torch.tensor([1.0, 0.0, 1.0]))
    # Step 2: sample 1 stays out (its history), sample 2's loss rose above its first one.
    tau, history = erasing_trust(2, ones, torch.tensor([0.4, 0.1, 1.0]), torch.tensor([0.5, 0.2, 0.9]),
                                 torch.tensor([0.9, 0.9, 0.5]), history, 10.0)
    assert torch.allclose(tau, torch.tensor([0.9 * math.exp(-0.2), 0.0, 0.0]))
    assert torch.equal(history, torch.tensor([1.0, 0.0, 1.0]))


def test_mask_accumulates_by_maximum_and_erasing_skips_untrusted_samples() -> None:
    accumulated = torch.tensor([0.5, 0.2]).view(1, 1, 1, 2).repeat(2, 1, 1, 1)
    soft = torch.tensor([0.8, 0.9]).view(1, 1, 1, 2).repeat(2, 1, 1, 1)
    new = accumulate_mask(accumulated, torch.tensor([0.5, 0.0]), soft)
    assert torch.allclose(new[0, 0, 0], torch.tensor([0.5, 0.45]))
    assert torch.allclose(new[1, 0, 0], torch.tensor([0.5, 0.2]))
    x = torch.full((2, 1, 1, 2), 2.0)
    erased = erase(x, new, torch.tensor([0.5, 0.0]))
    assert torch.allclose(erased[0, 0, 0], torch.tensor([1.0, 1.1]))
    assert torch.equal(erased[1], x[1])


class ScriptedLocaliser(torch.nn.Module):
    """A localiser whose scores and maps per call are written in the test: the erasing loop's bookkeeping
    alone is under test. Records the input of every call."""

    def __init__(self, scores: list[list[list[float]]], softs: list[list[float]], settings: MinMaxSettings):
        super().__init__()
        self.logit_scale = torch.nn.Parameter(torch.ones(()))
        self.scores, self.softs, self.settings, self.inputs = scores, softs, settings, []

    def localise(self, x: torch.Tensor, per_image: bool) -> Localised:
        step = len(self.inputs)
        self.inputs.append(x.detach().clone())
        scores = self.logit_scale * torch.tensor(self.scores[step])
        soft = torch.tensor(self.softs[step]).view(-1, 1, 1, 1).expand(-1, 1, *x.shape[-2:])
        return Localised(scores, soft)

    def classify_masked(self, x_masked: torch.Tensor) -> torch.Tensor:
        return self.logit_scale * x_masked.mean(dim=(1, 2, 3)).unsqueeze(1).repeat(1, 2)


def test_erasing_loop_compounds_and_stops_when_every_sample_is_misclassified() -> None:
    labels = torch.tensor([0, 1])
    scores = [[[math.log(3.0), 0.0], [0.0, math.log(3.0)]],     # both right, confidence 0.75
              [[math.log(3.0), 0.0], [math.log(3.0), 0.0]],     # sample 1 now wrong: out for good
              [[0.0, math.log(3.0)], [0.0, math.log(3.0)]],     # sample 0 wrong: nobody left
              [[0.0, 0.0], [0.0, 0.0]]]
    softs = [[0.4, 0.8], [0.6, 0.9], [0.9, 0.9], [1.0, 1.0]]
    model = ScriptedLocaliser(scores, softs, MinMaxSettings(erase_steps=4, sigma_erase=10.0))
    x = torch.full((2, 1, 2, 2), 2.0)
    accumulated, _ = MinMaxObjective(CPU)._erase(model, x, labels, steps=4)
    assert len(model.inputs) == 3                       # the loop ends once the history is all zero
    # Step 0: tau = (0.75, 0.75), A = (0.3, 0.6); both erased: x (1 - A).
    assert torch.allclose(model.inputs[1][:, 0, 0, 0], torch.tensor([2 * 0.7, 2 * 0.4]))
    # Step 1: tau_0 = exp(-0.1) * 0.75 (loss equal to the first), sample 1 misclassified: tau_1 = 0.
    a0 = max(0.3, math.exp(-0.1) * 0.75 * 0.6)
    assert torch.allclose(accumulated[:, 0, 0, 0], torch.tensor([a0, 0.6]))
    assert torch.allclose(model.inputs[2][:, 0, 0, 0], torch.tensor([2 * 0.7 * (1 - a0), 2 * 0.4]))


def test_a_sample_misclassified_at_the_first_step_gets_an_empty_mask() -> None:
    model = ScriptedLocaliser([[[0.0, 1.0], [0.0, 1.0]]] * 4, [[0.9, 0.9]] * 4, MinMaxSettings(erase_steps=4))
    accumulated, _ = MinMaxObjective(CPU)._erase(model, torch.ones(2, 1, 2, 2), torch.tensor([0, 1]), steps=4)
    assert torch.equal(accumulated[0], torch.zeros(1, 2, 2))
    assert bool((accumulated[1] > 0).all())


def tiny_minmax(detach: bool) -> MinMaxEntropyModel:
    torch.manual_seed(0)
    return MinMaxEntropyModel(2, MinMaxSettings(erase_steps=2, erase_from_epoch=0, detach_map=detach),
                              modalities=2, kmax=0.5, kmin=0.0, alpha=0.0, dropout=0.0, base_width=4, leak=4,
                              full_res_width=4)


@pytest.mark.parametrize("detach", [True, False])
def test_the_entropy_terms_reach_the_localiser_only_through_an_attached_map(detach: bool) -> None:
    model = tiny_minmax(detach).train()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    step = MinMaxObjective(CPU)(model, x, Batch(torch.tensor([0, 1]), None, torch.zeros(2)), epoch=0)
    after_localiser = model.classifier.conv.weight.grad.clone()
    assert model.masked_classifier.conv.weight.grad is None   # C is not touched by the localiser's loss
    step.backward.backward()
    assert model.masked_classifier.conv.weight.grad.abs().sum() > 0
    changed = not torch.equal(model.classifier.conv.weight.grad, after_localiser)
    assert changed is not detach


def test_each_sample_keeps_its_crop_whatever_batch_it_lands_in() -> None:
    gen = torch.Generator().manual_seed(3)
    images = [torch.arange(3 * 40 * 40, dtype=torch.int64).reshape(3, 40, 40).remainder(251).to(torch.uint8)
              for _ in range(4)]
    items = TrainingItems(images=images, masks=[None] * 4, labels=torch.zeros(4, dtype=torch.int64),
                          tags=torch.full((4,), C.U))
    s = TrainSettings(epochs=1, batch_size=2, lr=0.1, momentum=0.0, nesterov=False, dampening=0.0, weight_decay=0.0,
                      scheduler="none", step_size=1, gamma=1.0, min_lr=0.0, crop=24, hflip=True, vflip=True,
                      segmentation=False, per_sample_augmentation=True)
    together, _ = augmented_batch(items, [0, 3], s, epoch=5, generator=gen)
    alone, _ = augmented_batch(items, [3], s, epoch=5, generator=gen)
    assert torch.equal(together[1], alone[0])
    other_epoch, _ = augmented_batch(items, [3], s, epoch=6, generator=gen)
    assert not torch.equal(other_epoch[0], alone[0])
