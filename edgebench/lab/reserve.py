"""Waiting in the coordinator's queue for a place: a reservation, polled until a place is
allocated to it, saying how long it has waited and how many are ahead, up to a timeout."""

from __future__ import annotations

import time
from collections.abc import Callable

from edgebench.errors import UsageError
from edgebench.lab.client import LabClient, ReservationStatus
from edgebench.targets.definition import Lab

# Polling keeps the reservation alive (labgrid expires one not polled for a minute) and is cheap.
POLL_S = 1.0
# How often a waiting run says so.
PROGRESS_EVERY_S = 10.0


def filters(lab: Lab) -> dict[str, str]:
    """labgrid's reservation filter: the tags, and the place's name as labgrid's ``name`` tag."""
    return {**({"name": lab.place} if lab.place else {}), **lab.tags}


def wait_for_place(client: LabClient, lab: Lab, on_token: Callable[[str], None],
                   log: Callable[[str], None]) -> str:
    """The name of the place the coordinator allocates to a new reservation. ``on_token`` gets
    the reservation's token as soon as it exists, so the caller can always cancel it. Tags no
    place has, and a timeout, are UsageErrors naming what was asked for."""
    wanted = filters(lab)
    places = client.places()
    if not any(wanted.items() <= {**place.tags, "name": place.name}.items() for place in places):
        # labgrid would queue the reservation until it expires: say so at once instead.
        known = "; ".join(f"{place.name} " + " ".join(f"{k}={v}" for k, v in sorted(place.tags.items()))
                          for place in places) or "none"
        asked = " ".join(f"{key}={value}" for key, value in wanted.items())
        raise UsageError(f"no place at the labgrid coordinator {client.address} matches {asked} (places: {known})")
    reservation = client.reserve(wanted)
    on_token(reservation.token)
    started = time.monotonic()
    said = None
    while reservation.state == "waiting":
        waited = time.monotonic() - started
        if waited >= lab.reserve_timeout_s:
            raise UsageError(f"waited {lab.reserve_timeout_s:g} s for {lab.wanted} at the labgrid coordinator "
                             f"{client.address}; none came free ({_ahead(client, reservation)} reservation(s) "
                             "ahead): raise [lab] reserve_timeout_s or see `edgebench lab places`")
        if said is None or waited - said >= PROGRESS_EVERY_S:
            log(f"waiting for {lab.wanted}: {_ahead(client, reservation)} reservation(s) ahead / {waited:.0f} s")
            said = waited
        time.sleep(min(POLL_S, max(0.0, lab.reserve_timeout_s - waited)))
        reservation = client.poll(reservation.token)
    if reservation.place is None:  # expired or invalid: the place was deleted, or polling stopped
        raise UsageError(f"the labgrid coordinator {client.address} ended the reservation for {lab.wanted} "
                         f"({reservation.state})")
    return reservation.place


def _ahead(client: LabClient, mine: ReservationStatus) -> int:
    """Waiting reservations for the same places that the coordinator serves before ``mine``
    (higher priority, or older)."""
    order = (-mine.prio, mine.created)
    return sum(1 for other in client.reservations()
               if other.state == "waiting" and other.filters == mine.filters and other.token != mine.token
               and (-other.prio, other.created) < order)
