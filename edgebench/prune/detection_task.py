"""The built-in ``digit-detection`` task: find and classify every digit in a scene.

Scenes from ``digit_scenes`` (scikit-learn's digits on procedural backgrounds, split by source
digit); targets are the digits' tight boxes with labels 1..10 (digit + 1; 0 is the background, so a
torchvision detector is built with ``num_classes=11``). The model is a torchvision-API detector,
for example ``torchvision:ssdlite320_mobilenet_v3_large?num_classes=11`` or
``edgebench:squeezenet_ssd?num_classes=11``; inputs are in [0, 1], the detector normalises and
resizes them itself.

Metric: COCO mAP@[.5:.95] (``evaluate``) and mAP@0.5 (``metrics``) over the held-out scenes, by
``torchmetrics.detection.MeanAveragePrecision`` with the pycocotools backend.

Options (``digit-detection?size=320&seed=1``): ``size`` (300: SSD300's own input side), ``seed``
(0), ``batch_size`` (8), ``lr`` (0.001), ``optimizer`` (adamw or sgd), ``warmup`` (20 steps per
``finetune`` call), ``min_digits``/``max_digits`` (1, 3: per scene), ``min_scale``/``max_scale``
(0.2, 0.4: a digit's side over the canvas side), ``eval_scenes`` (100 held-out scenes).
Training figures: ``docs/tasks.md``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgebench.prune.digit_scenes import Scene
from edgebench.prune.scene_tasks import SceneTask, scene_defaults
from edgebench.prune.task_options import with_defaults
from edgebench.prune.tasks import described, model_device

DEFAULTS = scene_defaults(size=300, batch_size=8, lr=0.001, min_scale=0.2, max_scale=0.4)


@described("detection", "mAP", DEFAULTS)
def digit_detection_task(**options: Any) -> DetectionTask:
    """Detect 1-3 handwritten digits on cluttered backgrounds: boxes and labels 1..10 (num_classes=11)."""
    return DetectionTask(with_defaults("digit-detection", options, DEFAULTS))


class DetectionTask(SceneTask):
    task_name = "digit-detection"
    defaults = DEFAULTS
    kind = "detection"
    metric = "mAP"
    # An untrained detector scores about 0; one trained for minutes well above this.
    untrained_below = 0.05

    def targets(self, scenes: list[Scene]) -> list[dict[str, torch.Tensor]]:
        return [{"boxes": scene.boxes, "labels": scene.labels} for scene in scenes]

    def loss(self, model: nn.Module, inputs: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        """The sum of the detector's loss dict (the detector must be in training mode)."""
        return detection_loss(model, inputs, targets)

    def metrics(self, model: nn.Module) -> dict[str, float]:
        """COCO mAP@[.5:.95] and mAP@0.5 on the held-out scenes; the model is left in eval mode."""
        from torchmetrics.detection import MeanAveragePrecision

        model.eval()
        device = model_device(model)
        average_precision = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")
        # COCO scores each image's 100 best detections; torchvision's SSDs return up to 200 or 300.
        average_precision.warn_on_many_detections = False
        with torch.inference_mode():
            for inputs, scenes in self.heldout_batches():
                detections = model(list(inputs.to(device)))
                average_precision.update(
                    [{key: detection[key].cpu() for key in ("boxes", "scores", "labels")} for detection in detections],
                    self.targets(scenes),
                )
        computed = average_precision.compute()
        # pycocotools reports -1 where nothing can be scored; no detection scores 0.
        return {"mAP": max(0.0, float(computed["map"])), "mAP@0.5": max(0.0, float(computed["map_50"]))}


def detection_loss(model: nn.Module, images: torch.Tensor | list[torch.Tensor],
                   targets: list[dict[str, torch.Tensor]]) -> torch.Tensor:
    """The sum of a torchvision-API detector's losses on a batch; TypeError if the model, not in
    training mode, returned detections instead."""
    losses = model(list(images), targets)
    if not isinstance(losses, dict):
        raise TypeError(f"a detector returns its loss dict only in training mode; got {type(losses).__name__} "
                        "(put the model in train mode, e.g. with edgebench.prune.tasks.frozen_norms)")
    return sum(losses.values())
