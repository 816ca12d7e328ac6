"""What of a detector is measured: its network, or the whole call.

A torchvision detector's call is preprocessing (normalise, resize), the network (backbone and
heads) and postprocessing (box decoding, score threshold, NMS). With random weights the number of
boxes that reach NMS is arbitrary, and so is its cost; and ONNX Runtime and TensorRT are given the
network. So ``network`` (a detector's default) and ``end_to_end`` are separate measurements, and
the record's model name ends in ``#network`` or ``#end_to_end``. Board-side: torch imported lazily.
"""

from __future__ import annotations

import functools

from edgebench.board.lazy_classes import by_factory

PARTS = ("network", "end_to_end")


class PartError(Exception):
    """The part asked for does not exist for this model."""


def is_detector(module):
    return type(module).__module__.startswith("torchvision.models.detection")


def select_part(module, part, name):
    """``module`` itself, or for ``part == "network"`` its backbone and head returning a tuple of
    tensors (no preprocessing, no postprocessing). ``part`` None is only right for a non-detector."""
    if part is None:
        return module
    if not is_detector(module):
        raise PartError("%s is not a detector; '#%s' applies to detectors only" % (name, part))
    if part == "end_to_end":
        return module
    if not (hasattr(module, "backbone") and hasattr(module, "head")):
        # Faster/Mask R-CNN: the region proposal network runs NMS inside the network.
        raise PartError("%s has no network separate from its postprocessing; measure %s#end_to_end"
                        % (name, name))
    return _network_class()(module.backbone, module.head).eval()


def detector_image_size(detector):
    """(height, width) the detector's own transform resizes images to."""
    transform = detector.transform
    if getattr(transform, "fixed_size", None):
        return tuple(transform.fixed_size)
    return (transform.min_size[0], transform.min_size[0])


@functools.lru_cache(maxsize=None)
def _network_class():
    import torch

    class DetectorNetwork(torch.nn.Module):
        """Backbone and head of an SSD, RetinaNet or FCOS: the head's outputs per anchor before
        decoding, in the head's order (SSD: bbox_regression, then cls_logits)."""

        __reduce__ = by_factory(__name__, "_network_class")  # torch.save finds the class by its factory

        def __init__(self, backbone, head):
            super().__init__()
            self.backbone = backbone
            self.head = head

        def forward(self, images):
            features = self.backbone(images)
            maps = [features] if isinstance(features, torch.Tensor) else list(features.values())
            return tuple(self.head(maps).values())

    return DetectorNetwork
