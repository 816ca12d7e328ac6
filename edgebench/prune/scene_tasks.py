"""What the digit-scene tasks (``digit-detection``, ``digit-segmentation``) share: their options,
the held-out scenes, the training stream, batches and the fine-tuning loop.

Fine-tuning must be robust from random initialisation (torchvision's ssd300_vgg16 has no
BatchNorm and diverges to NaN at SGD lr 0.01 from scratch), so every ``finetune`` call warms the
learning rate up linearly over its first ``warmup`` steps, clips the gradient norm at
``CLIP_NORM`` and skips a step whose loss is not finite rather than apply it. Then, when the model
has BatchNorm, its running statistics are estimated afresh from ``NORM_BATCHES`` training batches:
torchvision's MobileNetV3 networks update them with momentum 0.01, far too slowly to follow weights
that change quickly, and a detector or segmenter trained from scratch then predicts nothing but the
background in eval mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from edgebench.prune.digit_scenes import Scene, SceneLayout, as_float, draw_scenes, split_sources
from edgebench.prune.task_options import (
    options_query, require_between, require_choice, require_int, require_positive,
)
from edgebench.prune.tasks import model_device

OPTIMIZERS = ("adamw", "sgd")
CLIP_NORM = 10.0
NORM_BATCHES = 10
EVAL_BATCH = 8
MAX_DIGITS = 6


def scene_defaults(size: int, batch_size: int, lr: float, min_scale: float, max_scale: float) -> dict[str, Any]:
    """A scene task's options and defaults, in the order its name shows them; what the tasks
    share is fixed here."""
    return {"size": size, "seed": 0, "batch_size": batch_size, "lr": lr, "optimizer": "adamw", "warmup": 20,
            "min_digits": 1, "max_digits": 3, "min_scale": min_scale, "max_scale": max_scale, "eval_scenes": 100}


class SceneTask:
    """Held-out scenes drawn once from held-out digits; training scenes drawn on the fly from
    training digits. Subclasses say what a target is, the loss and the metrics."""

    task_name = ""
    defaults: dict[str, Any] = {}

    def __init__(self, options: dict[str, Any]):
        self._check(options)
        self.seed, self.batch_size, self.lr = options["seed"], options["batch_size"], options["lr"]
        self.optimizer, self.warmup = options["optimizer"], options["warmup"]
        self.name = self.task_name + options_query(options, self.defaults)
        self.layout = SceneLayout(options["size"], options["min_digits"], options["max_digits"],
                                  options["min_scale"], options["max_scale"])
        self.train_digits, self.heldout_digits = split_sources(self.seed)
        # Separate streams: evaluation, scoring channels and fine-tuning never shift each other.
        self.heldout = draw_scenes(self.heldout_digits, self.layout, options["eval_scenes"],
                                   torch.Generator().manual_seed(self.seed + 2))
        self.example_input = as_float(self.heldout[0].image[None])
        self._stream = torch.Generator().manual_seed(self.seed)
        self._sampler = torch.Generator().manual_seed(self.seed + 1)

    def targets(self, scenes: list[Scene]) -> Any:
        """The targets of ``scenes`` in the protocol's form for this task's kind."""
        raise NotImplementedError

    def loss(self, model: nn.Module, inputs: torch.Tensor, targets: Any) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self, model: nn.Module) -> dict[str, float]:
        raise NotImplementedError

    def evaluate(self, model: nn.Module) -> float:
        """The headline metric on the held-out scenes, in [0, 1]; the model is left in eval mode."""
        return self.metrics(model)[self.metric]

    def sample_batch(self, size: int) -> tuple[torch.Tensor, Any]:
        """``size`` fresh training scenes: inputs (N, 3, H, W) in [0, 1] and their targets."""
        return self._batch(draw_scenes(self.train_digits, self.layout, size, self._sampler))

    def training_scenes(self, count: int) -> list[Scene]:
        """The next ``count`` scenes of the fine-tuning stream (training digits only), which
        continues across ``finetune`` calls."""
        return draw_scenes(self.train_digits, self.layout, count, self._stream)

    def finetune(self, model: nn.Module, budget: int) -> None:
        """Train in place for ``budget`` steps on fresh training scenes; left in eval mode."""
        if budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
        # Built on every call: pruning replaces parameters, so an optimizer must not outlive them.
        parameters = [p for p in model.parameters() if p.requires_grad]
        optimizer = _optimizer(self.optimizer, parameters, self.lr)
        device = model_device(model)
        model.train()
        try:
            for step in range(budget):
                for group in optimizer.param_groups:
                    group["lr"] = self.lr * min(1.0, (step + 1) / max(1, self.warmup))
                inputs, targets = self._batch(self.training_scenes(self.batch_size))
                loss = self.loss(model, inputs.to(device), _to(targets, device))
                if not torch.isfinite(loss):
                    continue  # one diverging batch must not poison the weights
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(parameters, CLIP_NORM)
                optimizer.step()
            if budget:
                self._estimate_norm_statistics(model, device)
        finally:
            optimizer.zero_grad(set_to_none=True)
            model.eval()

    def _estimate_norm_statistics(self, model: nn.Module, device: torch.device) -> None:
        """Every BatchNorm's running mean and variance, averaged over fresh training batches."""
        norms = [module for module in model.modules()
                 if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats]
        momenta = [norm.momentum for norm in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average over the batches below
        model.train()
        try:
            with torch.no_grad():
                for _ in range(NORM_BATCHES if norms else 0):
                    inputs, targets = self._batch(self.training_scenes(self.batch_size))
                    self.loss(model, inputs.to(device), _to(targets, device))
        finally:
            for norm, momentum in zip(norms, momenta):
                norm.momentum = momentum

    def heldout_batches(self) -> Iterator[tuple[torch.Tensor, list[Scene]]]:
        """The held-out scenes in batches: float inputs and the scenes they came from."""
        for start in range(0, len(self.heldout), EVAL_BATCH):
            scenes = self.heldout[start:start + EVAL_BATCH]
            yield as_float(torch.stack([scene.image for scene in scenes])), scenes

    def _batch(self, scenes: list[Scene]) -> tuple[torch.Tensor, Any]:
        return as_float(torch.stack([scene.image for scene in scenes])), self.targets(scenes)

    def _check(self, options: dict[str, Any]) -> None:
        task = self.task_name
        require_int(task, "size", options["size"], 32)
        require_int(task, "seed", options["seed"], 0)
        require_int(task, "batch_size", options["batch_size"], 2)  # BatchNorm cannot train on one
        require_positive(task, "lr", options["lr"])
        require_choice(task, "optimizer", options["optimizer"], OPTIMIZERS)
        require_int(task, "warmup", options["warmup"], 0)
        require_int(task, "min_digits", options["min_digits"], 1, MAX_DIGITS)
        require_int(task, "max_digits", options["max_digits"], options["min_digits"], MAX_DIGITS)
        require_between(task, "min_scale", options["min_scale"], 0.05, 0.5)
        require_between(task, "max_scale", options["max_scale"], options["min_scale"], 0.5)
        require_int(task, "eval_scenes", options["eval_scenes"], 1)


def _optimizer(name: str, parameters: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-4)
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-4)


def _to(targets: Any, device: torch.device) -> Any:
    if isinstance(targets, torch.Tensor):
        return targets.to(device)
    return [{key: value.to(device) for key, value in target.items()} for target in targets]
