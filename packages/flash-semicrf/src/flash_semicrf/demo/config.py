"""The demo's options, importable without torch (the command line's ``--help`` reads them)."""

from __future__ import annotations

from dataclasses import dataclass

#: The default K: the longest region of :mod:`.data` (``LONGEST_REGION``, checked by a test),
#: written out here because that module imports torch.
DEFAULT_MAX_DURATION = 100

#: The default output folder, relative to the working directory. The repository's .gitignore
#: lists it, so a demo run from a clone leaves ``git status`` clean.
DEFAULT_OUT = "flash-semicrf-demo"


@dataclass
class DemoConfig:
    """Options of the demo (each but ``hidden`` is a command-line flag of the same name)."""

    train_size: int = 256
    test_size: int = 64
    seq_len: int = 400
    max_duration: int = DEFAULT_MAX_DURATION
    epochs: int = 8
    batch_size: int = 16
    lr: float = 1e-2
    hidden: int = 32
    noise: float = 0.1
    device: str = "auto"
    seed: int = 0
    out: str = DEFAULT_OUT
    progress: bool = True
