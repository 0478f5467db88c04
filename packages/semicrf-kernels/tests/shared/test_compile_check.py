"""``tools/compile_check.py`` (compile the kernels for sm_90 without a GPU) works with the
installed Triton: two small kernels compile, and ptxas reports their registers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from semicrf_kernels._shared.triton_support import HAS_TRITON, triton_interpret_enabled

pytestmark = pytest.mark.skipif(
    not HAS_TRITON or triton_interpret_enabled(),
    reason="needs compiled Triton kernels (not the interpreter's)",
)

TOOL = Path(__file__).resolve().parents[4] / "tools" / "compile_check.py"


def _tool():
    spec = importlib.util.spec_from_file_location("compile_check", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not TOOL.exists(), reason="tools/ is not part of an installed package")
@pytest.mark.parametrize("name", ["batch sums", "marginals"])
def test_kernel_compiles_for_sm90_without_a_gpu(name):
    tool = _tool()
    (entry,) = [k for k in tool.kernels() if k[0] == name]
    compiled = tool.compile_one(*entry[1:], arch=90, warps=4)
    assert ".target sm_90" in compiled.asm["ptx"]
    assert "registers" in tool.ptxas_report(compiled.asm["ptx"], 90)
