"""The built-in ``digit-segmentation`` task: label every pixel with the digit it belongs to.

Scenes from ``digit_scenes`` (scikit-learn's digits on procedural backgrounds, split by source
digit); the target is the scene's mask, 0 for the background and digit + 1 on the digit's pixels
(11 classes). The model returns (N, 11, H, W) logits or a dict with ``"out"`` (and optionally
``"aux"``) as torchvision's segmentation models do, for example
``torchvision:lraspp_mobilenet_v3_large?num_classes=11``; inputs are in [0, 1]; logits of another
side are resized to the mask's.

Metric: mIoU over the 11 classes (``evaluate``) and pixel accuracy (``metrics``) on the held-out
scenes, by torchmetrics (``JaccardIndex`` macro-averaged, ``Accuracy`` micro-averaged).

Options (``digit-segmentation?size=128``): ``size`` (96), ``seed`` (0), ``batch_size`` (16),
``lr`` (0.003), ``optimizer`` (adamw or sgd), ``warmup`` (20 steps per ``finetune`` call),
``min_digits``/``max_digits`` (1, 3), ``min_scale``/``max_scale`` (0.25, 0.45: a digit's side
over the canvas side), ``eval_scenes`` (100). Training figures: ``docs/tasks.md``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgebench.prune.digit_scenes import Scene
from edgebench.prune.scene_tasks import SceneTask, scene_defaults
from edgebench.prune.task_options import with_defaults
from edgebench.prune.tasks import described, model_device

CLASSES = 11  # the background and ten digits
AUX_WEIGHT = 0.5
# The background covers about 90% of the pixels: unweighted, a network trained from scratch
# predicts nothing else for hundreds of steps (measured: mIoU 0.09 after 150 steps at size 96,
# 0.20 with this weight).
CLASS_WEIGHTS = torch.tensor([0.1] + [1.0] * 10)
DEFAULTS = scene_defaults(size=96, batch_size=16, lr=0.003, min_scale=0.25, max_scale=0.45)


@described("segmentation", "mIoU", DEFAULTS)
def digit_segmentation_task(**options: Any) -> SegmentationTask:
    """Segment 1-3 handwritten digits on cluttered backgrounds: 11 classes per pixel (0 background)."""
    return SegmentationTask(with_defaults("digit-segmentation", options, DEFAULTS))


class SegmentationTask(SceneTask):
    task_name = "digit-segmentation"
    defaults = DEFAULTS
    kind = "segmentation"
    metric = "mIoU"
    # Predicting the background everywhere scores about 1/11 (only the background's IoU counts).
    untrained_below = 0.2

    def targets(self, scenes: list[Scene]) -> torch.Tensor:
        return torch.stack([scene.mask for scene in scenes])

    def loss(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the output (0.5 x the auxiliary output's added when there is one)."""
        return segmentation_loss(model, inputs, targets)

    def metrics(self, model: nn.Module) -> dict[str, float]:
        """mIoU and pixel accuracy on the held-out scenes; the model is left in eval mode."""
        from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

        model.eval()
        device = model_device(model)
        iou = MulticlassJaccardIndex(num_classes=CLASSES, average="macro")
        accuracy = MulticlassAccuracy(num_classes=CLASSES, average="micro")
        with torch.inference_mode():
            for inputs, scenes in self.heldout_batches():
                masks = self.targets(scenes)
                predicted = _logits(model(inputs.to(device)), masks.shape[-2:]).argmax(dim=1).cpu()
                iou.update(predicted, masks)
                accuracy.update(predicted, masks)
        return {"mIoU": float(iou.compute()), "pixel accuracy": float(accuracy.compute())}


def segmentation_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``output["out"]`` (or of a plain tensor output) against the (N, H, W)
    class indices, plus ``AUX_WEIGHT`` x that of ``output["aux"]`` when present; the background
    class weighs ``CLASS_WEIGHTS[0]``."""
    output = model(inputs)
    size = targets.shape[-2:]
    weight = CLASS_WEIGHTS.to(targets.device)
    loss = F.cross_entropy(_logits(output, size), targets, weight=weight)
    if isinstance(output, dict) and output.get("aux") is not None:
        loss = loss + AUX_WEIGHT * F.cross_entropy(_logits(output["aux"], size), targets, weight=weight)
    return loss


def _logits(output: Any, size: torch.Size) -> torch.Tensor:
    logits = output["out"] if isinstance(output, dict) else output
    if logits.shape[-2:] != size:
        logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
    return logits
