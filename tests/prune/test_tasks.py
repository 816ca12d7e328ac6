"""Loading tasks from specs: the built-in digits task and a user's callable."""

from __future__ import annotations

import itertools
import sys
import textwrap

import pytest

from edgebench.errors import UsageError
from edgebench.prune.tasks import check_task, load_task, require_batches

USER_TASKS = textwrap.dedent(
    """
    import torch

    class Task:
        def __init__(self, width=3, batches=True):
            self.name = "user?width=%d" % width
            self.example_input = torch.zeros(1, width, 4, 4)
            if batches:
                self.sample_batch = lambda size: (torch.zeros(size, width, 4, 4), torch.zeros(size))

        def evaluate(self, model):
            return 0.5

        def finetune(self, model, budget):
            pass

    class NoFinetune:
        name = "half"
        example_input = torch.zeros(1, 3, 4, 4)

        def evaluate(self, model):
            return 0.5

    class NoExample(Task):
        def __init__(self):
            super().__init__()
            self.example_input = [1, 2, 3]

    def broken():
        raise RuntimeError("no data here\\nsecond line")
    """
)
_module_numbers = itertools.count()


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A fresh module in the current directory, imported the way a user's package would be."""
    name = f"edgebench_user_tasks_{next(_module_numbers)}"
    (tmp_path / f"{name}.py").write_text(USER_TASKS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield name
    sys.modules.pop(name, None)


def test_digits_forms():
    assert load_task("digits").name == "digits?size=32"
    task = load_task("digits?size=16&seed=2")
    assert task.name == "digits?size=16&seed=2"
    assert task.example_input.shape == (1, 3, 16, 16)


def test_unknown_name_suggests_the_builtin():
    with pytest.raises(UsageError, match="unknown task 'digit'; did you mean digits\\?"):
        load_task("digit")
    with pytest.raises(UsageError, match="known tasks: digits, digit-detection, digit-segmentation; use NAME\\[\\?key=value&...\\] or "
                                         "package.module:callable"):
        load_task("cifar-10")


def test_bad_digits_arguments_name_the_spec():
    with pytest.raises(UsageError, match="^task digits\\?width=3: .*accepted: batch_size, lr, seed, size"):
        load_task("digits?width=3")
    with pytest.raises(UsageError, match="^task digits\\?size: "):
        load_task("digits?size")


def test_user_task_from_the_current_directory(user_module):
    task = load_task(f"{user_module}:Task?width=5")
    assert task.name == "user?width=5" and task.example_input.shape == (1, 5, 4, 4)
    require_batches(task, "hrank")


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ("NoFinetune", "has no finetune\\(model, budget\\)"),
        ("NoExample", "has no example_input \\(torch.Tensor\\)"),
    ],
)
def test_missing_parts_are_named(user_module, attribute, message):
    spec = f"{user_module}:{attribute}"
    with pytest.raises(UsageError, match=f"^task {spec} {message}"):
        load_task(spec)


def test_failures_are_one_line_naming_the_spec(user_module):
    cases = {
        f"{user_module}:broken": "failed: RuntimeError: no data here",
        f"{user_module}:Task?colour=red": "failed: TypeError",
        f"{user_module}:missing": "has no attribute 'missing'",
        "edgebench_no_such_module:make": "cannot import edgebench_no_such_module",
    }
    for spec, fragment in cases.items():
        with pytest.raises(UsageError) as error:
            load_task(spec)
        message = str(error.value)
        assert spec in message and fragment in message and "\n" not in message, message


def test_check_task_returns_a_complete_task(user_module):
    task = load_task(f"{user_module}:Task")
    assert check_task(task, "x") is task
    with pytest.raises(UsageError, match="^task x has no name \\(str\\)$"):
        check_task(object(), "x")


def test_require_batches_names_the_criterion(user_module):
    task = load_task(f"{user_module}:Task?batches=false")
    with pytest.raises(UsageError, match="^the taylor criterion needs task.sample_batch\\(size\\)"):
        require_batches(task, "taylor")
