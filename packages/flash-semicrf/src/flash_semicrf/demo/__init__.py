"""The ``flash-semicrf demo`` command: a semi-CRF against a softmax baseline on synthetic genes.

* :mod:`.data`: the generated gene-structure data set (exons, introns, intergenic DNA).
* :mod:`.model`: the shared CNN encoder, the softmax baseline and the semi-CRF tagger.
* :mod:`.metrics`: boundary precision/recall/F1, segment and position accuracy.
* :mod:`.config`: :class:`DemoConfig`, the options (no torch import).
* :mod:`.run`: :func:`run_demo` (train, evaluate, write ``demo.png`` and
  ``metrics.json``) and :func:`format_report`.

See ``docs/demo.md`` for what it shows and the numbers of a default run.
"""

from __future__ import annotations

from typing import Any

from .config import DemoConfig

__all__ = ["DemoConfig", "format_report", "run_demo"]


def __getattr__(name: str) -> Any:
    # run imports torch: only when asked for, so the command line's --help stays fast.
    if name in ("format_report", "run_demo"):
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
