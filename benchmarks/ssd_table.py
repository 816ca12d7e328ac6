"""The per-network table of the seeds' SSD study: kernels active on under 5% of inputs pruned statically.

Usage: python benchmarks/ssd_table.py --out DIR [--networks vgg,squeezenet,ssdlite[,resnet50]]
       [--threshold 0.05] [--train-steps 200] [--finetune-steps 50] [--final-finetune-steps 50] [--rounds 10]

For each network, one command: ``edgebench prune --strategy static --criterion utilisation
--threshold 0.05`` on the ``digit-detection`` task, measured on eager and ONNX Runtime, into one
store. The table is then the store's own view, ``edgebench compare --pruned --format markdown``:
MACs and parameters of the measured network, weights and ONNX sizes, mAP and latency per backend,
before and after, with the change in percent. Nothing in it is assembled by hand.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cli_run import edgebench  # benchmarks/cli_run.py, beside this script

# name -> (model spec, task spec): each network at its own input side.
NETWORKS = {
    "vgg": ("torchvision:ssd300_vgg16?num_classes=11", "digit-detection"),
    "squeezenet": ("edgebench:squeezenet_ssd?num_classes=11", "digit-detection"),
    "ssdlite": ("torchvision:ssdlite320_mobilenet_v3_large?num_classes=11", "digit-detection?size=320"),
    "resnet50": ("edgebench:ssd300_resnet50?num_classes=11", "digit-detection"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--networks", default="vgg,squeezenet,ssdlite", help=f"of {', '.join(NETWORKS)}")
    parser.add_argument("--threshold", default="0.05")
    parser.add_argument("--train-steps", default="200")
    parser.add_argument("--finetune-steps", default="50")
    parser.add_argument("--final-finetune-steps", default="50")
    parser.add_argument("--rounds", default="10")
    args = parser.parse_args()
    chosen = args.networks.split(",")
    unknown = [name for name in chosen if name not in NETWORKS]
    if unknown:
        parser.error(f"unknown network {', '.join(unknown)}; choose from {', '.join(NETWORKS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    store = str(args.out / "results.db")
    for name in chosen:
        model, task = NETWORKS[name]
        started = time.perf_counter()
        edgebench("prune", "--model", model, "--task", task, "--strategy", "static", "--criterion", "utilisation",
                  "--threshold", args.threshold, "--backend", "eager,onnxruntime", "--train-steps", args.train_steps,
                  "--finetune-steps", args.finetune_steps, "--final-finetune-steps", args.final_finetune_steps,
                  "--rounds", args.rounds, "--store", store, "--out", str(args.out / name))
        print(f"{name}: {time.perf_counter() - started:.0f} s for the prune command (training included)", flush=True)
    edgebench("compare", "--pruned", "--store", store, "--format", "markdown")


if __name__ == "__main__":
    main()
