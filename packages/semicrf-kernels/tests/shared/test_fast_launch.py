"""Tests of ``_shared/fast_launch.py``: a launch site's first launch goes through Triton's
normal path, later ones through the compiled kernel with every parameter in signature order;
the normal path stays in use off CUDA, when switched off, and for interpreted kernels. The CUDA
test checks that split scans launched both ways agree bitwise."""

from __future__ import annotations

import inspect

import pytest
import torch
from _forward_grads import forward_and_grads
from _triton_env import ON_CUDA, TRITON_MARKS

from semicrf_kernels._shared.fast_launch import FAST_LAUNCH, SiteLauncher


class _Param:
    def __init__(self, name, default=inspect.Parameter.empty):
        self.name, self.default = name, default


class _Kernel:
    """Records launches like a ``@triton.jit`` function: ``kernel[grid](*args, **kw)``."""

    def __init__(self):
        self.params = [_Param(n) for n in ("x_ptr", "n", "t0", "FLAG")] + [_Param("BLOCK", 16)]
        self.normal, self.direct = [], []

    def __getitem__(self, grid):
        def launch(*args, **kw):
            self.normal.append((grid, args, kw))
            return _Compiled(self.direct)

        return launch


class _Compiled:
    def __init__(self, log):
        self.log = log

    def __getitem__(self, grid):
        return lambda *args: self.log.append((grid, args))


@pytest.fixture(autouse=True)
def _enabled(monkeypatch):
    monkeypatch.setitem(FAST_LAUNCH, "enable", True)


def test_later_launches_pass_every_parameter_in_order():
    k = _Kernel()
    site = SiteLauncher(k, (3, 2), {"FLAG": True, "num_warps": 4}, cuda=True)
    site("X", 10, 1)
    site("X", 10, 65)
    site("X", 10, 129)
    assert k.normal == [((3, 2), ("X", 10, 1), {"FLAG": True, "num_warps": 4})]
    # the grid padded to three dimensions; the default of BLOCK filled in; num_warps is a
    # launch option, not a parameter
    assert k.direct == [((3, 2, 1), ("X", 10, 65, True, 16)), ((3, 2, 1), ("X", 10, 129, True, 16))]


class _Interpreted(_Kernel):
    """Like Triton's interpreter: no ``params``, and a launch returns no compiled kernel."""

    def __init__(self):
        super().__init__()
        del self.params

    def __getitem__(self, grid):
        def launch(*args, **kw):
            self.normal.append((grid, args, kw))

        return launch


@pytest.mark.parametrize("why", ["cpu", "switched off", "interpreted", "missing parameter"])
def test_normal_path_where_the_direct_one_does_not_apply(monkeypatch, why):
    k = _Interpreted() if why == "interpreted" else _Kernel()
    options = {"FLAG": False}
    if why == "switched off":
        monkeypatch.setitem(FAST_LAUNCH, "enable", False)
    if why == "missing parameter":
        options = {}  # FLAG has no default: the direct path could not fill it in
    site = SiteLauncher(k, (1,), options, cuda=why != "cpu")
    for t0 in (1, 9, 17):
        site("X", 1, t0)
    assert not k.direct
    assert [a[1][2] for a in k.normal] == [1, 9, 17]


def test_compiled_kernels_of_the_installed_triton_have_a_runner():
    # the direct path builds on CompiledKernel.__getitem__ (checked on the GPU by counting
    # direct launches in the CUDA test below)
    triton = pytest.importorskip("triton")
    compiled = pytest.importorskip("triton.compiler.compiler").CompiledKernel
    assert hasattr(compiled, "__getitem__"), triton.__version__


@pytest.mark.skipif(not ON_CUDA, reason="the direct path runs on CUDA only")
@pytest.mark.parametrize("overlap", [False, True])
def test_split_scans_agree_bitwise_with_the_normal_path(make_inputs, overlap, monkeypatch):
    from semicrf_kernels._shared import fast_launch, split_launch
    from semicrf_kernels.viterbi.triton import semi_crf_streaming_viterbi_triton

    # count the launches that really take the direct path (a check that silently kept the
    # normal path once made this comparison compare the normal path with itself)
    direct = []
    real = fast_launch._direct_runner

    def counting(compiled, grid):
        runner = real(compiled, grid)
        return None if runner is None else (lambda *a: direct.append(1) or runner(*a))

    monkeypatch.setattr(fast_launch, "_direct_runner", counting)

    split_launch.SPLIT_OVERRIDE.update(enable=True, superblock=16, overlap=overlap)
    try:
        inp = make_inputs(3, 300, 5, 70, proj=True, lengths=[300, 171, 64], forbid=0.2)
        results, paths = [], []
        args = [x.cuda() if isinstance(x, torch.Tensor) else x for x in inp]
        for enable in (False, True):
            FAST_LAUNCH["enable"] = enable
            results.append(forward_and_grads(inp, torch.float32, use_triton=True))
            paths.append(semi_crf_streaming_viterbi_triton(*args))
    finally:
        split_launch.SPLIT_OVERRIDE.clear()
    assert direct, "no launch took the direct path"
    (z0, g0), (z1, g1) = results
    assert torch.equal(z0, z1)
    for a, b in zip(g0, g1):
        assert torch.equal(a, b)
    for field in ("scores", "num_segments", "starts", "durations", "labels"):
        assert torch.equal(getattr(paths[0], field), getattr(paths[1], field)), field


pytestmark = TRITON_MARKS[1:]
