"""The CLI starts without the heavy libraries: every `edgebench` command (and every CLI subprocess
in these tests) paid 6 s for them when they were imported at load time. A command that needs one
imports it when it runs."""

import json
import subprocess
import sys

HEAVY = ("torch", "torchvision", "scipy.stats", "pandas", "matplotlib", "onnx", "onnxruntime", "pymoo")


def test_loading_every_command_imports_none_of_the_heavy_libraries():
    probe = ("import json, sys; import edgebench.cli.main; "
             f"print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                       check=True).stdout)
    assert loaded == []
