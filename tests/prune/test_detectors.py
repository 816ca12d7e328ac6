"""Detectors and segmenters in the pruner: the layers kept by rule, pruned detectors that keep their
anchors and classes and still train, SSD's L2Norm scale, a user's callable detector, bake."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune
from torchvision.models.detection import ssd300_vgg16, ssdlite320_mobilenet_v3_large
from torchvision.models.segmentation import deeplabv3_resnet50, lraspp_mobilenet_v3_large

from edgebench.board.detector_parts import select_part
from edgebench.prune.bake import bake
from edgebench.prune.baseline import measured_part, prunable_model, saved_model
from edgebench.prune.surgery import PRUNABLE_TYPES, build_graph, cut, pruned_copy
from tiny_detection import DetectionTask, tiny_ssdlite

SMALL = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def network_shapes(detector, images):
    with torch.no_grad():
        return [tuple(output.shape) for output in select_part(detector, "network", "detector")(images)]


def test_an_ssdlite_keeps_every_head_leaf_but_its_depthwise_convs_and_prunes_backbone_and_extras():
    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=4).eval()
    graph = build_graph(model, SMALL)
    [kept] = graph.kept
    head_leaves = {name for name, module in model.head.named_modules(prefix="head")
                   if isinstance(module, PRUNABLE_TYPES) and module.groups == 1}
    assert (kept.what, kept.why) == ("head", "family rule ssdlite") and set(kept.layers) == head_leaves
    assert len(head_leaves) == 12  # class and box convs of six feature maps
    assert graph.describe_kept() == "kept: head (12 layers: family rule ssdlite)"
    # Groups in the MobileNet body and in the extra blocks both.
    assert any(group.startswith("backbone.features.") for group in graph.groups)
    assert any(group.startswith("backbone.extra.") for group in graph.groups)
    assert not set(graph.groups) & head_leaves


def test_lraspp_keeps_both_classifier_convs():
    model = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=4).eval()
    graph = build_graph(model, SMALL)
    assert graph.kept_modules() == [model.classifier.low_classifier, model.classifier.high_classifier]
    # The two branches the classifier multiplies are one group, pruned together.
    group = graph.groups["classifier.scale.1"]
    assert {dep.target.module for dep, _ in group if dep.handler.__name__ == "prune_out_channels"} >= \
        {model.classifier.cbr[0], model.classifier.scale[1]}


def test_deeplab_keeps_its_classifier_and_aux_classifier_outputs():
    model = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=4, aux_loss=True).eval()
    graph = build_graph(model, SMALL)
    assert graph.kept_modules() == [model.classifier[4], model.aux_classifier[4]]
    assert graph.describe_kept() == "kept: output layers (classifier.4, aux_classifier.4: the task reads their widths)"
    smaller, _ = pruned_copy(graph, "aux_classifier.0", 64, torch.rand(graph.width("aux_classifier.0")))
    with torch.no_grad():
        outputs = smaller(SMALL)
    assert outputs["out"].shape == outputs["aux"].shape == (1, 4, 64, 64)


def test_a_pruned_detector_keeps_anchors_and_classes_and_runs_in_eval_and_train_mode():
    model, task = tiny_ssdlite(), DetectionTask()
    graph = build_graph(model, task.example_input)
    before = network_shapes(model, task.example_input)
    assert before == [(1, 1280, 4), (1, 1280, 3)]  # anchors x 4 box coordinates, anchors x 3 classes
    smaller, history = cut(graph, {group: [0, 1] for group in graph.groups})
    assert len(history) == len(graph.groups) == 2
    assert smaller.backbone["0"].out_channels == 14 and smaller.backbone["3"].out_channels == 30
    assert network_shapes(smaller, task.example_input) == before
    with torch.no_grad():
        [detections] = smaller.eval()(task.example_input)
    assert set(detections) == {"boxes", "scores", "labels"}
    smaller.train()
    losses = smaller(*[list(part) if isinstance(part, torch.Tensor) else part for part in task.sample_batch(2)])
    assert set(losses) == {"bbox_regression", "classification"}
    sum(losses.values()).backward()
    assert smaller.backbone["0"].weight.grad is not None


def test_ssd300_vgg16_l2norm_scale_is_pruned_with_conv4_3():
    model = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=3).eval()
    example = torch.rand(1, 3, 300, 300, generator=torch.Generator().manual_seed(0))
    graph = build_graph(model, example)
    conv4_3 = "backbone.features.21"
    assert graph.width(conv4_3) == 512
    with torch.no_grad():
        model.backbone.scale_weight.copy_(torch.arange(512, dtype=torch.float32))
    scores = torch.arange(512, dtype=torch.float32)
    scores[7] = 1000  # channels 0-6 and 8-12 go, 7 stays
    smaller, _ = pruned_copy(graph, conv4_3, 500, scores)
    assert smaller.backbone.features[21].out_channels == 500
    assert smaller.head.classification_head.module_list[0].in_channels == 500
    # The scale of the channels that stayed, in the conv's order.
    assert smaller.backbone.scale_weight.shape == (500,)
    assert smaller.backbone.scale_weight[:3].tolist() == [7, 13, 14]
    assert torch.equal(smaller.backbone.features[21].weight[0], model.backbone.features[21].weight[7])
    assert network_shapes(smaller, example) == network_shapes(model, example)


def test_a_users_callable_detector_is_pruned_whole_and_measured_as_its_network(tmp_path):
    task = DetectionTask()
    prunable = prunable_model("tiny_detection:tiny_ssdlite", task)
    assert prunable.part is None and prunable.resolved.recipe["format"] == "callable"
    whole = tiny_ssdlite()
    assert measured_part(whole, prunable.part) == "network"
    saved = saved_model(whole, tmp_path / "m.pt", "3x64x64", "tiny", "network")
    assert saved.name == "tiny#network" and saved.recipe["part"] == "network"
    assert saved.fingerprint.endswith("#network")
    from edgebench.board.torch_models import build_module

    assert type(build_module(saved.recipe)).__name__ == "DetectorNetwork"


def test_a_torchvision_detector_spec_is_resolved_whole_with_its_part():
    task = DetectionTask()
    prunable = prunable_model("torchvision:ssdlite320_mobilenet_v3_large?num_classes=3&weights_backbone=None", task)
    assert prunable.part == "network" and "part" not in prunable.resolved.recipe
    assert not prunable.resolved.name.endswith("#network")
    assert prunable_model("torchvision:ssdlite320_mobilenet_v3_large?num_classes=3&weights_backbone=None#end_to_end",
                          task).part == "end_to_end"


def masked_channels(conv: nn.Conv2d, channels: list[int]) -> None:
    mask = torch.ones_like(conv.weight)
    mask[channels] = 0
    torch_prune.custom_from_mask(conv, "weight", mask)


def test_bake_removes_a_masked_detectors_dead_channels_and_checks_the_network():
    model = tiny_ssdlite(dead_channels=0)
    masked_channels(model.backbone["3"], [0, 5, 9])
    result = bake(model, DetectionTask().example_input, "network")
    assert result.model.backbone["3"].out_channels == 29
    assert result.removed == 3 and result.max_abs_diff < 1e-4
    # The head's class and box convs keep their widths.
    assert [m.out_channels for m in result.model.head.modules() if isinstance(m, nn.Conv2d) and m.groups == 1] == \
        [m.out_channels for m in model.head.modules() if isinstance(m, nn.Conv2d) and m.groups == 1]


def test_bake_removes_a_masked_segmenters_dead_channels():
    torch.manual_seed(0)
    model = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3).eval()
    block = model.backbone["2"].block  # expand 1x1, then depthwise 3x3: one group
    masked_channels(block[0][0], list(range(10)))
    masked_channels(block[1][0], list(range(10)))
    result = bake(model, SMALL)
    assert result.model.backbone["2"].block[0][0].out_channels == block[0][0].out_channels - 10
    assert result.removed == 10 and result.max_abs_diff < 1e-4
    assert result.model.classifier.high_classifier.out_channels == 3
