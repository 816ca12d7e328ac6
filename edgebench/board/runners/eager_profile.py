"""Eager PyTorch's per-layer profile: each module's own operators, timed by ``torch.profiler``.

While profiling, forward pre-hooks and hooks open and close a ``record_function`` range named
after each module's path; they are removed afterwards, so the timed loop (before) and the
record's ``hooks`` never see them. A module's time is that of the operators it ran itself, not
inside a submodule's range: a convolution's ``aten::conv2d``, a residual block's functional
``add`` (a row of the block's own), never the Python around them. CPU time on the CPU; on a GPU
the device time of the kernels each operator launched. Board-side: torch is the caller's.
"""

from __future__ import annotations

from edgebench.board.layer_profiles import ROOT_MODULE

# The range around each profiled run; its subtree is one run's events.
_RUN_RANGE = "edgebench::profiled_run"


def module_profile(torch, module, run, runs, on_gpu):
    """(runs, layers) for ``layer_profiles.profile_rows``: ``run()`` (one synchronized inference of
    ``module``) called ``runs`` times under the profiler with module ranges open."""
    paths = dict((submodule, name or ROOT_MODULE) for name, submodule in module.named_modules())
    handles = _range_hooks(torch, paths)
    try:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if on_gpu:
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as profiler:
            for _ in range(runs):
                with torch.profiler.record_function(_RUN_RANGE):
                    run()
    finally:
        for handle in handles:
            handle.remove()
    layers = dict((path, {"module": path, "type": type(submodule).__name__, "onnx_nodes": []})
                  for submodule, path in paths.items())
    walk = _TreeWalk(set(layers), _device_us if on_gpu else _cpu_us)
    per_run = [walk.run(event) for event in profiler.events() if event.name == _RUN_RANGE]
    return per_run, layers


def _range_hooks(torch, paths):
    """Hooks opening a ``record_function`` range for each module call; the handles to remove them."""
    open_ranges = []  # module calls nest, so their ranges close last-opened first

    def enter(submodule, args):
        opened = torch.profiler.record_function(paths[submodule])
        opened.__enter__()
        open_ranges.append(opened)

    def leave(submodule, args, output):
        open_ranges.pop().__exit__(None, None, None)

    handles = []
    for submodule in paths:
        handles.append(submodule.register_forward_pre_hook(enter))
        handles.append(submodule.register_forward_hook(leave))
    return handles


class _TreeWalk:
    """Module times of one profiled run from its event tree."""

    def __init__(self, module_ranges, time_us):
        self.module_ranges = module_ranges
        self.time_us = time_us

    def run(self, run_event):
        """module path -> (ms, calls) for the modules that ran operators of their own, in the
        order their first operator ran."""
        self.found = {}
        self._outside_modules(run_event)
        return dict((path, (us / 1000.0, calls)) for path, (us, calls) in self.found.items())

    def _module(self, event):
        own_us, ran_operators = 0.0, False
        for child in event.cpu_children:
            if child.name in self.module_ranges:
                self._module(child)
                continue
            if not ran_operators:
                self.found.setdefault(event.name, [0.0, 0])
                ran_operators = True
            own_us += self.time_us(child) - self._outside_modules(child)
        if ran_operators:
            entry = self.found[event.name]
            entry[0] += own_us
            entry[1] += 1

    def _outside_modules(self, event):
        """Walk the modules called under a non-module event; the time spent inside them."""
        inside_us = 0.0
        for child in event.cpu_children:
            if child.name in self.module_ranges:
                self._module(child)
                inside_us += self.time_us(child)
            else:
                inside_us += self._outside_modules(child)
        return inside_us


def _cpu_us(event):
    return event.cpu_time_total


def _device_us(event):
    # torch 2.4 renamed cuda_time_total (the board's older torch has only that).
    total = getattr(event, "device_time_total", None)
    return total if total is not None else event.cuda_time_total
