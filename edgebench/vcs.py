"""The workstation's part of a run's fingerprint: the git commit it was measured from."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(directory: Path | None = None) -> str | None:
    """HEAD of the git work tree at ``directory`` (``-dirty`` when it has changes), else None."""
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")
