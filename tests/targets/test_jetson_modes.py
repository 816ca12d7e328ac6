"""Power modes and clock locking against the emulated nvpmodel and jetson_clocks."""

import pytest

from edgebench.errors import UsageError
from edgebench.targets import builtin_definitions
from edgebench.targets.jetson import PowerModeError, power_mode, query_mode
from edgebench.targets.shell import LocalShell
from fake_jetson import make_emulated_jetson

XAVIER = builtin_definitions()["xavier"]


@pytest.fixture
def jetson(tmp_path, monkeypatch):
    board = make_emulated_jetson(tmp_path)
    for key, value in board.env.items():
        monkeypatch.setenv(key, value)
    return board


def test_query_reads_the_mode_past_a_warning_line(jetson):
    state = query_mode(LocalShell())
    assert (state.nvpmodel_id, state.nvpmodel_name) == (2, "MODE_15W")


def test_mode_is_switched_and_restored(jetson):
    with power_mode(XAVIER, "maxn", lock_clocks=False) as prepared:
        assert jetson.state()["mode"] == 0
        assert prepared.mode == "maxn"
        assert prepared.nvpmodel.nvpmodel_name == "MAXN"
        assert prepared.previous.nvpmodel_id == 2
    assert jetson.state()["mode"] == 2
    assert jetson.state()["history"] == [0, 2]


def test_mode_is_restored_after_an_error_and_after_ctrl_c(jetson):
    for exception in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exception)):
            with power_mode(XAVIER, "30w-all", lock_clocks=False):
                assert jetson.state()["mode"] == 3
                raise exception
        assert jetson.state()["mode"] == 2


def test_a_mode_that_needs_a_reboot_is_refused_and_nothing_changes(jetson):
    with pytest.raises(PowerModeError, match="mode 10w \\(nvpmodel id 1\\) needs a reboot"):
        with power_mode(XAVIER, "10w", lock_clocks=False):
            pytest.fail("must not get here")
    state = jetson.state()
    assert state["mode"] == 2 and "rebooted" not in state and "history" not in state


def test_without_rights_the_error_names_what_is_needed(jetson):
    jetson.update(deny=True)
    with pytest.raises(PowerModeError, match="changing the power mode needs root: run edgebench as root or with sudo"):
        with power_mode(XAVIER, "maxn", lock_clocks=False):
            pass
    assert jetson.state()["mode"] == 2


def test_clocks_are_locked_and_restored(jetson):
    with power_mode(XAVIER, None, lock_clocks=True) as prepared:
        assert prepared.clocks_locked and jetson.state()["clocks_locked"] is True
        assert prepared.mode == "15w"  # the board's current mode, left alone
    state = jetson.state()
    assert state["clocks_locked"] is False
    assert [call[0] if call else "lock" for call in state["clock_calls"]] == ["--store", "lock", "--restore"]


def test_targets_without_modes_accept_only_the_default():
    x86 = builtin_definitions()["x86-cpu"]
    with power_mode(x86, None, lock_clocks=False) as prepared:
        assert prepared.mode == "default"
    with pytest.raises(UsageError, match="has no mode 'maxn'"):
        with power_mode(x86, "maxn", lock_clocks=False):
            pass
    with pytest.raises(UsageError, match="--lock-clocks needs a Jetson target"):
        with power_mode(x86, None, lock_clocks=True):
            pass


def test_missing_tool_is_one_clear_line(tmp_path, monkeypatch):
    board = make_emulated_jetson(tmp_path)
    monkeypatch.setenv("EDGEBENCH_SYSROOT", str(board.root))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(UsageError, match="nvpmodel not found on PATH"):
        query_mode(LocalShell())
