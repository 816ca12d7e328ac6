"""The environment fingerprint of the machine a measurement runs on, so results stay comparable.

Board-side (Python 3.8, standard library): on a remote board the worker reports its own
machine, which is what the records must carry.
"""

from __future__ import annotations

import os
import platform
import socket
from importlib import metadata

import hashlib

import edgebench
from edgebench.board import jetson_identity, system

# Libraries whose version changes what a measurement means.
TRACKED_PACKAGES = ("torch", "torchvision", "onnxruntime", "onnxruntime-gpu", "onnx", "numpy", "tensorrt",
                    "cuda-python", "nvidia-ml-py", "jetson-stats")


def machine_environment():
    """CPU, GPU model, OS, Python, library versions and, on a Jetson, what identifies the board;
    with the machine's identity (``machine_id``) computed from them."""
    environment = {
        "host": socket.gethostname(),
        "os": "%s %s" % (platform.system(), platform.release()),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "gpu_model": system.nvidia_gpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "edgebench": edgebench.__version__,
        "packages": package_versions(),
        "jetson": jetson_environment(),
    }
    environment["machine_id"] = machine_identity(environment)
    return environment


def jetson_environment():
    """On a Jetson (/etc/nv_tegra_release exists): its L4T release, the device-tree model (for
    display only), the compatible list, SoC and module part number that identify the board
    (``board/jetson_identity.py``) and its serial number; None elsewhere."""
    release = system.jetson_release()
    if release is None:
        return None
    identity = jetson_identity.identify(system.device_tree_compatible(), system.soc_id())
    return {"release": release, "model": system.device_tree_model(), **identity,
            "serial": system.device_tree_serial()}


def machine_identity(environment):
    """A short stable id of the measured machine: host, CPU model, GPU model and the board's
    serial number where there is one. Two hosts that share a target name (x86-cpu) get two
    histories; the same board keeps its id across library upgrades and reboots."""
    jetson = environment.get("jetson") or {}
    parts = [environment.get("host"), environment.get("cpu_model"), environment.get("gpu_model"),
             jetson.get("serial")]
    text = "\0".join("" if part is None else str(part) for part in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def package_versions():
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def cpu_model():
    for line in (system.read_text("/proc/cpuinfo") or "").splitlines():
        if line.lower().startswith(("model name", "hardware")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
