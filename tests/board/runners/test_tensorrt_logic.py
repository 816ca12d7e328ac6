"""The TensorRT runner's pure logic, without TensorRT: what can be built, the builder flags, the
engine cache, the DLA fallback report and the per-layer table."""

import hashlib
import json
import os

import numpy as np
import pytest

from edgebench.board.runners import trt_config
from edgebench.board.runners.trt_config import BuildSettings

FLAGS_8_TO_10 = {"FP16", "INT8", "GPU_FALLBACK", "TF32"}
FLAGS_11 = {"GPU_FALLBACK", "TF32"}
INPUTS = [{"name": "input", "shape": [1, 3, 224, 224], "dtype": "float32"}]


@pytest.mark.parametrize("precision, device, flags, calibrator, reason", [
    ("fp32", "gpu", FLAGS_8_TO_10, True, None),
    ("fp16", "gpu", FLAGS_8_TO_10, True, None),
    ("int8", "gpu", FLAGS_8_TO_10, True, None),
    ("fp16", "dla0", FLAGS_8_TO_10, True, None),
    ("int8", "dla1", FLAGS_8_TO_10, True, None),
    ("fp32", "cpu", FLAGS_8_TO_10, True, "not on cpu"),
    ("fp32", "dla0", FLAGS_8_TO_10, True, "DLA cores run fp16 or int8 only"),
    ("bf16", "gpu", FLAGS_8_TO_10, True, "must be one of fp32, fp16, int8"),
    ("fp16", "gpu", FLAGS_11, False, "has no FP16 builder flag"),
    ("int8", "gpu", FLAGS_11, False, "has no INT8 builder flag"),
    ("fp32", "gpu", FLAGS_11, False, None),
    ("int8", "gpu", FLAGS_8_TO_10, False, "no IInt8EntropyCalibrator2"),
])
def test_what_this_tensorrt_can_build(precision, device, flags, calibrator, reason):
    found = trt_config.unsupported_reason(precision, device, "10.3.0", flags, calibrator)
    if reason is None:
        assert found is None
    else:
        assert reason in found


@pytest.mark.parametrize("precision, device, fallback, flags", [
    ("fp32", "gpu", True, []),
    ("fp16", "gpu", True, ["FP16"]),
    ("int8", "gpu", False, ["INT8"]),
    ("fp16", "dla0", True, ["FP16", "GPU_FALLBACK"]),
    ("int8", "dla1", False, ["INT8"]),
])
def test_builder_flags_per_precision_and_device(precision, device, fallback, flags):
    settings = BuildSettings(precision, device, gpu_fallback=fallback)
    assert settings.builder_flags() == flags
    assert settings.dla_core == {"gpu": None, "dla0": 0, "dla1": 1}[device]


def test_gpu_fallback_and_calibration_only_count_where_they_apply():
    assert BuildSettings("fp16", "gpu", gpu_fallback=False).as_dict() == BuildSettings("fp16", "gpu").as_dict()
    random = {"source": "random"}
    assert BuildSettings("fp16", "gpu", calibration=random).as_dict()["calibration"] is None
    assert BuildSettings("int8", "gpu", calibration=random).as_dict()["calibration"] == random


@pytest.mark.parametrize("version, bit, flags", [
    ("8.5.2.2", 0, 1),  # JetPack 5 on Xavier: the ONNX parser needs EXPLICIT_BATCH
    ("8.6.1", 0, 1),
    ("10.0.1", 0, 0),  # deprecated and ignored from 10.0 on
    ("10.7.0", None, 0),
    ("11.1.0", None, 0),  # gone
])
def test_network_creation_flags(version, bit, flags):
    assert trt_config.network_creation_flags(version, bit) == flags


def key(**changes):
    args = {"onnx_sha256": "a" * 64, "trt_version": "10.3.0", "device_name": "NVIDIA RTX 4090 (sm_89)",
            "settings": BuildSettings("fp16", "gpu"), "inputs": INPUTS}
    args.update(changes)
    return trt_config.engine_cache_key(**args)[0]


def test_the_engine_cache_key_covers_everything_that_changes_the_engine():
    base = key()
    assert key() == base and len(base) == 64
    variants = [
        key(onnx_sha256="b" * 64),
        key(trt_version="10.4.0"),
        key(device_name="NVIDIA RTX 3090 (sm_86)"),
        key(device_name="Orin (sm_87)", settings=BuildSettings("fp16", "dla0")),
        key(settings=BuildSettings("fp16", "dla1")),
        key(settings=BuildSettings("fp32", "gpu")),
        key(settings=BuildSettings("fp16", "gpu", workspace_mb=512)),
        key(settings=BuildSettings("int8", "gpu", calibration={"source": "random"})),
        key(settings=BuildSettings("int8", "gpu", calibration={"source": "file", "sha256": "c" * 64})),
        key(inputs=[{**INPUTS[0], "shape": [8, 3, 224, 224]}]),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert key(settings=BuildSettings("fp16", "dla0", gpu_fallback=False)) != key(settings=BuildSettings("fp16", "dla0"))


def test_the_key_fields_say_what_the_key_covers():
    _, fields = trt_config.engine_cache_key("a" * 64, "8.5.2.2", "Xavier (sm_72)", BuildSettings("int8", "dla0"),
                                            INPUTS)
    assert fields["tensorrt"] == "8.5.2.2" and fields["device_name"] == "Xavier (sm_72)"
    assert fields["settings"]["builder_flags"] == ["INT8", "GPU_FALLBACK"]
    assert fields["build_settings_version"] == trt_config.BUILD_SETTINGS_VERSION


def test_engine_cache_round_trip(tmp_path):
    cache = str(tmp_path / "tensorrt")
    path = trt_config.write_cached_engine(cache, "k" * 64, b"\x00plan bytes", {"build_s": 12.5})
    assert path == trt_config.engine_paths(cache, "k" * 64)[0] and path.endswith(".engine")
    engine, metadata = trt_config.read_cached_engine(cache, "k" * 64)
    assert engine == b"\x00plan bytes"
    assert metadata == {"build_s": 12.5, "key": "k" * 64}
    assert sorted(os.listdir(cache)) == ["k" * 32 + ".engine", "k" * 32 + ".json"]  # no temporary files left


def test_an_unfinished_or_foreign_cache_entry_is_a_miss(tmp_path):
    cache = str(tmp_path)
    assert trt_config.read_cached_engine(cache, "k" * 64) is None
    engine_path, sidecar_path = trt_config.engine_paths(cache, "k" * 64)
    trt_config.atomic_write(engine_path, b"plan")
    assert trt_config.read_cached_engine(cache, "k" * 64) is None  # the sidecar marks a finished entry
    trt_config.atomic_write(sidecar_path, b"{not json")
    assert trt_config.read_cached_engine(cache, "k" * 64) is None
    # Same 32-character file name, another key.
    trt_config.atomic_write(sidecar_path, json.dumps({"key": "k" * 32 + "x" * 32}).encode())
    assert trt_config.read_cached_engine(cache, "k" * 64) is None


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "engine"
    target.write_bytes(b"old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        trt_config.atomic_write(str(target), b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["engine"]


def test_file_fingerprint(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"onnx" * 500_000)  # several read chunks
    assert trt_config.file_sha256(str(path)) == hashlib.sha256(b"onnx" * 500_000).hexdigest()


def test_calibration_batches_from_a_file_of_samples(tmp_path):
    path = str(tmp_path / "samples.npz")
    samples = np.arange(5 * 3 * 2 * 2, dtype=np.float64).reshape(5, 3, 2, 2)
    np.savez(path, input=samples)
    specs = [{"name": "input", "shape": [2, 3, 2, 2], "dtype": "float32"}]
    batches = trt_config.calibration_batches(path, specs)
    assert len(batches) == 2  # the fifth sample does not fill a batch
    assert batches[1]["input"].dtype == np.float32 and batches[1]["input"].shape == (2, 3, 2, 2)
    np.testing.assert_array_equal(batches[1]["input"], samples[2:4])


@pytest.mark.parametrize("arrays, message", [
    ({"image": np.zeros((4, 3, 2, 2))}, "has no array 'input' (it has image)"),
    ({"input": np.zeros((4, 3, 4, 4))}, "samples of shape [3, 4, 4]; the model takes [3, 2, 2]"),
    ({"input": np.zeros((1, 3, 2, 2))}, "fewer samples than one batch"),
])
def test_calibration_files_that_do_not_fit_say_why(tmp_path, arrays, message):
    path = str(tmp_path / "samples.npz")
    np.savez(path, **arrays)
    with pytest.raises(ValueError) as excinfo:
        trt_config.calibration_batches(path, [{"name": "input", "shape": [2, 3, 2, 2], "dtype": "float32"}])
    assert message in str(excinfo.value)


# The builder's INFO log on a DLA build (TensorRT 8.5, Xavier), as the runner's logger keeps it.
DLA_BUILD_LOG = [
    "Reading ONNX file",
    "---------- Layers Running on DLA ----------",
    "[DlaLayer] {ForeignNode[/conv1/Conv.../layer1/layer1.0/relu_1/Relu]}",
    "[DlaLayer] {ForeignNode[/layer2/layer2.0/conv1/Conv.../layer4/layer4.1/relu_1/Relu]}",
    "---------- Layers Running on GPU ----------",
    "[GpuLayer] REDUCE: /avgpool/GlobalAveragePool",
    "[GpuLayer] SHUFFLE: /Flatten",
    "[GpuLayer] /fc/Gemm",  # older builds print no layer type
]


def test_placement_from_the_build_log():
    placement = trt_config.placement_from_build_log(DLA_BUILD_LOG)
    assert placement["dla"][0] == {"layer": "{ForeignNode[/conv1/Conv.../layer1/layer1.0/relu_1/Relu]}", "type": None}
    assert placement["gpu"] == [{"layer": "/avgpool/GlobalAveragePool", "type": "REDUCE"},
                                {"layer": "/Flatten", "type": "SHUFFLE"},
                                {"layer": "/fc/Gemm", "type": None}]
    assert trt_config.placement_from_build_log(["Reading ONNX file", "Build done"]) is None


def test_dla_fallback_report_prefers_the_build_log():
    support = trt_config.dla_support([("/conv1/Conv", "CONVOLUTION", True), ("/fc/Gemm", "MATRIX_MULTIPLY", False)])
    assert support == {"layers": 2, "unsupported": [{"layer": "/fc/Gemm", "type": "MATRIX_MULTIPLY"}]}
    settings = BuildSettings("fp16", "dla0")
    report = trt_config.dla_fallback_report(settings, support, trt_config.placement_from_build_log(DLA_BUILD_LOG))
    assert report["core"] == 0 and report["gpu_fallback"] is True
    assert report["source"] == "build log"
    assert len(report["dla_subgraphs"]) == 2
    assert [item["layer"] for item in report["gpu_layers"]] == ["/avgpool/GlobalAveragePool", "/Flatten", "/fc/Gemm"]
    assert report["unsupported_on_dla"] == [{"layer": "/fc/Gemm", "type": "MATRIX_MULTIPLY"}]

    without_log = trt_config.dla_fallback_report(settings, support, None)
    assert without_log["source"].startswith("can_run_on_DLA")
    assert without_log["gpu_layers"] == [{"layer": "/fc/Gemm", "type": "MATRIX_MULTIPLY"}]
    assert without_log["dla_subgraphs"] is None


DETAILED_INFO = json.dumps({"Layers": [
    {"Name": "/conv1/Conv + /relu/Relu", "LayerType": "CaskConvolution",
     "Metadata": "[ONNX Layer: /conv1/Conv]\x1f[ONNX Layer: /relu/Relu]"},
    {"Name": "{ForeignNode[/layer1/Add.../fc/Gemm]}", "LayerType": "Myelin", "Metadata": ""},
    {"Name": "Reformatting CopyNode for Input Tensor 0 to /conv1/Conv + /relu/Relu", "LayerType": "Reformat"},
], "Bindings": ["input", "output"]})


def test_layer_information_detailed_and_names_only():
    layers = trt_config.parse_layer_information(DETAILED_INFO)
    assert [layer["type"] for layer in layers] == ["CaskConvolution", "Myelin", "Reformat"]
    assert layers[0]["metadata"].startswith("[ONNX Layer: /conv1/Conv]")
    names_only = trt_config.parse_layer_information(json.dumps({"Layers": ["a + b", "c"]}))
    assert names_only == [{"name": "a + b", "type": None, "metadata": None},
                          {"name": "c", "type": None, "metadata": None}]
    assert trt_config.parse_layer_information("not json") == []


@pytest.mark.parametrize("name, metadata, known, nodes", [
    # TensorRT 8.6 on: the metadata names the nodes, with either separator.
    ("/conv1/Conv + /relu/Relu", "[ONNX Layer: /conv1/Conv]\x1f[ONNX Layer: /relu/Relu]", set(),
     ["/conv1/Conv", "/relu/Relu"]),
    ("fused", "[ONNX Layer: a]\x1e[ONNX Layer: b]\x1e[ONNX Layer: a]", set(), ["a", "b"]),
    # Myelin and DLA subgraphs: the first and last node.
    ("{ForeignNode[/layer1/Add.../fc/Gemm]}", "", set(), ["/layer1/Add", "/fc/Gemm"]),
    # TensorRT 8.5 (no metadata): names picked out of the layer name with the network's node names.
    ("Conv_0 + Relu_1", None, {"Conv_0", "Relu_1", "Gemm_5"}, ["Conv_0", "Relu_1"]),
    ("PWN(PWN(Sigmoid_1), Mul_2)", None, {"Sigmoid_1", "Mul_2"}, ["Sigmoid_1", "Mul_2"]),
    ("Reformatting CopyNode for Input Tensor 0 to Conv_0", None, {"Conv_0"}, ["Conv_0"]),
    ("Conv_0 + Relu_1", None, set(), ["Conv_0", "Relu_1"]),  # no node names known: split the fusion
])
def test_onnx_nodes_of_an_engine_layer(name, metadata, known, nodes):
    assert trt_config.onnx_nodes(name, metadata, known) == nodes


def test_layer_table_in_report_order_with_medians_and_shares():
    times = {
        "/conv1/Conv + /relu/Relu": [0.30, 0.10, 0.20],
        "{ForeignNode[/layer1/Add.../fc/Gemm]}": [0.60, 0.60, 0.90],
        "unknown layer": [0.20, 0.20, 0.20],
    }
    rows = trt_config.layer_table(times, trt_config.parse_layer_information(DETAILED_INFO), ["/conv1/Conv"])
    assert [row["layer"] for row in rows] == list(times)
    conv, myelin, unknown = rows
    assert conv["type"] == "CaskConvolution" and conv["onnx_nodes"] == ["/conv1/Conv", "/relu/Relu"]
    assert conv["runs"] == 3
    assert conv["median_ms"] == pytest.approx(0.20) and conv["mean_ms"] == pytest.approx(0.20)
    assert myelin["median_ms"] == pytest.approx(0.60) and myelin["mean_ms"] == pytest.approx(0.70)
    assert myelin["onnx_nodes"] == ["/layer1/Add", "/fc/Gemm"]
    assert unknown["type"] is None and unknown["onnx_nodes"] == []
    assert sum(row["share"] for row in rows) == pytest.approx(1.0)
    assert conv["share"] == pytest.approx(0.20 / 1.0)
    assert trt_config.layer_table({}, [], []) == []


def test_an_engine_layer_is_the_module_of_its_first_onnx_node():
    times = {"/conv1/Conv + /relu/Relu": [0.3], "unknown layer": [0.2]}
    modules = {"/conv1/Conv": "conv1", "/relu/Relu": "relu"}
    rows = trt_config.layer_table(times, [], ["/conv1/Conv", "/relu/Relu"], modules.get)
    assert [(row["module"], row["calls"]) for row in rows] == [("conv1", 1), (None, 1)]
