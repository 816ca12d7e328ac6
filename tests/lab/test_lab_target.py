"""A target file that names a labgrid place or tags instead of a host: exactly one of [remote]
host and [lab] says where the board is, in one line otherwise."""

from pathlib import Path

import pytest

from edgebench.errors import UsageError
from edgebench.targets.definition import load_definition

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "lab-xavier.toml"

HEAD = 'name = "lab-cpu"\nkind = "cpu"\ndevices = ["cpu"]\ndefault_device = "cpu"\nbackends = ["eager"]\n'


def load(tmp_path, text):
    path = tmp_path / "t.toml"
    path.write_text(HEAD + text)
    return load_definition(path)


def test_a_lab_target_needs_no_remote_table_and_keeps_its_settings(tmp_path):
    definition = load(tmp_path, '[lab]\ntags = { board = "xavier" }\n')
    assert definition.lab.tags == {"board": "xavier"} and definition.lab.wanted == "a place with board=xavier"
    assert definition.remote is not None and definition.remote.host is None  # measured over SSH, defaults
    definition = load(tmp_path, '[lab]\nplace = "xavier-1"\ncoordinator = "lab:20408"\n'
                                '[remote]\npython = "/opt/py/bin/python3"\nsudo = true\n')
    assert (definition.lab.place, definition.lab.coordinator, definition.lab.wanted) == (
        "xavier-1", "lab:20408", "place xavier-1")
    assert (definition.remote.python, definition.remote.sudo) == ("/opt/py/bin/python3", True)


def test_the_documented_example_loads():
    definition = load_definition(EXAMPLE)
    assert (definition.lab.coordinator, definition.lab.tags) == ("labgrid.lab:20408", {"board": "xavier"})
    assert definition.remote.host is None and definition.remote.sudo


@pytest.mark.parametrize("text, problem", [
    ('[lab]\nplace = "xavier-1"\n[remote]\nhost = "xavier"\nport = 22\n',
     "field (file): Value error, [remote] host, port and [lab] both say where the board is: with [lab] the place's "
     "NetworkService gives the address, port and user, so leave them out"),
    ('[remote]\npython = "python3"\n',
     'field (file): Value error, [remote] needs host = "BOARD", or a [lab] table naming a labgrid place or tags'),
    ("[lab]\nreserve_timeout_s = 60\n",
     'field lab: Value error, [lab] needs place = "NAME" or tags = { KEY = "VALUE" }'),
    ('[lab]\ntags = { Board = "xavier" }\n', "field lab.tags.Board.[key]: String should match pattern"),
])
def test_where_the_board_is_said_once(tmp_path, text, problem):
    with pytest.raises(UsageError) as raised:
        load(tmp_path, text)
    assert f"invalid target file {tmp_path / 't.toml'}: {problem}" in str(raised.value)
