"""Jetsons recognised by SoC and module part number, on emulated system roots (tests/support/fake_jetson.py)
holding each board's device-tree model, compatible list, soc_id and serial as the real boards have them."""

import pytest

from edgebench.board.jetson_identity import identify
from edgebench.board.machine import machine_environment, machine_identity
from edgebench.errors import UsageError
from edgebench.targets import resolve_target
from edgebench.targets.definition import load_definition
from edgebench.targets.detect import detect

from fake_jetson import make_emulated_jetson


@pytest.fixture
def board(tmp_path, monkeypatch):
    """Stand up an emulated board of the given kind and make it this machine's system root."""

    def make(kind):
        emulated = make_emulated_jetson(tmp_path / kind, kind)
        monkeypatch.setenv("EDGEBENCH_SYSROOT", str(emulated.root))
        return emulated

    return make


@pytest.mark.parametrize("kind, target", [("xavier-r32", "xavier"), ("xavier", "xavier"), ("orin", "orin")])
def test_agx_boards_are_detected_whatever_their_model_string_says(board, kind, target):
    board(kind)
    assert resolve_target("local").name == target
    assert resolve_target(target).available


def test_an_r32_agx_xavier_reports_what_identifies_it(board):
    board("xavier-r32")
    jetson = machine_environment()["jetson"]
    assert jetson["model"] == "Jetson-AGX"  # kept for display only
    assert jetson["compatible"] == ["nvidia,p2972-0000", "nvidia,tegra194"]
    assert (jetson["soc"], jetson["module"], jetson["serial"]) == ("tegra194", "p2972-0000", "1422919082001")
    assert jetson["release"].startswith("R32 (release)")


@pytest.mark.parametrize("kind, target, reason", [
    ("xavier-nx", "xavier", "this machine is an Xavier NX (module p3668-0000, tegra194, model 'NVIDIA Jetson Xavier NX "
                            "Developer Kit'), not an AGX Xavier (target xavier takes tegra194 with module p2888 or "
                            "p2972-0000)"),
    ("orin-nano", "orin", "this machine is an Orin Nano (module p3767-0005, tegra234, model 'NVIDIA Jetson Orin Nano "
                          "Developer Kit'), not an AGX Orin (target orin takes tegra234 with module p3701)"),
    ("orin-nano", "xavier", "this machine is an Orin Nano (module p3767-0005, tegra234, model 'NVIDIA Jetson Orin "
                            "Nano Developer Kit'), not an AGX Xavier (target xavier takes tegra194 with module p2888 "
                            "or p2972-0000)"),
])
def test_same_soc_boards_are_never_taken_for_agx_ones(board, kind, target, reason):
    board(kind)
    resolved = resolve_target(target)
    assert not resolved.available
    assert resolved.reason == reason


@pytest.mark.parametrize("kind, table", [
    ("xavier-nx", '[board] soc = "tegra194", modules = ["p3668-0000"]'),
    ("orin-nano", '[board] soc = "tegra234", modules = ["p3767-0005"]'),
])
def test_a_jetson_without_a_builtin_target_is_one_line_saying_what_to_write(board, kind, table):
    board(kind)
    with pytest.raises(UsageError) as error:
        resolve_target("local")
    message = str(error.value)
    assert "\n" not in message
    assert "which no built-in target describes" in message and table in message


def test_an_unknown_jetson_is_one_line(board):
    emulated = board("orin")
    (emulated.root / "proc" / "device-tree" / "compatible").write_bytes(b"acme,carrier-7\x00nvidia,tegra234\x00")
    with pytest.raises(UsageError) as error:
        resolve_target("local")
    assert str(error.value) == (
        "this machine is a Jetson (module carrier-7, tegra234, model 'Jetson AGX Orin Developer Kit'), which no "
        'built-in target describes; describe it in a .toml file with [board] soc = "tegra234", modules = '
        '["carrier-7"] (copy edgebench/targets/builtin/orin.toml)')


def test_a_jetson_without_compatible_is_refused_by_agx_targets(board):
    emulated = board("xavier")
    (emulated.root / "proc" / "device-tree" / "compatible").unlink()
    assert detect().jetson["module"] is None
    assert resolve_target("xavier").reason.startswith("this machine is a Jetson (module unknown, tegra194")


def test_a_users_board_table_matches_by_part_number_prefix(board, tmp_path):
    board("xavier-nx")
    path = tmp_path / "nx.toml"
    path.write_text('name = "nx"\nkind = "jetson"\ndevices = ["gpu"]\ndefault_device = "gpu"\nbackends = ["eager"]\n'
                    '[board]\nsoc = "tegra194"\nmodules = ["p3668"]\n')
    assert resolve_target(str(path)).available
    path.write_text(path.read_text().replace('soc = "tegra194"', 'soc = "tegra234"'))
    assert resolve_target(str(path)).reason == (
        "this machine is an Xavier NX (module p3668-0000, tegra194, model 'NVIDIA Jetson Xavier NX Developer Kit'), "
        "not a board target nx takes (tegra234 with module p3668)")


def test_parts_match_whole_numbers_only():
    nx = {"release": "R35", **identify(["nvidia,p3509-0000+p3668-0000", "nvidia,p3668-0000", "nvidia,tegra194"], 25)}
    assert nx["soc"] == "tegra194" and nx["module"] == "p3668-0000"
    carrier_only = identify(["nvidia,p3737-0000+p3701-0005", "nvidia,tegra234"], None)
    assert (carrier_only["soc"], carrier_only["module"]) == ("tegra234", "p3701-0005")
    assert identify(["nvidia,p37010-0000", "nvidia,tegra234"], 35)["module"] == "p37010-0000"


@pytest.mark.parametrize("model_match, replacement", [
    ("AGX Xavier", '[board] soc = "tegra194", modules = ["p2888", "p2972-0000"]'),
    ("AGX Orin", '[board] soc = "tegra234", modules = ["p3701"]'),
    ("Nano", '[board] soc = "tegraNNN", modules = ["pNNNN"]'),
])
def test_an_old_model_match_file_is_refused_with_what_to_write(tmp_path, model_match, replacement):
    path = tmp_path / "old.toml"
    path.write_text(f'name = "b"\nkind = "jetson"\nmodel_match = "{model_match}"\ndevices = ["gpu"]\n'
                    'default_device = "gpu"\nbackends = ["eager"]\n')
    with pytest.raises(UsageError) as error:
        load_definition(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"invalid target file {path}: field model_match: boards are recognised by SoC and "
                              "module part number, not by the model string: replace model_match with ")
    assert replacement in message


def test_a_board_table_only_describes_jetsons(tmp_path):
    path = tmp_path / "cpu.toml"
    path.write_text('name = "b"\nkind = "cpu"\ndevices = ["cpu"]\ndefault_device = "cpu"\nbackends = ["eager"]\n'
                    '[board]\nsoc = "tegra194"\nmodules = ["p2888"]\n')
    with pytest.raises(UsageError, match=r"\[board\] only describes Jetsons"):
        load_definition(path)


def test_the_board_serial_and_a_desktop_gpu_model_enter_the_environment(board, tmp_path, monkeypatch):
    emulated = board("xavier")
    first = machine_environment()
    (emulated.root / "proc" / "device-tree" / "serial-number").write_bytes(b"1422919089999\x00")
    assert machine_environment()["machine_id"] != first["machine_id"]  # another board of the same kind
    assert first["gpu_model"] is None

    desktop = tmp_path / "desktop"
    gpu = desktop / "proc" / "driver" / "nvidia" / "gpus" / "0000:01:00.0"
    gpu.mkdir(parents=True)
    (gpu / "information").write_text("Model: \t\t NVIDIA GeForce RTX 3090\nIRQ:   \t\t 142\n"
                                     "GPU UUID: \t GPU-5a9c0d7e-0000-0000-0000-000000000000\n")
    monkeypatch.setenv("EDGEBENCH_SYSROOT", str(desktop))
    environment = machine_environment()
    assert environment["jetson"] is None
    assert environment["gpu_model"] == "NVIDIA GeForce RTX 3090"
    assert environment["machine_id"] == machine_identity({**environment, "machine_id": None})
    assert environment["machine_id"] != machine_identity({**environment, "gpu_model": "NVIDIA A100"})
