"""``edgebench tasks``: every built-in task with its kind, metric and options; bad task options
are one line and exit 2 through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

import edgebench.cli.main  # noqa: F401  (registers every sub-command on app, as the entry point does)
from edgebench.cli.app import app
from edgebench.prune.detection_task import DEFAULTS as DETECTION_DEFAULTS
from edgebench.prune.digits import DEFAULTS as DIGITS_DEFAULTS
from edgebench.prune.segmentation_task import DEFAULTS as SEGMENTATION_DEFAULTS

runner = CliRunner(env={"COLUMNS": "250"})
BUILTINS = {
    "digits": ("classification", "accuracy", DIGITS_DEFAULTS),
    "digit-detection": ("detection", "mAP", DETECTION_DEFAULTS),
    "digit-segmentation": ("segmentation", "mIoU", SEGMENTATION_DEFAULTS),
}


def test_json_lists_every_builtin_with_kind_metric_and_defaults():
    result = runner.invoke(app, ["tasks", "--json"])
    assert result.exit_code == 0, result.output
    listed = {entry["name"]: entry for entry in json.loads(result.output)}
    for name, (kind, metric, defaults) in BUILTINS.items():
        entry = listed[name]
        assert (entry["kind"], entry["metric"], entry["options"]) == (kind, metric, defaults)
        assert entry["description"]
    assert listed["digit-detection"]["options"]["size"] == 300
    assert listed["digit-segmentation"]["options"]["eval_scenes"] == 100


def test_text_shows_each_task_its_kind_metric_and_options():
    result = runner.invoke(app, ["tasks"])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 2}
    for name, (kind, metric, _) in BUILTINS.items():
        assert kind in rows[name] and f" {metric} " in rows[name], rows.get(name)
    assert "size=300" in rows["digit-detection"] and "size=96" in rows["digit-segmentation"]
    assert "use --task NAME[?key=value&...]" in result.output


def test_a_bad_task_option_is_one_line_and_exit_2_through_the_cli(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "edgebench", "prune", "--model", "torchvision:resnet18?num_classes=10",
         "--task", "digit-detection?size=x", "--out", str(tmp_path / "out")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == ("edgebench: error: task digit-detection?size=x: digit-detection size must be an "
                             "integer >= 32, got 'x'\n")
