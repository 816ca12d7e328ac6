"""resolve_model for every spec form: inputs, names, recipes and the usage errors."""

import json
import hashlib
import re
import shutil
import uuid

import pytest
import torch
from onnx import TensorProto, helper

import onnx_builders
import spec_models
from edgebench.errors import UsageError
from edgebench.models import InputSpec, resolve_model
from onnx_builders import FEATURES, IDS, MASK

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def torch_files(tmp_path_factory):
    """.pt and .pt2 files made once for this module: they take a second or two to write."""
    folder = tmp_path_factory.mktemp("torch-files")
    torch.manual_seed(0)
    convnet = spec_models.TinyConvNet().eval()
    torch.save(convnet, folder / "pickled.pt")
    torch.jit.save(torch.jit.script(convnet), folder / "scripted.pt")
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(convnet, (torch.randn(2, 3, 16, 16),), dynamic_shapes=({0: batch},))
    torch.export.save(program, folder / "dynamic.pt2")
    token_example = (torch.zeros(2, 6, dtype=torch.int64), torch.ones(2, 6, dtype=torch.bool))
    token_program = torch.export.export(spec_models.TokenNet().eval(), token_example)
    torch.export.save(token_program, folder / "tokens.pt2")
    torch.export.save(torch.export.export(spec_models.ScaledBy(), (torch.randn(2), 3)), folder / "scaled.pt2")
    (folder / "corrupt.pt").write_bytes(b"PK\x03\x04 this is no zip archive")
    (folder / "corrupt.pt2").write_bytes(b"not a program")
    return folder


# --- torchvision ---------------------------------------------------------------------------


def test_torchvision_model_gets_its_weights_image_size():
    model = resolve_model("torchvision:mobilenet_v3_small")
    assert (model.spec, model.name, model.kind) == (
        "torchvision:mobilenet_v3_small",
        "torchvision:mobilenet_v3_small",
        "torch",
    )
    assert model.recipe == {"format": "torchvision", "name": "mobilenet_v3_small", "kwargs": {}}
    assert model.onnx_path is None
    assert model.inputs == (InputSpec("input0", ("batch", 3, 224, 224), "float32"),)
    assert model.input_shapes(4) == {"input0": [4, 3, 224, 224]}
    assert model.fingerprint.startswith("sha256:") and len(model.fingerprint) == len("sha256:") + 64
    json.dumps(model.recipe)  # the recipe travels to the worker as JSON


def test_torchvision_segmentation_model_uses_the_resize_size_and_downloads_nothing():
    # No crop size in its transforms, and its builder defaults to a pretrained backbone.
    model = resolve_model("torchvision:lraspp_mobilenet_v3_large?num_classes=3")
    assert model.inputs == (InputSpec("input0", ("batch", 3, 520, 520), "float32"),)


@pytest.mark.parametrize(
    ("input_shape", "shape"),
    [
        ("3x96x96", ("batch", 3, 96, 96)),
        ("input0=3x64x80", ("batch", 3, 64, 80)),
        ("3x8x112x112", ("batch", 3, 8, 112, 112)),
    ],
)
def test_torchvision_input_shape_overrides_the_default(input_shape, shape):
    model = resolve_model("torchvision:mobilenet_v3_small", [input_shape])
    assert model.inputs == (InputSpec("input0", shape, "float32"),)


def test_torchvision_unknown_input_name_is_a_usage_error():
    with pytest.raises(UsageError, match="has no input named 'image'; its inputs are: 'input0'"):
        resolve_model("torchvision:mobilenet_v3_small", ["image=3x64x64"])


def test_torchvision_bad_kwarg_is_a_usage_error():
    with pytest.raises(UsageError, match=r"^cannot build torchvision:squeezenet1_1\?no_such_arg=1: TypeError: .*no_such_arg"):
        resolve_model("torchvision:squeezenet1_1?no_such_arg=1")


# --- package.module:callable ---------------------------------------------------------------


def test_callable_model_from_the_current_directory(in_tests_dir):
    model = resolve_model("spec_models:tiny_convnet?channels=2", ["3x16x16"])
    assert (model.name, model.kind) == ("spec_models:tiny_convnet?channels=2", "torch")
    assert model.recipe == {
        "format": "callable",
        "target": "spec_models:tiny_convnet",
        "kwargs": {"channels": 2},
        "sys_path": [str(in_tests_dir)],
    }
    assert model.inputs == (InputSpec("input0", ("batch", 3, 16, 16), "float32"),)


def test_callable_in_a_package_only_the_current_directory_holds(tmp_path, monkeypatch, keep_sys_path):
    package = f"user_models_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "nets.py").write_text(
        "import torch\n\ndef make(width=4):\n    return torch.nn.Linear(width, 2)\n"
    )
    monkeypatch.chdir(tmp_path)
    model = resolve_model(f"{package}.nets:make?width=6", ["6"])
    assert model.inputs == (InputSpec("input0", ("batch", 6), "float32"),)
    assert model.recipe["sys_path"] == [str(tmp_path)]


def test_callable_inputs_are_numbered_or_named_as_given(in_tests_dir):
    numbered = resolve_model("spec_models:tiny_convnet", ["3x8x8", "5"])
    assert numbered.inputs == (
        InputSpec("input0", ("batch", 3, 8, 8), "float32"),
        InputSpec("input1", ("batch", 5), "float32"),
    )
    named = resolve_model("spec_models:tiny_convnet", ["image=3x8x8", "scale=1"])
    assert [spec.name for spec in named.inputs] == ["image", "scale"]


def test_callable_without_input_shape_asks_for_it(in_tests_dir):
    with pytest.raises(UsageError, match="spec_models:tiny_convnet does not record its input shapes: pass --input-shape"):
        resolve_model("spec_models:tiny_convnet")


def test_callable_input_given_twice_is_a_usage_error(in_tests_dir):
    with pytest.raises(UsageError, match="input 'x' of spec_models:tiny_convnet is given two shapes"):
        resolve_model("spec_models:tiny_convnet", ["x=3", "x=4"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_xyz:make", r"^cannot import no_such_module_xyz: No module named 'no_such_module_xyz'$"),
        ("spec_models:no_such_factory", r"^spec_models has no attribute 'no_such_factory'$"),
        ("spec_models:not_a_module", r"^spec_models:not_a_module did not produce a torch.nn.Module \(got int\)$"),
        ("spec_models:broken_factory", r"^cannot build spec_models:broken_factory: RuntimeError: factory exploded$"),
        ("spec_models:tiny_convnet?depth=3", r"^cannot build spec_models:tiny_convnet\?depth=3: TypeError: .*'depth'"),
    ],
)
def test_callable_that_yields_no_module_is_a_usage_error(in_tests_dir, spec, message):
    with pytest.raises(UsageError, match=message):
        resolve_model(spec, ["3x8x8"])


# --- .pt and .pt2 files ----------------------------------------------------------------------


@pytest.mark.parametrize("file_name", ["pickled.pt", "scripted.pt"])
def test_pt_file_needs_input_shape(torch_files, file_name):
    with pytest.raises(UsageError, match=f"{file_name} does not record its input shapes: pass --input-shape"):
        resolve_model(str(torch_files / file_name))


@pytest.mark.parametrize("file_name", ["pickled.pt", "scripted.pt"])
def test_pt_file_with_input_shape(torch_files, file_name):
    model = resolve_model(str(torch_files / file_name), ["3x16x16"])
    assert (model.name, model.kind) == (file_name, "torch")
    assert model.recipe == {"format": "torch-file", "path": str(torch_files / file_name)}
    assert model.inputs == (InputSpec("input0", ("batch", 3, 16, 16), "float32"),)


def test_corrupt_pt_file_is_a_usage_error(torch_files):
    with pytest.raises(UsageError, match=f"^cannot load {re.escape(str(torch_files / 'corrupt.pt'))}: "):
        resolve_model(str(torch_files / "corrupt.pt"), ["3x16x16"])


def test_pt2_shapes_come_from_the_program_user_inputs(torch_files):
    model = resolve_model(str(torch_files / "dynamic.pt2"))
    assert model.recipe == {"format": "torch-export", "path": str(torch_files / "dynamic.pt2")}
    # Only the forward argument: no parameters or batch-norm buffers.
    [image] = model.inputs
    assert image.name == "x" and image.dtype == "float32"
    assert isinstance(image.shape[0], str) and image.shape[1:] == (3, 16, 16)
    assert model.input_shapes(5) == {"x": [5, 3, 16, 16]}


def test_pt2_with_int64_and_bool_inputs(torch_files):
    model = resolve_model(str(torch_files / "tokens.pt2"))
    assert model.inputs == (InputSpec("ids", (2, 6), "int64"), InputSpec("mask", (2, 6), "bool"))


def test_pt2_input_shape_keeps_the_program_batch_dim_and_dtype(torch_files):
    model = resolve_model(str(torch_files / "tokens.pt2"), ["mask=9", "ids=9"])
    assert model.inputs == (InputSpec("ids", (2, 9), "int64"), InputSpec("mask", (2, 9), "bool"))


@pytest.mark.parametrize(
    ("input_shape", "message"),
    [
        ("ids=9x3", r"input 'ids' of tokens.pt2 has shape 2x6: --input-shape needs its 1 dims after the batch dim, got 'ids=9x3'"),
        ("9", r"tokens.pt2 has 2 inputs \('ids', 'mask'\): give each shape as NAME=SHAPE"),
        ("tokens=9", r"tokens.pt2 has no input named 'tokens'; its inputs are: 'ids', 'mask'"),
    ],
)
def test_pt2_bad_input_shape_is_a_usage_error(torch_files, input_shape, message):
    with pytest.raises(UsageError, match=message):
        resolve_model(str(torch_files / "tokens.pt2"), [input_shape])


def test_pt2_with_a_non_tensor_input_is_a_usage_error(torch_files):
    with pytest.raises(UsageError, match="input 'factor' of scaled.pt2 is not a tensor"):
        resolve_model(str(torch_files / "scaled.pt2"))


def test_corrupt_pt2_file_is_a_usage_error(torch_files):
    with pytest.raises(UsageError, match=f"^cannot load {re.escape(str(torch_files / 'corrupt.pt2'))}: "):
        resolve_model(str(torch_files / "corrupt.pt2"))


# --- ONNX files ------------------------------------------------------------------------------


def test_onnx_inputs_with_odd_names_dtypes_and_dynamic_dims(tmp_path):
    path = onnx_builders.token_model(tmp_path / "tokens.onnx")
    model = resolve_model(str(path))
    assert (model.name, model.kind, model.recipe, model.onnx_path) == ("tokens.onnx", "onnx", None, path)
    assert model.inputs == (
        InputSpec(IDS, ("batch", "seq"), "int64"),
        InputSpec(MASK, ("batch", "seq"), "bool"),
        InputSpec(FEATURES, (None, 4), "float32"),
    )
    assert model.input_shapes(3) == {IDS: [3, 3], MASK: [3, 3], FEATURES: [3, 4]}


def test_onnx_named_input_shapes_with_odd_names(tmp_path):
    path = onnx_builders.token_model(tmp_path / "tokens.onnx")
    model = resolve_model(str(path), [f"{IDS}=128", f"{MASK}=128", f"{FEATURES}=4"])
    assert model.input_shapes(2) == {IDS: [2, 128], MASK: [2, 128], FEATURES: [2, 4]}
    assert model.inputs[2].shape == (None, 4)


@pytest.mark.parametrize(
    ("input_shape", "message"),
    [
        (f"{IDS}=1x128", f"input '{IDS}' of tokens.onnx has shape batchxseq: --input-shape needs its 1 dims"),
        ("128", "tokens.onnx has 3 inputs .*: give each shape as NAME=SHAPE"),
        ("input_ids=128", f"tokens.onnx has no input named 'input_ids'; its inputs are: '{IDS}', '{MASK}', '{FEATURES}'"),
    ],
)
def test_onnx_bad_input_shape_is_a_usage_error(tmp_path, input_shape, message):
    path = onnx_builders.token_model(tmp_path / "tokens.onnx")
    with pytest.raises(UsageError, match=message):
        resolve_model(str(path), [input_shape])


def test_onnx_single_input_takes_an_unnamed_shape(tmp_path):
    path = onnx_builders.matmul_model(tmp_path / "matmul.onnx")
    assert resolve_model(str(path), ["8"]).inputs == (InputSpec("x", ("N", 8), "float32"),)


@pytest.mark.parametrize("opset", [11, 13, 17, 21])
def test_onnx_any_opset(tmp_path, opset):
    path = onnx_builders.matmul_model(tmp_path / "matmul.onnx", opset=opset)
    assert resolve_model(str(path)).input_shapes(1) == {"x": [1, 8]}


def test_onnx_initializers_listed_as_inputs_are_not_inputs(tmp_path):
    # Models from IR version 3 and older list every initializer among the graph inputs.
    weight_as_input = helper.make_tensor_value_info("W", TensorProto.FLOAT, [8, 8])
    path = onnx_builders.matmul_model(tmp_path / "old.onnx", extra_inputs=[weight_as_input])
    assert [spec.name for spec in resolve_model(str(path)).inputs] == ["x"]


def test_onnx_fingerprint_is_the_file_sha256_whatever_its_name(tmp_path):
    path = onnx_builders.matmul_model(tmp_path / "a.onnx")
    shutil.copy(path, tmp_path / "b.onnx")
    fingerprint = resolve_model(str(path)).fingerprint
    assert fingerprint == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert resolve_model(str(tmp_path / "b.onnx")).fingerprint == fingerprint
    other = onnx_builders.matmul_model(tmp_path / "c.onnx", batch_dim="M")
    assert resolve_model(str(other)).fingerprint != fingerprint


def test_onnx_fingerprint_covers_external_data(tmp_path):
    path = onnx_builders.matmul_model(tmp_path / "external.onnx", external_data="weights.bin")
    before = resolve_model(str(path)).fingerprint
    weights = tmp_path / "weights.bin"
    data = bytearray(weights.read_bytes())
    data[0] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert resolve_model(str(path)).fingerprint != before
    weights.unlink()
    with pytest.raises(UsageError) as caught:
        resolve_model(str(path))
    assert str(caught.value) == f"ONNX model {path} needs its external data file {weights}, which is missing"


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"\x08\x07garbage\xff\xff\xff", "Error parsing message"), (b"", "not an ONNX model")],
)
def test_corrupt_onnx_file_is_a_usage_error_naming_it(tmp_path, content, reason):
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=f"^cannot read ONNX model {re.escape(str(path))}: .*{reason}"):
        resolve_model(str(path))


@pytest.mark.parametrize(
    ("value_info", "message"),
    [
        (
            helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, [2]),
            "input 'seq' of odd.onnx is not a tensor",
        ),
        (
            helper.make_tensor_value_info("unranked", TensorProto.FLOAT, None),
            "input 'unranked' of odd.onnx has no shape in the graph",
        ),
        (
            helper.make_tensor_value_info("untyped", TensorProto.UNDEFINED, [2]),
            "input 'untyped' of odd.onnx has unknown element type 0",
        ),
    ],
)
def test_onnx_inputs_edgebench_cannot_feed_are_usage_errors(tmp_path, value_info, message):
    path = onnx_builders.matmul_model(tmp_path / "odd.onnx", extra_inputs=[value_info])
    with pytest.raises(UsageError, match=message):
        resolve_model(str(path))

