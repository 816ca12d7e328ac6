import pytest

from sshd import sshd_missing_reason, start_sshd


@pytest.fixture
def sshd(tmp_path_factory):
    reason = sshd_missing_reason()
    if reason:
        pytest.skip(reason)
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()
