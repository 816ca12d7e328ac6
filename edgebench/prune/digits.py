"""The built-in task: scikit-learn's handwritten digits, sized for image models.

The data ships inside scikit-learn (1797 8x8 greyscale images, 10 classes), so the task needs no
download. Each image is upscaled with bilinear interpolation to ``size`` x ``size``, repeated to 3
channels (a torchvision model fits with ``num_classes=10``) and normalised with the training
split's mean and standard deviation. The split is stratified and seeded: 1347 training and 450
held-out images at the default ``test_fraction=0.25``. Kind ``classification``, metric
``accuracy``; ``loss`` is the cross-entropy of the logits, and ``finetune`` trains with it.
``source_digits`` and ``split_indices`` are the raw data and the split, which the digit scenes
(``digit_scenes``) reuse.

Options (``digits?size=64&seed=1``): ``size`` (32), ``seed`` (0; split, shuffling and
``sample_batch``), ``batch_size`` (64), ``lr`` (0.01; SGD, Nesterov momentum 0.9), ``test_fraction``
(0.25).

Measured on 2 CPU cores (torch 2.14.1): a fresh ``torchvision.models.resnet18(num_classes=10)``
at size 32 with the defaults, one ``finetune`` call, then ``evaluate`` (held-out accuracy)::

    .venv/bin/python -c "import time, torch, torchvision
    from edgebench.prune.digits import digits_task
    task = digits_task(); torch.manual_seed(0); model = torchvision.models.resnet18(num_classes=10)
    start = time.perf_counter(); task.finetune(model, 100); print(time.perf_counter() - start)
    print(task.evaluate(model))"

    steps  50: accuracy 0.962
    steps 100: 20.9 s, accuracy 0.978
    steps 150: 27.1 s, accuracy 0.989

The accuracies repeat exactly run to run; the seconds roughly double while another process shares
the two cores.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from edgebench.prune.task_options import (
    options_query, require_between, require_int, require_positive, with_defaults,
)
from edgebench.prune.tasks import described, model_device

DEFAULTS: dict[str, Any] = {"size": 32, "seed": 0, "batch_size": 64, "lr": 0.01, "test_fraction": 0.25}
SOURCE_SIZE = 8
EVAL_BATCH = 256


@described("classification", "accuracy", DEFAULTS)
def digits_task(**options: Any) -> DigitsTask:
    """Classify scikit-learn's 8x8 handwritten digits, upscaled to size x size (10 classes)."""
    return DigitsTask(**with_defaults("digits", options, DEFAULTS))


class DigitsTask:
    """Fine-tunes and evaluates a classifier on the digits; the data lives in memory as tensors."""

    kind = "classification"
    metric = "accuracy"

    def __init__(self, size: int, seed: int, batch_size: int, lr: float, test_fraction: float):
        _check_options(size, seed, batch_size, lr, test_fraction)
        self.size, self.seed, self.batch_size, self.lr = size, seed, batch_size, lr
        options = {"size": size, "seed": seed, "batch_size": batch_size, "lr": lr, "test_fraction": test_fraction}
        self.name = "digits" + options_query(options, DEFAULTS)
        self.split = load_split(size, seed, test_fraction)
        self.example_input = _rgb(self.split.test_x[:1])
        # Shuffling continues across finetune calls, so short budgets still walk whole epochs.
        self._shuffle = torch.Generator().manual_seed(seed)
        self._order = torch.empty(0, dtype=torch.long)
        self._position = 0
        # A separate stream, so scoring channels does not change what fine-tuning sees next.
        self._sampler = torch.Generator().manual_seed(seed + 1)

    def evaluate(self, model: nn.Module) -> float:
        """Accuracy on the held-out split, in [0, 1]; the model is left in eval mode."""
        model.eval()
        device = model_device(model)
        correct = 0
        with torch.inference_mode():
            for start in range(0, len(self.split.test_y), EVAL_BATCH):
                inputs = _rgb(self.split.test_x[start:start + EVAL_BATCH]).to(device)
                labels = self.split.test_y[start:start + EVAL_BATCH].to(device)
                correct += int((model(inputs).argmax(dim=1) == labels).sum())
        return correct / len(self.split.test_y)

    def metrics(self, model: nn.Module) -> dict[str, float]:
        """The one metric this task computes: held-out accuracy."""
        return {self.metric: self.evaluate(model)}

    def loss(self, model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the model's logits, in the model's current mode."""
        return F.cross_entropy(model(inputs), labels)

    def finetune(self, model: nn.Module, budget: int) -> None:
        """Train in place for ``budget`` SGD steps; the model is left in eval mode."""
        if budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
        # Built on every call: pruning replaces parameters, so an optimizer must not outlive them.
        parameters = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(parameters, lr=self.lr, momentum=0.9, nesterov=True)
        device = model_device(model)
        model.train()
        try:
            for _ in range(budget):
                indices = self._next_indices()
                inputs = _rgb(self.split.train_x[indices]).to(device)
                labels = self.split.train_y[indices].to(device)
                optimizer.zero_grad(set_to_none=True)
                self.loss(model, inputs, labels).backward()
                optimizer.step()
        finally:
            optimizer.zero_grad(set_to_none=True)
            model.eval()

    def sample_batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` random training images and their labels (the whole split if it is smaller)."""
        count = min(size, len(self.split.train_y))
        indices = torch.randperm(len(self.split.train_y), generator=self._sampler)[:count]
        return _rgb(self.split.train_x[indices]), self.split.train_y[indices]

    def _next_indices(self) -> torch.Tensor:
        # Epochs of full batches: a short last batch would give BatchNorm noisy statistics.
        if self._position + self.batch_size > len(self._order):
            self._order = torch.randperm(len(self.split.train_y), generator=self._shuffle)
            self._position = 0
        indices = self._order[self._position:self._position + self.batch_size]
        self._position += self.batch_size
        return indices


class Split(NamedTuple):
    """Images (N, 1, size, size), normalised; labels (N,) int64; rows of the full data set."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    train_index: torch.Tensor
    test_index: torch.Tensor


def source_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The whole data set as shipped: images (1797, 1, 8, 8) in [0, 1] and labels (1797,) int64."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.data, dtype=torch.float32).reshape(-1, 1, SOURCE_SIZE, SOURCE_SIZE)
    return images / 16.0, torch.tensor(digits.target, dtype=torch.long)


def split_indices(labels: torch.Tensor, seed: int, test_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and held-out rows of the data set: stratified by label, seeded."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        range(len(labels)), test_size=test_fraction, stratify=labels.numpy(), random_state=seed
    )
    return torch.tensor(train), torch.tensor(test)


def load_split(size: int, seed: int, test_fraction: float = 0.25) -> Split:
    """The stratified, seeded train and held-out split at ``size`` x ``size``."""
    images, labels = source_digits()
    train, test = split_indices(labels, seed, test_fraction)
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    mean, std = images[train].mean(), images[train].std()
    images = (images - mean) / std
    return Split(images[train], labels[train], images[test], labels[test], train, test)


def _rgb(images: torch.Tensor) -> torch.Tensor:
    # One channel is stored and repeated per batch: a third of the memory at large sizes.
    return images.expand(-1, 3, -1, -1).contiguous()


def _check_options(size: Any, seed: Any, batch_size: Any, lr: Any, test_fraction: Any) -> None:
    require_int("digits", "size", size, SOURCE_SIZE)
    require_int("digits", "seed", seed, 0)
    require_int("digits", "batch_size", batch_size, 2)  # BatchNorm cannot train on a batch of one
    require_positive("digits", "lr", lr)
    require_between("digits", "test_fraction", test_fraction, 0.05, 0.5)
