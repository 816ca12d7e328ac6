"""SSD detectors on backbones torchvision pairs with no SSD: ResNet-50 and SqueezeNet 1.1.

Built from torchvision's ``SSD``, ``SSDHead`` and ``DefaultBoxGenerator`` with random weights,
never a download. Board-side (Python 3.8): torch is imported when a builder is called.
"""

from __future__ import annotations

import functools

from edgebench.board.lazy_classes import by_factory

SSD300_SIZE = (300, 300)
# ssd300_vgg16's anchors: six feature maps, as in the SSD paper.
ASPECT_RATIOS = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
SCALES = [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]


def ssd300_resnet50(num_classes=91, **kwargs):
    """SSD300 on ResNet-50 up to layer3 with layer3 at stride 1 (38x38 maps of 1024 channels at
    300x300, as in NVIDIA's SSD300 v1.1), then five extra blocks."""
    import torch
    from torchvision.models import resnet50

    resnet = resnet50(weights=None)
    resnet.layer3[0].conv2.stride = (1, 1)
    resnet.layer3[0].downsample[0].stride = (1, 1)
    body = torch.nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool,
                               resnet.layer1, resnet.layer2, resnet.layer3)
    extras = _extra_blocks([1024, 512, 512, 256, 256, 256])
    return _ssd([body] + extras, [1024, 512, 512, 256, 256, 256], num_classes, kwargs)


def squeezenet_ssd(num_classes=91, **kwargs):
    """SSD300 on SqueezeNet 1.1: its fire modules to stride 8 (256 channels) and 16 (512), then
    four extra blocks."""
    from torchvision.models import squeezenet1_1

    features = squeezenet1_1(weights=None).features
    extras = _extra_blocks([512, 256, 256, 128, 128])
    return _ssd([features[:8], features[8:]] + extras, [256, 512, 256, 256, 128, 128], num_classes, kwargs)


def _extra_blocks(channels):
    """1x1 bottleneck then a 3x3 stride-2 convolution per block, halving the map each time.

    Padded, so every block also works on small test inputs where unpadded 3x3s would not fit."""
    import torch

    blocks = []
    for in_channels, out_channels in zip(channels, channels[1:]):
        middle = out_channels // 2
        blocks.append(torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, middle, 1, bias=False), torch.nn.BatchNorm2d(middle),
            torch.nn.ReLU(inplace=True),
            torch.nn.Conv2d(middle, out_channels, 3, stride=2, padding=1, bias=False),
            torch.nn.BatchNorm2d(out_channels), torch.nn.ReLU(inplace=True),
        ))
    return blocks


def _ssd(stages, out_channels, num_classes, kwargs):
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
    from torchvision.models.detection.ssd import SSD, SSDHead

    anchors = DefaultBoxGenerator(ASPECT_RATIOS, scales=SCALES)
    head = SSDHead(out_channels, anchors.num_anchors_per_location(), num_classes)
    return SSD(_feature_maps_class()(stages), anchors, SSD300_SIZE, num_classes, head=head, **kwargs)


@functools.lru_cache(maxsize=None)
def _feature_maps_class():
    import collections

    import torch

    class FeatureMaps(torch.nn.Module):
        """Stages applied in turn; every stage's output is one feature map for the SSD head."""

        __reduce__ = by_factory(__name__, "_feature_maps_class")  # torch.save finds the class by its factory

        def __init__(self, stages):
            super().__init__()
            self.stages = torch.nn.ModuleList(stages)

        def forward(self, images):
            maps = collections.OrderedDict()
            for index, stage in enumerate(self.stages):
                images = stage(images)
                maps[str(index)] = images
            return maps

    return FeatureMaps
