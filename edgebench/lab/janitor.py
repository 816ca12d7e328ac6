"""Places whose edgebench holder is gone, and releasing them.

A lock whose holder was killed outright (SIGKILL, a lost CI runner) stays: labgrid locks belong
to ``host/user``, not to a process, and an acquired reservation never expires. The comment
edgebench writes names the holder's pid and host. A holder on this host is judged by its pid
(gone, a zombie, or a later process reusing the pid); a holder on another host cannot be judged
from here and is only listed, unless that host is named as gone (``--force-host``: a runner
that was destroyed). Places held by anything other than edgebench are never touched.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Optional

from edgebench.lab.client import LabClient, PlaceStatus
from edgebench.lab.holder import Holder
from edgebench.lab.release import release_place

RELEASE = "release"
LEAVE = "leave"


@dataclass(frozen=True)
class Verdict:
    place: str
    #: RELEASE or LEAVE.
    action: str
    reason: str
    holder: Optional[Holder]


def judge(place: PlaceStatus, this_host: str, gone_hosts: Collection[str] = ()) -> Optional[Verdict]:
    """What the janitor does with a locked place; None for a free one."""
    if place.acquired is None:
        return None
    holder = Holder.from_comment(place.comment)
    if holder is None:
        return Verdict(place.name, LEAVE, f"locked by {place.acquired}, not by edgebench", None)
    if holder.identity != place.acquired:
        return Verdict(place.name, LEAVE, f"locked by {place.acquired}, though the comment names {holder.describe()}",
                       holder)
    if holder.host in gone_hosts:
        return Verdict(place.name, RELEASE, f"{holder.describe()}: host {holder.host} named as gone", holder)
    if holder.host != this_host:
        return Verdict(place.name, LEAVE, f"{holder.describe()}: another host; run the janitor there, or "
                                          f"--force-host {holder.host} if that host is gone", holder)
    if holder.gone():
        return Verdict(place.name, RELEASE, f"{holder.describe()}: that process is gone", holder)
    return Verdict(place.name, LEAVE, f"{holder.describe()}: still running", holder)


def sweep(client: LabClient, gone_hosts: Collection[str] = (), dry_run: bool = False) -> list[Verdict]:
    """Judge every locked place and, unless ``dry_run``, release those whose holder is gone."""
    verdicts = []
    for place in client.places():
        verdict = judge(place, client.hostname, gone_hosts)
        if verdict is None:
            continue
        if verdict.action == RELEASE and not dry_run:
            release_place(client, place.name, place.reservation, verdict.holder)
        verdicts.append(verdict)
    return verdicts
