import pytest

from edgebench.board.jetson_identity import identify
from edgebench.errors import UsageError
from edgebench.targets import builtin_definitions, resolve_target
from edgebench.targets.definition import load_definition
from edgebench.targets.detect import LocalMachine


def jetson(model, compatible, soc_id):
    """A Jetson as its worker reports it (``env["jetson"]``)."""
    return LocalMachine(jetson={"release": "R35", "model": model, **identify(compatible, soc_id), "serial": None},
                        nvidia_gpu=None, machine="aarch64")


X86 = LocalMachine(jetson=None, nvidia_gpu=None, machine="x86_64")
XAVIER = jetson("NVIDIA Jetson AGX Xavier Developer Kit", ["nvidia,p2972-0000", "nvidia,tegra194"], 25)
ORIN = jetson("Jetson AGX Orin Developer Kit", ["nvidia,p3737-0000+p3701-0000", "nvidia,p3701-0000", "nvidia,tegra234"],
              35)
GPU_BOX = LocalMachine(jetson=None, nvidia_gpu="nvidia-smi", machine="x86_64")


def test_builtin_targets_and_their_modes():
    builtins = builtin_definitions()
    assert sorted(builtins) == ["cuda-gpu", "orin", "x86-cpu", "xavier"]
    xavier = builtins["xavier"]
    assert [(m.name, m.nvpmodel_id) for m in xavier.modes] == [
        ("maxn", 0), ("10w", 1), ("15w", 2), ("30w-all", 3), ("30w-6core", 4), ("30w-4core", 5),
        ("30w-2core", 6), ("15w-desktop", 7)]
    assert [(m.name, m.nvpmodel_id) for m in builtins["orin"].modes] == [
        ("maxn", 0), ("15w", 1), ("30w", 2), ("50w", 3)]
    assert xavier.devices == ["gpu", "dla0", "dla1", "cpu"]
    assert builtins["x86-cpu"].mode_names == ["default"]


def test_unknown_mode_names_the_valid_ones():
    with pytest.raises(UsageError, match="target xavier has no mode 'turbo'; its modes: maxn, 10w, 15w"):
        builtin_definitions()["xavier"].mode("turbo")
    with pytest.raises(UsageError, match="target x86-cpu has no mode 'maxn'; its modes: default"):
        builtin_definitions()["x86-cpu"].mode("maxn")
    assert builtin_definitions()["x86-cpu"].mode("default") is None


@pytest.mark.parametrize("machine, local, available", [
    (X86, "x86-cpu", {"x86-cpu"}), (XAVIER, "xavier", {"xavier"}), (ORIN, "orin", {"orin"}),
    (GPU_BOX, "cuda-gpu", {"cuda-gpu", "x86-cpu"}),
])
def test_detection_picks_the_local_target(machine, local, available):
    assert resolve_target("local", machine).name == local
    assert {name for name in builtin_definitions() if resolve_target(name, machine).available} == available


def test_unavailable_targets_say_why():
    assert resolve_target("xavier", X86).reason == "this machine is not a Jetson (no /etc/nv_tegra_release)"
    assert resolve_target("xavier", ORIN).reason == (
        "this machine is an AGX Orin (module p3701-0000, tegra234, model 'Jetson AGX Orin Developer Kit'), "
        "not an AGX Xavier (target xavier takes tegra194 with module p2888 or p2972-0000)")
    assert "no NVIDIA GPU found" in resolve_target("cuda-gpu", X86).reason


def test_unknown_target_lists_the_names():
    with pytest.raises(UsageError, match="unknown target 'tx2'; targets: local, cuda-gpu, orin, x86-cpu, xavier"):
        resolve_target("tx2", X86)


def test_a_users_file_is_a_target(tmp_path):
    path = tmp_path / "nano.toml"
    path.write_text('name = "my-board"\nkind = "cpu"\ndevices = ["cpu"]\ndefault_device = "cpu"\n'
                    'backends = ["onnxruntime"]\n')
    target = resolve_target(str(path), X86)
    assert target.name == "my-board" and target.available


@pytest.mark.parametrize("body, message", [
    ('name = "b"\nkind = "fpga"\ndevices = ["cpu"]\ndefault_device = "cpu"\nbackends = ["eager"]\n',
     "field kind: Input should be 'cpu', 'cuda' or 'jetson'"),
    ('name = "b"\nkind = "cpu"\ndevices = ["cpu"]\ndefault_device = "gpu"\nbackends = ["eager"]\n',
     "default_device 'gpu' is not one of devices"),
    ('name = "b"\nkind = "jetson"\ndevices = ["gpu"]\ndefault_device = "gpu"\nbackends = ["eager"]\n'
     'modes = [{ name = "maxn", nvpmodel_id = -1 }]\n', "field modes.0.nvpmodel_id"),
    ('name = "b"\nkind = "cpu"\n', "field devices: Field required"),
    ('name = "b"\nkind = \n', "is not valid TOML"),
    ('name = "b"\nkind = "cpu"\ndevices = ["cpu"]\ndefault_device = "cpu"\nbackends = ["eager"]\ncolour = "red"\n',
     "field colour: Extra inputs are not permitted"),
])
def test_an_invalid_file_names_the_file_the_field_and_the_problem(tmp_path, body, message):
    path = tmp_path / "board.toml"
    path.write_text(body)
    with pytest.raises(UsageError) as error:
        load_definition(path)
    assert str(path) in str(error.value) and message in str(error.value)
    assert "\n" not in str(error.value)
