"""Which Jetson a board is: its SoC and module part number, never its model string.

/proc/device-tree/model is free text that changes between L4T releases (an AGX Xavier on R32
says ``Jetson-AGX``). The device tree's compatible list names the module's (or the developer
kit's) part number and the SoC, and /sys/devices/soc0/soc_id is the chip id; jetson-stats and
Jetson.GPIO identify boards from the same strings. Board-side: Python 3.8, standard library.
"""

from __future__ import annotations

import re

# Tegra chip ids as /sys/devices/soc0/soc_id prints them (the kernel's include/soc/tegra/fuse.h).
SOC_NAMES = {0x18: "tegra186", 0x19: "tegra194", 0x21: "tegra210", 0x23: "tegra234"}
_SOC = re.compile(r"^tegra[0-9]+$")

# Part numbers -> (board name, SoC); a part matches a key equal to it or a prefix of it up to a
# dash, and the longest key wins. AGX Xavier devkits name only the devkit (P2972-0000), other
# boards name their module (P2888, P3668, P3701, P3767-000N).
BOARDS = {
    "p2888": ("AGX Xavier", "tegra194"),
    "p2972-0000": ("AGX Xavier", "tegra194"),
    "p2972-0006": ("AGX Xavier Industrial", "tegra194"),
    "jetson-xavier-industrial": ("AGX Xavier Industrial", "tegra194"),
    "p3668": ("Xavier NX", "tegra194"),
    "p3701": ("AGX Orin", "tegra234"),
    "p3767": ("Orin Nano", "tegra234"),
    "p3767-0000": ("Orin NX", "tegra234"),
    "p3767-0001": ("Orin NX", "tegra234"),
}


def identify(compatible, chip_id):
    """``{"compatible", "soc", "module"}`` from the compatible list and the SoC's chip id."""
    return {"compatible": list(compatible), "soc": soc(compatible, chip_id), "module": module(compatible)}


def parts(compatible):
    """Every part a compatible list names, vendor prefix dropped and carrier+module pairs split:
    ``nvidia,p3737-0000+p3701-0000`` gives ``p3737-0000`` and ``p3701-0000``."""
    found = []
    for entry in compatible:
        found += [part for part in entry.split(",", 1)[-1].lower().split("+") if part]
    return found


def soc(compatible, chip_id):
    """``tegra194`` and the like: from the chip id, else from the compatible list; or None."""
    if chip_id in SOC_NAMES:
        return SOC_NAMES[chip_id]
    return next((part for part in parts(compatible) if _SOC.match(part)), None)


def module(compatible):
    """The part that identifies the board: the first entry that is neither the SoC nor a
    carrier+module pair, else the module of the first pair; None without a compatible list."""
    singles = [entry.split(",", 1)[-1].lower() for entry in compatible if "+" not in entry]
    single = next((part for part in singles if not _SOC.match(part)), None)
    if single is not None:
        return single
    pairs = [entry.split(",", 1)[-1].lower().split("+") for entry in compatible if "+" in entry]
    return pairs[0][-1] if pairs else None


def part_matches(part, key):
    """``p2888-0001`` matches ``p2888`` and ``p2888-0001``, not ``p28880``."""
    return part == key or part.startswith(key + "-")


def board_name(part):
    """The board a part number belongs to (``Xavier NX``), or None for an unknown part."""
    keys = [key for key in BOARDS if part is not None and part_matches(part, key)]
    return BOARDS[max(keys, key=len)][0] if keys else None
