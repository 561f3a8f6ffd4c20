"""Hybrid network: shapes, the encode/classify/segment split, freezing, MC dropout, weight loading."""

import copy
import math
import urllib.error

import pytest
import torch
from torchvision.models import resnet18

from models import (
    MIN_INPUT_SIZE,
    HybridModel,
    PretrainedWeightsError,
    ResNet18Backbone,
    WeightsFileError,
    WildcatHead,
    class_maps_at,
    load_matching_state,
)
from models.backbone import imagenet_cache_path

NUM_CLASSES = 3
TINY = {"base_width": 4, "leak": 8}


@pytest.fixture(scope="module")
def base_model() -> HybridModel:
    torch.manual_seed(0)
    return HybridModel(NUM_CLASSES, **TINY).eval()


@pytest.fixture
def model(base_model: HybridModel) -> HybridModel:
    return copy.deepcopy(base_model)


@pytest.fixture
def hub_dir(tmp_path):
    """An empty torch hub folder for the test, the previous one restored afterwards."""
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(previous)


def _mc_model(p: float) -> HybridModel:
    torch.manual_seed(0)
    return HybridModel(NUM_CLASSES, backbone_dropout=p, **TINY).eval()


@pytest.mark.parametrize(
    "size", [(96, 96), (96, 128), (113, 100), (MIN_INPUT_SIZE, MIN_INPUT_SIZE)]
)
def test_output_shapes(model: HybridModel, size: tuple[int, int]) -> None:
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    grid = tuple(math.ceil(s / 32) for s in size)
    assert out.scores.shape == (2, NUM_CLASSES)
    assert out.masks.shape == (2, 1, *size)
    assert out.maps.shape == (2, NUM_CLASSES, *grid)
    assert class_maps_at(out.maps, size).shape == (2, NUM_CLASSES, *size)


def test_worked_example_sizes(model: HybridModel) -> None:
    sizes = {}
    for group in ("bridges", "downs"):
        for i, module in enumerate(getattr(model.seg_head, group)):
            module.register_forward_hook(
                lambda _m, _i, out, key=(group, i): sizes.__setitem__(key, out.shape[-1])
            )
    with torch.no_grad():
        out = model(torch.randn(1, 3, 374, 374))
    assert [sizes["bridges", i] for i in range(5)] == [185, 92, 45, 22, 10]
    assert [sizes["downs", i] for i in range(5)] == [47, 23, 12, 6, 3]
    assert out.masks.shape == (1, 1, 374, 374)
    assert out.maps.shape[-2:] == (12, 12)


def test_too_small_input_names_the_minimum(model: HybridModel) -> None:
    with pytest.raises(ValueError, match=f">= {MIN_INPUT_SIZE} px"):
        model(torch.randn(1, 3, MIN_INPUT_SIZE - 1, 96))


def test_head_widths_match_the_original_parameter_count() -> None:
    head = HybridModel(NUM_CLASSES).seg_head
    assert sum(p.numel() for p in head.parameters()) == 15_719_809


def test_freeze_trains_only_the_segmentation_head(model: HybridModel) -> None:
    model.freeze_classifier()
    model.train()
    assert model.frozen
    frozen = [*model.backbone.modules(), *model.classifier.modules()]
    assert not any(m.training for m in frozen)
    assert all(m.training for m in model.seg_head.modules())
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert not any(p.requires_grad for p in model.classifier.parameters())
    assert {id(p) for p in model.trainable_parameters()} == {
        id(p) for p in model.seg_head.parameters()
    }
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    out = model(torch.randn(2, 3, 96, 96))
    (out.masks.mean() + out.scores.sum()).backward()
    opt.step()
    after = model.state_dict()
    for name, value in after.items():
        changed = not torch.equal(value, before[name])
        if name.startswith(("backbone.", "classifier.")):
            assert not changed, name  # parameters and BatchNorm running statistics
        elif name.endswith("weight"):
            assert changed, name


def test_min_term_changes_the_score() -> None:
    maps = torch.arange(20.0).reshape(1, 1, 4, 5)
    with_min = WildcatHead(1, 1, kmax=0.1, kmin=0.2, alpha=0.6, dropout=0.0).pool(maps)
    without = WildcatHead(1, 1, kmax=0.1, kmin=0.2, alpha=0.0, dropout=0.0).pool(maps)
    assert without.item() == pytest.approx((19 + 18) / 2)
    assert with_min.item() == pytest.approx((19 + 18) / 2 + 0.6 * (0 + 1 + 2 + 3) / 4)
    single = torch.full((1, 1, 1, 1), 2.0)
    tiny = WildcatHead(1, 1, kmax=0.1, kmin=0.1, alpha=0.6, dropout=0.0).pool(single)
    assert tiny.item() == pytest.approx(2.0 + 0.6 * 2.0)


def test_wildcat_modalities_are_averaged() -> None:
    head = WildcatHead(4, 2, modalities=3, dropout=0.0)
    x = torch.randn(1, 4, 3, 3)
    _, maps = head(x)
    assert torch.allclose(maps, head.conv(x).reshape(1, 2, 3, 3, 3).mean(dim=2))


def test_encode_classify_segment_equals_forward(model: HybridModel) -> None:
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        out = model(x)
        enc = model.encode(x)
        scores, maps = model.classify(enc)
        masks = model.segment(enc)
    assert torch.equal(out.scores, scores)
    assert torch.equal(out.maps, maps)
    assert torch.equal(out.masks, masks)


def test_classification_only_encoding(model: HybridModel) -> None:
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        enc = model.encode(x, with_full_res=False)
        scores, maps = model.classify(enc)
        out = model(x)
    assert enc.full_res is None and enc.repeat(2).full_res is None
    assert torch.equal(scores, out.scores)
    assert torch.equal(model.class_maps_at(maps, (96, 96)), class_maps_at(out.maps, (96, 96)))
    with pytest.raises(ValueError, match="with_full_res=True"):
        model.segment(enc)


def test_encoded_repeat_orders_copies_per_sample(model: HybridModel) -> None:
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        enc = model.encode(x)
        rep = enc.repeat(3)
        masks = model.segment(enc)
        rep_masks = model.segment(rep)
    assert rep.batch_size == 6
    assert enc.repeat(1) is enc
    for original, repeated in zip((*enc.stages, enc.full_res), (*rep.stages, rep.full_res)):
        assert torch.equal(repeated[3:6], original[1:2].expand(3, *original.shape[1:]))
    assert torch.allclose(rep_masks[0::3], masks, atol=1e-5)
    assert torch.allclose(rep_masks[2::3], masks, atol=1e-5)


@pytest.mark.parametrize("hw", [(96, 96), (101, 130)])
def test_sampling_encoding_gives_the_same_masks(model: HybridModel, hw: tuple[int, int]) -> None:
    # The split fusion conv must equal the concatenated one, also on odd sizes and repeated rows.
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        masks = model.segment(model.encode(x))
        enc = model.encode(x, sampling=True)
        rep = enc.repeat(3)
        sampled, rep_masks = model.segment(enc), model.segment(rep)
    assert enc.full_res.fusion.shape[-2:] == hw
    assert rep.full_res.fusion.shape[0] == 2  # the fusion term is never repeated
    assert rep.full_res.down_input.shape[0] == 6
    assert torch.allclose(sampled, masks, atol=1e-5)
    assert torch.allclose(rep_masks[3:6], masks[1:2].expand(3, -1, -1, -1), atol=1e-5)


def test_sampling_passes_draw_different_dropout_masks_per_row() -> None:
    mc = _mc_model(0.5)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad(), mc.mc_dropout():
        rep = mc.segment(mc.encode(x, sampling=True).repeat(2))
    assert not torch.equal(rep[0], rep[1])


def test_no_backbone_dropout_gives_identical_mc_passes() -> None:
    mc = _mc_model(0.0)
    with torch.no_grad():
        enc = mc.encode(torch.randn(1, 3, 96, 96))
        with mc.mc_dropout():
            first, second = mc.segment(enc), mc.segment(enc)
    assert torch.equal(first, second)


def test_mc_dropout_is_stochastic_only_in_the_segmentation_head() -> None:
    mc = _mc_model(0.5)
    mc.train()
    stats = {k: v.clone() for k, v in mc.state_dict().items() if "running" in k}
    with torch.no_grad(), mc.mc_dropout():
        assert [m for m in mc.modules() if m.training] == [mc.seg_head.dropout]
        enc = mc.encode(torch.randn(2, 3, 96, 96))
        first, second = mc.segment(enc), mc.segment(enc)
        scores_a, _ = mc.classify(enc)
        scores_b, _ = mc.classify(enc)
    assert not torch.equal(first, second)
    assert torch.equal(scores_a, scores_b)
    assert all(m.training for m in mc.modules())  # modes restored
    for name, value in stats.items():
        assert torch.equal(mc.state_dict()[name], value), name
    mc.eval()
    with torch.no_grad():
        assert torch.equal(mc.segment(enc), mc.segment(enc))


def test_channels_last_and_bf16_autocast(model: HybridModel) -> None:
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 96, 96).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        rep = model.encode(x).repeat(2)
    assert out.masks.shape == (2, 1, 96, 96)
    assert out.scores.dtype == torch.bfloat16
    assert rep.full_res.is_contiguous(memory_format=torch.channels_last)
    assert torch.isfinite(out.masks.float()).all()


def test_load_matching_state_skips_shape_mismatches(model: HybridModel) -> None:
    torch.manual_seed(1)
    other = HybridModel(NUM_CLASSES + 1, **TINY)
    loaded = load_matching_state(other, model.state_dict())
    skipped = set(model.state_dict()) - set(loaded)
    assert skipped == {"classifier.conv.weight", "classifier.conv.bias"}
    own = other.state_dict()
    assert all(torch.equal(own[k], model.state_dict()[k]) for k in loaded)
    assert own["classifier.conv.weight"].shape[0] == (NUM_CLASSES + 1) * 5


def test_weights_path_loads_a_torchvision_state_dict(tmp_path) -> None:
    torch.manual_seed(2)
    reference = resnet18(weights=None).state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(reference, path)
    backbone = ResNet18Backbone(weights_path=path)
    for name, value in backbone.state_dict().items():
        assert torch.equal(value, reference[name]), name


def test_weights_path_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="--pre_trained false"):
        ResNet18Backbone(weights_path=tmp_path / "absent.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsFileError, match="cannot read"):
        ResNet18Backbone(weights_path=garbage)
    partial = tmp_path / "partial.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, partial)
    with pytest.raises(WeightsFileError, match="missing keys"):
        ResNet18Backbone(weights_path=partial)


def test_missing_imagenet_weights_offline(hub_dir, monkeypatch) -> None:
    def offline(*_args, **_kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(PretrainedWeightsError) as info:
        ResNet18Backbone(pretrained=True)
    message = str(info.value)
    assert "\n" not in message
    assert str(hub_dir / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert "--imagenet_weights_path FILE" in message and "--pre_trained false" in message


def test_cached_imagenet_weights_load_without_network(hub_dir, monkeypatch) -> None:
    def forbidden(*_args, **_kwargs):
        raise AssertionError("the cached file must be used")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", forbidden)
    torch.manual_seed(3)
    reference = resnet18(weights=None).state_dict()
    cached = imagenet_cache_path()
    cached.parent.mkdir(parents=True)
    torch.save(reference, cached)
    backbone = ResNet18Backbone(pretrained=True)
    assert torch.equal(backbone.conv1.weight, reference["conv1.weight"])
