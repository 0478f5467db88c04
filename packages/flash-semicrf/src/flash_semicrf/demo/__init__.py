"""The ``flash-semicrf demo`` command: a semi-CRF against a softmax baseline on synthetic genes.

* :mod:`.data`: the generated gene-structure data set (exons, introns, intergenic DNA).
* :mod:`.model`: the shared CNN encoder, the softmax baseline and the semi-CRF tagger.
* :mod:`.metrics`: boundary precision/recall/F1, segment and position accuracy.
* :mod:`.run`: :class:`DemoConfig`, :func:`run_demo` (train, evaluate, write ``demo.png`` and
  ``metrics.json``) and :func:`format_report`.

See ``docs/demo.md`` for what it shows and the numbers of a default run.
"""

from .run import DemoConfig, format_report, run_demo

__all__ = ["DemoConfig", "format_report", "run_demo"]
