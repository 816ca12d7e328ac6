"""The artifact store: the files each record measured (the model file, its ONNX export, a TensorRT
engine), kept by content beside the results store, so any past key can be measured again.

Where: beside a SQLite store file, ``<store>.artifacts/`` (``results/edgebench.db.artifacts/``);
for a PostgreSQL store ``$EDGEBENCH_ARTIFACTS``, else ``results/artifacts`` in the working
directory; for ``:memory:`` only where ``$EDGEBENCH_ARTIFACTS`` names a directory (an in-memory
store keeps nothing). ``$EDGEBENCH_ARTIFACTS`` wins over the default in every case.

An object is named by the sha256 of its bytes (``objects/ab/abcdef...``), as the model fingerprint
hashes a file: a model measured every night is kept once. Objects appear atomically (a temporary
name, then a rename), so a killed run leaves no half-written object under a real name. Each record
lists its files (``Record.artifacts``: role, name, digest, size); ``gc`` removes the objects no
record within the retention policy lists.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional

from edgebench.errors import UsageError
from edgebench.models.artifacts import atomic_target
from edgebench.models.fingerprint import file_sha256
from edgebench.results.location import store_location
from edgebench.results.record import Artifact, Record

ARTIFACTS_ENV = "EDGEBENCH_ARTIFACTS"
SERVER_DEFAULT = Path("results") / "artifacts"  # for a PostgreSQL store: this machine's copy
_DIGEST_PREFIX = "sha256:"
# An object written or reused this recently is spared by gc even when no record lists it yet: a
# run stores its record just after keeping the record's files.
GRACE_S = 3600.0


def artifacts_dir(store: str | Path) -> Optional[Path]:
    """Where the artifacts of ``store`` (a ``--store`` location) are kept; None for an in-memory
    store without ``$EDGEBENCH_ARTIFACTS``."""
    if os.environ.get(ARTIFACTS_ENV):
        return Path(os.environ[ARTIFACTS_ENV])
    where = store_location(store)
    if where.file is not None:
        return where.file.with_name(where.file.name + ".artifacts")
    return SERVER_DEFAULT if where.is_server else None


class ArtifactStore:
    """Content-addressed files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def beside(cls, store: str | Path) -> Optional[ArtifactStore]:
        """The artifact store of ``store``, or None where it keeps none (``artifacts_dir``)."""
        root = artifacts_dir(store)
        return None if root is None else cls(root)

    def object_path(self, digest: str) -> Path:
        if not digest.startswith(_DIGEST_PREFIX):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        hexdigest = digest[len(_DIGEST_PREFIX):]
        return self.root / "objects" / hexdigest[:2] / hexdigest

    def keep(self, role: str, path: Path, name: Optional[str] = None) -> Artifact:
        """Keep the file at ``path`` (once per content) and say what was kept; ``name``: how the
        record names it, when not by its file name (external data by its path from the model)."""
        stat = path.stat()
        digest = _DIGEST_PREFIX + _content_digest(str(path), stat.st_size, stat.st_mtime_ns)
        target = self.object_path(digest)
        try:
            os.utime(target)  # kept already, and reused now: gc's grace period starts again
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_target(target) as temp_path:
                shutil.copyfile(path, temp_path)
        return Artifact(role=role, name=name or path.name, digest=digest, size=target.stat().st_size)

    def keep_all(self, files: Iterable[tuple[str, Path, str]]) -> list[Artifact]:
        """``keep`` each (role, path, name)."""
        return [self.keep(role, path, name) for role, path, name in files]

    def objects(self) -> list[tuple[str, Path]]:
        """Every kept object as (digest, path)."""
        return [(_DIGEST_PREFIX + path.name, path) for path in sorted((self.root / "objects").glob("*/*"))
                if not path.name.startswith(".")]

    def restore(self, record: Record, role: str, out_dir: Path) -> list[Path]:
        """Write the record's files of ``role`` into ``out_dir`` under the names they were measured
        by (an ONNX model beside its external data), checking each against its digest; the paths.
        UsageError when the record kept no such file or gc has removed it."""
        chosen = [artifact for artifact in record.artifacts if artifact.role == role]
        if not chosen:
            kept = ", ".join(sorted({artifact.role for artifact in record.artifacts})) or "none"
            raise UsageError(f"the record of {record.model} (run {record.run_id}) kept no {role} file "
                             f"(roles kept: {kept})")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for artifact in chosen:
            source = self.object_path(artifact.digest)
            if not source.is_file():
                raise UsageError(f"{artifact.name} ({artifact.digest}) of run {record.run_id} is no longer in "
                                 f"{self.root}: `edgebench results gc` removed it, or it was kept elsewhere")
            target = out_dir / artifact.name
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_target(target) as temp_path:
                shutil.copyfile(source, temp_path)
                if _DIGEST_PREFIX + file_sha256(temp_path) != artifact.digest:
                    raise UsageError(f"{source} does not hold {artifact.digest} any more: the object is damaged")
            written.append(target)
        return written


@dataclass(frozen=True)
class Retention:
    """Which records keep their files: those younger than ``keep_days`` or among the ``keep_last``
    newest of their key (``HISTORY_FIELDS``: a model by its name, as regress follows it); every
    record when neither is set."""

    keep_days: Optional[float] = None
    keep_last: Optional[int] = None

    def retained(self, records: Sequence[Record], now: datetime) -> list[Record]:
        if self.keep_days is None and self.keep_last is None:
            return list(records)
        kept: dict[int, Record] = {}
        if self.keep_days is not None:
            cutoff = now - timedelta(days=self.keep_days)
            kept.update((id(r), r) for r in records if datetime.fromisoformat(r.created_at) >= cutoff)
        if self.keep_last is not None:
            by_key: dict[tuple, list[Record]] = {}
            for record in records:
                by_key.setdefault(record.history_key, []).append(record)
            for history in by_key.values():
                newest = sorted(history, key=lambda r: (r.created_at, r.run_id), reverse=True)[:self.keep_last]
                kept.update((id(r), r) for r in newest)
        return list(kept.values())


@dataclass
class Collection:
    """What ``gc`` removed (or, dry, would remove) and kept."""

    dry_run: bool
    removed: list[tuple[str, int]] = field(default_factory=list)  # (digest, bytes)
    kept_objects: int = 0
    kept_bytes: int = 0
    records_outside: int = 0  # records whose files the policy let go
    leftovers: int = 0  # temporary files of writes that never finished

    def line(self, root: Path) -> str:
        freed = sum(size for _, size in self.removed)
        verb = "would remove" if self.dry_run else "removed"
        text = (f"{verb} {len(self.removed)} object(s), {_megabytes(freed)}, from {root} "
                f"({self.records_outside} record(s) outside the policy); kept {self.kept_objects} object(s), "
                f"{_megabytes(self.kept_bytes)}")
        if self.leftovers:
            text += f"; {verb} {self.leftovers} unfinished temporary file(s)"
        return text


def collect(artifacts: ArtifactStore, records: Sequence[Record], retention: Retention, *, dry_run: bool = False,
            now: Optional[datetime] = None) -> Collection:
    """Remove the objects no record in ``retention`` lists (``records``: every record of the store;
    those outside the policy stay in the store, only their files go). Objects written or reused in
    the last ``GRACE_S`` seconds stay: a running measurement lists them once its record is stored."""
    now = now or datetime.now(timezone.utc)
    retained = retention.retained(records, now)
    wanted = {artifact.digest for record in retained for artifact in record.artifacts}
    retained_ids = {id(record) for record in retained}
    result = Collection(dry_run, records_outside=sum(1 for r in records if r.artifacts and id(r) not in retained_ids))
    recent = time.time() - GRACE_S
    for digest, path in artifacts.objects():
        stat = path.stat()
        if digest in wanted or stat.st_mtime > recent:
            result.kept_objects += 1
            result.kept_bytes += stat.st_size
            continue
        result.removed.append((digest, stat.st_size))
        if not dry_run:
            path.unlink()
    for leftover in (artifacts.root / "objects").glob("*/.*"):
        if leftover.stat().st_mtime <= recent:
            result.leftovers += 1
            if not dry_run:
                leftover.unlink(missing_ok=True)
    return result


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


@functools.lru_cache(maxsize=256)
def _content_digest(path: str, size: int, mtime_ns: int) -> str:
    """A file's sha256, hashed once per content version in this process: a sweep keeps the same
    model file and export for every backend, batch and repeat it measures (size and modification
    time are part of the key, so a rewritten file is hashed again)."""
    return file_sha256(Path(path))
