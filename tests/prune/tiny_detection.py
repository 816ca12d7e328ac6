"""A user's detector and detection task, as `--model tiny_detection:tiny_ssdlite` and
`--task tiny_detection:detection_task` name them: an SSDLite built from torchvision's parts on a
small backbone (every class torchvision's or torch's, so its pickles load anywhere), and a task that
follows protocol v2 with random images and boxes. Its ``evaluate`` is a stand-in (a fixed score
above ``untrained_below``): these tests are about what the pruner does to the model, not mAP."""

from __future__ import annotations

import functools

import torch
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssd import SSD
from torchvision.models.detection.ssdlite import SSDLiteHead

SIZE = 64
CLASSES = 3
DEAD = 4  # the first block's first channels, silenced by a large negative BatchNorm bias


def tiny_ssdlite(dead_channels: int = DEAD) -> SSD:
    """Two feature maps (16 channels at stride 4, 32 at stride 8) into an SSDLite head."""
    torch.manual_seed(0)
    body = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=4, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
        nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
    )
    with torch.no_grad():
        body[1].bias[:dead_channels] = -100.0
    backbone = IntermediateLayerGetter(body, {"2": "0", "5": "1"})
    backbone.out_channels = [16, 32]
    anchors = DefaultBoxGenerator([[2], [2]], min_ratio=0.2, max_ratio=0.9)
    norm = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    head = SSDLiteHead([16, 32], anchors.num_anchors_per_location(), CLASSES, norm)
    return SSD(backbone, anchors, (SIZE, SIZE), CLASSES, head=head, image_mean=[0.5] * 3, image_std=[0.25] * 3).eval()


class DetectionTask:
    name = "tiny_detection:detection_task"
    kind = "detection"
    metric = "mAP"
    untrained_below = 0.1

    def __init__(self) -> None:
        self.example_input = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
        self.generator = torch.Generator().manual_seed(1)

    def evaluate(self, model: nn.Module) -> float:
        model.eval()
        return 0.5

    def sample_batch(self, size: int):
        images = torch.rand(size, 3, SIZE, SIZE, generator=self.generator)
        corners = torch.rand(size, 2, generator=self.generator) * SIZE / 2
        targets = [{"boxes": torch.cat([corner, corner + SIZE / 4]).unsqueeze(0),
                    "labels": torch.tensor([1 + index % (CLASSES - 1)])} for index, corner in enumerate(corners)]
        return images, targets

    def loss(self, model: nn.Module, inputs: torch.Tensor, targets) -> torch.Tensor:
        return sum(model(list(inputs), targets).values())

    def finetune(self, model: nn.Module, budget: int) -> None:
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
        model.train()
        for _ in range(budget):
            optimizer.zero_grad()
            self.loss(model, *self.sample_batch(4)).backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        model.eval()


def detection_task() -> DetectionTask:
    return DetectionTask()
