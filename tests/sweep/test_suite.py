"""Suite files: the shipped example, the matrix expansion, and errors that name file, field and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebench.errors import UsageError
from edgebench.sweep.suite import RegressRule, SuiteItem, load_suite

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "nightly-suite.toml"
MINIMAL = 'name = "s"\n[matrix]\nmodels = ["torchvision:resnet18"]\nbackends = ["onnxruntime"]\n'


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(body)
    return path


def test_the_shipped_nightly_expands_to_every_combination():
    suite = load_suite(EXAMPLE)
    items = suite.items()
    assert suite.name == "xavier-nightly"
    assert len(items) == 2 * 2 * 3 * 2 * 2  # models x modes x backends x batches x precisions
    assert len(set(items)) == len(items)
    assert {item.target for item in items} == {"xavier"}
    # Grouped by mode (switching is slow), the backends of one model and batch side by side.
    assert [item.mode for item in items] == ["maxn"] * 24 + ["15w"] * 24
    assert items[:3] == [SuiteItem("torchvision:resnet18", "xavier", "maxn", backend, 1, "fp32")
                         for backend in ("eager", "onnxruntime", "tensorrt")]
    assert (suite.settings.min_time, suite.settings.max_time, suite.settings.processes) == (5.0, 60.0, 3)
    assert suite.settings.threads is None


def test_regress_thresholds_are_overridden_per_model():
    suite = load_suite(EXAMPLE)
    assert suite.regress_rule("torchvision:resnet18") == RegressRule("p50", 0.05)
    assert suite.regress_rule("torchvision:mobilenet_v2") == RegressRule("p50", 0.08)


def test_one_matrix_table_and_defaults(tmp_path):
    suite = load_suite(write(tmp_path, MINIMAL))
    assert suite.items() == [SuiteItem("torchvision:resnet18", "local", None, "onnxruntime", 1, "fp32")]
    assert suite.regress_rule("torchvision:resnet18") == RegressRule("p50", 0.05)


def test_entries_add_up_and_shared_items_are_measured_once(tmp_path):
    body = ('name = "s"\n'
            '[[matrix]]\nmodels = ["a.b:net"]\nbackends = ["eager", "onnxruntime"]\nbatches = [1, 4]\n'
            '[[matrix]]\nmodels = ["a.b:net", "m.onnx"]\nbackends = ["onnxruntime"]\nbatches = [4]\n'
            'input_shapes = ["3x64x64"]\n')
    items = load_suite(write(tmp_path, body)).items()
    assert [(item.model, item.backend, item.batch, item.input_shapes) for item in items] == [
        ("a.b:net", "eager", 1, ()), ("a.b:net", "onnxruntime", 1, ()),
        ("a.b:net", "eager", 4, ()), ("a.b:net", "onnxruntime", 4, ()),
        ("a.b:net", "onnxruntime", 4, ("3x64x64",)),  # another input shape: another measurement
        ("m.onnx", "onnxruntime", 4, ("3x64x64",)),
    ]
    repeated = body.replace('input_shapes = ["3x64x64"]\n', "")
    assert len(load_suite(write(tmp_path, repeated)).items()) == 5


@pytest.mark.parametrize("body, message", [
    (MINIMAL.replace('name = "s"\n', ""), "field name: Field required"),
    (MINIMAL + 'batches = [1, 0]\n', "field matrix.0.batches.1: Input should be greater than 0"),
    (MINIMAL + 'precisions = ["fp64"]\n', "field matrix.0.precisions.0: Input should be 'fp32', 'fp16' or 'int8'"),
    (MINIMAL.replace('["onnxruntime"]', '["onnxruntime", "tvm"]'), "unknown backend(s) tvm; known backends: eager"),
    (MINIMAL + 'models2 = ["x"]\n', "field matrix.0.models2: Extra inputs are not permitted"),
    (MINIMAL + 'batches = [1, 1]\n', "field matrix.0.batches: Value error, values repeat: [1, 1]"),
    (MINIMAL + 'input_shapes = ["3x224xa"]\n', "bad input shape '3x224xa'"),
    (MINIMAL + 'input_shapes = ["a=3x8,3x16", "b=4,5,6"]\n', "alternatives pair up by position across inputs"),
    (MINIMAL + 'targets = ["xavier"]\nmodes = ["maxn", "25w"]\n', "target xavier has no mode 25w; its modes: maxn"),
    (MINIMAL + 'targets = ["x86-cpu"]\nmodes = ["maxn"]\n', "target x86-cpu has no mode maxn; its modes: default"),
    (MINIMAL.replace('["onnxruntime"]', '["tensorrt"]') + 'targets = ["x86-cpu"]\n', "target x86-cpu does not run tensorrt"),
    (MINIMAL + 'targets = ["xavir"]\n', "unknown target 'xavir'; targets: local, "),
    (MINIMAL + '[settings]\nmin_time = 10\nmax_time = 5\n', "max_time (5 s) is below min_time (10 s)"),
    (MINIMAL + '[settings]\nprocesses = 0\n', "field settings.processes: Input should be greater than 0"),
    (MINIMAL + '[regress]\nmetric = "p95"\n', "field regress.metric: Value error, unknown metric 'p95'"),
    (MINIMAL + '[regress]\nthreshold = -0.1\n', "field regress.threshold: Input should be greater than or equal to 0"),
    (MINIMAL + '[regress.models."torchvision:vgg16"]\nthreshold = 0.1\n',
     "regress.models names torchvision:vgg16, which no matrix entry measures"),
    ('name = "s"\n', "field matrix: Field required"),
    ('name = "s"\nmatrix = []\n', "field matrix: List should have at least 1 item"),
    ('name = "s"\n[matrix\n', "is not valid TOML"),
])
def test_an_invalid_suite_names_the_file_the_field_and_the_problem(tmp_path, body, message):
    path = write(tmp_path, body)
    with pytest.raises(UsageError) as error:
        load_suite(path)
    text = str(error.value)
    assert text.startswith(f"invalid suite file {path}: ") or text.startswith(f"suite file {path} is not valid")
    assert message in text
    assert "\n" not in text


def test_input_shape_alternatives_are_a_sweep_axis_as_on_the_command_line(tmp_path):
    items = load_suite(write(tmp_path, MINIMAL.replace('["onnxruntime"]', '["eager", "onnxruntime"]')
                             + 'input_shapes = ["3x256x512,3x512x1024"]\n')).items()
    # Each shape a measurement of its own, the backends of one shape side by side.
    assert [(item.input_shapes, item.backend) for item in items] == [
        (("3x256x512",), "eager"), (("3x256x512",), "onnxruntime"),
        (("3x512x1024",), "eager"), (("3x512x1024",), "onnxruntime")]


def test_a_missing_suite_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match=r"no such suite file: .*absent\.toml"):
        load_suite(tmp_path / "absent.toml")
