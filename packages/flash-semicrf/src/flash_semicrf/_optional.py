"""Which optional dependencies are installed, found without importing them."""

from __future__ import annotations

import importlib.util


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        # A parent package that fails to import, or a broken entry in sys.modules.
        return False


#: True when ``semicrf_nn.lightning`` can import (``lightning`` or ``pytorch_lightning``).
HAS_LIGHTNING: bool = _installed("lightning") or _installed("pytorch_lightning")
