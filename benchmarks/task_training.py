"""How far a fresh torchvision model trains on a built-in task, in chunks of fine-tuning steps.

Usage: python benchmarks/task_training.py TASK STEPS CHUNK BUILDER

BUILDER is a function of ``torchvision.models.detection`` or ``torchvision.models.segmentation``
(e.g. ``ssdlite320_mobilenet_v3_large``, ``lraspp_mobilenet_v3_large``), built with
``weights=None, weights_backbone=None, num_classes=11`` after ``torch.manual_seed(0)``. Prints the
held-out metrics before training and after every CHUNK steps, with the cumulative training seconds.
The figures in ``docs/tasks.md`` come from this script.
"""

import sys
import time

import torch
import torchvision

from edgebench.prune.tasks import load_task


def main() -> None:
    if len(sys.argv) != 5:
        sys.exit(__doc__.split("\n\n")[1])
    task = load_task(sys.argv[1])
    steps, every, builder = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    torch.manual_seed(0)
    build = getattr(torchvision.models.detection, builder, None) or getattr(torchvision.models.segmentation, builder)
    model = build(weights=None, weights_backbone=None, num_classes=11)
    print(0, task.metrics(model), flush=True)
    spent = 0.0
    for done in range(every, steps + 1, every):
        start = time.perf_counter()
        task.finetune(model, every)
        spent += time.perf_counter() - start
        print(done, round(spent, 1), task.metrics(model), flush=True)


if __name__ == "__main__":
    main()
