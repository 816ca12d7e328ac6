"""A simulated lab, for real on this machine: a labgrid coordinator and exporter on loopback, N
boards (each an OpenSSH server on loopback in front of an emulated AGX Xavier), M nightly jobs
started at once, each `edgebench run` on a target that asks the lab for any Xavier, all writing
into one PostgreSQL store. Then one more job killed with SIGKILL while it holds a board, and the
janitor.

Everything but the Jetson hardware is real: the coordinator, the exporter, the reservations and
locks, sshd, edgebench's workers on the "boards", PostgreSQL (durable, fsync on). The boards are
this machine's two cores, so the jobs' latencies mean nothing here; what is measured is the lab's
bookkeeping:

- queue wait: from a job's reservation to its lock on a place (0 when a place was free);
- board utilisation: the time places were locked by jobs over N boards x the lab's busy span;
- leaked locks and reservations after the jobs: places still locked, reservations still open;
- lost or duplicated records: every job's run must hold exactly its records, each stored once;
- the SIGKILL case: the place stays locked, `edgebench lab janitor` releases it, the records the
  killed job committed stay in the store.

    .venv/bin/python benchmarks/lab.py [--boards 8] [--jobs 24] [--out bench/lab]

Writes ``lab.json`` and ``lab.md`` (the table) into ``--out``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent.parent / "tests" / "support"
sys.path.insert(0, str(SUPPORT))

from fake_jetson import make_emulated_jetson  # noqa: E402  (tests/support, put on the path above)
from labgrid_lab import Board, ssh_options, start_lab  # noqa: E402
from postgres import start_postgres  # noqa: E402
from sshd import start_sshd  # noqa: E402

from edgebench.lab.client import connect  # noqa: E402
from edgebench.results.store import Store  # noqa: E402

# Each job measures one small model for about a second per batch size: the lab's bookkeeping is
# under test, not the model.
MEASURE = ["--mode", "maxn", "-m", "worker_models:tiny", "--input-shape", "3x16x16", "--backend", "eager",
           "--device", "cpu", "--min-time", "1", "--max-time", "2", "--warmup", "0.2", "--min-iterations", "5",
           "--threads", "1", "--processes", "1"]
BATCHES = "1,2"
RECORDS_PER_JOB = 2
# The killed job measures more batches, so it is still holding its board after its first record.
KILLED_BATCHES = "1,2,4,8,16,32"
LOCKED = re.compile(r"lab: place (\S+) locked")
RELEASED = re.compile(r"lab: place (\S+) released")
WAITING = re.compile(r"waiting for .* reservation\(s\) ahead")


@dataclass
class Job:
    name: str
    process: subprocess.Popen
    started: float
    lines: list = field(default_factory=list)  # (wall time, stderr line)

    def first(self, pattern: re.Pattern):
        return next(((at, pattern.search(line)) for at, line in self.lines if pattern.search(line)), (None, None))


def make_board(directory: Path, index: int, client_key: Path) -> tuple[Board, object]:
    """An emulated Xavier with its own serial behind its own sshd, whose sessions get the board's
    environment (system root, fake Jetson tools, a home of its own for the worker's workdir)."""
    jetson = make_emulated_jetson(directory / "jetson", "xavier")
    (jetson.root / "proc" / "device-tree" / "serial-number").write_bytes(f"14229190820{index:02d}".encode() + b"\0")
    home = directory / "home"
    home.mkdir()
    path = f"{jetson.bin}:{os.environ['PATH']}"
    server = start_sshd(directory / "sshd", client_key=client_key, extra_config=[
        f"SetEnv EDGEBENCH_SYSROOT={jetson.root} PATH={path} HOME={home}"])
    return Board(place=f"xavier-{index}", tags={"board": "xavier"}, port=server.port, user=getpass.getuser()), server


def write_target(path: Path, coordinator: str, server, client_key: Path, *, place: str | None = None) -> Path:
    """A Xavier target whose board the lab gives: any place tagged board=xavier, or ``place``."""
    wanted = f'place = "{place}"' if place else 'tags = { board = "xavier" }'
    options = ", ".join(f'"{option}"' for option in ssh_options(server, client_key))
    path.write_text("\n".join([
        'name = "lab-xavier"', 'kind = "jetson"', 'devices = ["gpu", "cpu"]', 'default_device = "gpu"',
        'backends = ["eager"]', 'power_sources = ["tegrastats"]',
        'modes = [{ name = "maxn", nvpmodel_id = 0 }, { name = "15w", nvpmodel_id = 2 }]',
        "[board]", 'soc = "tegra194"', 'modules = ["p2888", "p2972-0000"]',
        "[lab]", f'coordinator = "{coordinator}"', wanted, "reserve_timeout_s = 1800",
        "[remote]", f'python = "{sys.executable}"', 'workdir = "~/edgebench-worker"', f"ssh_options = [{options}]",
        ""]))
    return path


def start_job(name: str, target: Path, store: str, batches: str, cwd: Path) -> Job:
    env = {key: value for key, value in os.environ.items() if key != "EDGEBENCH_SYSROOT"}
    env["PYTHONPATH"] = str(SUPPORT)  # worker_models, on the workstation and (by sys.executable) the boards
    process = subprocess.Popen(
        [sys.executable, "-m", "edgebench", "run", "--target", str(target), *MEASURE, "--batch", batches,
         "--store", store, "--tag", f"job={name}"],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    job = Job(name, process, time.time())

    def read() -> None:
        for line in process.stderr:
            job.lines.append((time.time(), line.rstrip()))

    threading.Thread(target=read, daemon=True).start()
    return job


def job_timing(job: Job) -> dict:
    locked_at, locked = job.first(LOCKED)
    released_at, _ = job.first(RELEASED)
    waiting_at, _ = job.first(WAITING)
    # A job that found a place free never logs a wait: its reservation was allocated at once.
    asked_at = waiting_at if waiting_at is not None else locked_at
    return {"job": job.name, "exit": job.process.returncode, "place": locked.group(1) if locked else None,
            "tracebacks": sum("Traceback" in line for _, line in job.lines),
            "locked_at": locked_at, "released_at": released_at,
            "queue_wait_s": None if locked_at is None else round(locked_at - asked_at, 2)}


def stored_runs(store: str) -> dict[str, dict]:
    """Per job tag: its runs, their statuses and their records' uids."""
    by_job: dict[str, dict] = {}
    with Store.open(store, create=False) as opened:
        for run in opened.runs():
            job = run.tags.get("job")
            entry = by_job.setdefault(job, {"runs": [], "statuses": [], "uids": [], "ok": 0})
            entry["runs"].append(run.id)
            entry["statuses"].append(run.status)
            for uid, record in opened.records_with_uids(run.id):
                entry["uids"].append(uid)
                entry["ok"] += record.status == "ok"
    return by_job


def lab_leaks(lab) -> dict:
    state = lab.state()
    locked = {name: holder for name, (holder, _) in state["places"].items() if holder}
    open_reservations = [status for status in state["reservations"] if status.lower() in ("waiting", "allocated",
                                                                                          "acquired")]
    return {"locked_places": locked, "open_reservations": open_reservations}


def run_jobs(args, target: Path, store: str, cwd: Path) -> list[dict]:
    jobs = [start_job(f"job-{index:02d}", target, store, BATCHES, cwd) for index in range(args.jobs)]
    deadline = time.time() + args.timeout
    while any(job.process.poll() is None for job in jobs):
        done = sum(job.process.poll() is not None for job in jobs)
        print(f"  {done}/{len(jobs)} jobs done, {sum(bool(job.first(LOCKED)[0]) for job in jobs)} got a board",
              file=sys.stderr)
        if time.time() > deadline:
            for job in jobs:
                job.process.kill()
            raise SystemExit(f"jobs still running after {args.timeout} s: killed")
        time.sleep(5)
    time.sleep(0.5)  # the readers' last lines
    (args.out / "jobs").mkdir(exist_ok=True)
    for job in jobs:
        (args.out / "jobs" / f"{job.name}.log").write_text("".join(f"{at:.3f} {line}\n" for at, line in job.lines))
    for job in jobs:
        if job.process.returncode != 0:
            print(f"{job.name} exited {job.process.returncode}:\n" + "\n".join(line for _, line in job.lines[-5:]),
                  file=sys.stderr)
    return [job_timing(job) for job in jobs]


def utilisation(timings: list[dict], boards: int) -> dict:
    """Busy share of the boards, and the handovers: from one job's release of a place to the next
    job's lock on it (what a queue costs per job besides the wait itself)."""
    held = [(t["locked_at"], t["released_at"]) for t in timings if t["locked_at"] and t["released_at"]]
    span = max(end for _, end in held) - min(start for start, _ in held)
    busy = sum(end - start for start, end in held)
    by_place: dict[str, list] = {}
    for t in timings:
        if t["locked_at"] and t["released_at"]:
            by_place.setdefault(t["place"], []).append((t["locked_at"], t["released_at"]))
    gaps = sorted(later[0] - earlier[1] for holds in by_place.values()
                  for earlier, later in zip(sorted(holds), sorted(holds)[1:]))
    return {"span_s": round(span, 1), "board_busy_s": round(busy, 1), "utilisation": round(busy / (boards * span), 3),
            "handover_median_s": round(gaps[len(gaps) // 2], 2) if gaps else None,
            "handover_max_s": round(gaps[-1], 2) if gaps else None}


def killed_job(args, lab, coordinator: str, server, store: str, cwd: Path, scratch: Path) -> dict:
    """One job on xavier-0, killed with SIGKILL after its first record; then the janitor."""
    target = write_target(scratch / "lab-xavier-0.toml", coordinator, server, scratch / "client_key", place="xavier-0")
    job = start_job("killed", target, store, KILLED_BATCHES, cwd)
    deadline = time.time() + args.timeout
    committed = 0
    while committed == 0:
        if job.process.poll() is not None or time.time() > deadline:
            raise SystemExit("the job to kill ended before storing a record:\n" +
                             "\n".join(line for _, line in job.lines[-5:]))
        time.sleep(0.5)
        committed = len(stored_runs(store).get("killed", {}).get("uids", []))
    job.process.send_signal(signal.SIGKILL)
    job.process.wait()
    committed = stored_runs(store)["killed"]
    before = lab_leaks(lab)
    janitor = subprocess.run([sys.executable, "-m", "edgebench", "lab", "janitor", "--coordinator", coordinator],
                             capture_output=True, text=True, timeout=120)
    after = lab_leaks(lab)
    return {"records_committed_before_kill": len(committed["uids"]), "run_status": committed["statuses"],
            "locked_after_kill": before["locked_places"], "janitor_exit": janitor.returncode,
            "janitor_said": (janitor.stdout + janitor.stderr).strip().splitlines(),
            "locked_after_janitor": after["locked_places"],
            "records_after_janitor": len(stored_runs(store)["killed"]["uids"])}


def coordinator_rate(address: str, calls: int = 300) -> dict:
    """Requests per second one client gets from the coordinator: a waiting job polls its
    reservation once a second and lists the reservations every 10 s (edgebench/lab/reserve.py)."""
    with connect(address) as client:
        token = client.reserve({"board": "no-such-board"}).token  # waits forever: a poll of a queued job
        try:
            began = time.perf_counter()
            for _ in range(calls):
                client.poll(token)
            polls = calls / (time.perf_counter() - began)
            began = time.perf_counter()
            for _ in range(calls // 10):
                client.reservations()
            listings = calls // 10 / (time.perf_counter() - began)
        finally:
            client.cancel(token)
    return {"polls_per_s": round(polls, 1), "reservation_listings_per_s": round(listings, 1)}


def table(result: dict) -> str:
    waits = sorted(t["queue_wait_s"] for t in result["jobs"] if t["queue_wait_s"] is not None)
    median = waits[len(waits) // 2] if waits else None
    jobs_ok = sum(t["exit"] == 0 for t in result["jobs"])
    records = result["records"]
    killed = result["killed"]
    rows = [
        ("boards, jobs", f"{result['boards']}, {result['jobs_started']} started at once"),
        ("jobs finished with exit 0", f"{jobs_ok} of {result['jobs_started']}"),
        ("queue wait: median, max", f"{median} s, {waits[-1] if waits else None} s"),
        ("board utilisation", f"{result['utilisation']['utilisation']:.0%} of {result['boards']} boards over "
                              f"{result['utilisation']['span_s']} s"),
        ("handover, release to the next lock: median, max",
         f"{result['utilisation']['handover_median_s']} s, {result['utilisation']['handover_max_s']} s"),
        ("places locked after the jobs", str(len(result["leaks"]["locked_places"]))),
        ("reservations open after the jobs", str(len(result["leaks"]["open_reservations"]))),
        ("records expected, stored", f"{records['expected']}, {records['stored']}"),
        ("records lost, duplicated", f"{records['lost']}, {records['duplicated']}"),
        ("SIGKILL: records committed, kept after the janitor",
         f"{killed['records_committed_before_kill']}, {killed['records_after_janitor']}"),
        ("SIGKILL: places locked after the kill, after the janitor",
         f"{len(killed['locked_after_kill'])}, {len(killed['locked_after_janitor'])}"),
        ("coordinator, one client: polls/s, reservation listings/s",
         f"{result['coordinator']['polls_per_s']}, {result['coordinator']['reservation_listings_per_s']}"),
        ("wall time", f"{result['wall_s']} s"),
    ]
    return "| measured | value |\n|---|---|\n" + "".join(f"| {name} | {value} |\n" for name, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds the jobs may take in all")
    parser.add_argument("--out", type=Path, default=Path("bench/lab"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.time()

    scratch = Path(tempfile.mkdtemp(prefix="edgebench-lab-"))
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(scratch / "client_key")], check=True)
    postgres = start_postgres(durable=True)
    servers, lab = [], None
    try:
        store = postgres.create_database("lab")
        boards = []
        for index in range(args.boards):
            board, server = make_board(scratch / f"board-{index}", index, scratch / "client_key")
            boards.append(board)
            servers.append(server)
        lab = start_lab(scratch / "labgrid", boards)
        print(f"lab up: {args.boards} boards at {lab.address}, store {store}", file=sys.stderr)
        target = write_target(scratch / "lab-xavier.toml", lab.address, servers[0], scratch / "client_key")

        timings = run_jobs(args, target, store, scratch)
        leaks = lab_leaks(lab)
        stored = stored_runs(store)
        expected = RECORDS_PER_JOB * args.jobs
        uids = [uid for name, entry in stored.items() if name != "killed" for uid in entry["uids"]]
        per_job = {name: len(entry["uids"]) for name, entry in stored.items()}
        records = {"expected": expected, "stored": len(uids), "duplicated": len(uids) - len(set(uids)),
                   "lost": sum(max(0, RECORDS_PER_JOB - per_job.get(t["job"], 0)) for t in timings),
                   "runs_per_job": {name: len(entry["runs"]) for name, entry in stored.items()}}
        killed = killed_job(args, lab, lab.address, servers[0], store, scratch, scratch)
        coordinator = coordinator_rate(lab.address)
        result = {"boards": args.boards, "jobs_started": args.jobs, "records_per_job": RECORDS_PER_JOB,
                  "jobs": timings, "utilisation": utilisation(timings, args.boards), "leaks": leaks,
                  "records": records, "killed": killed, "coordinator": coordinator, "wall_s": round(time.time() - began, 1)}
    finally:
        if lab is not None:
            lab.stop()
        for server in servers:
            server.stop()
        postgres.stop()

    markdown = table(result)
    print(markdown)
    (args.out / "lab.md").write_text(markdown)
    (args.out / "lab.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
