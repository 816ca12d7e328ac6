"""Spec strings and --input-shape texts: parsing and the usage errors for bad ones."""

import os

import pytest

from edgebench.errors import UsageError
from edgebench.models import InputSpec, parse_input_shape, resolve_model
from edgebench.models.spec import parse_kwargs, parse_spec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3x224x224", (None, (3, 224, 224))),
        (" 128 ", (None, (128,))),
        ("input_ids=128", ("input_ids", (128,))),
        # Split at the last '=': names may contain '=', spaces, colons, slashes, anything.
        ("a=b c:0/x=3x4", ("a=b c:0/x", (3, 4))),
        ("特徴 ü=16x16", ("特徴 ü", (16, 16))),
    ],
)
def test_parse_input_shape(text, expected):
    assert parse_input_shape(text) == expected


@pytest.mark.parametrize("text", ["", "3x", "x3", "3x0x2", "3,224,224", "-1x3", "3 x 4", "name=", "abc", "1.5"])
def test_parse_input_shape_rejects_bad_dims(text):
    with pytest.raises(UsageError, match="bad input shape .*expected the dims after the batch dim"):
        parse_input_shape(text)


def test_parse_input_shape_rejects_an_empty_name():
    with pytest.raises(UsageError, match="the input name before '=' is empty"):
        parse_input_shape("=3x4")


def test_input_spec_concrete_fills_every_dynamic_dim_with_the_batch():
    spec = InputSpec("x", ("batch", 3, None, "seq", 7), "float32")
    assert spec.concrete(5) == [5, 3, 5, 5, 7]


def test_kwargs_values_are_typed():
    assert parse_kwargs("num_classes=10&dropout=0.25&aux_logits=false&flag=TRUE&mode=fast&empty=") == {
        "num_classes": 10,
        "dropout": 0.25,
        "aux_logits": False,
        "flag": True,
        "mode": "fast",
        "empty": "",
    }


def test_kwargs_values_are_python_literals_or_else_strings():
    assert parse_kwargs("weights_backbone=None&scale=1e-3&sizes=(1,%202)&name='x'&big=10**9") == {
        "weights_backbone": None, "scale": 1e-3, "sizes": (1, 2), "name": "x", "big": "10**9"}


def test_kwargs_are_url_decoded():
    assert parse_kwargs("name=a%20b&path=x%2Fy") == {"name": "a b", "path": "x/y"}


@pytest.mark.parametrize("query", ["num_classes", "a=1&&b=2"])
def test_kwargs_without_a_value_are_usage_errors(query):
    with pytest.raises(UsageError, match="expected key=value pairs joined by '&'"):
        parse_kwargs(query)


def test_a_kwarg_given_twice_is_a_usage_error():
    with pytest.raises(UsageError, match="model argument 'a' is given twice"):
        parse_kwargs("a=1&a=2")


def test_torchvision_spec_becomes_a_recipe():
    parsed = parse_spec("torchvision:resnet18?num_classes=10&width_per_group=32")
    assert parsed.name == "torchvision:resnet18?num_classes=10&width_per_group=32"  # variants stay apart
    assert parsed.recipe == {
        "format": "torchvision",
        "name": "resnet18",
        "kwargs": {"num_classes": 10, "width_per_group": 32},
    }
    assert parsed.onnx_path is None


def test_unknown_torchvision_name_suggests_close_names():
    with pytest.raises(UsageError) as caught:
        parse_spec("torchvision:resnet181")
    message = str(caught.value)
    assert "torchvision has no model named 'resnet181'" in message
    assert "did you mean:" in message and "resnet18" in message


def test_unknown_torchvision_name_without_close_names_points_to_the_list():
    with pytest.raises(UsageError, match=r"no model named 'zzzz'; see torchvision.models.list_models\(\)"):
        parse_spec("torchvision:zzzz")


def test_callable_spec_imports_from_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parsed = parse_spec("my_pkg.nets:make.tiny?depth=2")
    assert parsed.name == "my_pkg.nets:make.tiny?depth=2"
    assert parsed.recipe == {
        "format": "callable",
        "target": "my_pkg.nets:make.tiny",
        "kwargs": {"depth": 2},
        "sys_path": [os.getcwd()],
    }


@pytest.mark.parametrize(
    ("file_name", "recipe_format"),
    [("model.pt2", "torch-export"), ("model.pt", "torch-file"), ("model.pth", "torch-file")],
)
def test_torch_files_become_recipes_with_absolute_paths(tmp_path, monkeypatch, file_name, recipe_format):
    (tmp_path / file_name).write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    parsed = parse_spec(file_name)
    assert parsed.name == file_name
    assert parsed.recipe == {"format": recipe_format, "path": str(tmp_path.resolve() / file_name)}


def test_onnx_file_keeps_its_path(tmp_path, monkeypatch):
    (tmp_path / "m.onnx").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    parsed = parse_spec("m.onnx")
    assert (parsed.name, parsed.recipe, parsed.onnx_path) == ("m.onnx", None, tmp_path.resolve() / "m.onnx")


def test_an_existing_file_wins_over_the_callable_form(tmp_path, monkeypatch):
    # 'v1:model.onnx' also reads as module 'v1', attribute 'model.onnx'.
    (tmp_path / "v1:model.onnx").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert parse_spec("v1:model.onnx").onnx_path == tmp_path.resolve() / "v1:model.onnx"


@pytest.mark.parametrize("spec", ["missing.onnx", "models/missing.pt2", "./missing.pt"])
def test_a_missing_model_file_is_a_usage_error(tmp_path, monkeypatch, spec):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError) as caught:
        resolve_model(spec)
    assert str(caught.value) == f"no such model file: {spec}"


@pytest.mark.parametrize("spec", ["resnet18", "model.tflite", "foo:bar:baz", "pkg/mod:fn", ""])
def test_an_unknown_spec_form_lists_the_accepted_forms(tmp_path, monkeypatch, spec):
    (tmp_path / "model.tflite").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError) as caught:
        resolve_model(spec)
    message = str(caught.value)
    assert f"cannot tell what model {spec!r} is; use " in message
    assert "\n" not in message  # the CLI prints usage errors as one line
    for form in ("torchvision:NAME", "package.module:callable", ".onnx", ".pt2", ".pt"):
        assert form in message
