"""Stand-ins for ``tensorrt`` and cuda-python's runtime, for running the TensorRT runner's own
logic on machines without a GPU.

They follow the documented API the runner uses (TensorRT 8.5 to 10.x named tensors,
cuda-python's ``(error, value)`` returns) and nothing more: the model is always
``relu(x)`` on one input named ``input`` with a dynamic batch dimension, "device" memory is host
memory, and the engine is a JSON blob. Passing tests here show the runner's plumbing (cache,
flags, buffers, copies, graphs, profiler, DLA report) is consistent; they are no evidence that it
works with real TensorRT or CUDA.
"""

from __future__ import annotations

import ctypes
import enum
import json
import types

import numpy as np

FEATURES = 16


def _enum(name, *members):
    """An enum that converts to int, as pybind11 enums (TensorRT's and cuda-python's) do."""
    return enum.IntEnum(name, {member: index for index, member in enumerate(members)})


# cuda-python runtime -------------------------------------------------------------------------


class FakeCudart(types.SimpleNamespace):
    """``cuda.bindings.runtime`` with host memory for device memory and synchronous streams."""

    cudaError_t = _enum("cudaError_t", "cudaSuccess", "cudaErrorNoDevice", "cudaErrorStreamCaptureUnsupported")
    cudaMemcpyKind = _enum("cudaMemcpyKind", "cudaMemcpyHostToHost", "cudaMemcpyHostToDevice",
                           "cudaMemcpyDeviceToHost")
    cudaStreamCaptureMode = _enum("cudaStreamCaptureMode", "cudaStreamCaptureModeGlobal")

    def __init__(self, devices=1, capture_fails=False):
        super().__init__()
        self.devices, self.capture_fails = devices, capture_fails
        self.memory = {}  # pointer -> ctypes buffer, kept alive
        self.freed = []
        self.capturing = None
        self.graphs = {}
        self.launches = 0
        self.copies = []

    def _ok(self, *values):
        return (self.cudaError_t.cudaSuccess, *values)

    def cudaGetDeviceCount(self):
        if self.devices is None:
            return (self.cudaError_t.cudaErrorNoDevice, None)
        return self._ok(self.devices)

    def cudaGetDeviceProperties(self, index):
        return self._ok(types.SimpleNamespace(name=b"Fake GPU 9000\x00\x00", major=8, minor=9))

    def cudaMemGetInfo(self):
        used = sum(ctypes.sizeof(buffer) for buffer in self.memory.values())
        return self._ok(8 * 1024 ** 3 - used, 8 * 1024 ** 3)

    def _allocate(self, nbytes):
        buffer = ctypes.create_string_buffer(nbytes)
        self.memory[ctypes.addressof(buffer)] = buffer
        return self._ok(ctypes.addressof(buffer))

    cudaMalloc = cudaMallocHost = _allocate

    def _free(self, pointer):
        self.freed.append(pointer)
        self.memory.pop(int(pointer), None)
        return self._ok()

    cudaFree = cudaFreeHost = _free

    def cudaStreamCreate(self):
        return self._ok(0x5EED)  # cudaStream_t converts to its handle with int()

    def cudaStreamDestroy(self, stream):
        return self._ok()

    def cudaStreamSynchronize(self, stream):
        return self._ok()

    def cudaMemcpy(self, dst, src, nbytes, kind):
        ctypes.memmove(int(dst), int(src), nbytes)
        return self._ok()

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        self._run(lambda: ctypes.memmove(int(dst), int(src), nbytes))
        self.copies.append(kind.name)
        return self._ok()

    def _run(self, work):
        """Work on the stream: recorded into a graph while capturing, done at once otherwise."""
        if self.capturing is not None:
            self.capturing.append(work)
        else:
            work()

    def cudaEventCreate(self):
        return self._ok(types.SimpleNamespace(recorded=0))

    def cudaEventRecord(self, event, stream):
        event.recorded += 1
        return self._ok()

    def cudaEventSynchronize(self, event):
        return self._ok()

    def cudaEventElapsedTime(self, start, end):
        return self._ok(0.25)

    def cudaStreamBeginCapture(self, stream, mode):
        self.capturing = []
        return self._ok()

    def cudaStreamEndCapture(self, stream):
        work, self.capturing = self.capturing, None
        if self.capture_fails:
            return (self.cudaError_t.cudaErrorStreamCaptureUnsupported, None)
        self.graphs[id(work)] = work
        return self._ok(id(work))

    def cudaGraphInstantiateWithFlags(self, graph, flags):
        return self._ok(graph)

    def cudaGraphDestroy(self, graph):
        return self._ok()

    def cudaGraphExecDestroy(self, graph_exec):
        return self._ok()

    def cudaGraphLaunch(self, graph_exec, stream):
        self.launches += 1
        for work in self.graphs[graph_exec]:
            work()
        return self._ok()


# tensorrt ------------------------------------------------------------------------------------


def make_tensorrt(version="10.3.0", dla_cores=0, cuda=None):
    """A ``tensorrt`` module whose engines compute ``relu(input)``; ``cuda`` is the FakeCudart
    whose streams its execution contexts run on (captured into graphs like any stream work)."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.builds = []  # (network, config) of every build, for tests to inspect
    trt.BuilderFlag = _enum("BuilderFlag", "FP16", "INT8", "GPU_FALLBACK", "TF32")
    trt.NetworkDefinitionCreationFlag = _enum("NetworkDefinitionCreationFlag", "EXPLICIT_BATCH")
    trt.MemoryPoolType = _enum("MemoryPoolType", "WORKSPACE")
    trt.DeviceType = _enum("DeviceType", "GPU", "DLA")
    trt.ProfilingVerbosity = _enum("ProfilingVerbosity", "LAYER_NAMES_ONLY", "NONE", "DETAILED")
    trt.LayerInformationFormat = _enum("LayerInformationFormat", "ONELINE", "JSON")
    trt.TensorIOMode = _enum("TensorIOMode", "NONE", "INPUT", "OUTPUT")
    trt.LayerType = _enum("LayerType", "MATRIX_MULTIPLY", "ACTIVATION")
    trt.DataType = _enum("DataType", "FLOAT", "HALF")

    class ILogger:
        Severity = _enum("Severity", "INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE")

        def __init__(self):
            pass

    class IProfiler:
        def __init__(self):
            pass

    class IInt8EntropyCalibrator2:
        def __init__(self):
            pass

    trt.ILogger, trt.IProfiler, trt.IInt8EntropyCalibrator2 = ILogger, IProfiler, IInt8EntropyCalibrator2
    trt.nptype = lambda dtype: {"FLOAT": np.float32, "HALF": np.float16}[dtype.name]
    layers = [types.SimpleNamespace(name="MatMul_0", type=trt.LayerType.MATRIX_MULTIPLY),
              types.SimpleNamespace(name="Relu_1", type=trt.LayerType.ACTIVATION)]

    class Network:
        num_inputs = 1
        num_layers = len(layers)

        def __init__(self, flags):
            self.flags = flags

        def get_input(self, index):
            return types.SimpleNamespace(name="input", shape=(-1, FEATURES))

        def get_layer(self, index):
            return layers[index]

    class OnnxParser:
        num_errors = 0

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            return path.endswith(".onnx")

    class Profile:
        def set_shape(self, name, low, opt, high):
            self.shape = list(opt)

    class BuilderConfig:
        def __init__(self):
            self.flags, self.pool = [], None
            self.default_device_type, self.DLA_core, self.int8_calibrator = trt.DeviceType.GPU, None, None
            self.profiles, self.calibration_profile, self.profiling_verbosity = [], None, None

        def set_flag(self, flag):
            self.flags.append(flag.name)

        def set_memory_pool_limit(self, pool, size):
            self.pool = size

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)

        def set_calibration_profile(self, profile):
            self.calibration_profile = profile

        def can_run_on_DLA(self, layer):
            return layer.name != "Relu_1"

    class Builder:
        num_DLA_cores = dla_cores

        def __init__(self, logger):
            self.logger = logger

        create_network = staticmethod(Network)
        create_builder_config = staticmethod(BuilderConfig)
        create_optimization_profile = staticmethod(Profile)

        def build_serialized_network(self, network, config):
            trt.builds.append(types.SimpleNamespace(network=network, config=config))
            calibration = []
            if config.int8_calibrator is not None:
                while True:
                    pointers = config.int8_calibrator.get_batch(["input"])
                    if not pointers:
                        break
                    calibration.append(len(pointers))
            if config.default_device_type == trt.DeviceType.DLA:
                for message in ["---------- Layers Running on DLA ----------", "[DlaLayer] {ForeignNode[MatMul_0]}",
                                "---------- Layers Running on GPU ----------", "[GpuLayer] ACTIVATION: Relu_1"]:
                    self.logger.log(ILogger.Severity.INFO, message)
            shape = config.profiles[0].shape if config.profiles else [1, FEATURES]
            return json.dumps({"shape": shape, "flags": config.flags, "calibration_batches": len(calibration)}).encode()

    class Runtime:
        def __init__(self, logger):
            self.DLA_core = None

        def deserialize_cuda_engine(self, blob):
            try:
                return Engine(json.loads(bytes(blob)))
            except ValueError:
                return None

    class Engine:
        num_io_tensors = 2
        device_memory_size_v2 = 4096

        def __init__(self, plan):
            self.plan = plan

        def get_tensor_name(self, index):
            return ["input", "output"][index]

        def get_tensor_mode(self, name):
            return trt.TensorIOMode.INPUT if name == "input" else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            return trt.DataType.FLOAT

        def create_execution_context(self):
            return Context(self)

        def create_engine_inspector(self):
            info = {"Layers": [{"Name": "MatMul_0 + Relu_1", "LayerType": "CaskGemm",
                                "Metadata": "[ONNX Layer: MatMul_0]\x1f[ONNX Layer: Relu_1]"}]}
            return types.SimpleNamespace(get_engine_information=lambda fmt: json.dumps(info))

    class Context:
        def __init__(self, engine):
            self.engine, self.shapes, self.addresses = engine, {}, {}
            self.profiler, self.enqueue_emits_profile, self.runs = None, True, 0

        def set_input_shape(self, name, shape):
            self.shapes[name] = list(shape)
            return list(shape) == self.engine.plan["shape"]

        def get_tensor_shape(self, name):
            return tuple(self.shapes["input"])

        def set_tensor_address(self, name, pointer):
            self.addresses[name] = pointer
            return True

        def execute_async_v3(self, stream_handle):
            count = int(np.prod(self.shapes["input"]))

            def relu():
                source = np.ctypeslib.as_array((ctypes.c_float * count).from_address(self.addresses["input"]))
                target = np.ctypeslib.as_array((ctypes.c_float * count).from_address(self.addresses["output"]))
                target[:] = np.maximum(source, 0)

            cuda._run(relu)
            self.runs += 1
            return True

        def report_to_profiler(self):
            self.profiler.report_layer_time("MatMul_0 + Relu_1", 0.125)

    trt.Builder, trt.Runtime, trt.OnnxParser = Builder, Runtime, OnnxParser
    return trt
