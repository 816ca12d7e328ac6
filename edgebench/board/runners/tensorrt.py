"""TensorRT: an engine built from the model's ONNX export, cached on disk, run on the GPU or a
DLA core through the named-tensor API (TensorRT 8.5, JetPack 5 on Xavier, to 10.x).

``load`` builds the engine (or reads it from the cache) and deserializes it; ``bind`` places the
inputs on the device once; ``infer`` enqueues one inference on the runner's stream, with the
input and output copies when ``include_copies`` is set, as a CUDA graph when ``cuda_graphs`` is.
Device memory, streams and events come from cuda-python (see ``edgebench.board.runners.cuda_runtime``
for why not PyCUDA or torch). The decisions that need no TensorRT live in
``edgebench.board.runners.trt_config``. Board-side: Python 3.8, numpy, tensorrt and cuda-python,
both imported in ``import_backend``.
"""

from __future__ import annotations

import collections
import sys
import time

import numpy as np

from edgebench.board import layer_profiles
from edgebench.board.synthetic_inputs import make_inputs
from edgebench.board.runners import trt_config
from edgebench.board.runners.base import Runner, RunnerError, RunnerUnavailable
from edgebench.board.runners.cuda_runtime import Cuda, CudaEventTimer, import_cudart

# Runs behind --profile-layers, made after the timed loop: the profiler slows every layer down.
LAYER_PROFILE_RUNS = 20
MB = 1024 * 1024


class _Tensor:
    """One engine input or output: its device buffer and, for timed copies, a page-locked host copy."""

    def __init__(self, name, nbytes, device, host_pointer=None, host=None):
        self.name = name
        self.nbytes = nbytes
        self.device = device
        self.host_pointer = host_pointer
        self.host = host


class TensorRTRunner(Runner):
    name = "tensorrt"
    requires = "tensorrt"
    model_kind = "onnx"
    option_types = {
        "workspace_mb": int,  # builder workspace limit; default: TensorRT's (the device's memory)
        "gpu_fallback": bool,  # DLA only: layers the DLA cannot run go to the GPU (default on)
        "calibration": str,  # int8 only: "random" (default) or a .npz file of real samples
    }

    def import_backend(self):
        try:
            import tensorrt
        except ImportError as exc:
            raise RunnerUnavailable("TensorRT is not installed here (%s): pip install tensorrt on a desktop "
                                    "GPU machine; JetPack ships it on a Jetson" % exc)
        try:
            cudart = import_cudart()
        except ImportError:
            raise RunnerUnavailable("cuda-python is not installed (pip install cuda-python): the TensorRT "
                                    "runner needs it for device memory, streams and events")
        self.trt = tensorrt
        self.cuda = Cuda(cudart)

    def load(self):
        trt = self.trt
        self.settings = self._build_settings()
        self.device_name = self.cuda.require_device()
        self.memory_before_mb = self.cuda.used_memory_mb()
        self.onnx_path = self.request["model"]["path"]
        self.logger = _capturing_logger(trt)
        self.runtime = trt.Runtime(self.logger)
        if self.settings.dla_core is not None:
            self.runtime.DLA_core = self.settings.dla_core
        self.engine_build_s = None
        self.engine = self._deserialize(self._cached_or_built_engine())
        if self.engine is None and self.engine_cache == "hit":
            self.warnings.append("the cached TensorRT engine did not deserialize; it was rebuilt")
            self.engine = self._deserialize(self._build_and_cache())
        if self.engine is None:
            raise RunnerError("TensorRT could not deserialize the engine: %s" % self.logger.last_error())
        self.context = self.engine.create_execution_context()
        self.stream = self.cuda.stream()
        self.layer_info = trt_config.parse_layer_information(
            self.engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
        self.graph = None
        self.tensors = []

    def bind(self, inputs):
        engine, context = self.engine, self.context
        names = [engine.get_tensor_name(index) for index in range(engine.num_io_tensors)]
        is_input = {name: engine.get_tensor_mode(name) == self.trt.TensorIOMode.INPUT for name in names}
        self.inputs = [self._bind_input(name, inputs) for name in names if is_input[name]]
        self.outputs = [self._bind_output(name) for name in names if not is_input[name]]
        for tensor in self.inputs + self.outputs:
            if not context.set_tensor_address(tensor.name, int(tensor.device)):
                raise RunnerError("TensorRT refused the buffer of tensor %r" % tensor.name)
        if self.request.get("cuda_graphs"):
            self._capture_graph()

    def infer(self):
        if self.graph is not None:
            self.cuda.launch_graph(self.graph, self.stream)
        else:
            self._enqueue()

    def synchronize(self):
        self.cuda.synchronize(self.stream)

    def device_timer(self):
        return CudaEventTimer(self.cuda, self.stream)

    def layer_profile(self):
        """Per-layer times from TensorRT's profiler over ``LAYER_PROFILE_RUNS`` plain enqueues (no
        CUDA graph: the profiler needs TensorRT's own per-layer events)."""
        times = collections.OrderedDict()
        self.context.profiler = _collecting_profiler(self.trt, times)
        self.context.enqueue_emits_profile = False  # report explicitly, once the stream is idle
        for _ in range(LAYER_PROFILE_RUNS):
            self._enqueue()
            self.cuda.synchronize(self.stream)
            self.context.report_to_profiler()
        modules = layer_profiles.OnnxModuleMap.from_file(self.onnx_path)
        return trt_config.layer_table(times, self.layer_info, self.network_layers, modules.module_of)

    def describe(self):
        settings = self.settings.as_dict()
        return {
            "library": "tensorrt",
            "version": self.trt.__version__,
            "device": self.device,
            "device_name": self.device_name,
            "precision": self.precision,
            "options": {
                **{key: settings[key] for key in ("workspace_mb", "gpu_fallback", "builder_flags")},
                "set": sorted(self.options),
            },
            "engine": {
                "cache": self.engine_cache,
                "path": self.engine_path,
                "key": self.cache_key[:32],
                "build_s": self.engine_build_s,
                "cached_build_s": self.cached_build_s,
                "device_memory_mb": _device_memory_size(self.engine) / MB,
            },
            "deserialize_s": self.deserialize_s,
            "include_copies": self.include_copies,
            "cuda_graphs": self.graph is not None,
            "dla": self.dla_report,
            "int8_calibration": self.settings.calibration,
            # Device memory held after the run, as cudaMemGetInfo sees it: other processes count too.
            "device_peak_mb": self.cuda.used_memory_mb() - self.memory_before_mb,
        }

    def close(self):
        # Called on every path, also when import_backend or load stopped half-way.
        if getattr(self, "graph", None) is not None:
            self.cuda.free("cudaGraphExecDestroy", self.graph)
        for tensor in getattr(self, "tensors", []):
            self.cuda.free("cudaFree", tensor.device)
            if tensor.host_pointer is not None:
                self.cuda.free("cudaFreeHost", tensor.host_pointer)
        if getattr(self, "stream", None) is not None:
            self.cuda.free("cudaStreamDestroy", self.stream)
        self.context = self.engine = None

    # Building

    def _build_settings(self):
        trt = self.trt
        reason = trt_config.unsupported_reason(
            self.precision, self.device, trt.__version__, set(getattr(trt.BuilderFlag, "__members__", {})),
            hasattr(trt, "IInt8EntropyCalibrator2"))
        if reason:
            raise RunnerUnavailable(reason)
        return trt_config.BuildSettings(
            self.precision, self.device, gpu_fallback=self.options.get("gpu_fallback", True),
            workspace_mb=self.options.get("workspace_mb"),
            calibration=self._calibration_identity() if self.precision == "int8" else None)

    def _calibration_identity(self):
        """What the int8 scales are computed from, for the cache key and the record."""
        source = self.options.get("calibration", trt_config.RANDOM_CALIBRATION)
        if source == trt_config.RANDOM_CALIBRATION:
            self.warnings.append("int8 calibrated on random inputs: the latency is representative, the "
                                 "accuracy is not (pass tensorrt.calibration=FILE.npz with real samples)")
            return {"source": "random", "note": "the benchmark's synthetic standard-normal inputs, one batch"}
        try:
            return {"source": "file", "sha256": trt_config.file_sha256(source)}
        except OSError as exc:
            raise RunnerError("cannot read the calibration file %s: %s" % (source, exc))

    def _cached_or_built_engine(self):
        trt = self.trt
        self.cache_key, self.key_fields = trt_config.engine_cache_key(
            trt_config.file_sha256(self.onnx_path), trt.__version__, self.device_name, self.settings,
            self.request["inputs"])
        cache_dir = self.request.get("engine_cache_dir")
        cached = trt_config.read_cached_engine(cache_dir, self.cache_key) if cache_dir else None
        if cached is None:
            return self._build_and_cache()
        engine, metadata = cached
        self.engine_cache = "hit"
        self.engine_path = trt_config.engine_paths(cache_dir, self.cache_key)[0]
        self.cached_build_s = metadata.get("build_s")
        self._use_build_metadata(metadata)
        return engine

    def _build_and_cache(self):
        engine, metadata = self._build()
        self._use_build_metadata(metadata)
        self.cached_build_s = None
        cache_dir = self.request.get("engine_cache_dir")
        self.engine_cache, self.engine_path = "off", None
        if cache_dir:
            try:
                self.engine_path = trt_config.write_cached_engine(cache_dir, self.cache_key, engine, metadata)
                self.engine_cache = "miss"
            except OSError as exc:
                self.warnings.append("the TensorRT engine was not cached: %s" % exc)
        return engine

    def _use_build_metadata(self, metadata):
        self.network_layers = metadata.get("network_layers") or []
        self.dla_report = metadata.get("dla")

    def _build(self):
        """(serialized engine, sidecar metadata): parse the ONNX file, configure, build."""
        trt, settings = self.trt, self.settings
        builder = trt.Builder(self.logger)
        explicit_batch = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
        network = builder.create_network(trt_config.network_creation_flags(
            trt.__version__, int(explicit_batch) if explicit_batch is not None else None))
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(self.onnx_path):
            errors = [str(parser.get_error(index)) for index in range(parser.num_errors)]
            raise RunnerError("TensorRT cannot parse the ONNX model: %s" % (errors[0] if errors else "no reason given"))
        config = builder.create_builder_config()
        # Detailed layer information names each engine layer's ONNX nodes (the per-layer table).
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
        for flag in settings.builder_flags():
            config.set_flag(getattr(trt.BuilderFlag, flag))
        if settings.workspace_mb:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mb * MB)
        support = self._configure_dla(builder, network, config) if settings.dla_core is not None else None
        profile = self._optimization_profile(builder, network)
        if profile is not None:
            config.add_optimization_profile(profile)
        calibrator = self._configure_int8(config, profile) if settings.precision == "int8" else None
        self.logger.messages = []  # the placement report below is this build's
        start = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        self.engine_build_s = time.perf_counter() - start
        if calibrator is not None:
            calibrator.free()
        if serialized is None:
            raise RunnerError("TensorRT could not build the engine: %s" % self.logger.last_error())
        return bytes(serialized), {
            "fields": self.key_fields,
            "build_s": self.engine_build_s,
            "network_layers": [network.get_layer(index).name for index in range(network.num_layers)],
            "dla": trt_config.dla_fallback_report(
                settings, support, trt_config.placement_from_build_log(self.logger.messages))
            if support is not None else None,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def _configure_dla(self, builder, network, config):
        """Put the network on the DLA core; return what ``can_run_on_DLA`` says of each layer."""
        trt, core = self.trt, self.settings.dla_core
        if builder.num_DLA_cores <= core:
            raise RunnerUnavailable("this machine has %d DLA core(s); there is no %s" % (builder.num_DLA_cores, self.device))
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = core
        layers = [network.get_layer(index) for index in range(network.num_layers)]
        return trt_config.dla_support(
            [(layer.name, getattr(layer.type, "name", str(layer.type)), config.can_run_on_DLA(layer))
             for layer in layers])

    def _optimization_profile(self, builder, network):
        """One profile fixing every dynamic input dimension at the measured shape; None if all are static."""
        shapes = {spec["name"]: list(spec["shape"]) for spec in self.request["inputs"]}
        inputs = [network.get_input(index) for index in range(network.num_inputs)]
        dynamic = [tensor for tensor in inputs if any(dim < 0 for dim in tensor.shape)]
        if not dynamic:
            return None
        profile = builder.create_optimization_profile()
        for tensor in dynamic:
            if tensor.name not in shapes:
                raise RunnerError("the model's input %r has dynamic dimensions and no measured shape" % tensor.name)
            shape = shapes[tensor.name]
            profile.set_shape(tensor.name, shape, shape, shape)
        return profile

    def _configure_int8(self, config, profile):
        if self.settings.calibration["source"] == "file":
            try:
                batches = trt_config.calibration_batches(self.options["calibration"], self.request["inputs"])
            except (OSError, ValueError) as exc:
                raise RunnerError(str(exc))
        else:
            batches = [make_inputs(self.request["inputs"])]
        calibrator = _entropy_calibrator(self.trt, self.cuda, batches)
        config.int8_calibrator = calibrator
        if profile is not None:
            config.set_calibration_profile(profile)
        return calibrator

    def _deserialize(self, serialized):
        start = time.perf_counter()
        engine = self.runtime.deserialize_cuda_engine(serialized)
        self.deserialize_s = time.perf_counter() - start
        return engine

    # Binding and running

    def _bind_input(self, name, inputs):
        if name not in inputs:
            raise RunnerError("engine input %r has no data (inputs: %s)" % (name, ", ".join(sorted(inputs))))
        array = np.ascontiguousarray(inputs[name], dtype=self.trt.nptype(self.engine.get_tensor_dtype(name)))
        if not self.context.set_input_shape(name, array.shape):
            raise RunnerError("the engine does not accept input %r of shape %s" % (name, list(array.shape)))
        tensor = self._allocate(name, array.shape, array.dtype)
        self.cuda.upload(tensor.device, array)
        if tensor.host is not None:
            tensor.host[...] = array
        return tensor

    def _bind_output(self, name):
        shape = tuple(self.context.get_tensor_shape(name))
        if any(dim < 0 for dim in shape):
            raise RunnerError("output %r has a data-dependent shape %s, which this runner does not handle"
                              % (name, list(shape)))
        return self._allocate(name, shape, self.trt.nptype(self.engine.get_tensor_dtype(name)))

    def _allocate(self, name, shape, dtype):
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        host_pointer, host = self.cuda.pinned_array(shape, dtype) if self.include_copies else (None, None)
        tensor = _Tensor(name, nbytes, self.cuda.device_buffer(nbytes), host_pointer, host)
        self.tensors.append(tensor)
        return tensor

    def _enqueue(self):
        if self.include_copies:
            for tensor in self.inputs:
                self.cuda.copy_to_device(tensor.device, tensor.host_pointer, tensor.nbytes, self.stream)
        if not self.context.execute_async_v3(int(self.stream)):
            raise RunnerError("TensorRT execute_async_v3 failed: %s" % self.logger.last_error())
        if self.include_copies:
            for tensor in self.outputs:
                self.cuda.copy_to_host(tensor.host_pointer, tensor.device, tensor.nbytes, self.stream)

    def _capture_graph(self):
        # One plain run first: TensorRT allocates and sets up lazily on the first enqueue.
        self._enqueue()
        self.cuda.synchronize(self.stream)
        try:
            self.graph = self.cuda.capture_graph(self.stream, self._enqueue)
        except RunnerError as exc:
            self.warnings.append("CUDA graph capture failed, measured without graphs: %s" % exc)
            self.graph = None


def _capturing_logger(trt):
    """A TensorRT logger that keeps INFO and above (the build log says where each layer runs) and
    passes warnings and errors on to stderr."""
    severity = trt.ILogger.Severity
    errors = (severity.INTERNAL_ERROR, severity.ERROR)

    class CapturingLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)  # the binding's trampoline needs it, or TensorRT crashes
            self.messages = []
            self.errors = []

        def log(self, level, message):
            if level in errors:
                self.errors.append(message)
            if level in errors or level == severity.WARNING:
                sys.stderr.write("[TensorRT] %s\n" % message)
            if level != severity.VERBOSE:
                self.messages.append(message)

        def last_error(self):
            return self.errors[-1] if self.errors else "no error was logged"

    return CapturingLogger()


def _collecting_profiler(trt, times):
    """An ``IProfiler`` appending each layer's milliseconds to ``times[layer]``."""

    class CollectingProfiler(trt.IProfiler):
        def __init__(self):
            trt.IProfiler.__init__(self)
            self.times = times

        def report_layer_time(self, layer_name, ms):
            self.times.setdefault(layer_name, []).append(ms)

    return CollectingProfiler()


def _entropy_calibrator(trt, cuda, batches):
    """An ``IInt8EntropyCalibrator2`` feeding ``batches`` (dicts of input arrays) from device buffers."""

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = iter(batches)
            self.device = {}

        def get_batch_size(self):
            return 1  # explicit-batch networks carry the batch in the input shapes (as Polygraphy does)

        def get_batch(self, names):
            batch = next(self.batches, None)
            if batch is None:
                return None
            for name in names:
                if name not in self.device:
                    self.device[name] = cuda.device_buffer(batch[name].nbytes)
                cuda.upload(self.device[name], batch[name])
            return [int(self.device[name]) for name in names]

        def read_calibration_cache(self):
            return None  # the engine itself is cached; the scales need not be

        def write_calibration_cache(self, cache):
            pass

        def free(self):
            for pointer in self.device.values():
                cuda.free("cudaFree", pointer)

    return EntropyCalibrator()


def _device_memory_size(engine):
    """Activation memory an execution context needs (``device_memory_size`` is gone in TensorRT 11)."""
    size = getattr(engine, "device_memory_size_v2", None)
    return size if size is not None else engine.device_memory_size
