"""A labgrid coordinator, as edgebench talks to it: the one module that imports labgrid.

Through labgrid's own Python client (``labgrid.remote.client.start_session``) rather than the
``labgrid-client`` command: one connection answers in milliseconds where each command costs an
interpreter start (about a second on a loaded machine), a reservation is polled without
parsing printed text, and errors come back as gRPC status details. The session is labgrid's, so
the lock owner is what ``labgrid-client`` would record (``host/user``, ``LG_HOSTNAME`` and
``LG_USERNAME`` apply). Requests are labgrid's generated gRPC messages, the same the command
sends; ``ClientSession``'s own command methods are not used because they print to stdout.

Each ``LabClient`` runs on the process's one event loop and is short-lived: a lease
connects to reserve and acquire, and again to release, so nothing of labgrid's runs (or forks
with the workers) while the board is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Optional

from edgebench.errors import UsageError
from edgebench.interrupts import sigint_deferred

# labgrid's own default, used when neither the target nor LG_COORDINATOR names one.
DEFAULT_COORDINATOR = "127.0.0.1:20408"
INSTALL_HINT = "pip install 'edgebench[lab]'"
# A call that takes longer means the coordinator is stuck or gone.
CALL_TIMEOUT_S = 30.0


class LabError(UsageError):
    """The coordinator refused a request (its gRPC status details), or did not answer: one line,
    like any usage error."""


@dataclass(frozen=True)
class PlaceStatus:
    name: str
    tags: dict
    comment: str
    #: labgrid's lock owner, ``host/user``; None when the place is free.
    acquired: Optional[str]
    #: The token of the reservation the place is allocated to, if any.
    reservation: Optional[str]


@dataclass(frozen=True)
class ReservationStatus:
    token: str
    #: waiting, allocated, acquired, expired or invalid (labgrid's names).
    state: str
    #: The place allocated to it, once allocated.
    place: Optional[str]
    #: The tags it asks for (a place's name as ``name``).
    filters: dict
    prio: int
    created: float


def coordinator_address(configured: Optional[str] = None) -> str:
    """The coordinator a target or command names, else LG_COORDINATOR, else labgrid's default."""
    return configured or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


@contextlib.contextmanager
def connect(address: str) -> Iterator[LabClient]:
    """A session with the coordinator at ``address`` for the block; one line when labgrid is
    missing or the coordinator does not answer."""
    client = LabClient(address)
    try:
        yield client
    finally:
        client.close()


class LabClient:
    def __init__(self, address: str):
        try:  # labgrid 25 and later: the gRPC coordinator
            from labgrid.remote.client import start_session
            from labgrid.remote.generated import labgrid_coordinator_pb2
        except ImportError as exc:
            raise UsageError(f"lab targets and `edgebench lab` need labgrid 25 or newer ({exc}): {INSTALL_HINT}") \
                from None
        self.address = address
        self._loop = process_loop()
        # labgrid's gRPC channel binds to the current event loop when the session is made.
        asyncio.set_event_loop(self._loop)
        problems = _CapturedLog()
        root = logging.getLogger()
        root.addHandler(problems)  # labgrid logs why it cannot connect; it goes into our one line
        try:
            self._session = start_session(address, loop=self._loop)
        except Exception as exc:  # labgrid's ServerError, or gRPC's own
            self._close_loop()
            detail = problems.last or str(exc)
            raise UsageError(f"cannot reach the labgrid coordinator at {address}: {detail}") from None
        finally:
            root.removeHandler(problems)
        self._messages = labgrid_coordinator_pb2

    @property
    def identity(self) -> str:
        """Who this client acquires places as: labgrid's ``host/user``."""
        return f"{self._session.gethostname()}/{self._session.getuser()}"

    @property
    def hostname(self) -> str:
        return self._session.gethostname()

    def places(self) -> list[PlaceStatus]:
        self._call(self._session.sync_with_coordinator())
        return [PlaceStatus(name, dict(place.tags), place.comment or "", place.acquired, place.reservation)
                for name, place in sorted(self._session.places.items())]

    def place(self, name: str) -> Optional[PlaceStatus]:
        return next((place for place in self.places() if place.name == name), None)

    def reservations(self) -> list[ReservationStatus]:
        response = self._request("GetReservations", self._messages.GetReservationsRequest())
        return [_reservation(message) for message in response.reservations]

    def reserve(self, filters: dict[str, str]) -> ReservationStatus:
        """A reservation for a place whose tags (and ``name``) match ``filters``."""
        request = self._messages.CreateReservationRequest(
            filters={"main": self._messages.Reservation.Filter(filter=filters)}, prio=0)
        return _reservation(self._request("CreateReservation", request).reservation)

    def poll(self, token: str) -> ReservationStatus:
        """The reservation's state; polling also keeps a waiting reservation from expiring."""
        return _reservation(self._request("PollReservation", self._messages.PollReservationRequest(token=token))
                            .reservation)

    def cancel(self, token: str) -> None:
        self._request("CancelReservation", self._messages.CancelReservationRequest(token=token))

    def acquire(self, place: str) -> None:
        self._request("AcquirePlace", self._messages.AcquirePlaceRequest(placename=place))

    def release(self, place: str) -> None:
        self._request("ReleasePlace", self._messages.ReleasePlaceRequest(placename=place))

    def set_comment(self, place: str, comment: str) -> None:
        self._request("SetPlaceComment", self._messages.SetPlaceCommentRequest(placename=place, comment=comment))

    def acquired_resources(self, place: str) -> list[tuple[str, dict]]:
        """``(class, parameters)`` of each resource the acquired ``place`` holds."""
        self._call(self._session.sync_with_coordinator())
        resources = []
        for exporter, group, cls, name in self._session.places[place].acquired_resources:
            entry = self._session.resources.get(exporter, {}).get(group, {}).get(name)
            if entry is None:
                raise LabError(f"place {place} holds {exporter}/{group}/{cls}/{name}, which its exporter no "
                               "longer offers (is the exporter running?)")
            resources.append((cls, entry.args))
        return resources

    def close(self) -> None:
        """End the session and its event loop, whole even under Ctrl-C."""
        with sigint_deferred():
            try:
                self._call(self._session.stop())
                self._call(self._session.close())
            except LabError:
                pass  # the coordinator is gone: nothing to say goodbye to
            finally:
                self._close_loop()

    def _request(self, method: str, request):
        import grpc

        try:
            response = self._call(getattr(self._session.stub, method)(request))
            self._call(self._session.sync_with_coordinator())  # the place updates it caused have arrived
            return response
        except grpc.aio.AioRpcError as exc:
            raise LabError(f"the labgrid coordinator at {self.address} refused {method}: "
                           f"{exc.details() or exc.code()}") from None

    def _call(self, awaitable):
        try:
            return self._loop.run_until_complete(asyncio.wait_for(awaitable, CALL_TIMEOUT_S))
        except asyncio.TimeoutError:
            raise LabError(f"the labgrid coordinator at {self.address} did not answer within "
                           f"{CALL_TIMEOUT_S:g} s") from None

    def _close_loop(self) -> None:
        """Cancel what an interrupted call left running. The loop stays open for the next
        client: gRPC's completion queue is the process's, and events it delivers after a
        channel closes would otherwise land on a closed loop (a traceback on stderr)."""
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        asyncio.set_event_loop(None)


_LOOP: Optional[asyncio.AbstractEventLoop] = None


def process_loop() -> asyncio.AbstractEventLoop:
    """The one event loop this process's clients share (see ``LabClient._close_loop``)."""
    global _LOOP
    if _LOOP is None or _LOOP.is_closed():
        _LOOP = asyncio.new_event_loop()
    return _LOOP


def _reservation(message) -> ReservationStatus:
    from labgrid.remote.common import Reservation

    reservation = Reservation.from_pb2(message)
    return ReservationStatus(reservation.token, reservation.state.name,
                             (reservation.allocations.get("main") or [None])[0],
                             dict(reservation.filters.get("main") or {}), reservation.prio, reservation.created)


class _CapturedLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.last: Optional[str] = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage()
