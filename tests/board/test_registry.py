"""The registry shared by runners, criteria and tasks: built-ins by name, entry points for others."""

import sys

import pytest

from edgebench.board import registry
from edgebench.board.runners import is_installed, runner_class, runner_names
from installed_plugin import install_plugin

RUNNER = """
    from edgebench.board.runners.base import Runner


    class EchoRunner(Runner):
        name = "echo"
        requires = "json"
"""


@pytest.fixture
def echo_runner(tmp_path, monkeypatch):
    install_plugin(tmp_path, "edgebench_demo_runner", RUNNER, {
        "edgebench.runners": {"echo": "edgebench_demo_runner:EchoRunner",
                                    "eager": "edgebench_demo_runner:EchoRunner"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("edgebench_demo_runner", None)


def test_an_installed_runner_is_found_by_name_and_built_ins_win(echo_runner):
    assert runner_names() == ["eager", "onnxruntime", "tensorrt", "echo"]
    assert runner_class("echo").__name__ == "EchoRunner" and is_installed("echo")
    assert runner_class("eager").__module__ == "edgebench.board.runners.eager"


def test_unknown_names_raise_key_error_and_name_the_known_ones():
    plugins = registry.Registry("widget", "edgebench.tests.no-such-group")
    plugins.add("lazy", "edgebench.board.stats:summarize")

    @plugins.register("eager")
    def eager():
        return "made"

    assert plugins.names() == ["lazy", "eager"] and list(registry.NameList(plugins)) == ["lazy", "eager"]
    assert plugins.load("eager") is eager and plugins.load("lazy").__name__ == "summarize"
    with pytest.raises(KeyError):
        plugins.load("other")
    assert plugins.unknown("other") == "unknown widget 'other'; choose one of lazy, eager"
