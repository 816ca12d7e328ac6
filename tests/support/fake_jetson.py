"""An emulated Jetson: a system root plus fake nvpmodel, jetson_clocks and tegrastats on PATH.

The fakes print what the real tools print, taken from the captures in tests/data/jetson/
(copied from shared/data/jetson): `nvpmodel -q`, the reboot prompt of a mode that needs a
reboot, tegrastats lines. The system root holds what identifies a board, as the README there
lists it: the device-tree model, the NUL-separated compatible list, the SoC's chip id and the
serial number. Only the hardware is emulated; edgebench's own code runs for real.
"""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "jetson"

XAVIER_MODES = {0: "MAXN", 1: "MODE_10W", 2: "MODE_15W", 3: "MODE_30W_ALL", 4: "MODE_30W_6CORE",
                5: "MODE_30W_4CORE", 6: "MODE_30W_2CORE", 7: "MODE_15W_DESKTOP"}
R32 = "# R32 (release), REVISION: 7.4, GCID: 33514132, BOARD: t186ref, EABI: aarch64, DATE: Fri Jun  9 04:25:08 UTC 2023"
R35 = "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023"

BOARDS = {
    "xavier": {
        "model": "NVIDIA Jetson AGX Xavier Developer Kit",
        "compatible": ["nvidia,p2972-0000", "nvidia,tegra194"],
        "soc_id": 25,
        "serial": "1422919082000",
        "release": R35,
        "modes": XAVIER_MODES,
        "default_mode": 2,
        # Switching into MODE_10W has been reported to need a reboot on AGX Xavier.
        "reboot_modes": [1],
        "idle_log": "xavier-jp4-nonroot-idle.log",
        "load_log": "xavier-jp4-root-maxn-load.log",
    },
    # The same board on L4T R32, whose device tree calls it just "Jetson-AGX".
    "xavier-r32": {
        "model": "Jetson-AGX",
        "compatible": ["nvidia,p2972-0000", "nvidia,tegra194"],
        "soc_id": 25,
        "serial": "1422919082001",
        "release": R32,
        "modes": XAVIER_MODES,
        "default_mode": 2,
        "reboot_modes": [1],
        "idle_log": "xavier-jp4-nonroot-idle.log",
        "load_log": "xavier-jp4-root-maxn-load.log",
    },
    # Same SoC as the AGX Xavier, another board with its own modes.
    "xavier-nx": {
        "model": "NVIDIA Jetson Xavier NX Developer Kit",
        "compatible": ["nvidia,p3509-0000+p3668-0000", "nvidia,p3668-0000", "nvidia,tegra194"],
        "soc_id": 25,
        "serial": "1421020012345",
        "release": R35,
        "modes": {0: "MODE_15W_2CORE", 1: "MODE_15W_4CORE", 2: "MODE_15W_6CORE", 3: "MODE_10W_2CORE",
                  4: "MODE_10W_4CORE", 8: "MODE_20W_6CORE"},
        "default_mode": 2,
        "reboot_modes": [],
        "idle_log": "xavier-jp4-nonroot-idle.log",
        "load_log": "xavier-jp4-root-maxn-load.log",
    },
    "orin": {
        "model": "Jetson AGX Orin Developer Kit",
        "compatible": ["nvidia,p3737-0000+p3701-0000", "nvidia,p3701-0000", "nvidia,tegra234"],
        "soc_id": 35,
        "serial": "1421622051234",
        "release": "# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref, EABI: aarch64, DATE: Sun Mar 19 15:19:21 UTC 2023",
        "modes": {0: "MAXN", 1: "MODE_15W", 2: "MODE_30W", 3: "MODE_50W"},
        "default_mode": 2,
        "reboot_modes": [],
        "idle_log": "orin-jp5-root-idle.log",
        "load_log": "orin-dla0-busy.log",
    },
    # Same SoC as the AGX Orin, another board with its own modes.
    "orin-nano": {
        "model": "NVIDIA Jetson Orin Nano Developer Kit",
        "compatible": ["nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"],
        "soc_id": 35,
        "serial": "1423123067890",
        "release": R35,
        "modes": {0: "15W", 1: "7W"},
        "default_mode": 0,
        "reboot_modes": [],
        "idle_log": "orin-jp5-root-idle.log",
        "load_log": "orin-dla0-busy.log",
    },
}

NVPMODEL = r'''
import json, sys
state_file = {state!r}
board = json.load(open({board_file!r}))
state = json.load(open(state_file))
args = sys.argv[1:]
if state.get("deny") and args[:1] == ["-m"]:  # querying needs no rights, switching does
    print("NVPM ERROR: Error opening /sys/devices/system/cpu/cpu1/online: Permission denied", file=sys.stderr)
    sys.exit(1)
if args == ["-q"]:
    print("NVPM WARN: fan mode is not set!")
    print("NV Power Mode: " + board["modes"][str(state["mode"])])
    print(state["mode"])
    sys.exit(0)
if len(args) == 2 and args[0] == "-m":
    wanted = int(args[1])
    if str(wanted) not in board["modes"]:
        print("NVPM ERROR: Invalid power mode: %d" % wanted, file=sys.stderr)
        sys.exit(1)
    if wanted in board["reboot_modes"]:
        # The captured prompt: with stdin closed nothing is confirmed and nothing changes.
        prompt = [l for l in open({prompt!r}).read().splitlines() if l and not l.startswith("#")]
        print("\n".join(prompt[:-1]).replace("power mode: 1", "power mode: %d" % wanted))
        answer = sys.stdin.readline().strip()
        if answer.lower() == "yes":
            state["rebooted"] = True
            json.dump(state, open(state_file, "w"))
        print(prompt[-1])
        sys.exit(0)
    state["mode"] = wanted
    state.setdefault("history", []).append(wanted)
    json.dump(state, open(state_file, "w"))
    sys.exit(0)
print("usage: nvpmodel [-q] [-m mode]", file=sys.stderr)
sys.exit(1)
'''

JETSON_CLOCKS = r'''
import json, sys
state_file = {state!r}
state = json.load(open(state_file))
args = sys.argv[1:]
if args and args[0] == "--store":
    open(args[1], "w").write(json.dumps({{"locked": state.get("clocks_locked", False)}}))
elif args and args[0] == "--restore":
    state["clocks_locked"] = json.load(open(args[1]))["locked"]
elif args and args[0] == "--show":
    print("NV Power Mode: emulated")
else:
    state["clocks_locked"] = True
state.setdefault("clock_calls", []).append(args)
json.dump(state, open(state_file, "w"))
'''

# Prints the captured load line while the process that started it (the worker) is busy running
# a model, and the idle line otherwise, so emulated power follows the measurement itself and
# not whatever else the machine is doing. "Busy" is most of a core: a model's loop keeps the
# worker near 100%, while with 30% the worker's own bookkeeping in the idle window (parsing its
# first tegrastats lines) sometimes counted as load and made the idle baseline flaky.
TEGRASTATS = r'''
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
idle = open({idle!r}).read().strip().splitlines()[-1]
load = open({load!r}).read().strip().splitlines()[-1]
interval = float(sys.argv[sys.argv.index("--interval") + 1]) / 1000 if "--interval" in sys.argv else 1.0
ticks_per_s = os.sysconf("SC_CLK_TCK")
BUSY = 0.7
parent = os.getppid()

def parent_cpu_s():
    fields = open("/proc/%d/stat" % parent).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_s

last, last_time = parent_cpu_s(), time.monotonic()
while True:
    time.sleep(interval)
    now, now_time = parent_cpu_s(), time.monotonic()
    busy = (now - last) / (now_time - last_time)
    last, last_time = now, now_time
    print(load if busy > BUSY else idle, flush=True)
'''


@dataclass
class EmulatedJetson:
    root: Path
    bin: Path
    state_file: Path

    @property
    def env(self) -> dict:
        return {"EDGEBENCH_SYSROOT": str(self.root), "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}"}

    def state(self) -> dict:
        import json

        return json.loads(self.state_file.read_text())

    def update(self, **values) -> None:
        import json

        self.state_file.write_text(json.dumps({**self.state(), **values}))


def make_emulated_jetson(directory: Path, board: str = "xavier") -> EmulatedJetson:
    import json

    spec = BOARDS[board]
    root, bin_dir = directory / "sysroot", directory / "bin"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "nv_tegra_release").write_text(spec["release"] + "\n")
    (root / "proc" / "device-tree").mkdir(parents=True)
    (root / "proc" / "device-tree" / "model").write_bytes(spec["model"].encode() + b"\x00")
    (root / "proc" / "device-tree" / "compatible").write_bytes(b"".join(c.encode() + b"\x00" for c in spec["compatible"]))
    (root / "proc" / "device-tree" / "serial-number").write_bytes(spec["serial"].encode() + b"\x00")
    (root / "sys" / "devices" / "soc0").mkdir(parents=True)
    (root / "sys" / "devices" / "soc0" / "soc_id").write_text(f"{spec['soc_id']}\n")
    for index, (zone, millidegrees) in enumerate([("CPU-therm", 41500), ("GPU-therm", 39000)]):
        zone_dir = root / "sys" / "class" / "thermal" / f"thermal_zone{index}"
        zone_dir.mkdir(parents=True)
        (zone_dir / "type").write_text(zone + "\n")
        (zone_dir / "temp").write_text(f"{millidegrees}\n")
    board_file = directory / "board.json"
    board_file.write_text(json.dumps({**spec, "modes": {str(k): v for k, v in spec["modes"].items()}}))
    state_file = directory / "state.json"
    state_file.write_text(json.dumps({"mode": spec["default_mode"]}))
    bin_dir.mkdir()
    scripts = {
        "nvpmodel": NVPMODEL.format(state=str(state_file), board_file=str(board_file),
                                    prompt=str(DATA / "nvpmodel-reboot-prompt.txt")),
        "jetson_clocks": JETSON_CLOCKS.format(state=str(state_file)),
        "tegrastats": TEGRASTATS.format(idle=str(DATA / spec["idle_log"]), load=str(DATA / spec["load_log"])),
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return EmulatedJetson(root, bin_dir, state_file)
