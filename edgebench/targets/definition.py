"""What a target is: a validated TOML definition (devices, power modes, power sources, limits).

Built-in definitions live in ``edgebench/targets/builtin/``; users copy one and pass
``--target path/to/board.toml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from edgebench.board.jetson_identity import BOARDS
from edgebench.errors import UsageError
from edgebench.tomlfile import load_toml

Kind = Literal["cpu", "cuda", "jetson"]
Device = Literal["cpu", "gpu", "dla0", "dla1"]
PowerSource = Literal["tegrastats", "jtop", "rapl", "nvml"]
DEFAULT_MODE = "default"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PowerMode(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    nvpmodel_id: int = Field(ge=0)
    #: The name `nvpmodel -q` prints for this mode, e.g. MAXN or MODE_15W.
    nvpmodel_name: Optional[str] = None


class Thermal(_Strict):
    limit_c: float = Field(gt=0, le=150)


class Board(_Strict):
    """Which Jetsons a target describes: the SoC and the part numbers from the board's
    /proc/device-tree/compatible (``p2888`` matches ``nvidia,p2888-0001``; see
    ``board/jetson_identity.py``). Boards with the same SoC but other power modes (an Xavier NX
    next to an AGX Xavier) differ in their part numbers."""

    soc: str = Field(pattern=r"^tegra[0-9]+$")
    modules: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]] = Field(min_length=1)


class Remote(_Strict):
    """A board reached over SSH with the system's OpenSSH client (``~/.ssh/config`` applies).
    A lab target leaves host, port and user out: the reserved place's NetworkService gives them."""

    host: Optional[str] = Field(default=None, min_length=1)
    port: Optional[int] = Field(default=None, ge=1, le=65535)
    user: Optional[str] = None
    #: The board's Python (3.8 or newer) with numpy and the backends installed.
    python: str = "python3"
    #: Where the worker's code, the artifacts and the board lock live on the board.
    workdir: str = "~/.cache/edgebench-worker"
    #: Extra ssh arguments, e.g. ["-F", "/path/to/ssh_config"] or ["-J", "jumphost"].
    ssh_options: list[str] = Field(default_factory=list)
    #: Environment for the board's commands (PATH to nvpmodel, LD_LIBRARY_PATH for TensorRT, ...).
    env: dict[str, str] = Field(default_factory=dict)
    #: Run nvpmodel and jetson_clocks through ``sudo -n`` (passwordless sudo for them).
    sudo: bool = False
    #: How long a second workstation waits for a busy board.
    lock_timeout_s: float = Field(default=600.0, gt=0)


class Lab(_Strict):
    """A board reserved through a labgrid coordinator: a place by name, or any place with these
    tags (both: that place, if it has the tags). See docs/remote.md, "Boards in a labgrid lab"."""

    #: "host:port" of the coordinator; LG_COORDINATOR when left out, then labgrid's default.
    coordinator: Optional[str] = Field(default=None, min_length=1)
    place: Optional[str] = Field(default=None, min_length=1)
    #: labgrid's tag keys are lower-case words (``board = "xavier"``).
    tags: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]+$")], Annotated[str, Field(min_length=1)]] = \
        Field(default_factory=dict)
    #: How long to wait in the coordinator's queue for a free place.
    reserve_timeout_s: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _names_a_place(self) -> "Lab":
        if self.place is None and not self.tags:
            raise ValueError("[lab] needs place = \"NAME\" or tags = { KEY = \"VALUE\" }")
        return self

    @property
    def wanted(self) -> str:
        """The place or tags asked for, as messages name them: ``a place with board=xavier``."""
        tags = ", ".join(f"{key}={value}" for key, value in self.tags.items())
        if self.place is None:
            return f"a place with {tags}"
        return f"place {self.place}" + (f" with {tags}" if tags else "")


class TargetDefinition(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: Kind
    description: str = ""
    #: The Jetsons this target describes (kind jetson; without it any Jetson is taken).
    board: Optional[Board] = None
    #: Refused: earlier versions matched the free-text device-tree model; the message says what
    #: to write instead.
    model_match: Optional[str] = None
    devices: list[Device] = Field(min_length=1)
    default_device: Device
    backends: list[str] = Field(min_length=1)
    power_sources: list[PowerSource] = Field(default_factory=list)
    modes: list[PowerMode] = Field(default_factory=list)
    default_mode: Optional[str] = None
    thermal: Optional[Thermal] = None
    #: How to reach the board over SSH; None for this machine. Present for every lab target.
    remote: Optional[Remote] = None
    #: Where the board comes from when a labgrid coordinator hands it out instead of a fixed host.
    lab: Optional[Lab] = None

    @model_validator(mode="before")
    @classmethod
    def _lab_is_remote(cls, data):
        """A lab board is measured over SSH: a lab target without a [remote] table gets its defaults."""
        if isinstance(data, dict) and data.get("lab") is not None and data.get("remote") is None:
            return {**data, "remote": {}}
        return data

    @field_validator("model_match")
    @classmethod
    def _no_model_match(cls, value: Optional[str]) -> None:
        if value is not None:
            raise PydanticCustomError("model_match", "boards are recognised by SoC and module part number, not "
                                      "by the model string: replace model_match with {board}",
                                      {"board": board_table_for(value)})
        return None

    @model_validator(mode="after")
    def _consistent(self) -> "TargetDefinition":
        if self.default_device not in self.devices:
            raise ValueError(f"default_device {self.default_device!r} is not one of devices {self.devices}")
        names = [mode.name for mode in self.modes]
        if len(set(names)) != len(names):
            raise ValueError(f"mode names repeat: {names}")
        if self.board is not None and self.kind != "jetson":
            raise ValueError("[board] only describes Jetsons (kind 'jetson')")
        if self.modes and self.kind != "jetson":
            raise ValueError("power modes are only supported on kind 'jetson' (nvpmodel)")
        if self.default_mode is not None and self.default_mode not in names:
            raise ValueError(f"default_mode {self.default_mode!r} is not one of the modes {names}")
        self._one_board_address()
        return self

    def _one_board_address(self) -> None:
        """Exactly one of [remote] host and [lab] says where the board is."""
        if self.remote is None:
            return
        fixed = [name for name in ("host", "port", "user") if getattr(self.remote, name) is not None]
        if self.lab is not None and fixed:
            raise ValueError(f"[remote] {', '.join(fixed)} and [lab] both say where the board is: with [lab] the "
                             "place's NetworkService gives the address, port and user, so leave them out")
        if self.lab is None and self.remote.host is None:
            raise ValueError("[remote] needs host = \"BOARD\", or a [lab] table naming a labgrid place or tags")

    @property
    def mode_names(self) -> list[str]:
        return [mode.name for mode in self.modes] or [DEFAULT_MODE]

    def mode(self, name: str) -> Optional[PowerMode]:
        """The power mode called ``name``; None for the default of a target without modes.
        UsageError naming the valid modes otherwise."""
        for mode in self.modes:
            if mode.name == name.lower():
                return mode
        if not self.modes and name == DEFAULT_MODE:
            return None
        raise UsageError(f"target {self.name} has no mode {name!r}; its modes: {', '.join(self.mode_names)}")


def board_table_for(model_text: str) -> str:
    """The ``[board]`` table for the boards an old ``model_match`` named (``AGX Xavier``)."""
    named = {part: soc for part, (name, soc) in BOARDS.items() if name.lower() in model_text.lower()}
    socs = set(named.values())
    if len(socs) != 1:
        return ('[board] soc = "tegraNNN", modules = ["pNNNN"] naming the parts in the board\'s '
                '/proc/device-tree/compatible (docs/remote.md, "How a board is recognised")')
    return "[board] soc = \"%s\", modules = [%s]" % (socs.pop(), ", ".join('"%s"' % part for part in named))


def load_definition(path: Path) -> TargetDefinition:
    """Read and validate a target file; UsageError naming the file, the field and the problem."""
    return load_toml(path, TargetDefinition, "target file")
