"""Parse ``tegrastats`` lines from every JetPack into samples.

Board side: this runs in the worker on a Jetson (Python 3.8, standard library only).

A line is split on whitespace and read field by field. A token this module does not recognise
goes to ``TegrastatsSample.unparsed`` and is never guessed at; a line with no field at all raises
``TegrastatsParseError``. The formats handled, and the captures that show each, are listed in
``docs/tegrastats.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

# One CPU core: (load %, clock MHz or None), or None when the core is off.
Core = Optional[Tuple[int, Optional[int]]]
# An engine: {"load": % or None, "freq_mhz": MHz, [MHz per GPC] or None, "on": bool}.
Engine = Dict[str, Union[int, List[int], bool, None]]
# A power rail: {"current_mw", "average_mw", "max_mw"}; max_mw is None unless tegrastats prints it.
Rail = Dict[str, Optional[int]]

# tegrastats prints -256C for a thermal zone that is powered off (Orin GPU and CV zones at idle).
OFFLINE_CELSIUS = -256.0
# Rails that measure the whole input on their own (VDD_IN: Orin NX/Nano, Xavier NX, TX2;
# POM_5V_IN: Nano); the other rails on those boards are parts of it.
WHOLE_INPUT_RAILS = ("VDD_IN", "POM_5V_IN")
# An unconnected INA3221 channel (Orin, JetPack 5): a placeholder, not a rail.
PLACEHOLDER_RAIL = "NC"

_DATE = re.compile(r"\d{2}-\d{2}-\d{4}$")
_TIME = re.compile(r"\d{2}:\d{2}:\d{2}$")
_USED_TOTAL_MB = re.compile(r"(\d+)/(\d+)MB$")
_RAM_LFB = re.compile(r"\d+x\d+[kM]B\)$")
_SWAP_CACHED = re.compile(r"\d+MB\)$")
_CPU_LIST = re.compile(r"\[([^\]]*)\](?:@(\d+))?$")
_CORE_LOAD = re.compile(r"(\d+)%(?:@(\d+))?$")
_FIELD_NAME = re.compile(r"[A-Z][A-Z0-9_]*$")
_ENGINE_LOAD = re.compile(r"(\d+)%(?:@(?:(\d+)|\[(\d+(?:,\d+)*)\]))?$")
_ENGINE_FREQ = re.compile(r"@?(\d+)$")
_RAIL_VALUES = re.compile(r"(\d+)(?:mW)?/(\d+)(?:mW)?(?:/(\d+)(?:mW)?)?$")
_TEMPERATURE = re.compile(r"([A-Za-z][\w-]*)@(-?\d+(?:\.\d+)?)C(?:/-?\d+(?:\.\d+)?C)?$")
_PERCENT = re.compile(r"(\d+)%$")


class TegrastatsParseError(ValueError):
    """A line with no tegrastats field in it."""

    def __init__(self, line: str, line_number: Optional[int] = None) -> None:
        self.line = line.rstrip("\r\n")
        self.line_number = line_number
        shown = self.line if len(self.line) <= 120 else self.line[:117] + "..."
        super().__init__("no tegrastats field in line: %r" % shown)


@dataclass
class TegrastatsSample:
    """One tegrastats line. Fields the line does not carry stay None or empty."""

    timestamp: Optional[datetime] = None
    ram_used_mb: Optional[int] = None
    ram_total_mb: Optional[int] = None
    swap_used_mb: Optional[int] = None
    swap_total_mb: Optional[int] = None
    cpus: List[Core] = field(default_factory=list)
    engines: Dict[str, Engine] = field(default_factory=dict)
    temperatures: Dict[str, float] = field(default_factory=dict)
    offline_sensors: List[str] = field(default_factory=list)
    rails: Dict[str, Rail] = field(default_factory=dict)
    unparsed: List[str] = field(default_factory=list)

    def has_measurements(self) -> bool:
        return bool(self.ram_used_mb is not None or self.swap_used_mb is not None or self.cpus
                    or self.engines or self.temperatures or self.offline_sensors or self.rails)


def parse_line(line: str) -> TegrastatsSample:
    """Parse one line; unknown tokens go to ``unparsed``. Raises ``TegrastatsParseError`` when the
    line carries no measurement at all."""
    tokens = line.split()
    sample = TegrastatsSample()
    position = _read_timestamp(tokens, sample)
    # A capture whose "RAM ... CPU" prefix was cut starts at the bare core list.
    if position == 0:
        position = _read_core_list(tokens[0], sample) if tokens else 0
    while position < len(tokens):
        used = _read_field(tokens, position, sample)
        if used == 0:
            sample.unparsed.append(tokens[position])
            used = 1
        position += used
    if not sample.has_measurements():
        raise TegrastatsParseError(line)
    return sample


def input_rails(sample: TegrastatsSample) -> List[str]:
    """The rails whose sum is the board's input power.

    A rail that measures the whole input (``VDD_IN``, ``POM_5V_IN``) alone when the line has one,
    since the other rails are parts of it; otherwise every rail (AGX Xavier, AGX Orin), as jtop's
    ``total_power`` does. Why, with sources: ``docs/tegrastats.md``.
    """
    whole = [name for name in WHOLE_INPUT_RAILS if name in sample.rails]
    return whole[:1] or list(sample.rails)


def total_power_mw(sample: TegrastatsSample) -> Optional[int]:
    """The board's input power in mW from the rails' current values, or None without rails."""
    names = input_rails(sample)
    if not names:
        return None
    return sum(sample.rails[name]["current_mw"] or 0 for name in names)


class TegrastatsReader:
    """Samples from an iterable of lines (a file, a pipe from ``tegrastats``), one at a time.

    A line that cannot be read is kept in ``errors`` (with its ``line_number``) and reading goes
    on; blank lines are skipped. ``line_num`` is the 1-based number of the line last read, as in
    ``csv.reader``, so a caller can tie each sample to its line.
    """

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = lines
        self.line_num = 0
        self.errors: List[TegrastatsParseError] = []

    def __iter__(self) -> Iterator[TegrastatsSample]:
        for line in self._lines:
            self.line_num += 1
            if not line.strip():
                continue
            try:
                yield parse_line(line)
            except TegrastatsParseError as error:
                error.line_number = self.line_num
                self.errors.append(error)


def _read_timestamp(tokens: List[str], sample: TegrastatsSample) -> int:
    """``MM-DD-YYYY HH:MM:SS`` first on the line (JetPack 5 and later)."""
    if len(tokens) < 2 or not (_DATE.match(tokens[0]) and _TIME.match(tokens[1])):
        return 0
    try:
        sample.timestamp = datetime.strptime(tokens[0] + " " + tokens[1], "%m-%d-%Y %H:%M:%S")
    except ValueError:  # digits in the right places, but not a date (month 13)
        return 0
    return 2


def _read_field(tokens: List[str], position: int, sample: TegrastatsSample) -> int:
    """Read the field that starts at ``position``; return how many tokens it took (0: none)."""
    token = tokens[position]
    following = tokens[position + 1:position + 5]
    if token == "RAM":
        return _read_ram(following, sample)
    if token == "SWAP":
        return _read_swap(following, sample)
    if token == "MTS":
        return _read_mts(following, sample)
    if token == "CPU" and following and _read_core_list(following[0], sample):
        return 2
    if _read_temperature(token, sample):
        return 1
    if _FIELD_NAME.match(token) and following:
        return _read_named_value(token, following[0], sample)
    return 0


def _read_ram(following: List[str], sample: TegrastatsSample) -> int:
    """``RAM 1282/62795MB (lfb 15152x4MB)``; the largest free block is not kept."""
    used_total, consumed = _read_used_total(following, "(lfb", _RAM_LFB)
    if used_total:
        sample.ram_used_mb, sample.ram_total_mb = used_total
    return consumed


def _read_swap(following: List[str], sample: TegrastatsSample) -> int:
    """``SWAP 126/31390MB (cached 0MB)``; the cached amount is not kept."""
    used_total, consumed = _read_used_total(following, "(cached", _SWAP_CACHED)
    if used_total:
        sample.swap_used_mb, sample.swap_total_mb = used_total
    return consumed


def _read_used_total(following: List[str], note: str, note_value: re.Pattern) -> Tuple[Optional[Tuple[int, int]], int]:
    """``USED/TOTALMB`` with an optional ``(note value)`` after it: ((used, total), tokens read)."""
    match = _USED_TOTAL_MB.match(following[0]) if following else None
    if not match:
        return None, 0
    has_note = following[1:2] == [note] and len(following) > 2 and note_value.match(following[2])
    return (int(match.group(1)), int(match.group(2))), 4 if has_note else 2


def _read_mts(following: List[str], sample: TegrastatsSample) -> int:
    """``MTS fg 0% bg 10%``: time in foreground and background tasks, as engines MTS_FG, MTS_BG."""
    if len(following) < 4 or following[0] != "fg" or following[2] != "bg":
        return 0
    foreground, background = _PERCENT.match(following[1]), _PERCENT.match(following[3])
    if not (foreground and background):
        return 0
    sample.engines["MTS_FG"] = {"load": int(foreground.group(1)), "freq_mhz": None, "on": True}
    sample.engines["MTS_BG"] = {"load": int(background.group(1)), "freq_mhz": None, "on": True}
    return 5


def _read_core_list(token: str, sample: TegrastatsSample) -> int:
    """``[17%@1190,off,...]``, or the older ``[2%,1%,off,off]@102`` with one clock for all."""
    match = _CPU_LIST.match(token)
    if not match:
        return 0
    shared_mhz = int(match.group(2)) if match.group(2) else None
    cores = [_core(item, shared_mhz) for item in match.group(1).split(",")]
    if any(core is False for core in cores):
        return 0
    sample.cpus = cores
    return 1


def _core(item: str, shared_mhz: Optional[int]) -> Union[Core, bool]:
    """One core of the list, or False when the item is not a core."""
    if item == "off":
        return None
    match = _CORE_LOAD.match(item)
    if not match:
        return False
    return int(match.group(1)), int(match.group(2)) if match.group(2) else shared_mhz


def _read_temperature(token: str, sample: TegrastatsSample) -> bool:
    """``CPU@42.593C``, JetPack 7's ``cpu@52.9C/53.1C`` (current/max: current is kept), and
    ``GPU@-256C`` (sensor offline: listed, not a temperature)."""
    match = _TEMPERATURE.match(token)
    if not match:
        return False
    sensor, celsius = match.group(1), float(match.group(2))
    if celsius == OFFLINE_CELSIUS:
        sample.offline_sensors.append(sensor)
    else:
        sample.temperatures[sensor] = celsius
    return True


def _read_named_value(name: str, value: str, sample: TegrastatsSample) -> int:
    """``NAME value``: a power rail when the value has slashes, otherwise an engine."""
    rail = _RAIL_VALUES.match(value)
    if rail:
        if name != PLACEHOLDER_RAIL:
            sample.rails[name] = _rail(rail)
        return 2
    engine = _engine(value)
    if engine is None:
        return 0
    # Named as printed: JetPack 5's NVDLA0_FREQ and JetPack 6's NVDLA0 stay two names.
    sample.engines[name] = engine
    return 2


def _rail(match: re.Match) -> Rail:
    """``current/average`` or JetPack 7's ``instant/average/max``, with or without ``mW``."""
    maximum = match.group(3)
    return {"current_mw": int(match.group(1)), "average_mw": int(match.group(2)),
            "max_mw": int(maximum) if maximum else None}


def _engine(value: str) -> Optional[Engine]:
    """``55%@2133``, ``0%`` (no clock without root), ``14%@[407,407]`` (one clock per GPC),
    ``115`` or ``@1600`` (clock only), ``off``; None for anything else."""
    if value == "off":
        return {"load": None, "freq_mhz": None, "on": False}
    clock_only = _ENGINE_FREQ.match(value)
    if clock_only:
        return {"load": None, "freq_mhz": int(clock_only.group(1)), "on": True}
    match = _ENGINE_LOAD.match(value)
    if not match:
        return None
    single, per_gpc = match.group(2), match.group(3)
    freq: Union[int, List[int], None] = None
    if single:
        freq = int(single)
    elif per_gpc:
        freq = [int(mhz) for mhz in per_gpc.split(",")]
    return {"load": int(match.group(1)), "freq_mhz": freq, "on": True}
