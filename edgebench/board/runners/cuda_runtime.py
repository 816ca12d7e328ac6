"""The CUDA runtime calls the TensorRT runner needs, through NVIDIA's cuda-python bindings.

Why cuda-python and not PyCUDA or torch: it is NVIDIA's own thin binding of the CUDA runtime
API, a small wheel with no compiler step (PyCUDA builds against the local toolkit, which fails
on many Jetson images), and it keeps torch, a multi-gigabyte dependency, off the board when
only TensorRT is measured. Every call returns ``(error, *values)``; ``Cuda.call`` turns an
error into a ``RunnerError`` naming the call. Board-side: Python 3.8, standard library, numpy.
"""

from __future__ import annotations

import ctypes

import numpy as np

from edgebench.board.runners.base import RunnerError, RunnerUnavailable


def import_cudart():
    """The CUDA runtime module of cuda-python: ``cuda.bindings.runtime`` from 12.6 on,
    ``cuda.cudart`` before (the wheels JetPack 5 and 6 can install)."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        from cuda import cudart as runtime
    return runtime


class Cuda:
    """CUDA runtime calls with their errors checked."""

    def __init__(self, cudart):
        self.rt = cudart

    def call(self, name, *args):
        """``cudart.<name>(*args)``; its value (or values), or RunnerError with the CUDA error."""
        result = getattr(self.rt, name)(*args)
        error, values = result[0], result[1:]
        if error != self.rt.cudaError_t.cudaSuccess:
            raise RunnerError("CUDA %s failed: %s" % (name, _error_name(error)))
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def require_device(self):
        """The name and compute capability of device 0; RunnerUnavailable when there is none."""
        error, count = self.rt.cudaGetDeviceCount()
        if error != self.rt.cudaError_t.cudaSuccess:
            raise RunnerUnavailable("no usable CUDA device: %s" % _error_name(error))
        if count < 1:
            raise RunnerUnavailable("no CUDA device on this machine")
        properties = self.call("cudaGetDeviceProperties", 0)
        name = properties.name
        if isinstance(name, bytes):
            name = name.split(b"\0", 1)[0].decode("utf-8", "replace")
        return "%s (sm_%d%d)" % (name.strip(), properties.major, properties.minor)

    def used_memory_mb(self):
        """Device memory in use on the whole device, by every process."""
        free, total = self.call("cudaMemGetInfo")
        return (total - free) / (1024.0 * 1024.0)

    def stream(self):
        return self.call("cudaStreamCreate")

    def synchronize(self, stream):
        self.call("cudaStreamSynchronize", stream)

    def device_buffer(self, nbytes):
        return self.call("cudaMalloc", max(int(nbytes), 1))

    def pinned_array(self, shape, dtype):
        """(page-locked host pointer, a numpy array over it): copies from it run asynchronously."""
        dtype = np.dtype(dtype)
        nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
        pointer = self.call("cudaMallocHost", nbytes)
        raw = (ctypes.c_uint8 * nbytes).from_address(int(pointer))
        array = np.frombuffer(raw, dtype=np.uint8, count=int(np.prod(shape)) * dtype.itemsize)
        return pointer, array.view(dtype).reshape(shape)

    def upload(self, device_pointer, array):
        """Copy a numpy array to the device and wait for it (set-up only, never timed)."""
        array = np.ascontiguousarray(array)
        self.call("cudaMemcpy", device_pointer, array.ctypes.data, array.nbytes,
                  self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice)

    def copy_to_device(self, device_pointer, host_pointer, nbytes, stream):
        self.call("cudaMemcpyAsync", device_pointer, host_pointer, nbytes,
                  self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream)

    def copy_to_host(self, host_pointer, device_pointer, nbytes, stream):
        self.call("cudaMemcpyAsync", host_pointer, device_pointer, nbytes,
                  self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream)

    def capture_graph(self, stream, enqueue):
        """A CUDA graph of the work ``enqueue()`` puts on ``stream``, instantiated for launching."""
        self.call("cudaStreamBeginCapture", stream, self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal)
        try:
            enqueue()
        finally:
            graph = self.call("cudaStreamEndCapture", stream)  # always end, or the stream stays in capture
        try:
            # cudaGraphInstantiateWithFlags has the same signature from CUDA 11.4 (JetPack 5) to 13.
            return self.call("cudaGraphInstantiateWithFlags", graph, 0)
        finally:
            self.call("cudaGraphDestroy", graph)

    def launch_graph(self, graph_exec, stream):
        self.call("cudaGraphLaunch", graph_exec, stream)

    def free(self, name, handle):
        """Release with ``name`` (cudaFree, cudaFreeHost, ...), ignoring errors: used on the way out."""
        getattr(self.rt, name)(handle)


class CudaEventTimer:
    """Device time of one iteration from two CUDA events on the runner's stream (the harness's
    ``device_timer`` protocol)."""

    def __init__(self, cuda, stream):
        self.cuda = cuda
        self.stream = stream
        self.start = cuda.call("cudaEventCreate")
        self.end = cuda.call("cudaEventCreate")

    def record_start(self):
        self.cuda.call("cudaEventRecord", self.start, self.stream)

    def record_end(self):
        self.cuda.call("cudaEventRecord", self.end, self.stream)

    def elapsed_ms(self):
        self.cuda.call("cudaEventSynchronize", self.end)
        return float(self.cuda.call("cudaEventElapsedTime", self.start, self.end))


def _error_name(error):
    return getattr(error, "name", str(error))
