"""A variant's figures on paper are those of the part the worker measures."""

import torch
import torchvision

from edgebench.board.detector_parts import select_part
from edgebench.prune.model_stats import model_stats
from edgebench.prune.surgery import macs_and_params


def test_a_detector_is_counted_by_its_network_and_a_classifier_whole(tmp_path):
    torch.manual_seed(0)
    detector = torchvision.models.detection.ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=11).eval()
    example = torch.randn(1, 3, 320, 320)
    network = select_part(detector, "network", "ssdlite")
    stats = model_stats(detector, example, "network")
    assert (stats["macs"], stats["params"]) == macs_and_params(network, example)
    assert stats["params"] == sum(p.numel() for p in detector.backbone.parameters()) + \
        sum(p.numel() for p in detector.head.parameters())
    assert stats["state_dict_bytes"] > 4 * stats["params"]  # float32 weights plus the file's framing

    classifier = torchvision.models.resnet18(num_classes=10).eval()
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(b"x" * 1234)
    stats = model_stats(classifier, torch.randn(1, 3, 32, 32), onnx_path=onnx_file)
    assert stats["params"] == sum(p.numel() for p in classifier.parameters()) and stats["onnx_bytes"] == 1234
