"""Suites: what a nightly measures and how its regressions are judged, in one validated TOML file.

    name = "xavier-nightly"

    [settings]                  # optional: overrides of `edgebench run`'s options of the same names
    min_time = 3.0
    max_time = 30.0
    processes = 3
    threads = 4

    [[matrix]]                  # one or more entries; a single [matrix] table works too
    models = ["torchvision:resnet18", "torchvision:mobilenet_v2"]
    targets = ["xavier"]        # default ["local"]
    modes = ["maxn", "15w"]     # default: the board's current mode
    backends = ["eager", "onnxruntime", "tensorrt"]
    batches = [1, 8]            # default [1]
    precisions = ["fp32", "fp16"]  # default ["fp32"]
    input_shapes = ["3x224x224"]   # optional, as --input-shape: "3x256x512,3x512x1024" sweeps two

    [regress]                   # how `edgebench regress --suite FILE` judges the suite's latest run
    metric = "p50"
    threshold = 0.05
    confirm = true              # measure suspected keys again, paired (regress --confirm); default false
    confirm_sessions = 3        # as --confirm-sessions
    confirm_rounds = 200        # as --confirm-rounds
    confirm_block_time = 0.01   # as --block-time
    golden = "20261001-030000"  # optional: a pinned run measured beside (as --golden)
    golden_every_night = true   # every key paired with the golden run each night (as --golden-all)
    aa_share = 0.1              # A/A calibration: this share of the keys checked against themselves
    [regress.models."torchvision:mobilenet_v2"]
    threshold = 0.08            # per-model override of metric and/or threshold

``load_suite(path)`` reads and checks the file; ``Suite.items()`` expands the matrix into one
``SuiteItem`` per measurement. Built-in targets are checked here (their modes and backends), so
a typo fails when the file is loaded, not an hour into the nightly; ``local`` and target files
are resolved by the run. Model specs are resolved by the run too: that imports torchvision.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from edgebench.errors import UsageError
from edgebench.models import input_shape_bindings
from edgebench.results.calibration import check_share
from edgebench.results.compare import METRICS
from edgebench.results.confirm import DEFAULT_SESSIONS
from edgebench.results.regress import DEFAULT_THRESHOLD, RegressRule
from edgebench.sweep.paired import CONFIRM_BLOCK_S, CONFIRM_ROUNDS
from edgebench.board.runners import runner_names
from edgebench.targets import LOCAL, builtin_definitions
from edgebench.tomlfile import load_toml

Precision = Literal["fp32", "fp16", "int8"]


@dataclass(frozen=True)
class SuiteItem:
    """One measurement of the suite. ``mode`` None: leave the board in the mode it is in."""

    model: str
    target: str
    mode: Optional[str]
    backend: str
    batch: int
    precision: str
    input_shapes: tuple[str, ...] = ()


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MatrixEntry(_Strict):
    """Every combination of these lists is measured."""

    models: list[str] = Field(min_length=1)
    targets: list[str] = Field(default=[LOCAL], min_length=1)
    modes: Optional[list[str]] = Field(default=None, min_length=1)
    backends: list[str] = Field(min_length=1)
    batches: list[PositiveInt] = Field(default=[1], min_length=1)
    precisions: list[Precision] = Field(default=["fp32"], min_length=1)
    input_shapes: list[str] = Field(default_factory=list)

    @field_validator("models", "targets", "modes", "backends", "batches", "precisions")
    @classmethod
    def _unique(cls, values: Optional[list[Any]]) -> Optional[list[Any]]:
        if values is not None and len(set(values)) != len(values):
            raise ValueError(f"values repeat: {values}")
        return values

    @field_validator("models")
    @classmethod
    def _specs_not_blank(cls, models: list[str]) -> list[str]:
        if any(not model.strip() for model in models):
            raise ValueError("a model spec is empty")
        return models

    @field_validator("backends")
    @classmethod
    def _known_backends(cls, backends: list[str]) -> list[str]:
        unknown = [name for name in backends if name not in runner_names()]
        if unknown:
            raise ValueError(f"unknown backend(s) {', '.join(unknown)}; known backends: {', '.join(runner_names())}")
        return backends

    @field_validator("input_shapes")
    @classmethod
    def _shapes_parse(cls, shapes: list[str]) -> list[str]:
        try:
            input_shape_bindings(shapes)
        except UsageError as exc:
            raise ValueError(str(exc)) from None
        return shapes

    @model_validator(mode="after")
    def _builtin_targets_fit(self) -> MatrixEntry:
        builtins = builtin_definitions()
        for target in self.targets:
            if target == LOCAL or target.endswith(".toml"):
                continue  # resolved by the run: the machine it runs on, a file beside it
            definition = builtins.get(target)
            if definition is None:
                raise ValueError(f"unknown target {target!r}; targets: {', '.join([LOCAL, *builtins])}, "
                                 "or a .toml file")
            missing_modes = [mode for mode in self.modes or [] if mode not in definition.mode_names]
            if missing_modes:
                raise ValueError(f"target {target} has no mode {', '.join(missing_modes)}; its modes: "
                                 f"{', '.join(definition.mode_names)}")
            missing_backends = [name for name in self.backends if name not in definition.backends]
            if missing_backends:
                raise ValueError(f"target {target} does not run {', '.join(missing_backends)}; its backends: "
                                 f"{', '.join(definition.backends)}")
        return self

    def items(self) -> list[SuiteItem]:
        """Grouped by target and mode (a mode switch is slow), backends of one model side by side;
        each input shape binding (``input_shape_bindings``) a measurement of its own."""
        return [
            SuiteItem(model, target, mode, backend, batch, precision, shapes)
            for target, mode, model, shapes, batch, precision, backend in itertools.product(
                self.targets, self.modes or [None], self.models, input_shape_bindings(self.input_shapes),
                self.batches, self.precisions, self.backends)
        ]


class SuiteSettings(_Strict):
    """Overrides of `edgebench run`'s --min-time, --max-time, --processes and --threads."""

    min_time: Optional[float] = Field(default=None, ge=0)
    max_time: Optional[float] = Field(default=None, ge=0)
    processes: Optional[PositiveInt] = None
    threads: Optional[PositiveInt] = None

    @model_validator(mode="after")
    def _ordered(self) -> SuiteSettings:
        if self.min_time is not None and self.max_time is not None and self.max_time < self.min_time:
            raise ValueError(f"max_time ({self.max_time:g} s) is below min_time ({self.min_time:g} s)")
        return self


class RegressOverride(_Strict):
    metric: Optional[str] = None
    threshold: Optional[float] = Field(default=None, ge=0)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: Optional[str]) -> Optional[str]:
        if metric is not None and metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
        return metric


class RegressSettings(RegressOverride):
    """``edgebench regress``'s --metric and --threshold (a fraction: 0.05 = 5%), per model if need be;
    its --confirm, --confirm-sessions, --confirm-rounds, --block-time, --golden, --golden-all and --aa-share for the
    whole suite."""

    metric: str = "p50"
    threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0)
    models: dict[str, RegressOverride] = Field(default_factory=dict)
    confirm: bool = False
    confirm_sessions: PositiveInt = DEFAULT_SESSIONS
    confirm_rounds: int = Field(default=CONFIRM_ROUNDS, ge=2)
    confirm_block_time: float = Field(default=CONFIRM_BLOCK_S, ge=0.005)
    golden: Optional[str] = Field(default=None, min_length=1)
    golden_every_night: bool = False
    aa_share: float = 0.0

    @field_validator("aa_share")
    @classmethod
    def _a_share(cls, share: float) -> float:
        return check_share(share)

    @model_validator(mode="after")
    def _paired_settings_need_confirm(self) -> RegressSettings:
        needing = [name for name, given in (("golden", self.golden is not None),
                                            ("golden_every_night", self.golden_every_night),
                                            ("aa_share", self.aa_share > 0)) if given]
        if needing and not self.confirm:
            raise ValueError(f"{' and '.join(needing)} measure keys paired, as confirmation does: set confirm = true")
        if self.golden_every_night and self.golden is None:
            raise ValueError("golden_every_night pairs every key with the golden run: set golden = \"RUN\"")
        return self


class Suite(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    settings: SuiteSettings = Field(default_factory=SuiteSettings)
    matrix: list[MatrixEntry] = Field(min_length=1)
    regress: RegressSettings = Field(default_factory=RegressSettings)

    @field_validator("matrix", mode="before")
    @classmethod
    def _one_table_is_a_list_of_one(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _overrides_name_measured_models(self) -> Suite:
        measured = {model for entry in self.matrix for model in entry.models}
        strays = [model for model in self.regress.models if model not in measured]
        if strays:
            raise ValueError(f"regress.models names {', '.join(strays)}, which no matrix entry measures")
        return self

    def items(self) -> list[SuiteItem]:
        """Every measurement of every matrix entry, in order; one that two entries share, once."""
        return list(dict.fromkeys(item for entry in self.matrix for item in entry.items()))

    def regress_rule(self, model: str) -> RegressRule:
        """The metric and threshold that judge ``model``: its override where it has one."""
        override = self.regress.models.get(model, RegressOverride())
        return RegressRule(metric=override.metric or self.regress.metric,
                           threshold=self.regress.threshold if override.threshold is None else override.threshold)

    def regress_rules(self) -> dict[str, RegressRule]:
        """The rule of each model spec with an override, for ``results.regress.regress``."""
        return {model: self.regress_rule(model) for model in self.regress.models}


def load_suite(path: Path) -> Suite:
    """Read and check a suite file; UsageError naming the file, the field and the problem."""
    return load_toml(path, Suite, "suite file")
