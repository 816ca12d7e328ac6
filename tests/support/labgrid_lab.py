"""A real labgrid lab on loopback for the lab tests: a coordinator on a free port, one exporter
whose NetworkService resources point at boards (loopback sshd servers, or a port nothing
listens on), and a place per board with its tags.

labgrid is an optional dependency (``edgebench[lab]``, in the ``test`` extra); without it the
tests that need a lab skip with that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from sshd import SshServer

# A coordinator or exporter on a loaded machine takes a few seconds to start.
START_S = 60.0
# The lab tests' places (tests/lab/conftest.py): a board behind a loopback sshd, and one that is off.
PLACE = "xavier-1"
OFF_PLACE = "xavier-off"


@dataclass(frozen=True)
class Board:
    place: str
    tags: dict
    port: int
    user: str


@dataclass
class LabgridLab:
    directory: Path
    address: str
    processes: list = field(default_factory=list)

    @contextlib.contextmanager
    def session(self):
        """labgrid's own client session and its loop: the test's view of the coordinator, through
        labgrid rather than edgebench's client."""
        from labgrid.remote.client import start_session

        from edgebench.lab.client import process_loop

        # gRPC's asyncio support serves one event loop per process: edgebench's client's.
        loop = process_loop()
        asyncio.set_event_loop(loop)
        session = start_session(self.address, loop=loop)
        try:
            yield session, loop
        finally:
            loop.run_until_complete(session.stop())
            loop.run_until_complete(session.close())
            asyncio.set_event_loop(None)

    def state(self) -> dict:
        """Each place's lock owner and comment, and the reservations' states: what a leak leaves."""
        from labgrid.remote.common import Reservation
        from labgrid.remote.generated import labgrid_coordinator_pb2 as messages

        with self.session() as (session, loop):
            loop.run_until_complete(session.sync_with_coordinator())
            response = loop.run_until_complete(session.stub.GetReservations(messages.GetReservationsRequest()))
            return {"places": {name: (place.acquired, place.comment) for name, place in session.places.items()},
                    "reservations": sorted(Reservation.from_pb2(message).state.name
                                           for message in response.reservations)}

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def labgrid_missing_reason() -> Optional[str]:
    try:
        import labgrid.remote.client  # noqa: F401
        import labgrid.remote.generated  # noqa: F401  (labgrid 25 and later: the gRPC coordinator)
    except ImportError as exc:
        return f"needs labgrid (pip install 'edgebench[lab]'): {exc}"
    if _tool("labgrid-coordinator") is None or _tool("labgrid-exporter") is None:
        return "needs labgrid's labgrid-coordinator and labgrid-exporter commands"
    return None


def ssh_options(server: SshServer, client_key: Optional[Path] = None) -> list[str]:
    """ssh options that log in to ``server`` by its address, as a lab target's board is reached,
    with ``client_key`` (the server's own client key by default)."""
    return ["-o", f"IdentityFile={client_key or server.directory / 'client_key'}", "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={server.directory / 'known_hosts'}",
            "-o", "LogLevel=ERROR"]


def start_lab(directory: Path, boards: list[Board]) -> LabgridLab:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    lab = LabgridLab(directory, f"127.0.0.1:{port}")
    try:
        # The coordinator keeps its places.yaml in its working directory.
        lab.processes.append(_spawn([_tool("labgrid-coordinator"), "-l", lab.address], directory, "coordinator"))
        _wait_for_port(port, lab.processes[0])
        exported = directory / "exporter.yaml"
        exported.write_text("".join(f"{board.place}:\n  NetworkService:\n    address: 127.0.0.1\n"
                                    f"    username: {board.user}\n    port: {board.port}\n" for board in boards))
        lab.processes.append(_spawn([_tool("labgrid-exporter"), "-c", lab.address, "--name", "rack1", str(exported)],
                                    directory, "exporter"))
        _add_places(lab, boards)
    except BaseException:
        lab.stop()
        raise
    return lab


def _add_places(lab: LabgridLab, boards: list[Board]) -> None:
    from labgrid.remote.generated import labgrid_coordinator_pb2 as messages

    with lab.session() as (session, loop):
        deadline = time.monotonic() + START_S
        while not all(board.place in session.resources.get("rack1", {}) for board in boards):
            assert time.monotonic() < deadline, f"the exporter's resources did not appear: {session.resources}"
            loop.run_until_complete(asyncio.sleep(0.2))
        for board in boards:
            loop.run_until_complete(session.stub.AddPlace(messages.AddPlaceRequest(name=board.place)))
            loop.run_until_complete(session.stub.AddPlaceMatch(
                messages.AddPlaceMatchRequest(placename=board.place, pattern=f"rack1/{board.place}/*")))
            loop.run_until_complete(session.stub.SetPlaceTags(
                messages.SetPlaceTagsRequest(placename=board.place, tags=board.tags)))
        loop.run_until_complete(session.sync_with_coordinator())


def _tool(name: str) -> Optional[str]:
    beside = Path(sys.executable).parent / name  # the venv's, when the tests run from one
    return str(beside) if beside.exists() else shutil.which(name)


def _spawn(argv: list, directory: Path, name: str) -> subprocess.Popen:
    log = open(directory / f"{name}.log", "wb")
    try:
        return subprocess.Popen(argv, cwd=directory, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()  # the child has its own copy


def free_port() -> int:
    """A port nothing listens on now (a board that is off, until something binds it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"labgrid-coordinator exited with status {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("labgrid-coordinator did not start listening")


def write_lab_target(path, lab, sshd, workdir, *, board=None, tags='{ board = "xavier" }', place=None,
                     reserve_timeout_s=120, bin_dir=None):
    """A target file whose board a lab place gives: an AGX Xavier (the emulated ``board``, its
    tools first from ``bin_dir`` when given) or, without ``board``, a plain CPU."""
    if board is None:
        head = ['name = "lab-cpu"', 'kind = "cpu"', 'devices = ["cpu"]', 'default_device = "cpu"',
                'backends = ["eager"]']
        env = {}
    else:
        head = ['name = "lab-xavier"', 'kind = "jetson"', 'devices = ["gpu", "cpu"]', 'default_device = "gpu"',
                'backends = ["eager"]', 'power_sources = ["tegrastats"]',
                'modes = [{ name = "maxn", nvpmodel_id = 0 }, { name = "15w", nvpmodel_id = 2 }, '
                '{ name = "30w-all", nvpmodel_id = 3 }]',
                "[thermal]", "limit_c = 85.0", "[board]", 'soc = "tegra194"', 'modules = ["p2888", "p2972-0000"]']
        path_dirs = ([str(bin_dir)] if bin_dir else []) + [str(board.bin), os.environ["PATH"]]
        env = {"EDGEBENCH_SYSROOT": str(board.root), "PATH": ":".join(path_dirs)}
    options = ", ".join(f'"{option}"' for option in ssh_options(sshd))
    path.write_text("\n".join([
        *head,
        "[lab]", f'coordinator = "{lab.address}"', *([f"tags = {tags}"] if tags else []),
        *([f'place = "{place}"'] if place else []), f"reserve_timeout_s = {reserve_timeout_s}",
        "[remote]", f'python = "{sys.executable}"', f'workdir = "{workdir}"', f"ssh_options = [{options}]",
        "lock_timeout_s = 120",
        "[remote.env]", *(f'{key} = "{value}"' for key, value in env.items()), ""]))
    return path


def lock_place(lab: LabgridLab, place: str, comment: str) -> None:
    """Lock ``place`` as ``labgrid-client lock`` would (no reservation), with ``comment``; the
    owner is this host and user, or LG_HOSTNAME and LG_USERNAME."""
    from labgrid.remote.generated import labgrid_coordinator_pb2 as messages

    with lab.session() as (session, loop):
        loop.run_until_complete(session.stub.SetPlaceComment(
            messages.SetPlaceCommentRequest(placename=place, comment=comment)))
        loop.run_until_complete(session.stub.AcquirePlace(messages.AcquirePlaceRequest(placename=place)))
        loop.run_until_complete(session.sync_with_coordinator())
