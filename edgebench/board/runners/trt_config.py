"""The TensorRT runner's decisions that need no TensorRT: which precisions and devices can run,
which builder flags to set, the engine cache, the DLA fallback report and the per-layer table.

Kept apart from ``edgebench.board.runners.tensorrt`` so all of it is unit-tested on machines without
a GPU. Board-side: Python 3.8, standard library and numpy.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import tempfile

import numpy as np

PRECISIONS = ("fp32", "fp16", "int8")
DLA_CORES = {"dla0": 0, "dla1": 1}
DEVICES = ("gpu",) + tuple(DLA_CORES)
# Builder flag per precision (TensorRT 8.5 to 10.x; TensorRT 11 removed them).
PRECISION_FLAGS = {"fp32": [], "fp16": ["FP16"], "int8": ["INT8"]}
# Bump when the way engines are built changes, so older cached engines stop matching.
BUILD_SETTINGS_VERSION = 1
RANDOM_CALIBRATION = "random"

_ONNX_LAYER = re.compile(r"\[ONNX Layer: ([^\]]+)\]")
_FOREIGN_NODE = re.compile(r"^\{ForeignNode\[(.*)\]\}$")
_NAME_SEPARATORS = re.compile(r"[\s(),+]+")
_LAYER_KIND_PREFIX = re.compile(r"^([A-Z][A-Z0-9_]*): ")
_CHUNK = 1 << 20


class BuildSettings:
    """What decides the engine besides the ONNX file and the machine: precision, device, flags."""

    def __init__(self, precision, device, gpu_fallback=True, workspace_mb=None, calibration=None):
        self.precision = precision
        self.device = device
        self.gpu_fallback = bool(gpu_fallback)
        self.workspace_mb = workspace_mb
        #: For int8: where the calibration data came from, e.g. {"source": "random", "batches": 8}.
        self.calibration = calibration

    @property
    def dla_core(self):
        return DLA_CORES.get(self.device)

    def builder_flags(self):
        """Names of the ``trt.BuilderFlag`` members to set."""
        flags = list(PRECISION_FLAGS[self.precision])
        if self.dla_core is not None and self.gpu_fallback:
            flags.append("GPU_FALLBACK")
        return flags

    def as_dict(self):
        return {
            "precision": self.precision,
            "device": self.device,
            "dla_core": self.dla_core,
            "gpu_fallback": self.gpu_fallback if self.dla_core is not None else None,
            "workspace_mb": self.workspace_mb,
            "builder_flags": self.builder_flags(),
            "calibration": self.calibration if self.precision == "int8" else None,
        }


def unsupported_reason(precision, device, trt_version, builder_flags, has_int8_calibrator):
    """Why this TensorRT cannot build ``precision`` for ``device``; None when it can.

    ``builder_flags`` are the names ``trt.BuilderFlag`` has here; ``has_int8_calibrator`` whether
    ``trt.IInt8EntropyCalibrator2`` exists (both are gone in TensorRT 11)."""
    if device not in DEVICES:
        return "TensorRT runs on the GPU or a DLA core (gpu, dla0, dla1), not on %s" % device
    if precision not in PRECISIONS:
        return "TensorRT precision must be one of %s, not %r" % (", ".join(PRECISIONS), precision)
    if device in DLA_CORES and precision == "fp32":
        return "DLA cores run fp16 or int8 only; measure %s with --precision fp16 or int8" % device
    missing = [flag for flag in PRECISION_FLAGS[precision] if flag not in builder_flags]
    if missing:
        return ("TensorRT %s has no %s builder flag (TensorRT 11 builds reduced precision only from strongly "
                "typed or Q/DQ models): measure fp32 here, or use TensorRT 8.5 to 10.x" % (trt_version, missing[0]))
    if precision == "int8" and not has_int8_calibrator:
        return "TensorRT %s has no IInt8EntropyCalibrator2 for int8 calibration" % trt_version
    return None


def major_version(version):
    return int(str(version).split(".")[0])


def network_creation_flags(trt_version, explicit_batch_bit):
    """``create_network`` flags: EXPLICIT_BATCH is required by the ONNX parser on 8.x and is
    deprecated and ignored from 10.0 on (``explicit_batch_bit`` is None where it is gone)."""
    if explicit_batch_bit is None or major_version(trt_version) >= 10:
        return 0
    return 1 << int(explicit_batch_bit)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def engine_cache_key(onnx_sha256, trt_version, device_name, settings, inputs):
    """(sha256 hex key, the fields it covers): any of them changing means another engine."""
    fields = {
        "onnx_sha256": onnx_sha256,
        "tensorrt": str(trt_version),
        "device_name": device_name,
        "settings": settings.as_dict(),
        # The shapes matter for ONNX files with dynamic dimensions (one optimization profile each).
        "inputs": [{"name": spec["name"], "shape": list(spec["shape"]), "dtype": spec["dtype"]} for spec in inputs],
        "build_settings_version": BUILD_SETTINGS_VERSION,
    }
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()
    return key, fields


def engine_paths(cache_dir, key):
    """The serialized engine and its JSON sidecar for ``key``."""
    stem = os.path.join(cache_dir, key[:32])
    return stem + ".engine", stem + ".json"


def read_cached_engine(cache_dir, key):
    """(engine bytes, sidecar metadata) of a finished cache entry for ``key``, or None."""
    engine_path, sidecar_path = engine_paths(cache_dir, key)
    try:
        with open(sidecar_path, "r", encoding="utf-8") as handle:
            metadata = json.load(handle)
        with open(engine_path, "rb") as handle:
            engine = handle.read()
    except (OSError, ValueError):
        return None
    if not isinstance(metadata, dict) or metadata.get("key") != key:
        return None
    return engine, metadata


def write_cached_engine(cache_dir, key, engine, metadata):
    """Store an engine; the sidecar is written last, so its presence marks a finished entry."""
    os.makedirs(cache_dir, exist_ok=True)
    engine_path, sidecar_path = engine_paths(cache_dir, key)
    atomic_write(engine_path, bytes(engine))
    atomic_write(sidecar_path, (json.dumps(dict(metadata, key=key), indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return engine_path


def atomic_write(path, data):
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never
    half of it. (``edgebench.models.artifacts`` has its own: it is workstation-side, this is board-side.)"""
    handle, temp_path = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.unlink(temp_path)
        raise


def calibration_batches(path, specs):
    """Calibration batches from a ``.npz`` file of real samples: one array per model input, named
    as the input, samples along the first axis. Batches have the measured shapes; samples that do
    not fill a last batch are left out. ValueError says what does not fit."""
    with np.load(path) as data:
        arrays = {}
        for spec in specs:
            if spec["name"] not in data.files:
                raise ValueError("calibration file %s has no array %r (it has %s)"
                                 % (path, spec["name"], ", ".join(data.files) or "none"))
            array = data[spec["name"]]
            if tuple(array.shape[1:]) != tuple(spec["shape"][1:]):
                raise ValueError("calibration array %r has samples of shape %s; the model takes %s"
                                 % (spec["name"], list(array.shape[1:]), list(spec["shape"][1:])))
            arrays[spec["name"]] = array.astype(spec["dtype"], copy=False)
    batch = {spec["name"]: int(spec["shape"][0]) for spec in specs}
    count = min(len(arrays[name]) // batch[name] for name in arrays)
    if count < 1:
        raise ValueError("calibration file %s holds fewer samples than one batch" % path)
    return [{name: np.ascontiguousarray(array[index * batch[name]:(index + 1) * batch[name]])
             for name, array in arrays.items()} for index in range(count)]


def dla_support(layers):
    """What ``IBuilderConfig.can_run_on_DLA`` said of each network layer, before the build.

    ``layers`` is ``[(name, type, can_run_on_dla)]``."""
    return {
        "layers": len(layers),
        "unsupported": [{"layer": name, "type": kind} for name, kind, can_run in layers if not can_run],
    }


def placement_from_build_log(messages):
    """Where the builder put each layer, from its INFO log (``[DlaLayer]``/``[GpuLayer]`` lines,
    TensorRT 8.4 on); None when the log has no placement lines."""
    dla, gpu = [], []
    for message in messages:
        for line in message.splitlines():
            line = line.strip()
            for tag, found in (("[DlaLayer] ", dla), ("[GpuLayer] ", gpu)):
                if line.startswith(tag):
                    found.append(_placed_layer(line[len(tag):]))
    if not dla and not gpu:
        return None
    return {"dla": dla, "gpu": gpu}


def _placed_layer(text):
    """``"CONVOLUTION: /conv1/Conv"`` -> ``{"layer": "/conv1/Conv", "type": "CONVOLUTION"}``."""
    match = _LAYER_KIND_PREFIX.match(text)
    if match:
        return {"layer": text[match.end():], "type": match.group(1)}
    return {"layer": text, "type": None}


def dla_fallback_report(settings, support, placement):
    """The record's DLA report: which layers ran on the GPU instead of the DLA core, and how we know.

    The build log's placement is what the engine does; ``can_run_on_DLA`` only says which layers
    the DLA cannot run at all (TensorRT may move more to the GPU, e.g. past the DLA's subgraph limit)."""
    report = {
        "core": settings.dla_core,
        "gpu_fallback": settings.gpu_fallback,
        "network_layers": support["layers"],
        "unsupported_on_dla": support["unsupported"],
    }
    if placement is not None:
        report.update(source="build log", dla_subgraphs=[item["layer"] for item in placement["dla"]],
                      gpu_layers=placement["gpu"])
    else:
        report.update(source="can_run_on_DLA (the build log had no placement)", dla_subgraphs=None,
                      gpu_layers=support["unsupported"])
    return report


def parse_layer_information(text):
    """Engine layers in order, from ``IEngineInspector.get_engine_information(JSON)``:
    ``[{"name", "type", "metadata"}]``. Detailed verbosity gives dicts; names only gives strings."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    layers = data.get("Layers", []) if isinstance(data, dict) else []
    parsed = []
    for entry in layers:
        if isinstance(entry, dict):
            parsed.append({"name": entry.get("Name"), "type": entry.get("LayerType"),
                           "metadata": entry.get("Metadata")})
        else:
            parsed.append({"name": str(entry), "type": None, "metadata": None})
    return parsed


def onnx_nodes(layer_name, metadata, known_nodes):
    """The ONNX nodes an engine layer came from, as far as the engine tells.

    TensorRT 8.6 on writes ``[ONNX Layer: name]`` entries in the layer's metadata. Older engines
    only have the layer name: fused layers join node names with ``" + "`` or wrap them in
    ``PWN(...)``, and Myelin/DLA subgraphs name their first and last node, ``{ForeignNode[a...b]}``.
    ``known_nodes`` are the network's layer names (the ONNX node names), used to pick names out."""
    if metadata:
        found = _ONNX_LAYER.findall(metadata)
        if found:
            return _unique(found)
    foreign = _FOREIGN_NODE.match(layer_name or "")
    if foreign:
        return _unique(part for part in foreign.group(1).split("...") if part)
    tokens = [token for token in _NAME_SEPARATORS.split(layer_name or "") if token]
    if known_nodes:
        return _unique(token for token in tokens if token in known_nodes)
    return _unique(part.strip() for part in (layer_name or "").split(" + ") if part.strip())


def layer_table(times, layer_info, known_nodes, module_of=None):
    """One row per engine layer, in the order the profiler reported them (the row shape of
    ``edgebench.board.layer_profiles``).

    ``times`` maps each layer name to its milliseconds per profiled run (``IProfiler``);
    ``layer_info`` is ``parse_layer_information``'s list; ``module_of`` maps an ONNX node name to
    its model module (``OnnxModuleMap.module_of``): a layer is its first node's module, the
    operator a fusion is built around. ``share`` is the layer's median over the sum of all
    medians: per-layer profiling serializes the layers, so the sum exceeds the latency."""
    info = {entry["name"]: entry for entry in layer_info}
    medians = {name: statistics.median(values) for name, values in times.items() if values}
    total = sum(medians.values())
    known = set(known_nodes or ())
    rows = []
    for name, median in medians.items():
        entry = info.get(name, {})
        nodes = onnx_nodes(name, entry.get("metadata"), known)
        rows.append({
            "layer": name,
            "module": module_of(nodes[0]) if module_of and nodes else None,
            "type": entry.get("type"),
            "onnx_nodes": nodes,
            "calls": 1,
            "runs": len(times[name]),
            "median_ms": median,
            "mean_ms": statistics.mean(times[name]),
            "share": median / total if total > 0 else None,
        })
    return rows


def _unique(items):
    return list(dict.fromkeys(items))
