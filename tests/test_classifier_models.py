"""torchvision classifiers wrapped for active learning: names, local ImageNet weights, shapes, features,
small inputs, MC dropout and LL4AL's loss-prediction module."""

import copy

import pytest
import torch
import torchvision
from torch import nn

from models.classifier import (
    Classifier,
    ClassifierError,
    build_classifier,
    dropout_train,
    has_dropout,
    model_names,
    weights_file,
)
from parseit import ConfigError

SMALL_SIZES = [(8, 8), (28, 28), (32, 32)]


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    """Any attempt to download weights fails the test instead of reaching the network."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", refuse)


@pytest.fixture(scope="module")
def built() -> dict[str, Classifier]:
    torch.manual_seed(0)
    return {name: build_classifier(name, 10, pretrained=False).eval()
            for name in ("resnet18", "resnet34", "squeezenet1_1")}


def _message(exc_info: pytest.ExceptionInfo) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def _save_imagenet_like(name: str, folder, **kwargs) -> dict[str, torch.Tensor]:
    """A torchvision state_dict (1000 classes) under the file name of `name`'s DEFAULT weights."""
    torch.manual_seed(1)
    state = torchvision.models.get_model(name, weights=None, **kwargs).state_dict()
    path, _ = weights_file(name, folder)
    torch.save(state, path)
    return state


def test_model_names_are_torchvision_classifiers() -> None:
    names = model_names()
    assert {"resnet18", "resnet34", "squeezenet1_1", "vit_b_16"} <= set(names)
    assert "fasterrcnn_resnet50_fpn" not in names and "raft_large" not in names
    assert names == sorted(names)


def test_classifier_error_is_a_config_error() -> None:
    assert issubclass(ClassifierError, ConfigError)


def test_unknown_name_is_refused_with_close_matches() -> None:
    with pytest.raises(ClassifierError) as exc_info:
        build_classifier("resnet19", 10, pretrained=False)
    text = _message(exc_info)
    assert "'resnet19'" in text and "resnet18" in text and "torchvision.models.list_models()" in text


def test_name_is_case_insensitive() -> None:
    model = build_classifier("ResNet18", 3, pretrained=False)
    assert model.name == "resnet18" and model.num_classes == 3


@pytest.mark.parametrize("kwargs", [{"num_classes": 0}, {"loss_prediction_width": -1}, {"dropout": 1.0}])
def test_bad_settings_are_refused(kwargs) -> None:
    args = {"name": "resnet18", "num_classes": 10, "pretrained": False, **kwargs}
    with pytest.raises(ClassifierError) as exc_info:
        build_classifier(**args)
    _message(exc_info)


def test_pretrained_without_the_file_names_it(tmp_path) -> None:
    with pytest.raises(ClassifierError) as exc_info:
        build_classifier("resnet18", 10, pretrained=True, weights_dir=tmp_path)
    text = _message(exc_info)
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    assert text == (f"resnet18 ImageNet weights not found: put resnet18-f37072fd.pth (from {url}) in {tmp_path}, "
                    "or pass --pretrained false")


def test_pretrained_default_folder_is_the_hub_cache(tmp_path) -> None:
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        with pytest.raises(ClassifierError) as exc_info:
            build_classifier("squeezenet1_1", 10, pretrained=True)
        assert f"in {tmp_path / 'hub' / 'checkpoints'}," in _message(exc_info)
        (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
        state = _save_imagenet_like("squeezenet1_1", tmp_path / "hub" / "checkpoints")
        model = build_classifier("squeezenet1_1", 10, pretrained=True)
    finally:
        torch.hub.set_dir(previous)
    assert torch.equal(model.net.features[0].weight, state["features.0.weight"])


@pytest.mark.parametrize("name", ["resnet18", "squeezenet1_1"])
def test_pretrained_loads_the_local_file_and_replaces_the_head(tmp_path, name) -> None:
    state = _save_imagenet_like(name, tmp_path)
    model = build_classifier(name, 10, pretrained=True, weights_dir=tmp_path).eval()
    net_state = model.net.state_dict()
    first = "conv1.weight" if name == "resnet18" else "features.0.weight"
    assert torch.equal(net_state[first], state[first])
    head = model.head
    assert head is (model.net.fc if name == "resnet18" else model.net.classifier[1])
    assert (head.out_features if name == "resnet18" else head.out_channels) == 10
    assert model.num_classes == 10
    assert set(net_state) == set(state)
    changed = {k for k in state if not torch.equal(net_state[k], state[k])}
    assert changed == ({"fc.weight", "fc.bias"} if name == "resnet18" else {"classifier.1.weight", "classifier.1.bias"})
    assert model(torch.randn(2, 3, 32, 32)).logits.shape == (2, 10)
    # The weights enum is left as torchvision defines it.
    assert "get_state_dict" not in vars(type(torchvision.models.get_model_weights(name).DEFAULT))


def test_pretrained_googlenet_goes_through_torchvision_builder(tmp_path) -> None:
    """The builder's adaptations to the weights (auxiliary heads, input transform) happen as usual."""
    state = _save_imagenet_like("googlenet", tmp_path, aux_logits=True, init_weights=False)
    model = build_classifier("googlenet", 4, pretrained=True, weights_dir=tmp_path).train()
    assert model.net.transform_input and model.net.aux1 is None and model.net.aux2 is None
    assert torch.equal(model.net.conv1.conv.weight, state["conv1.conv.weight"])
    assert model(torch.randn(2, 3, 32, 32)).logits.shape == (2, 4)


def test_unusable_weights_file_is_one_line(tmp_path) -> None:
    path, _ = weights_file("resnet18", tmp_path)
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(ClassifierError) as exc_info:
        build_classifier("resnet18", 10, pretrained=True, weights_dir=tmp_path)
    assert "does not fit resnet18" in _message(exc_info)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ClassifierError) as exc_info:
        build_classifier("resnet18", 10, pretrained=True, weights_dir=tmp_path)
    assert "cannot be read" in _message(exc_info)


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "squeezenet1_1"])
@pytest.mark.parametrize("size", SMALL_SIZES)
def test_output_shapes_on_small_images(built, name, size) -> None:
    model = built[name]
    with torch.no_grad():
        out = model(torch.randn(3, 3, *size))
    assert out.logits.shape == (3, 10)
    assert out.features.shape == (3, model.feature_dim) == (3, 512)
    assert out.predicted_loss is None
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.features).all()


def test_squeezenet_fails_on_tiny_inputs_without_upsampling(built) -> None:
    """Why the wrapper upsamples: SqueezeNet's pooling chain cannot take 8x8 digits."""
    with pytest.raises(RuntimeError):
        built["squeezenet1_1"].net(torch.randn(1, 3, 8, 8))


@pytest.mark.parametrize("size, seen", [((8, 8), (32, 32)), ((8, 12), (32, 48)), ((28, 28), (32, 32)),
                                        ((32, 32), (32, 32)), ((40, 33), (40, 33))])
def test_squeezenet_upsamples_below_its_minimum(built, size, seen) -> None:
    model = built["squeezenet1_1"]
    shapes = []
    handle = model.net.register_forward_pre_hook(lambda _m, args: shapes.append(tuple(args[0].shape[-2:])))
    try:
        with torch.no_grad():
            model(torch.randn(2, 3, *size))
    finally:
        handle.remove()
    assert shapes == [seen]


def test_resnet_sees_small_inputs_as_given(built) -> None:
    x = torch.randn(2, 3, 8, 8)
    assert built["resnet18"].sized(x) is x


@pytest.mark.parametrize("name", ["resnet18", "resnet34"])
def test_resnet_features_are_the_head_input(built, name) -> None:
    model = built[name]
    pooled = []
    handle = model.net.avgpool.register_forward_hook(lambda _m, _i, out: pooled.append(out))
    try:
        with torch.no_grad():
            out = model(torch.randn(2, 3, 28, 28))
    finally:
        handle.remove()
    assert torch.equal(out.features, pooled[0].flatten(1))
    assert torch.allclose(out.logits, model.net.fc(out.features), atol=1e-6)


def test_squeezenet_features_are_the_pooled_head_input(built) -> None:
    model = built["squeezenet1_1"]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        fmap = model.net.features(x)
    assert fmap.ndim == 4 and fmap.shape[1] == 512
    assert torch.allclose(out.features, fmap.mean(dim=(2, 3)), atol=1e-6)
    assert torch.allclose(out.logits, model.net.classifier(fmap).flatten(1), atol=1e-6)


def test_has_dropout(built) -> None:
    assert not has_dropout(built["resnet18"])
    assert has_dropout(built["squeezenet1_1"])
    assert not has_dropout(build_classifier("squeezenet1_1", 10, pretrained=False, dropout=0.0))


def test_dropout_train_samples_squeezenet_and_restores_modes(built) -> None:
    model = built["squeezenet1_1"]
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        a, b = model(x), model(x)
        assert torch.equal(a.logits, b.logits)
        with dropout_train(model):
            assert not model.training and model.net.classifier[0].training
            c, d = model(x), model(x)
    assert not torch.allclose(c.logits, d.logits)
    # Features are read before the dropout layer: the passes share them.
    assert torch.equal(c.features, d.features) and torch.allclose(c.features, a.features, atol=1e-6)
    assert all(not m.training for m in model.modules())


def test_dropout_train_keeps_batch_norm_in_eval() -> None:
    torch.manual_seed(0)
    model = build_classifier("mobilenet_v3_small", 10, pretrained=False).train()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [(m.running_mean.clone(), m.running_var.clone(), int(m.num_batches_tracked)) for m in norms]
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad(), dropout_train(model):
        assert all(not m.training for m in norms)
        first, second = model(x), model(x)
    # An untrained MobileNet's logits are tiny (~1e-10): compare relative to their scale.
    assert (first.logits - second.logits).abs().max() > 1e-3 * first.logits.abs().max()
    for m, (mean, var, count) in zip(norms, before, strict=True):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
        assert int(m.num_batches_tracked) == count
    assert all(m.training for m in model.modules())


def test_dropout_rate_sets_or_adds_the_layer_before_the_head() -> None:
    squeeze = build_classifier("squeezenet1_1", 10, pretrained=False, dropout=0.2)
    assert squeeze.net.classifier[0].p == 0.2 and squeeze.head_dropout is None
    torch.manual_seed(0)
    resnet = build_classifier("resnet18", 10, pretrained=False, dropout=0.3).eval()
    assert has_dropout(resnet) and resnet.head_dropout.p == 0.3
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        plain = resnet(x)
        with dropout_train(resnet):
            first, second = resnet(x), resnet(x)
    assert not torch.allclose(first.logits, second.logits)
    assert torch.allclose(first.features, plain.features, atol=1e-6)
    assert torch.allclose(plain.logits, resnet.net.fc(plain.features), atol=1e-6)


def test_copies_are_independent(built) -> None:
    """Deep ensembles copy models: a copy's forward passes must not feed the original's hooks."""
    model = built["resnet18"]
    clone = copy.deepcopy(model)
    with torch.no_grad():
        clone.net.fc.weight.add_(1.0)
        x = torch.randn(2, 3, 8, 8)
        a, b = model(x), clone(x)
    assert torch.equal(a.features, b.features) and not torch.allclose(a.logits, b.logits)
    assert not model.net.fc._forward_pre_hooks and not clone.net.fc._forward_pre_hooks


def test_loss_prediction_head_shapes_and_channels() -> None:
    model = build_classifier("resnet34", 10, pretrained=False, loss_prediction_width=16).eval()
    assert [level[0].in_features for level in model.loss_head.levels] == [64, 128, 256, 512]
    with torch.no_grad():
        out = model(torch.randn(3, 3, 28, 28))
    assert out.predicted_loss.shape == (3,) and out.logits.shape == (3, 10)


@pytest.mark.parametrize("detached", [False, True])
def test_loss_prediction_gradients_reach_the_taps_unless_detached(detached) -> None:
    model = build_classifier("resnet18", 10, pretrained=False, loss_prediction_width=8).train()
    model.predict_loss_detached(detached)
    assert model.detach_taps is detached
    model(torch.randn(4, 3, 16, 16)).predicted_loss.sum().backward()
    tapped = [model.net.get_submodule(f"layer{k}")[0].conv1.weight.grad for k in (1, 2, 3, 4)]
    if detached:
        assert all(g is None for g in tapped)
    else:
        assert all(g is not None and g.abs().sum() > 0 for g in tapped)
    assert all(p.grad is not None for p in model.loss_head.parameters())
    assert model.net.fc.weight.grad is None  # the predicted loss does not depend on the classifier


def test_loss_prediction_module_changes_no_other_draw() -> None:
    torch.manual_seed(3)
    plain = build_classifier("resnet18", 10, pretrained=False)
    after_plain = torch.rand(3)
    torch.manual_seed(3)
    with_head = build_classifier("resnet18", 10, pretrained=False, loss_prediction_width=8)
    assert torch.equal(torch.rand(3), after_plain)
    plain_state, head_state = plain.net.state_dict(), with_head.net.state_dict()
    assert all(torch.equal(plain_state[k], head_state[k]) for k in plain_state)


@pytest.mark.parametrize("name", ["squeezenet1_1", "mobilenet_v3_small"])
def test_loss_prediction_refuses_non_resnets(name) -> None:
    with pytest.raises(ClassifierError) as exc_info:
        build_classifier(name, 10, pretrained=False, loss_prediction_width=8)
    assert "LL4AL needs a ResNet (layer1..layer4 taps)" in _message(exc_info)
    net = torchvision.models.get_model(name, weights=None, num_classes=10)
    with pytest.raises(ClassifierError):
        Classifier(name, net, loss_prediction_width=8)


@pytest.mark.parametrize("name", ["squeezenet1_0", "googlenet", "densenet121", "inception_v3", "vit_b_32"])
def test_other_families_take_tiny_inputs(name) -> None:
    model = build_classifier(name, 5, pretrained=False).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 8, 8))
    assert out.logits.shape == (2, 5) and out.features.shape == (2, model.feature_dim)
    minimum = model.input_size or model.min_input_size
    assert minimum == {"squeezenet1_0": 32, "googlenet": 32, "densenet121": 32, "inception_v3": 75,
                       "vit_b_32": 224}[name]
