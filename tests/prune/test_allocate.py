"""`edgebench prune --strategy allocate`: the knapsack on hand-made latency tables, the latency
model's cache, and the whole command on a tiny model in real eager worker processes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edgebench.prune import latency_cache
from edgebench.prune.allocate import MAX_ALLOCATIONS, allocate, checked_allocation
from edgebench.prune.latency_model import GroupCurve, LatencyModel, Point, probe_widths
from edgebench.prune.latency_probe import LatencyProbe
from edgebench.results.record import Settings
from edgebench.results.store import Store
from edgebench.sweep.config import SweepConfig
from edgebench.sweep.execute import Sweep
from edgebench.sweep.paired import Pairing, Ratio
from edgebench.targets import builtin_definitions

SUPPORT = Path(__file__).resolve().parents[1] / "support"


def curve(width, ratios):
    """A group's curve from {width: measured ratio}."""
    return GroupCurve.of(width, [Point(w, r, r, r) for w, r in ratios.items()])


# Four channels per group. a's first channel saves 0.1 of the latency, each further one 0.05; b's
# second channel saves the most. b's three lowest channels are nearly worthless (shares of its
# importance 0.025 each), a's all count alike (0.25).
A = curve(4, {1: 0.8, 2: 0.85, 3: 0.9})
MODEL = LatencyModel("eager", 1.0, {"a": A, "b": curve(4, {1: 0.85, 2: 0.88, 3: 0.95})})
SCORES = {"a": [1.0, 1.0, 1.0, 1.0], "b": [0.1, 3.7, 0.1, 0.1]}


def test_the_model_multiplies_the_groups_ratios_and_interpolates_between_measured_widths():
    assert MODEL.predict({}) == 1.0
    assert MODEL.predict({"a": 2, "b": 3}) == pytest.approx(0.85 * 0.95)
    wide = LatencyModel("eager", 1.0, {"c": curve(64, {16: 0.5, 32: 0.9})})
    assert wide.predict({"c": 24}) == pytest.approx(0.7) and wide.predict({"c": 48}) == pytest.approx(0.95)
    with pytest.raises(ValueError, match="outside the measured 16..64"):
        wide.predict({"c": 8})  # no extrapolation below the narrowest measured width
    assert LatencyModel.from_dict(json.loads(json.dumps(MODEL.as_dict()))) == MODEL
    assert probe_widths(96, 16) == [16, 48, 64] and probe_widths(24, 16) == [16] and probe_widths(16, 16) == []


def test_the_knapsack_cuts_the_cheapest_importance_per_latency_saved_then_gives_back_what_fits():
    # b's worthless channels go first (4 -> 2, then 1: 0.85), then a's cheapest (0.9 x 0.85); one of
    # b's channels then fits back in (0.9 x 0.88), a second would not (0.9 x 0.95).
    allocation = allocate(SCORES, {"eager": MODEL}, {"eager": 0.801}, 1)
    assert allocation.widths == {"a": 3, "b": 2} and allocation.reached
    assert allocation.predicted["eager"] == pytest.approx(0.9 * 0.88)
    # The contrast: with a's channels the worthless ones instead, a alone is cut.
    cheap_a = allocate({"a": [0.1, 0.1, 0.1, 3.7], "b": [1.0] * 4}, {"eager": MODEL}, {"eager": 0.801}, 1)
    assert cheap_a.widths == {"a": 1, "b": 4} and cheap_a.predicted["eager"] == pytest.approx(0.8)


def test_every_backend_must_meet_the_budget_and_an_unreachable_one_cuts_to_the_measured_floor():
    # On onnxruntime only a saves anything, so a goes to its narrowest, and b, cut while eager was
    # over the budget too, is given back whole.
    only_a = LatencyModel("onnxruntime", 1.0, {"a": A, "b": curve(4, {1: 1.0, 2: 1.0, 3: 1.0})})
    both = allocate(SCORES, {"eager": MODEL, "onnxruntime": only_a}, {"eager": 0.801, "onnxruntime": 0.801}, 1)
    assert both.reached and both.widths == {"a": 1, "b": 4}
    assert both.predicted == pytest.approx({"eager": 0.8, "onnxruntime": 0.8})
    # Each backend is held to its own budget: onnxruntime's loose one asks nothing of a, and eager's
    # alone gives the single-backend allocation.
    own = allocate(SCORES, {"eager": MODEL, "onnxruntime": only_a}, {"eager": 0.801, "onnxruntime": 1.0}, 1)
    assert own.reached and own.widths == {"a": 3, "b": 2}
    assert own.predicted == pytest.approx({"eager": 0.9 * 0.88, "onnxruntime": 0.9})
    unreachable = allocate(SCORES, {"eager": MODEL}, {"eager": 0.2}, 1)
    assert not unreachable.reached and unreachable.widths == {"a": 1, "b": 1}
    assert unreachable.predicted["eager"] == pytest.approx(0.8 * 0.85)


def scripted(*ratios):
    """A measurement that returns eager's ratios in turn, and the widths it was asked about."""
    asked = []

    def measure(widths):
        asked.append(dict(widths))
        ratio = ratios[len(asked) - 1]
        return {"eager": Ratio(ratio, ratio * 0.98, ratio * 1.02, 10)}
    return measure, asked


def test_an_allocation_measured_over_its_budget_is_allocated_again_aimed_lower_by_its_miss():
    # Allocated to 0.801 it predicts 0.792 ({a: 3, b: 2}); measured 0.89, the aim drops by 0.801 /
    # 0.89 to 0.721, where the model cuts further ({a: 1, b: 2}: 0.8 x 0.88 = 0.704), measured 0.79.
    measure, asked = scripted(0.89, 0.79)
    lines = []
    allocation, checks = checked_allocation(SCORES, {"eager": MODEL}, {"eager": 0.801}, 1, measure, lines.append)
    assert asked == [{"a": 3, "b": 2}, allocation.widths] and allocation.widths == {"a": 1, "b": 2}
    assert [check["aim"]["eager"] for check in checks] == pytest.approx([0.801, 0.801 * 0.801 / 0.89])
    assert [check["measured"]["eager"]["ratio"] for check in checks] == [0.89, 0.79]
    assert "measured over the budget on eager" in lines[1] and len(lines) == 3
    # Within the budget at once: kept, one measurement.
    measure, asked = scripted(0.75)
    allocation, checks = checked_allocation(SCORES, {"eager": MODEL}, {"eager": 0.801}, 1, measure, lines.append)
    assert allocation.widths == {"a": 3, "b": 2} and len(asked) == len(checks) == 1


def test_the_checks_stop_at_their_limit_and_where_the_model_cannot_go_lower():
    measure, asked = scripted(*[0.99] * (MAX_ALLOCATIONS + 2))
    allocation, checks = checked_allocation(SCORES, {"eager": MODEL}, {"eager": 0.801}, 1, measure, lambda _: None)
    # Aimed at 0.801, then 0.648: the model's floor is 0.8 x 0.85 = 0.68, out of reach: no third try.
    assert len(asked) == len(checks) == 2 and not allocation.reached and allocation.widths == {"a": 1, "b": 1}
    wide = LatencyModel("eager", 1.0, {"c": curve(64, {w: w / 64 for w in range(1, 64)})})
    measure, asked = scripted(*[0.99] * (MAX_ALLOCATIONS + 2))
    allocation, checks = checked_allocation({"c": [1.0] * 64}, {"eager": wide}, {"eager": 0.9}, 1, measure,
                                            lambda _: None)
    assert len(checks) == MAX_ALLOCATIONS and allocation.reached  # still over: the warning's case
    assert [check["aim"]["eager"] for check in checks] == pytest.approx([0.9, 0.9 * 0.9 / 0.99, 0.9 ** 3 / 0.99 ** 2])


def sweep_on(host):
    settings = Settings(min_time_s=0, max_time_s=0, min_iterations=1, warmup_s=0, target_ci=0, timeout_s=60)
    config = SweepConfig(settings=settings, target=builtin_definitions()["x86-cpu"], mode="default", device="cpu")
    return Sweep(config, "run", {"host": host, "packages": {"onnxruntime": "1.0"}})


def key_of(host="a", backend="eager", fingerprint="sha256:m", shape="3x16x16", round_to=8, kind="groups"):
    return latency_cache.latency_key(sweep_on(host), backend, fingerprint, None, shape, round_to, "coupled", kind)


def test_the_cache_keys_on_target_machine_backend_model_shape_alignment_and_kind(tmp_path):
    key = key_of()
    assert latency_cache.load(key, tmp_path) is None  # miss
    path = latency_cache.store(key, {"model": MODEL.as_dict()}, tmp_path)
    assert latency_cache.load(key, tmp_path)["model"] == MODEL.as_dict()  # hit
    others = [key_of(host="b"), key_of(backend="onnxruntime"), key_of(fingerprint="sha256:n"),
              key_of(shape="3x32x32"), key_of(round_to=16), key_of(kind="layers")]
    assert all(latency_cache.load(other, tmp_path) is None for other in others)
    assert len({latency_cache.cache_path(k, tmp_path) for k in [key] + others}) == 7
    path.write_text("{not json")
    assert latency_cache.load(key, tmp_path) is None  # a damaged entry is a miss, measured again


# Per --latency-model (none: the default), what the tiny model's two groups of 32 channels (cut to
# 8, 16, 24) take to learn: a probe of the whole model per group and width; or a table of the
# first convolution's 4 output widths, the second's 4 x 4 and the classifier's 4 input widths, and
# the whole model cut uniformly to each of the 3 widths.
KINDS = [(["--latency-model", "groups"], "groups", {"groups": 2, "probes": 6}, 6),
         ([], "layers", {"groups": 2, "layers": 3, "cells": 4 + 16 + 4}, 4 + 16 + 4 + 3)]


@pytest.mark.parametrize("option, kind, size, probes", KINDS, ids=["groups", "layers"])
def test_an_allocated_cut_is_predicted_and_measured_and_its_model_cached(cli, tmp_path, monkeypatch, option, kind,
                                                                         size, probes):
    # The workers unpickle worker_models modules (and import this checkout's edgebench, if set).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(SUPPORT), os.environ.get("PYTHONPATH")])))
    args = ["prune", "--model", "worker_models:tiny?channels=32", "--task", "digits?size=16", "--train-steps", "5",
            "--strategy", "allocate", "--budget", "0.8", "--round-to", "8", "--finetune-steps", "2",
            "--final-finetune-steps", "2", "--max-accuracy-drop", "1", "--rounds", "2", "--block-time", "0.03",
            "--confirm-rounds", "4", "--confirm-block-time", "0.01", "--threads", "1", "--store", "results.db",
            "--out", str(tmp_path / "o"), "--json", *option]
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["strategy"], report["allocate"], report["criterion"]) == ("allocate", "latency-model", "l1")
    model = report["latency_model"]
    learned = model["backends"]["eager"]
    assert model["kind"] == learned["kind"] == kind and learned["cache"] == "measured"
    assert {field: learned[field] for field in size} == size
    assert len(learned["held_out"]) == 2 and all(item["measured"] > 0 for item in learned["held_out"])
    [step] = report["steps"]
    assert step["verdict"] == "kept" and report["final"]["macs"] < report["baseline"]["macs"]
    assert sum(model["widths"].values()) < 64 and model["predicted"]["eager"] > 0
    # Predicted and measured side by side, with the error of the prediction.
    assert model["measured_after_cut"]["eager"]["ratio"] == step["ratio_to_baseline"]["eager"]["ratio"]
    assert model["error_final"]["eager"] == pytest.approx(
        report["final"]["latency_ratio"]["eager"]["ratio"] / model["predicted"]["eager"] - 1)
    with Store.open(tmp_path / "results.db", create=False) as store:
        stages = [(r.env["prune"].get("stage"), r.env["prune"]["role"], r.env["pairing"]["rounds"])
                  for r in store.records()]
    # The probes and the held-out configurations at --rounds; each check of the allocation before
    # the cut at the confirmation's pairing.
    checks = model["checks"]
    assert 1 <= len(checks) <= 3 and checks[-1]["predicted"] == model["predicted"]
    assert all(check["measured"]["eager"]["ratio"] > 0 for check in checks)
    assert stages.count(("latency model", "latency probe", 2)) == probes + 2
    assert stages.count(("latency model", "latency probe", 4)) == len(checks)
    assert learned["path"].startswith(str(latency_cache.cache_path({}).parent))
    assert latency_cache.load(json.loads(Path(learned["path"]).read_text())["key"])["model"]["backend"] == "eager"


def test_a_cached_model_is_used_without_measuring_anything(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    sweep = sweep_on("a")
    keys = {backend: latency_cache.latency_key(sweep, backend, "sha256:m", None, "3x16x16", 1, "coupled", "groups")
            for backend in ("eager", "onnxruntime")}
    held_out = [{"widths": {"a": 2}, "predicted": 0.85, "measured": 0.9, "ci95": [0.88, 0.92]}]
    latency_cache.store(keys["eager"], {"model": MODEL.as_dict(), "held_out": held_out, "seconds": 12.0})

    def build(widths):
        raise AssertionError("a cached model needs no probe")

    probe = LatencyProbe(sweep, ["eager"], Pairing(), 1, keep_records=build, log=lambda line: None)
    [(backend, learned)] = probe.learn(None, {"a": 4, "b": 4}, build, keys).items()
    assert backend == "eager" and learned.cached and learned.model == MODEL
    report = learned.report()
    assert report["cache"] == "hit" and report["groups"] == 2 and report["probes"] == 6
    assert report["held_out_mean_abs_error"] == pytest.approx(0.9 / 0.85 - 1)
    # A backend without an entry would be measured: nothing is cached for onnxruntime.
    assert latency_cache.load(keys["onnxruntime"]) is None


@pytest.mark.parametrize("args, message", [
    (["--strategy", "allocate", "--allocate", "magic"], "--allocate must be one of latency-model, sensitivity, not 'magic'"),
    (["--allocate", "latency-model"], "--allocate applies to --strategy allocate only"),
    (["--strategy", "allocate", "--objective", "flops"], "--objective flops does not apply to --strategy allocate"),
    (["--strategy", "allocate", "--ratio", "0.3"], "--ratio applies to --strategy static only"),
    (["--strategy", "allocate", "--latency-model", "magic"], "--latency-model must be one of layers, groups, not 'magic'"),
    (["--strategy", "static", "--latency-model", "groups"],
     "--latency-model applies to --strategy allocate --allocate latency-model only"),
    (["--backend-budget", "eager=0.5"], "--backend-budget applies to --strategy allocate --allocate latency-model"),
    (["--strategy", "allocate", "--backend-budget", "onnxruntime=0.5"],
     "--backend-budget: 'onnxruntime' is not a backend of this run (eager)"),
    (["--strategy", "allocate", "--backend-budget", "eager=fast"], "--backend-budget eager takes a number, not 'fast'"),
    (["--strategy", "allocate", "--backend-budget", "eager=2"], "--backend-budget eager must be in [0.01, 1], not 2"),
    (["--strategy", "allocate", "--backend-budget", "eager"], "--backend-budget takes KEY=VALUE, not 'eager'"),
])
def test_bad_allocate_options_are_one_line_and_exit_2(cli, tmp_path, args, message):
    proc = cli("prune", "--model", "worker_models:tiny", "--out", str(tmp_path / "o"), *args)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"edgebench: error: {message}")
