"""How the compiled CPU kernels are compiled, cached and loaded (imports numba).

:func:`jit` is ``numba.njit(cache=True, nogil=True, error_model="numpy")`` with one change, to
the first call of a process with a warm cache. numba's on-disk cache calls
``target_context.refresh()`` before loading a cached kernel: it imports every one of numba's
typing and lowering registries (its NumPy, linear algebra (which imports SciPy), random,
typed containers ...) and builds their templates, 0.3-0.5 s on a 2-core machine, although
loading machine code needs none of them: the kernels were typed and compiled when the cache
was written. Measured on 2 x 5000 x 16 x 8 (``benchmarks/bench_cpu_first_call.py``): the first
forward+backward cost 0.56-0.74 s more than the second, of which 0.38-0.51 s was this refresh,
0.17-0.22 s ``import numba`` and 0.03-0.05 s the loads themselves.

:class:`_FastLoadCache` loads without the refresh, initialising only what the loaded code calls
into (numba's runtime for array allocation). A cache miss compiles as usual (the compiler
refreshes the context itself), and where numba's private cache API differs from the one this
was written against (0.68) the dispatcher keeps numba's own cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
from numba.core import caching

__all__ = ["jit"]


class _FastLoadCache(caching.FunctionCache):
    """numba's per-function disk cache, loading without refreshing the target context."""

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        from numba.core.runtime import rtsys

        try:
            rtsys.initialize(target_context)  # the allocator the kernels' arrays use
        except Exception:
            target_context.refresh()  # what numba itself does (it initialises the runtime)
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)
        return None  # an I/O error the guard swallowed: compile instead


_FAST = all(
    hasattr(caching.FunctionCache, name)
    for name in ("load_overload", "_load_overload", "_guard_against_spurious_io_errors")
)


def jit(fn: Callable[..., Any]) -> Any:
    """Compile ``fn`` lazily (nopython, GIL released, NumPy error model), cached on disk."""
    dispatcher = numba.njit(nogil=True, error_model="numpy")(fn)
    if _FAST:
        dispatcher._cache = _FastLoadCache(fn)
    else:
        dispatcher.enable_caching()
    return dispatcher
