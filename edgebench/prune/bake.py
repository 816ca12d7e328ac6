"""``edgebench bake``: a masked or zero-filtered model turned into a smaller, hook-free one.

``torch.nn.utils.prune`` keeps the dense weights and multiplies a mask in a forward pre-hook on
every call, so a masked model is no smaller and runs slower. Baking makes the masks permanent,
finds the output channels that are dead and removes them with Torch-Pruning's dependency graph,
then checks that the smaller model computes what the masked one did.

The dead-channel rule. A channel of a group (the coupled channels Torch-Pruning removes
together: a residual stage, a concat, a depthwise conv and its producer) is dead when its value
after normalisation is zero for every input:

- every convolution or linear layer that produces it has an all-zero weight slice for it and a
  zero bias (a masked weight with a non-zero bias is a constant, not zero), and
- every depthwise convolution on it has a zero bias: its channel is its input channel filtered,
  zero when that is (SSDLite's heads start with one on each feature map), and
- every BatchNorm on it maps zero to zero: ``beta - running_mean * gamma / sqrt(var + eps)``
  is zero (within ``BN_ZERO_ATOL``); a zeroed conv followed by a BatchNorm with a shift
  outputs that shift, which the next layer sees, so such a channel is kept.

Folding a constant channel into the consumers' bias would be wrong for padded convolutions (a
constant input is not constant at the borders), so constants are kept and reported instead.
Activations between are assumed to map zero to zero (ReLU, GELU, SiLU, hardswish...); a few
that do not (sigmoid, exp...) keep their channels, and the output check catches anything else.
Whole channels only: an unstructured mask (zeros scattered inside channels) leaves zeros in
dense weights and nothing smaller; it is made permanent and reported.

A detector is baked whole (``edgebench prune`` prunes it whole), with the layers that fix its
anchors and classes kept (``edgebench.prune.surgery``). Its outputs are checked, and its speed
measured, on its network (backbone and head, ``edgebench.board.detector_parts``) unless the spec
says ``#end_to_end``: the boxes that survive NMS depend on scores near its thresholds, and with
random or barely trained weights a last-digit difference changes them.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch_pruning as tp
from torch import nn
from torch.nn.utils import prune as torch_prune

from edgebench.errors import UsageError
from edgebench.board.detector_parts import select_part
from edgebench.board.synthetic_inputs import make_inputs
from edgebench.board.torch_models import ModelBuildError, build_module
from edgebench.models import resolve_model
from edgebench.models.artifacts import atomic_target
from edgebench.models.input_specs import format_shape
from edgebench.models.resolve import ResolvedModel
from edgebench.models.spec import FILE_FORMATS, parse_spec
from edgebench.prune.baseline import measured_part, saved_model
from edgebench.sweep.paired import Pairing, measure_paired
from edgebench.prune.surgery import (PRUNABLE_TYPES, Graph, build_graph, is_depthwise, macs_and_params,
                                     quiet_torch_pruning)
from edgebench.results.record import Settings
from edgebench.board.runners.base import first_line
from edgebench.board.runners.eager import find_hooks
from edgebench.session import available_definition, run_session
from edgebench.targets import LOCAL

# The output check: the baked model against the masked one, on the example input and this one.
RTOL, ATOL = 1e-4, 1e-5
RANDOM_INPUT_SEED = 1
# A BatchNorm response this small is zero: a trained mask's running mean decays towards zero
# but never reaches it, and 1e-12 is far below what float32 outputs can show.
BN_ZERO_ATOL = 1e-12
OUT_SUFFIXES = (".pt", ".pth")
# Torch-Pruning's own operation nodes that pass a channel on unchanged (or scaled, or added).
_PASS_THROUGH = (tp.ops._ConcatOp, tp.ops._SplitOp, tp.ops._UnbindOp, tp.ops._ReshapeOp, tp.ops._SliceOp,
                 tp.ops._ElementWiseOp, tp.ops._ExpandOp)
# Nodes that are no module of the model, by what they are.
_OP_LABELS = {tp.ops._OutputOp: "the model's output", nn.Parameter: "a bare nn.Parameter",
              tp.ops._CustomizedOp: "a customised operation"}
# Element-wise functions that turn a zero into something else: a channel through them is not dead.
_NOT_ZERO_AT_ZERO = ("Sigmoid", "Hardsigmoid", "Exp", "Cos", "Softplus", "AddBackward1", "SubBackward1",
                     "RsubBackward1")


# -- loading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    resolved: ResolvedModel
    module: nn.Module  # the whole model, a detector with its pre- and postprocessing
    example_input: torch.Tensor  # the worker's own synthetic input, batch 1
    part: str | None = None  # what of a detector is checked and measured

    @property
    def input_shape(self) -> str:
        """The ``--input-shape`` text the model was resolved with."""
        return "x".join(str(dim) for dim in self.example_input.shape[1:])


def check_out(out: Path, spec: str) -> None:
    """``--out`` must be a full-module pickle path that does not replace the model being baked."""
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise UsageError(f"--out {out} must end in .pt or .pth: bake writes a full-module torch.save pickle")
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; give a file name ending in .pt or .pth")
    given = Path(spec).expanduser()
    if given.is_file() and given.resolve() == out.expanduser().resolve():
        raise UsageError(f"--out {out} is the model being baked; write the baked model to another file")


def load_for_bake(spec: str, input_shapes: Sequence[str]) -> Loaded:
    """The model as an ``nn.Module`` with its masks, as ``edgebench run`` would build it (a
    detector whole, with the part to measure)."""
    parsed = parse_spec(spec)
    needs = "bake needs an nn.Module with its masks"
    if parsed.onnx_path is not None:
        raise UsageError(f"{needs}: {parsed.name} is an ONNX graph; give the PyTorch model it came from")
    if parsed.recipe and parsed.recipe["format"] == FILE_FORMATS[".pt2"]:
        raise UsageError(f"{needs}: {parsed.name} is a torch.export program; give the module it was exported from")
    with warnings.catch_warnings():
        # torch.jit.load's deprecation notice would come before the one line that refuses TorchScript.
        warnings.simplefilter("ignore", FutureWarning)
        resolved = resolve_model(spec, input_shapes)
        if len(resolved.inputs) != 1:
            raise UsageError(f"bake handles models with one input; {resolved.name} has {len(resolved.inputs)}")
        part = resolved.recipe.get("part")
        try:
            module = build_module({key: value for key, value in resolved.recipe.items() if key != "part"})
        except ModelBuildError as exc:
            raise UsageError(str(exc))
    if isinstance(module, torch.jit.ScriptModule):
        raise UsageError(f"{needs}: {resolved.name} is TorchScript, which keeps neither masks nor module classes")
    others = [hook for hook in find_hooks(module) if ": prune mask on " not in hook]
    if others:
        # Removing a hook the user wrote could change what the model computes.
        raise UsageError(f"{resolved.name} carries hooks other than prune masks: {'; '.join(others)} "
                         "(bake removes prune masks only; remove these first)")
    array = make_inputs([resolved.inputs[0].as_dict(1)])[resolved.inputs[0].name]
    name = resolved.name.removesuffix(f"#{part}") if part else resolved.name
    return Loaded(dataclasses.replace(resolved, name=name), module, torch.from_numpy(array),
                  measured_part(module, part))


# -- baking ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mask:
    """One ``torch.nn.utils.prune`` mask, as found before it was made permanent."""

    name: str  # "layer1.0.conv1.weight"
    elements: int
    zeros: int
    channels: int  # along dim 0: output channels of a conv or linear weight
    zero_channels: int

    @property
    def structured(self) -> bool:
        """Every zero of the mask lies in a whole zero channel."""
        return self.zeros == self.zero_channels * (self.elements // max(self.channels, 1))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "zero_fraction": self.zeros / max(self.elements, 1), "channels": self.channels,
                "zero_channels": self.zero_channels, "structured": self.structured}


@dataclass(frozen=True)
class Kept:
    """Zero channels that stay, and why."""

    scope: str  # "group" (named by its root layer) or "layer"
    where: str
    channels: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "where": self.where, "channels": self.channels, "reason": self.reason}


@dataclass
class GroupPlan:
    group: str
    layers: list[str]  # the convolutions and linear layers whose outputs are these channels
    width: int
    dead: list[int] = field(default_factory=list)  # root indices to remove
    zero: int = 0  # channels zero in at least one layer
    kept: list[Kept] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "layers": self.layers, "channels_before": self.width,
                "channels_after": self.width - len(self.dead), "zero_channels": self.zero,
                "removed": len(self.dead), "kept": [k.as_dict() for k in self.kept]}


@dataclass
class Baked:
    model: nn.Module
    hooks_removed: list[str]
    masks: list[Mask]
    groups: list[GroupPlan]
    ungrouped: list[Kept]  # zero channels in layers no group removes (the output layer...)
    layers: list[dict[str, Any]]  # {"name", "group", "before", "after"} for each layer whose width changed
    macs: tuple[int, int]
    params: tuple[int, int]
    max_abs_diff: float

    @property
    def removed(self) -> int:
        return sum(len(plan.dead) for plan in self.groups)

    def as_dict(self) -> dict[str, Any]:
        kept = [k.as_dict() for plan in self.groups for k in plan.kept] + [k.as_dict() for k in self.ungrouped]
        return {
            "hooks_removed": self.hooks_removed,
            "masks": [mask.as_dict() for mask in self.masks],
            "channels_removed": self.removed,
            "layers": self.layers,
            "groups": [plan.as_dict() for plan in self.groups if plan.zero],
            "kept": kept,
            "params": {"before": self.params[0], "after": self.params[1]},
            "macs": {"before": self.macs[0], "after": self.macs[1]},
            "max_abs_diff": self.max_abs_diff,
        }


def bake(module: nn.Module, example_input: torch.Tensor, part: str | None = None) -> Baked:
    """A smaller, hook-free copy of ``module`` without its dead channels; ``module`` is left as it
    was. UsageError when the copy's outputs (of a detector, its ``part``'s) differ from the original's."""
    _run(module, example_input, "the model")  # a wrong --input-shape fails here, in one line
    hooks = find_hooks(module)
    model = _copy(module)
    masks = make_masks_permanent(model)
    leftover = find_hooks(model)
    if leftover:
        raise UsageError(f"hooks left after removing the prune masks: {'; '.join(leftover)}")
    macs_before, params_before = macs_and_params(model, example_input)
    widths_before = _widths(model)
    try:
        graph = build_graph(model, example_input)
    except Exception as exc:  # Torch-Pruning's tracer does not follow every model
        raise UsageError(f"Torch-Pruning cannot trace the model: {type(exc).__name__}: {first_line(exc)}")
    plans = [plan_group(graph, group_id) for group_id in graph.groups]
    ungrouped = _ungrouped_zeros(model, graph)
    for plan in plans:
        if plan.dead:
            group = graph.groups[plan.group]
            root, handler = group[0].dep.target.module, group[0].dep.handler
            with quiet_torch_pruning():
                graph.dependencies.get_pruning_group(root, handler, plan.dead).prune()
    widths_after = _widths(model)
    group_of = {layer: plan.group for plan in plans for layer in plan.layers}
    layers = [{"name": name, "group": group_of.get(name), "before": before, "after": widths_after[name]}
              for name, before in widths_before.items() if widths_after[name] != before]
    max_abs_diff = check_outputs(module, model, example_input, part)
    macs_after, params_after = macs_and_params(model, example_input)
    return Baked(model, hooks, masks, plans, ungrouped, layers, (macs_before, macs_after),
                 (params_before, params_after), max_abs_diff)


def _copy(module: nn.Module) -> nn.Module:
    """A deep copy; a masked tensor (weight_orig * weight_mask, kept as a plain attribute between
    calls) is not a graph leaf and refuses deepcopy, so it is copied detached."""
    memo: dict[int, Any] = {}
    for submodule in module.modules():
        for hook in submodule._forward_pre_hooks.values():
            if isinstance(hook, torch_prune.BasePruningMethod):
                masked = getattr(submodule, hook._tensor_name, None)
                if isinstance(masked, torch.Tensor):
                    memo[id(masked)] = masked.detach().clone()
    return copy.deepcopy(module, memo)


def make_masks_permanent(model: nn.Module) -> list[Mask]:
    """``torch.nn.utils.prune.remove`` on every mask: the masked weights become plain parameters
    and the pre-hooks go. Returns what each mask held."""
    masks = []
    for name, module in model.named_modules():
        for hook in list(module._forward_pre_hooks.values()):
            if not isinstance(hook, torch_prune.BasePruningMethod):
                continue
            tensor_name = hook._tensor_name
            mask = getattr(module, tensor_name + "_mask").detach()
            masks.append(_describe_mask(f"{name}.{tensor_name}" if name else tensor_name, mask))
            torch_prune.remove(module, tensor_name)
    return masks


def _describe_mask(name: str, mask: torch.Tensor) -> Mask:
    rows = mask.reshape(mask.shape[0], -1) if mask.dim() else mask.reshape(1, 1)
    zero_rows = int((rows == 0).all(dim=1).sum())
    return Mask(name, mask.numel(), int((mask == 0).sum()), rows.shape[0], zero_rows)


def plan_group(graph: Graph, group_id: str) -> GroupPlan:
    """The group's dead channels by the rule in the module docstring, and the zero ones it keeps."""
    names = graph.dependencies._module2name
    group = graph.groups[group_id]
    width = graph.width(group_id)
    zero_in: dict[str, set[int]] = {}  # layer -> root indices whose weight slice is zero
    biased: dict[str, set[int]] = {}  # layer -> zero weight slice, non-zero bias
    shifted: dict[str, set[int]] = {}  # BatchNorm -> root indices it maps zero away from zero
    blockers: list[str] = []
    for item in group:
        module = item.dep.target.module
        is_out = graph.dependencies.is_out_channel_pruning_fn(item.dep.handler)
        name = names.get(module) or _OP_LABELS.get(type(module), type(module).__name__)
        pairs = list(zip(item.idxs, item.root_idxs))
        if isinstance(module, PRUNABLE_TYPES):
            if not is_out:
                continue  # a consumer: its inputs shrink with the group, nothing to check
            weight_zero, bias_zero = _zero_outputs(module)
            if is_depthwise(module):
                # Zero in, zero out, whatever its weights, unless its bias makes a constant.
                biased.setdefault(name, set()).update(root for idx, root in pairs if not bias_zero[idx])
                continue
            zero_in.setdefault(name, set()).update(root for idx, root in pairs if weight_zero[idx])
            biased.setdefault(name, set()).update(root for idx, root in pairs
                                                  if weight_zero[idx] and not bias_zero[idx])
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            response = _zero_response(module)
            shifted.setdefault(name, set()).update(root for idx, root in pairs if abs(response[idx]) > BN_ZERO_ATOL)
        elif isinstance(module, tp.ops._ElementWiseOp) and module._grad_fn.startswith(_NOT_ZERO_AT_ZERO):
            blockers.append(f"{module._grad_fn.removesuffix('Backward0').removesuffix('Backward1')} "
                            "(not zero at zero)")
        elif not isinstance(module, (*_PASS_THROUGH, nn.PReLU)):
            blockers.append(name if name in _OP_LABELS.values() else f"{name} ({type(module).__name__})")
    plan = GroupPlan(group_id, list(zero_in), width)
    union = set().union(*zero_in.values())
    plan.zero = len(union)
    if not union:
        return plan

    def keep(channels: int, reason: str) -> None:
        plan.kept.append(Kept("group", group_id, channels, reason))

    everywhere = set.intersection(*zero_in.values())
    partial = union - everywhere
    if partial:
        where = sorted(layer for layer, zeros in zero_in.items() if zeros & partial)
        keep(len(partial), f"zero in {', '.join(where)} but not in all of the coupled layers "
             f"{', '.join(sorted(zero_in))} (joined by a residual add, a concat or a depthwise conv), so still in use")
    constant = everywhere & set().union(*biased.values())
    if constant:
        layers = sorted(layer for layer, roots in biased.items() if roots & constant)
        keep(len(constant), f"zero weights but a non-zero bias in {', '.join(layers)}: a constant, not zero")
    shifted_roots = (everywhere - constant) & set().union(*shifted.values())
    if shifted_roots:
        norms = sorted(bn for bn, roots in shifted.items() if roots & shifted_roots)
        keep(len(shifted_roots), f"zero weights but BatchNorm {', '.join(norms)} shifts them to a non-zero "
             "constant (beta - mean*gamma/sqrt(var+eps) != 0)")
    dead = sorted(everywhere - constant - shifted_roots)
    if dead and blockers:
        keep(len(dead), f"the channels pass through {', '.join(blockers)}, which bake does not remove channels through")
        dead = []
    if dead and len(dead) == width:
        keep(1, "every channel is zero; one is kept so the layers stay valid")
        dead = dead[1:]
    plan.dead = dead
    return plan


def _zero_outputs(layer: nn.Module) -> tuple[list[bool], list[bool]]:
    """Per output channel: is the weight slice all zero, is the bias zero (or absent)."""
    weight = layer.weight.detach()
    weight_zero = (weight.reshape(weight.shape[0], -1) == 0).all(dim=1).tolist()
    bias = getattr(layer, "bias", None)
    bias_zero = [True] * len(weight_zero) if bias is None else (bias.detach() == 0).tolist()
    return weight_zero, bias_zero


def _zero_response(norm: nn.modules.batchnorm._BatchNorm) -> list[float]:
    """What the BatchNorm outputs, per channel, for a zero input, in eval mode."""
    channels = norm.num_features
    gamma = norm.weight.detach().double() if norm.weight is not None else torch.ones(channels, dtype=torch.float64)
    beta = norm.bias.detach().double() if norm.bias is not None else torch.zeros(channels, dtype=torch.float64)
    if norm.running_mean is None:
        # Batch statistics of an all-zero channel: mean 0, so the output is beta.
        return beta.tolist()
    scale = gamma / torch.sqrt(norm.running_var.double() + norm.eps)
    return (beta - norm.running_mean.double() * scale).tolist()


def _ungrouped_zeros(model: nn.Module, graph: Graph) -> list[Kept]:
    """Zero output channels of layers that no group removes: the kept layers (``surgery``), and
    layers Torch-Pruning could not put in a group."""
    grouped = {item.dep.target.module for group in graph.groups.values() for item in group
               if graph.dependencies.is_out_channel_pruning_fn(item.dep.handler)}
    reasons = graph.kept_reasons()
    kept = []
    for name, layer in model.named_modules():
        if not isinstance(layer, PRUNABLE_TYPES) or layer in grouped:
            continue
        zeros = sum(_zero_outputs(layer)[0])
        if not zeros:
            continue
        reason = reasons.get(name, "in no prunable group (coupled with a kept layer, or through an operation "
                                   "Torch-Pruning cannot follow)")
        kept.append(Kept("layer", name, zeros, reason))
    return kept


def _widths(model: nn.Module) -> dict[str, int]:
    return {name: layer.weight.shape[0] for name, layer in model.named_modules() if isinstance(layer, PRUNABLE_TYPES)}


def check_outputs(original: nn.Module, baked: nn.Module, example_input: torch.Tensor,
                  part: str | None = None) -> float:
    """The largest absolute output difference over the example input and a seeded random one;
    UsageError when they are not close (``RTOL``, ``ATOL``). With a ``part``, that part of both
    detectors is compared (the network: the head's outputs before decoding and NMS)."""
    if part:
        original, baked = select_part(original, part, "the model"), select_part(baked, part, "the baked model")
    generator = torch.Generator().manual_seed(RANDOM_INPUT_SEED)
    inputs = [example_input, torch.randn(example_input.shape, generator=generator, dtype=example_input.dtype)]
    worst = 0.0
    for x in inputs:
        expected = _run(original, x, "the model")
        got = _run(baked, x, "the baked model", "; nothing written: a channel was cut that an operation "
                   "Torch-Pruning cannot see still uses")
        if [t.shape for t in expected] != [t.shape for t in got]:
            raise UsageError("baking changed the shape of the model's outputs; nothing written")
        for want, have in zip(expected, got):
            difference = float((want.float() - have.float()).abs().max()) if want.numel() else 0.0
            worst = max(worst, difference)
            if not torch.allclose(want, have, rtol=RTOL, atol=ATOL):
                raise UsageError(f"the baked model's outputs differ from the original's (max abs difference "
                                 f"{difference:.3g}, beyond rtol={RTOL:g}, atol={ATOL:g}); nothing written: "
                                 "a channel taken for dead was not")
    return worst


def _run(model: nn.Module, x: torch.Tensor, what: str, hint: str = "") -> list[torch.Tensor]:
    """The output tensors of ``model`` on ``x``; UsageError, in one line, when it fails."""
    try:
        with torch.no_grad():
            return _tensors(model(x))
    except Exception as exc:  # the user's model: a wrong input shape, or a channel Torch-Pruning cut but
        # an operation it cannot see (a buffer added to the channels) still expects
        raise UsageError(f"{what} fails on a {format_shape(x.shape)} input: {type(exc).__name__}: "
                         f"{first_line(exc)}{hint}")


def _tensors(output: Any) -> list[torch.Tensor]:
    """The tensors of a model's output (a tensor, or tuples, lists and dicts of them), in order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _tensors(item)]
    if isinstance(output, dict):
        return [t for key in output for t in _tensors(output[key])]
    return []


def save_baked(out: Path, model: nn.Module) -> None:
    """``torch.save`` of the whole module, appearing at ``out`` only once complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(out) as temp_path:
        torch.save(model, temp_path)


# -- measuring -------------------------------------------------------------------------------


def measure_speedup(original: nn.Module, baked: nn.Module, loaded: Loaded, workdir: Path, threads: int | None,
                    pairing: Pairing = Pairing(), log: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """The masked model (hooks and all: that is what the user runs now) against the baked one, in
    one paired eager run in real worker processes on this machine. ``workdir`` holds both files.
    The run is a session like any other, on a store held in memory: bake writes no results."""
    definition = available_definition(LOCAL)
    settings = Settings(min_time_s=0.0, max_time_s=0.0, min_iterations=1, warmup_s=pairing.warmup_s, target_ci=0.0,
                        timeout_s=600.0, threads=threads, processes=1)
    with run_session(":memory:", tags={"command": "bake"}, log=log) as session, \
            session.stage(definition, "cpu", measure_power=False) as ready:
        # The masked model carries its prune hooks.
        sweep = ready.sweep(settings, threads=threads, allow_hooks=True)
        models = [_materialize(original, workdir / "masked.pt", loaded, "masked"),
                  _materialize(baked, workdir / "baked.pt", loaded, "baked")]
        log(f"measuring masked against baked: paired eager run on {definition.name}, {pairing.rounds} rounds")
        paired = measure_paired(sweep, models, "eager", pairing, roles=["masked", "baked"])
        session.keep_all(entry.record for entry in paired.entries)
    failed = [entry for entry in paired.entries if not entry.ok]
    if failed:
        return {"error": f"{failed[0].record.model}: {failed[0].error}"}
    ratio = paired.ratio(1, 0)
    assert ratio is not None
    masked, baked_entry = paired.entries
    return {
        "speedup": 1.0 / ratio.ratio,
        "ci95": [1.0 / ratio.high, 1.0 / ratio.low],
        "latency_ratio": ratio.as_dict(),
        "masked_p50_ms": masked.p50_ms,
        "baked_p50_ms": baked_entry.p50_ms,
        "backend": "eager",
        "target": definition.name,
        "threads": threads,
        "method": "paired eager measurement on this machine: " + masked.record.env["pairing"]["method"],
    }


def _materialize(module: nn.Module, path: Path, loaded: Loaded, role: str) -> ResolvedModel:
    """``module`` as a file the worker loads, resolved like any model spec (a detector's part)."""
    return saved_model(module, path, loaded.input_shape, f"{loaded.resolved.name} ({role})", loaded.part)
