import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture
def store_path(tmp_path) -> Path:
    """A copy of the v1 fixture (one run, an ok record with samples and an error record), so the
    kept file is never upgraded in place."""
    path = tmp_path / "store.db"
    shutil.copy(DATA / "store-v1.db", path)
    return path
