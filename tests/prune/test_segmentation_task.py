"""The digit-segmentation task: exact metrics on a perfect segmenter, the loss with and without
an auxiliary output, and fine-tuning that learns on a tiny network."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from edgebench.prune.segmentation_task import CLASSES, digit_segmentation_task, segmentation_loss
from edgebench.prune.scene_tasks import NORM_BATCHES
from edgebench.prune.tasks import check_task, frozen_norms

SIZE = 48


@pytest.fixture(scope="module")
def task():
    return digit_segmentation_task(size=SIZE, eval_scenes=10, batch_size=4)


class Oracle(nn.Module):
    """One-hot logits of each held-out scene's mask, found by its image; ``background`` predicts
    the background everywhere instead."""

    def __init__(self, task, background: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.truth = {(scene.image.float() / 255).numpy().tobytes(): scene.mask for scene in task.heldout}
        self.background = background

    def forward(self, images):
        masks = torch.stack([self.truth[image.numpy().tobytes()] for image in images])
        if self.background:
            masks = torch.zeros_like(masks)
        return {"out": F.one_hot(masks, CLASSES).permute(0, 3, 1, 2).float()}


def tiny_segmenter(aux: bool = False) -> nn.Module:
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                nn.Conv2d(32, 32, 3, padding=2, dilation=2), nn.BatchNorm2d(32), nn.ReLU(),
            )
            self.out = nn.Conv2d(32, CLASSES, 1)
            self.aux = nn.Conv2d(32, CLASSES, 1) if aux else None

        def forward(self, images):
            features = self.body(images)
            output = {"out": self.out(features)}  # at half resolution: the task resizes the logits
            if self.aux is not None:
                output["aux"] = self.aux(features)
            return output

    return Net()


def test_the_task_is_complete_and_says_what_it_is(task):
    assert check_task(task, task.name) is task
    assert (task.kind, task.metric, task.untrained_below) == ("segmentation", "mIoU", 0.2)
    assert task.example_input.shape == (1, 3, SIZE, SIZE)
    assert task.name == "digit-segmentation?size=48&batch_size=4&eval_scenes=10"


def test_a_perfect_segmenter_scores_one_and_all_background_scores_below_untrained(task):
    assert task.metrics(Oracle(task)) == {"mIoU": 1.0, "pixel accuracy": 1.0}
    background = task.metrics(Oracle(task, background=True))
    # Only the background's IoU counts: about 1/11 of the mean, however many pixels it covers.
    assert background["mIoU"] < task.untrained_below < 0.8 < background["pixel accuracy"]
    assert task.evaluate(Oracle(task, background=True)) == background["mIoU"]


def test_sample_batch_gives_masks_in_the_protocols_form(task):
    inputs, masks = task.sample_batch(3)
    assert inputs.shape == (3, 3, SIZE, SIZE) and masks.shape == (3, SIZE, SIZE) and masks.dtype == torch.int64
    assert masks.min() >= 0 and masks.max() <= 10 and (masks > 0).any()


def test_the_loss_adds_half_the_auxiliary_loss(task):
    inputs, masks = task.sample_batch(2)
    model = tiny_segmenter(aux=True).eval()
    output = model(inputs)
    size = masks.shape[-2:]
    main, aux = (F.cross_entropy(F.interpolate(output[key], size=size, mode="bilinear"), masks,
                                 weight=torch.tensor([0.1] + [1.0] * 10)) for key in ("out", "aux"))
    assert torch.isclose(segmentation_loss(model, inputs, masks), main + 0.5 * aux)
    plain = nn.Conv2d(3, CLASSES, 1)  # a bare tensor output is accepted too
    assert segmentation_loss(plain, inputs, masks).ndim == 0


def test_the_loss_is_differentiable_on_lraspp(task):
    torch.manual_seed(0)
    model = torchvision.models.segmentation.lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=CLASSES).eval()
    inputs, masks = task.sample_batch(2)
    with frozen_norms(model):
        loss = task.loss(model, inputs, masks)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.classifier.low_classifier.weight.grad.abs().sum() > 0 and not model.training


def test_finetune_lowers_the_loss_and_leaves_eval_mode_without_gradients():
    task = digit_segmentation_task(size=SIZE, eval_scenes=4, batch_size=8, lr=0.01)
    model = tiny_segmenter()
    inputs, masks = task.sample_batch(8)

    def held_loss():
        with torch.no_grad(), frozen_norms(model):
            return float(task.loss(model, inputs, masks))

    task.finetune(model, 2)
    before = held_loss()
    task.finetune(model, 30)
    after = held_loss()
    assert after < 0.8 * before, (before, after)
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert 0.0 <= task.evaluate(model) <= 1.0


def test_finetune_estimates_batch_norm_statistics_afresh_and_keeps_each_momentum():
    task = digit_segmentation_task(size=SIZE, eval_scenes=2, batch_size=4)
    model = tiny_segmenter()
    norm = model.body[1]
    norm.momentum = 0.01  # as torchvision's MobileNetV3: too slow to follow weights from scratch
    task.finetune(model, 3)
    assert norm.momentum == 0.01
    # Reset, then one cumulative update per estimation batch: the training steps' are gone.
    assert int(norm.num_batches_tracked) == NORM_BATCHES
    untouched = tiny_segmenter()
    task.finetune(untouched, 0)
    assert int(untouched.body[1].num_batches_tracked) == 0


def test_a_step_whose_loss_is_not_finite_is_skipped():
    class Diverged(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, CLASSES, 1)

        def forward(self, images):
            return self.conv(images) * float("nan")

    task = digit_segmentation_task(size=SIZE, eval_scenes=2, batch_size=2)
    model = Diverged()
    before = model.conv.weight.detach().clone()
    task.finetune(model, 2)
    assert torch.equal(model.conv.weight, before) and torch.isfinite(model.conv.weight).all()
