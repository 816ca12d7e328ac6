"""DeepLabV3+ (Chen et al. 2018) with a ResNet-50 encoder, from torchvision's ResNet and ASPP.

Encoder at output stride 16 (layer4 dilated), ASPP at rates 6/12/18; the decoder projects
layer1's low-level features to 48 channels, joins them with the upsampled ASPP output, refines
with two 3x3 convolutions and upsamples the logits to the input size. Returns ``{"out": logits}``
like torchvision's segmenters. Random weights, never a download. Board-side (Python 3.8).
"""

from __future__ import annotations

import functools

from edgebench.board.lazy_classes import by_factory

# The paper's crop size.
INPUT_SIZE = (513, 513)


def deeplabv3plus_resnet50(num_classes=21, output_stride=16):
    from torchvision.models import resnet50
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.segmentation.deeplabv3 import ASPP

    if output_stride not in (8, 16):
        raise ValueError("output_stride must be 8 or 16, not %r" % (output_stride,))
    dilated = [False, output_stride == 8, True]
    encoder = IntermediateLayerGetter(resnet50(weights=None, replace_stride_with_dilation=dilated),
                                      {"layer1": "low", "layer4": "high"})
    rates = [6, 12, 18] if output_stride == 16 else [12, 24, 36]
    return _model_class()(encoder, ASPP(2048, rates, 256), num_classes)


@functools.lru_cache(maxsize=None)
def _model_class():
    import torch
    from torch.nn import functional

    def conv_bn_relu(in_channels, out_channels, kernel):
        return [torch.nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
                torch.nn.BatchNorm2d(out_channels), torch.nn.ReLU(inplace=True)]

    class DeepLabV3Plus(torch.nn.Module):
        default_input_size = INPUT_SIZE
        __reduce__ = by_factory(__name__, "_model_class")  # torch.save finds the class by its factory

        def __init__(self, encoder, aspp, num_classes):
            super().__init__()
            self.encoder = encoder
            self.aspp = aspp
            self.low_level = torch.nn.Sequential(*conv_bn_relu(256, 48, 1))
            self.decoder = torch.nn.Sequential(*conv_bn_relu(256 + 48, 256, 3), *conv_bn_relu(256, 256, 3),
                                               torch.nn.Conv2d(256, num_classes, 1))

        def forward(self, images):
            features = self.encoder(images)
            low = self.low_level(features["low"])
            high = functional.interpolate(self.aspp(features["high"]), size=low.shape[-2:], mode="bilinear",
                                          align_corners=False)
            logits = self.decoder(torch.cat([high, low], dim=1))
            return {"out": functional.interpolate(logits, size=images.shape[-2:], mode="bilinear",
                                                  align_corners=False)}

    return DeepLabV3Plus
