"""The digit-detection task: exact metric on a perfect detector, a differentiable loss on real
torchvision detectors, and fine-tuning that learns on a tiny one."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssd import SSD, SSDHead

from edgebench.prune.detection_task import DetectionTask, detection_loss, digit_detection_task
from edgebench.prune.tasks import check_task, frozen_norms, load_task

SIZE = 64


@pytest.fixture(scope="module")
def task():
    return digit_detection_task(size=SIZE, eval_scenes=12, batch_size=4)


class Oracle(nn.Module):
    """Returns each held-out scene's ground truth, found by its image; ``shift`` moves the boxes
    and ``wrong_labels`` mislabels them, to make a bad detector."""

    def __init__(self, task: DetectionTask, shift: float = 0.0, wrong_labels: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.truth = {(scene.image.float() / 255).numpy().tobytes(): scene for scene in task.heldout}
        self.shift, self.wrong_labels = shift, wrong_labels

    def forward(self, images):
        detections = []
        for image in images:
            scene = self.truth[image.numpy().tobytes()]
            labels = scene.labels % 10 + 1 if self.wrong_labels else scene.labels
            detections.append({"boxes": scene.boxes + self.shift, "scores": torch.ones(len(labels)),
                               "labels": labels})
        return detections


def tiny_detector(size: int = SIZE) -> nn.Module:
    """An SSD through torchvision's API with a two-stage convolutional backbone."""
    torch.manual_seed(0)

    class Backbone(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Sequential(nn.Conv2d(3, 16, 3, stride=4, padding=1), nn.BatchNorm2d(16), nn.ReLU())
            self.second = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU())

        def forward(self, images):
            first = self.first(images)
            return OrderedDict([("0", first), ("1", self.second(first))])

    anchors = DefaultBoxGenerator([[2], [2]], min_ratio=0.3, max_ratio=0.6)
    head = SSDHead([16, 32], anchors.num_anchors_per_location(), 11)
    return SSD(Backbone(), anchors, (size, size), 11, head=head)


def test_the_task_is_complete_and_says_what_it_is(task):
    assert check_task(task, task.name) is task
    assert (task.kind, task.metric, task.untrained_below) == ("detection", "mAP", 0.05)
    assert task.example_input.shape == (1, 3, SIZE, SIZE) and task.example_input.dtype == torch.float32
    assert 0 <= float(task.example_input.min()) and float(task.example_input.max()) <= 1
    assert task.name == "digit-detection?size=64&batch_size=4&eval_scenes=12"
    assert load_task("digit-detection").name == "digit-detection?size=300"


def test_a_perfect_detector_scores_one_and_a_bad_one_low(task):
    assert task.metrics(Oracle(task)) == {"mAP": 1.0, "mAP@0.5": 1.0}
    assert task.evaluate(Oracle(task)) == 1.0
    mislabelled = task.metrics(Oracle(task, wrong_labels=True))
    assert mislabelled == {"mAP": 0.0, "mAP@0.5": 0.0}
    # Boxes 2 pixels off in x and y: most still overlap their digit by half (not a narrow "1"), none by 95%.
    shifted = task.metrics(Oracle(task, shift=2.0))
    assert shifted["mAP"] < 0.6 < shifted["mAP@0.5"] < 1.0


def test_held_out_scenes_come_from_held_out_digits_and_training_from_training(task):
    heldout_rows = set(task.heldout_digits.rows.tolist())
    train_rows = set(task.train_digits.rows.tolist())
    assert not heldout_rows & train_rows
    assert all(set(scene.rows.tolist()) <= heldout_rows for scene in task.heldout)
    assert all(set(scene.rows.tolist()) <= train_rows for scene in task.training_scenes(8))


def test_sample_batch_follows_the_protocol_and_the_seed(task):
    inputs, targets = task.sample_batch(3)
    assert inputs.shape == (3, 3, SIZE, SIZE) and inputs.dtype == torch.float32 and len(targets) == 3
    for target in targets:
        assert target["boxes"].dtype == torch.float32 and target["boxes"].shape[1] == 4
        assert target["labels"].dtype == torch.int64 and 1 <= target["labels"].min() <= target["labels"].max() <= 10
    first, second = (digit_detection_task(size=SIZE, eval_scenes=2).sample_batch(2) for _ in range(2))
    assert torch.equal(first[0], second[0])
    other = digit_detection_task(size=SIZE, eval_scenes=2, seed=1).sample_batch(2)
    assert not torch.equal(first[0], other[0])
    heldout = [digit_detection_task(size=SIZE, eval_scenes=2, seed=seed).heldout[0].image for seed in (0, 0, 1)]
    assert torch.equal(heldout[0], heldout[1]) and not torch.equal(heldout[0], heldout[2])


def test_the_loss_is_differentiable_on_ssdlite(task):
    torch.manual_seed(0)
    model = torchvision.models.detection.ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=11).eval()
    inputs, targets = task.sample_batch(2)
    with frozen_norms(model):
        loss = task.loss(model, inputs, targets)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.requires_grad
    loss.backward()
    assert model.head.classification_head.module_list[0][1].weight.grad.abs().sum() > 0
    assert not model.training


def test_the_loss_refuses_a_detector_in_eval_mode(task):
    inputs, targets = task.sample_batch(2)
    with pytest.raises(TypeError, match="only in training mode"):
        detection_loss(tiny_detector().eval(), inputs, targets)


def test_finetune_lowers_the_loss_and_leaves_eval_mode_without_gradients():
    task = digit_detection_task(size=SIZE, eval_scenes=4, batch_size=4, lr=0.003)
    model = tiny_detector()
    inputs, targets = task.sample_batch(8)

    def held_loss():
        with torch.no_grad(), frozen_norms(model):
            return float(task.loss(model, inputs, targets))

    task.finetune(model, 2)  # BatchNorm statistics first fit the scenes, so the losses compare
    before = held_loss()
    task.finetune(model, 25)
    after = held_loss()
    assert after < 0.8 * before, (before, after)
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert 0.0 <= task.evaluate(model) <= 1.0 and not model.training
