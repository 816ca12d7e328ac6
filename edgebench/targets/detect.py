"""What this machine is: a Jetson (and which), a machine with an NVIDIA GPU, or a plain CPU.

Every read goes through the system root (``EDGEBENCH_SYSROOT``), so an emulated Jetson in a
directory is detected exactly like a real one. A Jetson is described by the same dict its
worker reports (``env["jetson"]``), so a local board and a remote one are checked alike.
"""

from __future__ import annotations

import glob
import platform
import shutil
from dataclasses import dataclass
from typing import Optional

from edgebench.board import system
from edgebench.board.machine import jetson_environment


@dataclass(frozen=True)
class LocalMachine:
    #: ``board.machine.jetson_environment()``: release, model, compatible, soc, module, serial.
    jetson: Optional[dict]
    nvidia_gpu: Optional[str]  # how a discrete NVIDIA GPU was found, or None
    machine: str  # platform.machine()


def detect() -> LocalMachine:
    jetson = jetson_environment()
    return LocalMachine(jetson=jetson, nvidia_gpu=None if jetson else _nvidia_gpu(), machine=platform.machine())


def _nvidia_gpu() -> Optional[str]:
    if glob.glob(system.path("/proc/driver/nvidia/gpus/*")):
        return "/proc/driver/nvidia/gpus"
    if system.sysroot() == "/" and shutil.which("nvidia-smi"):
        return "nvidia-smi"
    return None
