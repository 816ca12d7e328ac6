"""What the board needs, uploaded once: the worker's code and the model artifacts.

Both land in a content-addressed cache under the target's ``workdir``: a file whose hash is
already there is never sent again. Uploads go to a temporary name and are renamed into place,
so a dropped connection never leaves a half file that later reads as cached.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import edgebench
from edgebench.remote.ssh import SshConnection, home_relative

PACKAGE = Path(edgebench.__file__).parent
# The board-side packages (Python 3.8, numpy and the backend only); see docs/architecture.md.
BOARD_SIDE = ("__init__.py", "board")


def board_side_files() -> list[Path]:
    files = []
    for entry in BOARD_SIDE:
        path = PACKAGE / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def code_hash(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def deploy_code(connection: SshConnection, workdir: str) -> str:
    """Upload the worker's code unless this version is there; the remote PYTHONPATH to use."""
    files = board_side_files()
    target = f"{workdir}/code/{code_hash(files)}"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path in files:
            tar.add(path, arcname=f"edgebench/{path.relative_to(PACKAGE)}")
    script = (f'D={home_relative(target)}; if [ -f "$D/.complete" ]; then cat >/dev/null; else '
              f'T="$D.part.$$"; mkdir -p "$T" && tar -xzf - -C "$T" && touch "$T/.complete" && '
              f'rm -rf "$D" && mv "$T" "$D"; fi')
    result = connection.run(script, input_bytes=archive.getvalue())
    if result.returncode != 0:
        raise RuntimeError(f"cannot install the worker on the board: {result.stderr.strip()}")
    return target


def upload_artifact(connection: SshConnection, workdir: str, path: Path) -> str:
    """The board's path of ``path``'s content, uploading it only when it is not there yet."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    remote = f"{workdir}/artifacts/{digest}{''.join(path.suffixes[-1:])}"
    quoted = home_relative(remote)
    present = connection.run(f"test -f {quoted}")
    if present.returncode != 0:
        script = f'mkdir -p "$(dirname {quoted})" && cat > {quoted}.part.$$ && mv {quoted}.part.$$ {quoted}'
        result = connection.run(script, input_bytes=path.read_bytes(), timeout_s=600)
        if result.returncode != 0:
            raise RuntimeError(f"cannot upload {path.name} to the board: {result.stderr.strip()}")
    return remote
