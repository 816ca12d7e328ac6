"""Does a Jetson fit a target's ``[board]``, and if not, what is it: one function for a board
read here (``detect.py``) and one that reported itself over SSH (``sweep/link.py``)."""

from __future__ import annotations

from typing import Optional

from edgebench.board.jetson_identity import board_name, part_matches, parts
from edgebench.targets.definition import TargetDefinition


def board_fits(definition: TargetDefinition, jetson: dict) -> bool:
    """Whether the Jetson described by ``jetson`` (``env["jetson"]``) is one ``definition`` takes:
    its SoC and one of its parts match the target's ``[board]``; without ``[board]``, any Jetson."""
    wanted = definition.board
    if wanted is None:
        return True
    board_parts = parts(jetson.get("compatible") or [])
    return jetson.get("soc") == wanted.soc and any(part_matches(part, key) for part in board_parts
                                                   for key in wanted.modules)


def board_mismatch(definition: TargetDefinition, jetson: Optional[dict], where: str) -> Optional[str]:
    """Why the machine ``where`` names, described by ``jetson`` (None when it is not a Jetson),
    cannot run the Jetson target ``definition``; None when it can."""
    if jetson is None:
        return f"{where} is not a Jetson (no /etc/nv_tegra_release)"
    if board_fits(definition, jetson):
        return None
    wanted = definition.board
    takes = f"{wanted.soc} with module {' or '.join(wanted.modules)}"
    name = board_name(wanted.modules[0])
    if name is None or name == board_name(jetson.get("module")):
        return f"{where} is {describe(jetson)}, not a board target {definition.name} takes ({takes})"
    return f"{where} is {describe(jetson)}, not {_article(name)} (target {definition.name} takes {takes})"


def describe(jetson: dict) -> str:
    """``an Xavier NX (module p3668-0000, tegra194, model '...')``, for messages."""
    name = board_name(jetson.get("module"))
    facts = [f"module {jetson.get('module') or 'unknown'}", jetson.get("soc") or "SoC unknown"]
    if jetson.get("model"):
        facts.append(f"model {jetson['model']!r}")
    return f"{_article(name) if name else 'a Jetson'} ({', '.join(facts)})"


def board_table(jetson: dict) -> str:
    """The ``[board]`` table a target file needs for this Jetson."""
    if not jetson.get("soc") or not jetson.get("module"):
        return "[board] naming its SoC and module part numbers (its /proc/device-tree/compatible does not say)"
    return f'[board] soc = "{jetson["soc"]}", modules = ["{jetson["module"]}"]'


def _article(name: str) -> str:
    return ("an " if name[0].lower() in "aeiox" else "a ") + name  # "an Xavier NX"
