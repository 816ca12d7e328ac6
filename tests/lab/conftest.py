import getpass

import pytest

from fake_jetson import make_emulated_jetson
from labgrid_lab import OFF_PLACE, PLACE, Board, free_port, labgrid_missing_reason, start_lab


@pytest.fixture
def lab(sshd, tmp_path_factory):
    """A coordinator and an exporter on loopback: place xavier-1 (board=xavier) is the loopback
    sshd, place xavier-off (board=off) a board whose SSH port nothing listens on."""
    reason = labgrid_missing_reason()
    if reason:
        pytest.skip(reason)
    user = getpass.getuser()
    started = start_lab(tmp_path_factory.mktemp("lab"), [Board(PLACE, {"board": "xavier"}, sshd.port, user),
                                                         Board(OFF_PLACE, {"board": "off"}, free_port(), user)])
    yield started
    started.stop()


@pytest.fixture
def board(tmp_path):
    return make_emulated_jetson(tmp_path / "board", "xavier")


@pytest.fixture
def held(lab):
    """Place xavier-1 held by another job (a lease in this process), until the test lets go."""
    from edgebench.lab.lease import leased_board
    from edgebench.targets.definition import Lab

    lease = leased_board(Lab(coordinator=lab.address, place=PLACE), log=lambda line: None)
    lease.__enter__()
    yield lease
    lease.__exit__(None, None, None)
