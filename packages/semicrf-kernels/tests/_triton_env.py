"""Where the Triton kernel tests run, shared by every ``test_triton_*.py``.

On a CUDA machine they run natively on the GPU; on the CPU only under the Triton interpreter
(``TRITON_INTERPRET=1``, set before ``semicrf_kernels`` is imported: the noxfile runs these files
a second time that way); otherwise they are skipped.
"""

from __future__ import annotations

import pytest
import torch

from semicrf_kernels._shared.triton_support import HAS_TRITON, triton_interpret_enabled

ON_CUDA = torch.cuda.is_available() and not triton_interpret_enabled()
DEVICE = "cuda" if ON_CUDA else "cpu"

#: ``pytestmark`` of a Triton test file (extend it with file-specific marks).
TRITON_MARKS = [
    pytest.mark.skipif(
        not HAS_TRITON or not (ON_CUDA or triton_interpret_enabled()),
        reason="needs Triton with CUDA, or TRITON_INTERPRET=1 (set before import) on the CPU",
    ),
    # log(0) = -inf is intended (forbidden choices); the interpreter's numpy warns about it.
    pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning"),
]
