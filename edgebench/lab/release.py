"""Giving a place back, for the run that took it and for the janitor alike: unlocked, its
holder's comment cleared, its reservation cancelled, in that order. Until the reservation is
cancelled the place stays allocated to it, so no other run can take the place and write its own
comment in between."""

from __future__ import annotations

from typing import Optional

from edgebench.lab.client import LabClient, LabError
from edgebench.lab.holder import Holder


def release_place(client: LabClient, place: Optional[str], token: Optional[str], holder: Optional[Holder]) -> None:
    """Undo what ``holder`` took: ``place`` (None: never allocated) if it still holds it, and the
    reservation ``token``. LabError when the coordinator refuses."""
    status = client.place(place) if place else None
    if status is not None and holder is not None and status.comment == holder.comment:
        if status.acquired == holder.identity:
            client.release(place)
        client.set_comment(place, "")
    if token is not None:
        try:
            client.cancel(token)
        except LabError:
            if token in {reservation.token for reservation in client.reservations()}:
                raise  # still there: a real refusal; otherwise it had expired by itself
