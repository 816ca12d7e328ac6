"""A board from the lab for the length of a block: reserved, its holder written into the place's
comment, locked, its SSH address read from the place's NetworkService; and always given back
(comment cleared, place unlocked, reservation cancelled) however the block ends: success, an
error, Ctrl-C or SIGTERM. A process killed outright leaves the place locked with its pid in the
comment, for ``edgebench lab janitor``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Optional

from edgebench.errors import UsageError
from edgebench.interrupts import sigint_deferred
from edgebench.lab.client import LabClient, LabError, connect, coordinator_address
from edgebench.lab.holder import Holder
from edgebench.lab.release import release_place
from edgebench.lab.reserve import wait_for_place
from edgebench.targets.definition import Lab


@dataclass(frozen=True)
class LeasedBoard:
    place: str
    coordinator: str
    host: str
    port: Optional[int]
    user: Optional[str]

    def describe(self, lab: Lab) -> dict:
        """Where the board came from, for the records' ``env.lab``."""
        return {"place": self.place, "coordinator": self.coordinator, "tags": dict(lab.tags)}


@dataclass
class _Claim:
    """What this run holds at the coordinator so far: what the release undoes."""

    token: Optional[str] = None
    place: Optional[str] = None
    holder: Optional[Holder] = None


@contextlib.contextmanager
def leased_board(lab: Lab, log: Callable[[str], None]) -> Iterator[LeasedBoard]:
    address = coordinator_address(lab.coordinator)
    claim = _Claim()
    try:
        with connect(address) as client:
            board = _take(client, lab, claim, log)
        yield board
    finally:
        with sigint_deferred():  # given back whole, even under a second Ctrl-C
            _give_back(address, claim, log)


def _take(client: LabClient, lab: Lab, claim: _Claim, log: Callable[[str], None]) -> LeasedBoard:
    place = wait_for_place(client, lab, lambda token: setattr(claim, "token", token), log)
    claim.place = place
    # The comment goes first: once the place is locked, it always names a holder to judge.
    claim.holder = Holder.this_process(client.identity)
    try:
        client.set_comment(place, claim.holder.comment)
        client.acquire(place)
        host, port, user = _ssh_address(client, place)
    except LabError as exc:
        raise LabError(f"place {place}: {exc}") from None
    log(f"lab: place {place} locked at {client.address}, board {user + '@' if user else ''}{host}"
        f"{':' + str(port) if port else ''}")
    return LeasedBoard(place, client.address, host, port, user)


def _ssh_address(client: LabClient, place: str) -> tuple[str, Optional[int], Optional[str]]:
    services = [params for cls, params in client.acquired_resources(place) if cls == "NetworkService"]
    if len(services) != 1:
        raise LabError(f"edgebench reaches a board through the place's one NetworkService resource, and this place "
                       f"has {len(services)}")
    service = services[0]
    return service["address"], service.get("port"), service.get("username") or None


def _give_back(address: str, claim: _Claim, log: Callable[[str], None]) -> None:
    """Undo what ``claim`` holds; a coordinator that cannot be reached is a warning naming the
    janitor, never an error that hides how the run ended."""
    if claim.token is None:
        return
    try:
        with connect(address) as client:
            release_place(client, claim.place, claim.token, claim.holder)
    except UsageError as exc:  # LabError too
        if claim.place is None:
            log(f"warning: could not cancel reservation {claim.token} at the labgrid coordinator {address}: {exc}; "
                "the coordinator drops it by itself within a minute")
        else:
            log(f"warning: could not give back place {claim.place} at the labgrid coordinator {address}: {exc}; "
                f"`edgebench lab janitor --coordinator {address}` releases it once the coordinator answers")
        return
    if claim.place:
        log(f"lab: place {claim.place} released")
