"""Content fingerprints: equal fingerprints mean the same model, whatever it is called."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

_CHUNK = 1 << 20


def files_fingerprint(paths: Sequence[Path]) -> str:
    """A model file's sha256 (as ``sha256sum`` prints it), or one over several files' sha256s.

    Names are left out: a renamed or copied model is the same model.
    """
    digests = [file_sha256(path) for path in paths]
    if len(digests) == 1:
        return "sha256:" + digests[0]
    return "sha256:" + hashlib.sha256("\n".join(digests).encode()).hexdigest()


def module_fingerprint(module) -> str:
    """Over an ``nn.Module``'s class, architecture and every state_dict entry's bytes."""
    import torch

    digest = hashlib.sha256()
    module_class = type(module)
    digest.update(f"class\0{module_class.__module__}.{module_class.__qualname__}\0".encode())
    digest.update(f"repr\0{module!r}\0".encode())
    for name, value in module.state_dict().items():
        if isinstance(value, torch.Tensor):
            digest.update(f"tensor\0{name}\0{value.dtype}\0{tuple(value.shape)}\0".encode())
            digest.update(_tensor_bytes(value))
        else:  # e.g. quantized modules' packed params; repr is the best stable form there is
            digest.update(f"value\0{name}\0{value!r}\0".encode())
    return "sha256:" + digest.hexdigest()


def _tensor_bytes(tensor) -> bytes:
    import torch

    # Viewing as bytes covers dtypes numpy lacks (bfloat16, float8).
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
