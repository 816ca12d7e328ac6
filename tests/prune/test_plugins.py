"""Third-party importance criteria and tasks, installed with entry points, are found by name."""

import sys

import pytest
import torch
import torch_pruning as tp
from torch import nn

from edgebench.errors import UsageError
from edgebench.prune.importance import CRITERIA, channel_scores, check_criterion
from edgebench.prune.tasks import TASKS, load_task
from installed_plugin import install_plugin

PLUGIN = """
    import torch
    import torch_pruning as tp

    from edgebench.prune.importance import Importance


    class KeepFirst(Importance):
        '''Scores fall with the channel index: the last channels go first.'''

        def __call__(self, group):
            return torch.arange(len(group[0].idxs), 0, -1, dtype=torch.float32)


    def l2():
        return tp.importance.GroupMagnitudeImportance(p=2)  # Torch-Pruning's own, unchanged


    class Ones:
        def __init__(self, width=3):
            self.name = "ones?width=%d" % width
            self.example_input = torch.ones(1, width, 8, 8)

        def evaluate(self, model):
            return 1.0

        def finetune(self, model, budget):
            pass
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    install_plugin(tmp_path, "edgebench_demo_plugin", PLUGIN, {
        "edgebench.importance": {"keep_first": "edgebench_demo_plugin:KeepFirst",
                                 "l2": "edgebench_demo_plugin:l2",
                                 "broken": "edgebench_demo_plugin:Missing"},
        "edgebench.tasks": {"ones": "edgebench_demo_plugin:Ones"},
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("edgebench_demo_plugin", None)


def conv_groups():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3)).eval()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, 3, 8, 8))
    groups = graph.get_all_groups(ignored_layers=[model[2]], root_module_types=[nn.Conv2d])
    return model, {f"g{number}": group for number, group in enumerate(groups)}


def test_an_installed_criterion_is_found_by_name(plugin):
    assert list(CRITERIA)[:4] == ["l1", "hrank", "taylor", "utilisation"]
    assert {"keep_first", "l2"} <= set(CRITERIA) and "keep_first" in CRITERIA
    model, groups = conv_groups()
    (score,) = channel_scores("keep_first", model, groups, load_task("ones")).values()
    assert torch.equal(score, torch.arange(8, 0, -1, dtype=torch.float32))


def test_a_torch_pruning_importance_serves_as_a_criterion(plugin):
    model, groups = conv_groups()
    (group,) = groups.values()
    (score,) = channel_scores("l2", model, groups, load_task("ones")).values()
    assert torch.allclose(score, tp.importance.GroupMagnitudeImportance(p=2)(group))
    check_criterion("l2", load_task("ones"))  # needs no batches, so a task without them will do


def test_unknown_and_unloadable_criteria_are_one_line_errors(plugin):
    with pytest.raises(UsageError, match="^unknown importance criterion 'l3'; choose one of l1, hrank, "
                                         "taylor, utilisation, broken, keep_first, l2$"):
        check_criterion("l3", load_task("ones"))
    with pytest.raises(UsageError, match="^importance criterion broken cannot be loaded: AttributeError: "):
        check_criterion("broken", load_task("ones"))


def test_an_installed_task_is_found_by_name(plugin):
    assert TASKS.names() == ["digits", "digit-detection", "digit-segmentation", "ones"]
    task = load_task("ones?width=5")
    assert task.name == "ones?width=5" and task.example_input.shape == (1, 5, 8, 8)
    with pytest.raises(UsageError, match="^unknown task 'one'; did you mean ones\\? known tasks: digits, digit-detection, digit-segmentation, ones; "):
        load_task("one")
    with pytest.raises(UsageError, match="^task ones\\?colour=red failed: TypeError"):
        load_task("ones?colour=red")


def test_without_the_plugin_its_names_are_unknown():
    assert "keep_first" not in CRITERIA
    with pytest.raises(UsageError, match="^unknown task 'ones'"):
        load_task("ones")
