"""Learned latency models kept on disk, one JSON file per key, under
``cache_dir/latency-models/`` (``$EDGEBENCH_CACHE_DIR``, else ``~/.cache/edgebench``).

The key is everything a latency depends on but the weights: the target and the machine measured
(``machine_id``), its power mode, device and threads, the backend with its options and the library
versions, the model (content fingerprint, measured part, input shape) and how it is cut
(``--round-to``, ``--residual``, the probed shares) and the kind of model (``--latency-model``).
Any of them changing means a fresh model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from edgebench.models.artifacts import atomic_target, default_cache_dir
from edgebench.prune.latency_model import PROBE_SHARES
from edgebench.results.record_versions import machine_id_of
from edgebench.sweep.execute import Sweep

# Bump when what the file holds, or how it is measured, changes: old entries stop matching.
CACHE_VERSION = 2


def latency_key(sweep: Sweep, backend: str, fingerprint: str, part: Optional[str], input_shape: str,
                round_to: int, residual: str, kind: str) -> dict[str, Any]:
    """What a latency model of ``backend`` on the sweep's target is valid for."""
    config = sweep.config
    return {"version": CACHE_VERSION, "target": config.target.name, "machine_id": machine_id_of(sweep.host_env),
            "mode": config.mode, "device": config.device, "threads": config.threads, "backend": backend,
            "backend_options": config.backend_options.get(backend, {}),
            "packages": sweep.host_env.get("packages") or {}, "fingerprint": fingerprint, "part": part,
            "input_shape": input_shape, "round_to": round_to, "residual": residual,
            "probe_shares": list(PROBE_SHARES), "kind": kind}


def cache_path(key: Mapping[str, Any], cache_dir: Optional[Path] = None) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return (cache_dir or default_cache_dir()) / "latency-models" / f"{digest}.json"


def load(key: Mapping[str, Any], cache_dir: Optional[Path] = None) -> Optional[dict[str, Any]]:
    """The cached entry for ``key``, or None: absent, unreadable, or written for another key."""
    try:
        entry = json.loads(cache_path(key, cache_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and entry.get("key") == json.loads(json.dumps(key)) else None


def store(key: Mapping[str, Any], content: Mapping[str, Any], cache_dir: Optional[Path] = None) -> Path:
    """``content`` saved under ``key``, atomically (an interrupted write leaves no entry)."""
    path = cache_path(key, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as temp_path:
        temp_path.write_text(json.dumps({"key": dict(key), **content}, indent=1) + "\n", encoding="utf-8")
    return path
