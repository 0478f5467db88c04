"""Repeated launches of one Triton kernel at a fraction of ``kernel[grid](...)``'s host cost.

A split scan issues three launches per super-block, thousands per scan, and at small
super-blocks the host, not the GPU, sets the pace: ``kernel[grid](...)`` binds every argument,
recomputes the specialization key and looks the kernel up on every call. Within one scan a
launch *site* (the far, reduce or serial kernel of one scan) always passes the same tensors and
compile-time arguments; only integers the kernel does not specialize on (``do_not_specialize``:
the super-block start, the number of partials) change. So a :class:`SiteLauncher` makes its first
launch through Triton's normal path, which compiles or finds the kernel, keeps the compiled
kernel, and launches it directly afterwards with the full argument list in signature order.

The direct path is used only for compiled kernels on CUDA tensors (the interpreter, which also
accepts CUDA tensors, runs the normal path) and while ``FAST_LAUNCH["enable"]`` is true (the
benchmarks' A/B switch). It goes through the compiled kernel's own runner
(``compiled[grid](*args)``), which passes Triton's launch hooks on as the normal path does, so a
profiler still sees every launch. If the installed Triton's compiled-kernel object lacks what it
needs, the site keeps the normal path.
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["FAST_LAUNCH", "SiteLauncher"]

#: ``"enable"``: use the direct path where it applies (tests and benchmarks switch it off).
FAST_LAUNCH: dict[str, bool] = {"enable": True}


class SiteLauncher:
    """One launch site: a kernel, its grid and its compile-time arguments, launched many times
    with the same tensors and only non-specialized integers changing.

    Args:
        kernel: a ``@triton.jit`` function.
        grid: the launch grid (a tuple of up to three ints).
        options: compile-time keyword arguments (constexpr parameters and launch options such
            as ``num_warps``), the same at every launch.
        cuda: whether the tensors are on a CUDA device (else the normal path always).
    """

    def __init__(self, kernel, grid: tuple[int, ...], options: dict[str, Any], cuda: bool):
        self.kernel = kernel
        self.grid = grid
        self.options = options
        self.cuda = cuda
        self._runner = None
        self._tail: tuple = ()

    def _tail_args(self, n_args: int) -> tuple:
        """The values of the parameters after the ``n_args`` positional ones, in signature
        order (from ``options``, else the default): the same at every launch of the site."""
        return tuple(
            self.options[p.name] if p.name in self.options else p.default
            for p in self.kernel.params[n_args:]
        )

    def __call__(self, *args) -> None:
        """Launch with positional ``args`` (the kernel's leading, non-keyword parameters)."""
        if self._runner is not None and FAST_LAUNCH["enable"]:
            self._runner(*args, *self._tail)
            return
        compiled = self.kernel[self.grid](*args, **self.options)
        # (an interpreted kernel has no ``params`` and returns no compiled kernel)
        if self._runner is None and self.cuda and FAST_LAUNCH["enable"]:
            if hasattr(self.kernel, "params"):
                tail = self._tail_args(len(args))
                if all(v is not inspect.Parameter.empty for v in tail):
                    self._tail = tail
                    self._runner = _direct_runner(compiled, self.grid)


def _direct_runner(compiled, grid: tuple[int, ...]):
    """``compiled[grid]`` when this Triton's compiled kernel supports it, else None."""
    getitem = getattr(compiled, "__getitem__", None)
    if getitem is None:
        return None
    try:
        return getitem(tuple(grid) + (1,) * (3 - len(grid)))
    except Exception:  # an unexpected Triton version: keep the normal path
        return None
