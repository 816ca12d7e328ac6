"""The measurement record: values plus everything that makes them comparable.

A record is immutable once made. Field names are part of the public JSON output
(``edgebench run --json``) and of the store, so adding or renaming one bumps
``RECORD_SCHEMA_VERSION`` with an upgrade step in ``record_versions``.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgebench.results.key import HISTORY_FIELDS, input_shape_text, key_of
from edgebench.results.record_versions import RECORD_SCHEMA_VERSION, upgrade_record

Status = Literal["ok", "error", "unavailable"]
# How a record was measured; a new method (a search, a confirmation run) is added here.
Method = Literal["sweep", "paired", "power"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Latency(_Frozen):
    """Milliseconds per inference call (one batch)."""

    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    ci95: tuple[float, float] = Field(description="95% interval of p50 from the pooled samples: sample noise only; "
                                      "what tables show counts worker processes too (results.intervals)")


class Stability(_Frozen):
    """How far the latency samples can be trusted (pyperf-style checks)."""

    cv: float = Field(description="std / mean")
    robust_cv: float = Field(description="1.4826 * MAD / median: spread without the bursts")
    drift: float = Field(description="median of the second half / median of the first half - 1")
    outlier_fraction: float = Field(description="share of samples above median + 5 MAD")
    ci95_halfwidth: float = Field(description="half-width of the p50 interval / p50")
    stop_reason: str = Field(description="why the timed loop stopped (each worker's, comma-joined)")
    process_p50s: list[float] = Field(default_factory=list, description="p50 of each worker process")
    process_spread: Optional[float] = Field(
        default=None, description="(max - min) / median of the per-process p50s; null for one process")


class Memory(_Frozen):
    host_peak: Optional[float] = None
    device_peak: Optional[float] = None


class Settings(_Frozen):
    """The harness settings the measurement ran under."""

    min_time_s: float
    max_time_s: float
    min_iterations: int
    warmup_s: float
    target_ci: float
    timeout_s: float
    threads: Optional[int] = None
    processes: int = Field(default=1, description="worker processes the samples were pooled from")


class Artifact(_Frozen):
    """A file a measurement loaded, kept in the artifact store beside the results store
    (``results.artifacts``) under its content digest."""

    role: str = Field(description="model: the model's own file(s); onnx: the ONNX export of a torch model; "
                      "torchscript: its TorchScript for a board; engine: the TensorRT engine")
    name: str = Field(description="the file's name when measured (an ONNX model's external data by the name "
                      "the model refers to it by)")
    digest: str = Field(description="sha256:<hex> of the file's bytes: its name in the artifact store")
    size: int = Field(description="bytes")


class Record(_Frozen):
    schema_version: int = RECORD_SCHEMA_VERSION
    run_id: str
    created_at: str
    model: str
    model_fingerprint: Optional[str] = None
    model_spec: Optional[str] = Field(
        default=None, description="the model as the run was given it (a spec or a path as typed): what `regress` "
        "follows across runs; null for models a run made itself (prune, bake) and records before version 3")
    backend: str
    target: str
    mode: str
    device: str
    precision: str
    batch: int
    method: Method = Field(description="sweep: `edgebench run`'s timed loop; paired: models alternating in "
                           "short blocks in one process (`edgebench prune`, `bake`), see env.pairing; power: the "
                           "same timed loop for one model of a paired comparison, run for its power readings "
                           "(`edgebench prune --mode A,B`)")
    machine_id: Optional[str] = Field(
        default=None, description="the measured machine (host, CPU and GPU model, board serial); null when "
        "the run reported no environment")
    input_shapes: dict[str, list[int]] = Field(default_factory=dict)
    status: Status
    error: Optional[str] = None
    warnings: list[str] = Field(default_factory=list)
    latency_ms: Optional[Latency] = None
    device_latency_ms: Optional[Latency] = Field(
        default=None, description="device time per call from CUDA events on the backend's stream; latency_ms "
        "stays the host's end-to-end time")
    include_copies: Optional[bool] = Field(
        default=None, description="GPU devices: whether each timed call copied its inputs in and outputs back")
    stability: Optional[Stability] = None
    iterations: int = 0
    warmup_iterations: int = 0
    import_s: Optional[float] = Field(default=None, description="importing the backend library")
    build_s: Optional[float] = Field(default=None, description="loading the model, building the session")
    deserialize_s: Optional[float] = Field(
        default=None, description="TensorRT: deserializing the engine (part of build_s); env.backend.engine says "
        "whether the engine was built or came from the cache")
    first_inference_ms: Optional[float] = None
    throughput_ips: Optional[float] = None
    memory_mb: Memory = Field(default_factory=Memory)
    energy: Optional[dict[str, Any]] = None
    throttled: Optional[bool] = None
    hooks: list[str] = Field(default_factory=list, description="hooks measured with --allow-hooks")
    layer_profile: Optional[list[dict[str, Any]]] = Field(
        default=None, description="--profile-layers: per layer (engine layer, ONNX Runtime node, eager module), its "
        "model module, type, ONNX nodes, calls and median/mean ms over separate profiled runs (not the timed loop's)")
    backend_options: dict[str, Any] = Field(default_factory=dict)
    settings: Optional[Settings] = None
    env: dict[str, Any] = Field(default_factory=dict)
    artifacts: list[Artifact] = Field(default_factory=list, description="the files the measurement loaded, kept "
                                      "in the artifact store (`edgebench results gc` may remove them later)")
    samples_ms: list[float] = Field(default_factory=list, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _upgraded(cls, data: Any) -> Any:
        # Stored and exported records carry their version; records made in code are current.
        if isinstance(data, dict) and "schema_version" in data:
            return upgrade_record(data)
        return data

    @property
    def key(self) -> tuple:
        """What must match for two records to be compared (``results.key``)."""
        return key_of(self)

    @property
    def history_key(self) -> tuple:
        """What a record of the same model in another run must match to be in this one's history
        (``results.key.HISTORY_FIELDS``: the model by its name)."""
        return key_of(self, HISTORY_FIELDS)

    @property
    def model_identity(self) -> tuple:
        """Which model this is across runs (``results.key.HISTORY_FIELDS``): its spec, as a nightly
        judges a model by its name; without one, its display name and fingerprint."""
        return (self.model_spec,) if self.model_spec is not None else (self.model, self.model_fingerprint)

    @property
    def input_shape(self) -> str:
        """The input shapes less the batch dim, as ``--input-shape`` writes them (``3x512x1024``); a
        key field, so two resolutions of one model are never compared as one."""
        return input_shape_text(self.input_shapes)

    @property
    def board(self) -> Optional[str]:
        """The board measured on, by name: the labgrid place the run reserved (``env.lab.place``),
        else the measured machine's host name; None when the run reported neither."""
        lab = self.env.get("lab")
        place = lab.get("place") if isinstance(lab, dict) else None
        name = place or self.env.get("host")
        return None if name is None else str(name)

    def to_json_dict(self, with_samples: bool = True) -> dict[str, Any]:
        exclude = None if with_samples else {"samples_ms"}
        return self.model_dump(mode="json", exclude=exclude)
