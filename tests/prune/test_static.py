"""`edgebench prune --strategy static`: the threshold cut, and the whole command on a user's
callable detector measured in real eager worker processes."""

from __future__ import annotations

import json

import pytest
import torch

from edgebench.board.detector_parts import select_part
from edgebench.prune.outputs import load_pruned
from edgebench.prune.static import ratio_cut, threshold_cut
from edgebench.results.store import Store
from tiny_detection import DEAD


def test_the_cut_removes_channels_under_the_threshold_keeping_one_and_the_alignment():
    scores = {"a": torch.tensor([0.0, 0.01, 0.5, 1.0, 0.02, 0.9, 0.8, 0.7]), "b": torch.tensor([0.0, 0.01, 0.04]),
              "c": torch.tensor([0.3, 0.2])}
    assert threshold_cut(scores, 0.05, 1) == {"a": [0, 1, 4], "b": [0, 1]}  # b keeps its best channel
    # Five channels stay in a, rounded up to 8: nothing goes; b keeps its alignment of 2 (at most its width).
    assert threshold_cut(scores, 0.05, 4) == {}
    assert threshold_cut(scores, 0.05, 2) == {"a": [0, 1], "b": [0]}
    assert threshold_cut(scores, 0.25, 1) == {"a": [0, 1, 4], "b": [0, 1], "c": [1]}


def test_the_ratio_cut_takes_the_same_share_of_every_group_lowest_first():
    scores = {"a": torch.tensor([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.6, 0.4, 1.0]), "b": torch.tensor([0.2, 0.1])}
    assert ratio_cut(scores, 0.3, 1) == {"a": [1, 3, 5]}  # b: 0.3 of 2 rounds down to none
    assert ratio_cut(scores, 0.5, 1) == {"a": [1, 2, 3, 5, 8], "b": [1]}
    assert ratio_cut(scores, 0.3, 4) == {"a": [1, 5]}  # 7 kept, rounded up to 8
    assert ratio_cut(scores, 0.99, 1) == {"a": list(range(9)), "b": [1]}  # one channel always stays


@pytest.mark.parametrize("args, message", [
    (["--strategy", "static", "--threshold", "0"], "--threshold must be in (0, 1], not 0"),
    (["--strategy", "static", "--threshold", "1.5"], "--threshold must be in (0, 1], not 1.5"),
    (["--threshold", "0.1"], "--threshold applies to --strategy static only"),
    (["--strategy", "greedier"], "--strategy must be one of greedy, static, allocate, not 'greedier'"),
    (["--strategy", "static", "--staircase"], "--staircase applies to --strategy greedy"),
    (["--strategy", "static", "--ratio", "1"], "--ratio must be in (0, 1), not 1"),
    (["--strategy", "static", "--ratio", "0.2", "--threshold", "0.1"], "--ratio and --threshold are two rules"),
    (["--ratio", "0.2"], "--ratio applies to --strategy static only"),
])
def test_bad_static_options_are_one_line_and_exit_2(cli, tmp_path, args, message):
    proc = cli("prune", "--model", "tiny_detection:tiny_ssdlite", "--task", "tiny_detection:detection_task",
               "--out", str(tmp_path / "o"), *args)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"edgebench: error: {message}")
    assert not (tmp_path / "o").exists()


def test_a_static_cut_of_a_users_detector_is_measured_as_its_network_and_written_like_the_loops(cli, tmp_path):
    out = tmp_path / "static"
    proc = cli("prune", "--model", "tiny_detection:tiny_ssdlite", "--task", "tiny_detection:detection_task",
               "--strategy", "static", "--round-to", "1", "--score-inputs", "16", "--finetune-steps", "1",
               "--final-finetune-steps", "1", "--rounds", "2", "--block-time", "0.02", "--threads", "1",
               "--store", "results.db", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    logged = " ".join(proc.stderr.split())  # the console wraps long lines
    assert "kept: head (head.classification_head.module_list.0.1, " in logged and "family rule ssdlite)" in logged
    assert f"static cut: {DEAD} of 16 channels in 1 group(s), scored under 0.05 (utilisation); mAP" in logged
    report = json.loads(proc.stdout)
    [kept] = report["kept_layers"]
    assert kept["why"] == "family rule ssdlite" and len(kept["layers"]) == 4
    assert report == json.loads((out / "report.json").read_text())
    assert (report["strategy"], report["threshold"], report["criterion"]) == ("static", 0.05, "utilisation")
    assert (report["metric"], report["measured_part"]) == ("mAP", "network")
    assert report["model"] == "tiny_detection:tiny_ssdlite" and report["kept_steps"] == 1
    [step] = report["steps"]
    assert step["channels"] == [16, 16 - DEAD] and step["group"] == f"backbone.0 16->{16 - DEAD}"
    assert step["verdict"] == "kept" and step["ratio_to_baseline"]["eager"]["ratio"] > 0
    assert step["metric_after_cut"] == 0.5  # the tiny task's fixed score, read before fine-tuning
    assert report["final"]["macs"] < report["baseline"]["macs"]
    assert report["onnx_check"]["ok"], report["onnx_check"]
    # The whole detector comes back; model.pt2 is its network.
    pruned = load_pruned(out)
    assert pruned.backbone["0"].out_channels == 16 - DEAD
    program = torch.export.load(str(out / "model.pt2")).module()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for want, got in zip(select_part(pruned, "network", "pruned")(x), program(x)):
            assert torch.allclose(want, got, atol=1e-5)
    with Store.open(tmp_path / "results.db", create=False) as store:
        records = [record.to_json_dict(with_samples=False) for record in store.records()]
    assert {record["env"]["prune"]["role"] for record in records} == {"current", "baseline", "candidate", "final"}
    assert all(record["model"].endswith("#network") for record in records)
    # The final pair carries the figures of the per-network table (edgebench compare --pruned).
    final_pair = {r["env"]["prune"]["role"]: r["env"]["prune"] for r in records if r["env"]["prune"].get("stage")}
    assert set(final_pair) == {"baseline", "final"}
    assert final_pair["final"]["model"] == report["final"]["model_stats"]
    assert final_pair["final"]["model"]["macs"] == report["final"]["macs"] < final_pair["baseline"]["model"]["macs"]
    assert final_pair["final"]["model"]["state_dict_bytes"] < final_pair["baseline"]["model"]["state_dict_bytes"]
    assert "onnx_bytes" not in final_pair["final"]["model"]  # eager only: no export was measured
    assert final_pair["baseline"]["metric"] == "mAP" and final_pair["baseline"]["metrics"]["mAP"] == 0.5


def test_the_greedy_loop_prunes_a_users_detector_with_taylor_on_its_loss(cli, tmp_path):
    out = tmp_path / "greedy"
    proc = cli("prune", "--model", "tiny_detection:tiny_ssdlite", "--task", "tiny_detection:detection_task",
               "--criterion", "taylor", "--score-inputs", "4", "--objective", "flops", "--budget", "0.99",
               "--max-iterations", "1", "--round-to", "4", "--finetune-steps", "1", "--final-finetune-steps", "0",
               "--rounds", "2", "--block-time", "0.02", "--threads", "1", "--store", "results.db",
               "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["strategy"], report["measured_part"], report["metric"]) == ("greedy", "network", "mAP")
    # One candidate per group: the first block's, and the second's, which a head depthwise conv roots.
    assert {step["group"] for step in report["steps"]} == {"backbone.0", "backbone.3"}
    assert report["kept_steps"] == 1
    kept = next(step for step in report["steps"] if step["verdict"] == "kept")
    assert kept["macs"] < report["baseline"]["macs"] and report["onnx_check"]["ok"], report["onnx_check"]
    pruned = load_pruned(out)
    assert pruned.backbone["0"].out_channels + pruned.backbone["3"].out_channels < 48
    with torch.no_grad():
        [detections] = pruned(torch.rand(1, 3, 64, 64))
    assert set(detections) == {"boxes", "scores", "labels"}
