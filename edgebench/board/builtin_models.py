"""The built-in models, ``edgebench:NAME``: architectures torchvision has no builder for, made
from torchvision's parts. Board-side (Python 3.8); each builder imports torch when called.

Third-party packages may add their own under the entry-point group ``edgebench.models``.
"""

from __future__ import annotations

from edgebench.board.registry import Registry

BUILTIN_MODELS = Registry("built-in model", "edgebench.models")
BUILTIN_MODELS.add("ssd300_resnet50", "edgebench.board.ssd_models:ssd300_resnet50")
BUILTIN_MODELS.add("squeezenet_ssd", "edgebench.board.ssd_models:squeezenet_ssd")
BUILTIN_MODELS.add("deeplabv3plus_resnet50", "edgebench.board.deeplabv3plus:deeplabv3plus_resnet50")
