"""Detectors and segmenters: built offline with random weights, network and whole call apart."""

import pytest
import torch
import torchvision

from edgebench.board.builtin_models import BUILTIN_MODELS
from edgebench.board.torch_models import build_module
from edgebench.errors import UsageError
from edgebench.models import resolve_model

TORCHVISION_SPECS = ["ssd300_vgg16", "ssdlite320_mobilenet_v3_large", "deeplabv3_resnet50",
                     "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large", "fcn_resnet50"]
BUILTIN_SPECS = ["ssd300_resnet50", "squeezenet_ssd", "deeplabv3plus_resnet50"]


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to fetch weights fails loudly, as it would with no network."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model build tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torchvision.models._api.WeightsEnum, "get_state_dict", refuse)
    monkeypatch.setenv("HTTPS_PROXY", "http://192.0.2.1:9")  # TEST-NET-1: unroutable


@pytest.mark.parametrize("spec", [f"torchvision:{name}" for name in TORCHVISION_SPECS]
                         + [f"edgebench:{name}" for name in BUILTIN_SPECS])
def test_every_builtin_spec_builds_offline(offline, spec):
    model = resolve_model(spec, ["3x64x64"])
    assert model.recipe["kwargs"] == {}
    build_module(model.recipe)  # what the worker does with the recipe


def test_asking_for_pretrained_weights_is_a_usage_error(offline):
    with pytest.raises(UsageError, match="built with random weights; weights_backbone=DEFAULT would download"):
        resolve_model("torchvision:fcn_resnet50?weights_backbone='DEFAULT'", ["3x64x64"])


def test_weights_backbone_none_is_accepted(offline):
    assert resolve_model("torchvision:fcn_resnet50?weights_backbone=None", ["3x64x64"]).recipe["kwargs"] == {
        "weights_backbone": None}


def test_builtin_models_are_registered_by_name():
    assert BUILTIN_MODELS.names()[:3] == BUILTIN_SPECS


@pytest.mark.parametrize("name", ["ssd300_resnet50", "squeezenet_ssd"])
def test_ssd_builders_run_as_network_and_end_to_end(name):
    network = resolve_model(f"edgebench:{name}", ["3x128x128"])
    assert network.name == f"edgebench:{name}#network"
    assert network.inputs[0].shape == ("batch", 3, 128, 128)
    with torch.no_grad():
        bbox_regression, cls_logits = build_module(network.recipe)(torch.rand(1, 3, 128, 128))
    assert cls_logits.shape[:2] == bbox_regression.shape[:2] and cls_logits.shape[2] == 91
    assert bbox_regression.shape[2] == 4
    whole = resolve_model(f"edgebench:{name}#end_to_end")
    assert whole.inputs[0].shape == ("batch", 3, 300, 300)  # the size SSD300 resizes to
    with torch.no_grad():
        (detections,) = build_module(whole.recipe)(torch.rand(1, 3, 96, 96))
    assert set(detections) == {"boxes", "scores", "labels"}


def test_deeplabv3plus_returns_logits_at_the_input_size():
    model = resolve_model("edgebench:deeplabv3plus_resnet50?num_classes=5", ["3x64x64"])
    assert resolve_model("edgebench:deeplabv3plus_resnet50").inputs[0].shape == ("batch", 3, 513, 513)
    with torch.no_grad():
        output = build_module(model.recipe)(torch.rand(2, 3, 64, 64))
    assert list(output) == ["out"] and output["out"].shape == (2, 5, 64, 64)


def test_torchvision_detector_defaults_to_its_network_at_its_own_size():
    model = resolve_model("torchvision:ssdlite320_mobilenet_v3_large")
    assert model.name == "torchvision:ssdlite320_mobilenet_v3_large#network"
    assert model.recipe["part"] == "network" and model.inputs[0].shape == ("batch", 3, 320, 320)
    whole = resolve_model("torchvision:ssdlite320_mobilenet_v3_large#end_to_end")
    assert whole.fingerprint != model.fingerprint  # so their exports and records never mix


@pytest.mark.parametrize(("spec", "message"), [
    ("torchvision:resnet18#network", "torchvision:resnet18 is not a detector; '#network' applies to detectors only"),
    ("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn",
     "has no network separate from its postprocessing; measure .*#end_to_end"),
    ("torchvision:ssd300_vgg16#head", "unknown model part 'head'"),
    ("edgebench:ssd_nothing", "unknown built-in model 'ssd_nothing'; choose one of ssd300_resnet50"),
])
def test_bad_parts_and_names_are_usage_errors(spec, message):
    with pytest.raises(UsageError, match=message):
        resolve_model(spec, ["3x64x64"])


def test_an_untrained_detectors_end_to_end_export_is_refused_with_the_reason(tmp_path):
    # Random weights give near-equal scores, so NMS keeps other boxes in ONNX Runtime than in eager.
    from edgebench.models import ExportError, onnx_for

    torch.manual_seed(0)
    whole = resolve_model("torchvision:ssdlite320_mobilenet_v3_large?num_classes=3#end_to_end")
    with pytest.raises(ExportError, match="does not match eager PyTorch: .*score thresholds and NMS.*#network"):
        onnx_for(whole, 1, tmp_path)
