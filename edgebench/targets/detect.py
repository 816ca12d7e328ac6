"""What this machine is: a Jetson (and which), a machine with an NVIDIA GPU, or a plain CPU.

Every read goes through the system root (``EDGEBENCH_SYSROOT``), so an emulated Jetson in a
directory is detected exactly like a real one.
"""

from __future__ import annotations

import glob
import platform
import shutil
from dataclasses import dataclass
from typing import Optional

from edgebench.board import system


@dataclass(frozen=True)
class LocalMachine:
    jetson_model: Optional[str]  # /proc/device-tree/model when /etc/nv_tegra_release exists
    jetson_release: Optional[str]
    nvidia_gpu: Optional[str]  # how a discrete NVIDIA GPU was found, or None
    machine: str  # platform.machine()

    @property
    def is_jetson(self) -> bool:
        return self.jetson_release is not None


def detect() -> LocalMachine:
    release = system.jetson_release()
    return LocalMachine(
        jetson_model=system.device_tree_model() if release else None,
        jetson_release=release,
        nvidia_gpu=None if release else _nvidia_gpu(),
        machine=platform.machine(),
    )


def _nvidia_gpu() -> Optional[str]:
    if glob.glob(system.path("/proc/driver/nvidia/gpus/*")):
        return "/proc/driver/nvidia/gpus"
    if system.sysroot() == "/" and shutil.which("nvidia-smi"):
        return "nvidia-smi"
    return None
