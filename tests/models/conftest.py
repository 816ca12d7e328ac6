import sys
from pathlib import Path

import pytest

MODELS_TESTS = Path(__file__).parent


@pytest.fixture
def keep_sys_path(monkeypatch):
    """Resolving a callable spec adds the cwd to sys.path; undo that after the test."""
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def in_tests_dir(monkeypatch, keep_sys_path):
    """Run from this folder, so ``spec_models:...`` imports the way a user's own module would."""
    monkeypatch.chdir(MODELS_TESTS)
    return MODELS_TESTS
