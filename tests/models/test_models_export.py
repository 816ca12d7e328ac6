"""onnx_for: real exports checked in onnxruntime, the cache, atomic writes and failures."""

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import onnx_builders
from edgebench.board.synthetic_inputs import make_inputs
from edgebench.board.torch_models import build_module
from edgebench.models import ExportError, default_cache_dir, onnx_for, resolve_model

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning")

TINY_SPEC = "spec_models:tiny_convnet?channels=2"


@pytest.fixture
def tiny(in_tests_dir):
    return resolve_model(TINY_SPEC, ["3x16x16"])


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """One real dynamo export shared by the tests that only read it (each takes seconds)."""
    cache_dir = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(Path(__file__).parent)
        model = resolve_model(TINY_SPEC, ["3x16x16"])
    return model, cache_dir, onnx_for(model, 2, cache_dir)


def run_onnx(path, model, batch):
    arrays = make_inputs([spec.as_dict(batch) for spec in model.inputs])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, arrays), arrays


def run_eager(model, arrays):
    module = build_module(model.recipe)
    with torch.no_grad():
        output = module(*(torch.from_numpy(arrays[spec.name]) for spec in model.inputs))
    return output.numpy()


def cached_files(cache_dir):
    # Temporary files are dot files; glob("*") would skip them.
    return sorted(path.name for path in (cache_dir / "onnx").iterdir())


def test_export_runs_in_onnxruntime_like_eager(tiny_export):
    model, _, path = tiny_export
    onnx.checker.check_model(str(path))
    [output], arrays = run_onnx(path, model, 2)
    np.testing.assert_allclose(output, run_eager(model, arrays), rtol=1e-4, atol=1e-5)


def test_export_is_static_with_the_model_input_names(tiny_export):
    _, _, path = tiny_export
    [graph_input] = onnx.load(str(path)).graph.input
    assert graph_input.name == "input0"
    assert [dim.dim_value for dim in graph_input.type.tensor_type.shape.dim] == [2, 3, 16, 16]


def test_export_metadata_sidecar(tiny_export):
    model, _, path = tiny_export
    assert path.parent.name == "onnx" and len(path.stem) == 24
    metadata = json.loads(path.with_suffix(".json").read_text())
    assert metadata["fingerprint"] == model.fingerprint
    assert metadata["inputs"] == [{"name": "input0", "shape": [2, 3, 16, 16], "dtype": "float32"}]
    assert (metadata["exporter"], metadata["dynamo_error"]) == ("dynamo", None)
    assert metadata["torch"] == torch.__version__


def test_second_call_uses_the_cache(tiny_export, monkeypatch):
    model, cache_dir, path = tiny_export
    mtime = path.stat().st_mtime_ns

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    assert onnx_for(model, 2, cache_dir) == path
    assert path.stat().st_mtime_ns == mtime


def test_cache_key_covers_batch_shapes_and_fingerprint(tiny_export, in_tests_dir, monkeypatch):
    model, cache_dir, _ = tiny_export
    export_calls = []

    def refuse(*args, **kwargs):
        export_calls.append(kwargs["dynamo"])
        raise RuntimeError("no export in this test")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    other_models = [
        (model, 4),
        (resolve_model(TINY_SPEC, ["3x8x8"]), 2),
        (resolve_model("spec_models:tiny_convnet?channels=3", ["3x16x16"]), 2),
    ]
    for other, batch in other_models:
        with pytest.raises(ExportError):
            onnx_for(other, batch, cache_dir)
    # Each is a cache miss: dynamo, then the legacy fallback.
    assert export_calls == [True, False] * len(other_models)


def test_fallback_to_the_legacy_exporter_is_recorded(tmp_path):
    # torch.export cannot capture TorchScript, so this takes the legacy path for real.
    torch.manual_seed(0)
    scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.ReLU()).eval())
    torch.jit.save(scripted, tmp_path / "scripted.pt")
    model = resolve_model(str(tmp_path / "scripted.pt"), ["6"])
    path = onnx_for(model, 3, tmp_path / "cache")
    metadata = json.loads(path.with_suffix(".json").read_text())
    assert metadata["exporter"] == "legacy-torchscript-opset17"
    assert "ScriptModule" in metadata["dynamo_error"]
    [output], arrays = run_onnx(path, model, 3)
    np.testing.assert_allclose(output, run_eager(model, arrays), rtol=1e-5, atol=1e-6)


def test_pt2_with_int64_and_bool_inputs_exports_and_runs(tmp_path):
    from spec_models import TokenNet

    torch.manual_seed(0)
    example = (torch.zeros(2, 6, dtype=torch.int64), torch.ones(2, 6, dtype=torch.bool))
    torch.export.save(torch.export.export(TokenNet().eval(), example), tmp_path / "tokens.pt2")
    model = resolve_model(str(tmp_path / "tokens.pt2"))
    path = onnx_for(model, 2, tmp_path / "cache")
    types = {value.name: value.type.tensor_type.elem_type for value in onnx.load(str(path)).graph.input}
    assert types == {"ids": onnx.TensorProto.INT64, "mask": onnx.TensorProto.BOOL}
    [output], arrays = run_onnx(path, model, 2)
    np.testing.assert_allclose(output, run_eager(model, arrays), rtol=1e-5, atol=1e-6)


def test_export_keeps_stdout_clean(tiny, tmp_path, capfd):
    onnx_for(tiny, 1, tmp_path)
    captured = capfd.readouterr()
    assert captured.out == ""
    assert "[torch.onnx]" not in captured.err


def test_an_interrupted_export_leaves_nothing_that_reads_as_cached(tiny, tmp_path, monkeypatch):
    def half_written_then_killed(module, args, f, **kwargs):
        Path(f).write_bytes(b"\x08\x07half an onnx file")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch.onnx, "export", half_written_then_killed)
    with pytest.raises(KeyboardInterrupt):
        onnx_for(tiny, 1, tmp_path)
    assert cached_files(tmp_path) == []


def test_an_export_without_its_sidecar_is_not_a_cache_hit(tiny, tmp_path, monkeypatch):
    # As if killed between writing the .onnx and its .json, with a temporary file left over.
    path = onnx_for(tiny, 1, tmp_path)
    path.with_suffix(".json").unlink()
    path.write_bytes(b"stale")
    (path.parent / f".{path.stem}.0123456789ab.onnx").write_bytes(b"left over")
    assert onnx_for(tiny, 1, tmp_path) == path
    onnx.checker.check_model(str(path))
    assert path.with_suffix(".json").is_file()


def test_export_failure_is_one_line_naming_both_exporters(tiny, tmp_path, monkeypatch):
    def failing(module, args, f, dynamo, **kwargs):
        Path(f).write_bytes(b"partial")
        raise RuntimeError(f"{'dynamo' if dynamo else 'legacy'} says no\nwith details")

    monkeypatch.setattr(torch.onnx, "export", failing)
    with pytest.raises(ExportError) as caught:
        onnx_for(tiny, 1, tmp_path)
    message = str(caught.value)
    assert message == (
        "cannot export spec_models:tiny_convnet?channels=2 to ONNX: RuntimeError: dynamo says no; "
        "legacy exporter: RuntimeError: legacy says no"
    )
    assert cached_files(tmp_path) == []


def test_an_export_with_other_inputs_than_asked_is_an_export_error(in_tests_dir, tmp_path):
    # Two input shapes for a one-input model: both exporters fail on the call itself.
    model = resolve_model(TINY_SPEC, ["3x16x16", "4"])
    with pytest.raises(ExportError, match=r"^cannot export spec_models:tiny_convnet\?channels=2 to ONNX: "):
        onnx_for(model, 1, tmp_path)


def test_an_exported_file_with_other_inputs_is_an_export_error(tiny, tmp_path, monkeypatch):
    # An exporter that "succeeds" with a graph whose input is not the model's.
    monkeypatch.setattr(torch.onnx, "export", lambda module, args, f, **kwargs: onnx_builders.matmul_model(f))
    with pytest.raises(ExportError) as caught:
        onnx_for(tiny, 1, tmp_path)
    assert str(caught.value) == (
        "the ONNX export of spec_models:tiny_convnet?channels=2 has inputs (name, rank) [('x', 2)], "
        "expected [('input0', 4)]"
    )
    assert cached_files(tmp_path) == []


def test_onnx_model_is_its_own_file(tmp_path):
    path = onnx_builders.matmul_model(tmp_path / "m.onnx")
    assert onnx_for(resolve_model(str(path)), 8, tmp_path / "cache") == path
    assert not (tmp_path / "cache").exists()


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("EDGEBENCH_CACHE_DIR")
    assert default_cache_dir() == tmp_path / "xdg" / "edgebench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "edgebench"


def test_onnx_for_uses_the_default_cache_dir(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path / "env-cache"))
    assert onnx_for(tiny, 1).parent == tmp_path / "env-cache" / "onnx"
