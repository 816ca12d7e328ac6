import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
SUPPORT = TESTS / "support"


@pytest.fixture
def support_recipe():
    """A build_module recipe for a factory in tests/support/worker_models.py."""

    def recipe(factory, **kwargs):
        return {"format": "callable", "target": f"worker_models:{factory}", "kwargs": kwargs,
                "sys_path": [str(SUPPORT)]}

    return recipe


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """ONNX exports go to a per-session cache, never the user's ~/.cache."""
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "edgebench-cache"))


sys.path.insert(0, str(SUPPORT))
