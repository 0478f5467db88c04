"""Choosing the CPU path, and running the compiled (numba) kernels safely.

The compiled CPU path (``logpartition/numba.py``, ``viterbi/numba.py``) is the default on the
CPU; the vectorised PyTorch path is its fallback and a second implementation for the tests.
This module never imports numba itself: the kernels' modules do, on the first CPU call.

Choosing the path (:func:`cpu_path`): ``set_cpu_path("numba" | "pytorch" | "auto")`` or the
environment variable ``SEMICRF_CPU_PATH`` (read at every call; ``set_cpu_path`` wins). ``"auto"``
(the default) runs numba when it imports and compiles, else PyTorch with one warning. Forcing
``"numba"`` raises instead of falling back. ``use_triton=False`` only means "no Triton": on the
CPU it still runs this choice.

Threads: the kernels release the GIL and each call splits its sequences over a thread pool of
``torch.get_num_threads()`` Python threads (one per sequence at most). Python threads rather
than numba's ``prange``: numba's built-in ``workqueue`` threading layer aborts when two Python
threads call a parallel kernel at once, and its OpenMP layer hangs in a forked child (DataLoader
workers) once the parent has used it. A pool made in another process (before a fork) is
discarded, so forked children start their own.

On-disk cache: ``cache=True`` writes next to the package when that is writable, else numba's
per-user cache; where neither is (a read-only site-packages and home), ``NUMBA_CACHE_DIR`` is
set to a folder under the temporary directory before numba is imported, unless the user set it.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

__all__ = ["cpu_path", "numba_kernels", "run_split", "set_cpu_path"]

_PATHS = ("auto", "numba", "pytorch")
_ENV = "SEMICRF_CPU_PATH"
_choice: str | None = None
_failed: str | None = None  # why numba is unusable in this process (None: not known to fail)
_lock = threading.Lock()
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, threads, pool)


def set_cpu_path(path: str | None) -> None:
    """Force the CPU path for this process: ``"numba"``, ``"pytorch"`` or ``"auto"``.

    ``None`` returns to the environment variable ``SEMICRF_CPU_PATH`` (default ``"auto"``).

    Raises:
        ValueError: any other value.
    """
    global _choice
    if path is not None and path not in _PATHS:
        raise ValueError(f"path: expected one of {_PATHS} or None, got {path!r}")
    _choice = path


def _requested() -> str:
    if _choice is not None:
        return _choice
    value = os.environ.get(_ENV, "auto").strip().lower() or "auto"
    if value not in _PATHS:
        raise ValueError(f"{_ENV}: expected one of {_PATHS}, got {value!r}")
    return value


def _prepare_cache_dir() -> None:
    """Point ``NUMBA_CACHE_DIR`` at a writable folder when numba's own choices are not."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.access(here, os.W_OK):
        return
    user = os.path.join(os.path.expanduser("~"), ".cache")
    if os.access(user if os.path.isdir(user) else os.path.expanduser("~"), os.W_OK):
        return
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    folder = os.path.join(tempfile.gettempdir(), f"semicrf-kernels-numba-{uid}")
    os.makedirs(folder, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = folder


def numba_kernels(kind: str) -> Any | None:
    """The module of compiled kernels for ``kind`` (``"logpartition"`` or ``"viterbi"``), or None
    when the PyTorch path should run (chosen, or numba unusable: one warning per process)."""
    global _failed
    requested = _requested()
    if requested == "pytorch":
        return None
    if _failed is not None:
        if requested == "numba":
            raise RuntimeError(f"SEMICRF_CPU_PATH=numba, but numba is unusable: {_failed}")
        return None
    try:
        _prepare_cache_dir()
        if kind == "logpartition":
            from ..logpartition import numba as module
        else:
            from ..viterbi import numba as module
        return module
    except Exception as error:  # ImportError, or a numba build/cache problem
        _disable(error, requested)
        return None


def _disable(error: BaseException, requested: str) -> None:
    global _failed
    _failed = f"{type(error).__name__}: {error}"
    if requested == "numba":
        raise RuntimeError(f"SEMICRF_CPU_PATH=numba, but numba is unusable: {_failed}") from error
    warnings.warn(
        f"semicrf_kernels: the compiled CPU path is unavailable ({_failed}); running the "
        "PyTorch CPU path (slower). Set SEMICRF_CPU_PATH=pytorch to silence this.",
        RuntimeWarning,
        stacklevel=3,
    )


def guarded(call: Callable[[], Any]) -> tuple[bool, Any]:
    """Run a compiled-kernel call; on a compilation failure disable numba (one warning) and
    return ``(False, None)`` so the caller runs the PyTorch path."""
    try:
        return True, call()
    except Exception as error:
        if not _is_numba_error(error):
            raise
        _disable(error, _requested())
        return False, None


def _is_numba_error(error: BaseException) -> bool:
    module = type(error).__module__ or ""
    return module.startswith(("numba", "llvmlite"))


def _get_pool(threads: int) -> ThreadPoolExecutor:
    global _pool
    with _lock:
        pid = os.getpid()
        if _pool is None or _pool[0] != pid or _pool[1] != threads:
            # A pool inherited through fork has no threads in this process: never reuse it.
            _pool = (pid, threads, ThreadPoolExecutor(threads, "semicrf-numba"))
        return _pool[2]


def run_split(work: Callable[[Any], None], lengths: Sequence[int]) -> None:
    """Run ``work(indices)`` over the sequences, split over ``torch.get_num_threads()`` threads.

    Sequences are dealt longest first to the least loaded part, so parts take about equally
    long; each sequence is computed by one thread alone (results do not depend on the split).

    Args:
        work: called with an ``int64`` numpy array of sequence indices (releases the GIL).
        lengths: each sequence's length (its cost).
    """
    import numpy as np

    B = len(lengths)
    threads = max(1, min(torch.get_num_threads(), B))
    if threads == 1:
        work(np.arange(B, dtype=np.int64))
        return
    order = sorted(range(B), key=lambda b: -int(lengths[b]))
    parts: list[list[int]] = [[] for _ in range(threads)]
    load = [0] * threads
    for b in order:
        i = load.index(min(load))
        parts[i].append(b)
        load[i] += int(lengths[b]) + 1
    chunks = [np.asarray(sorted(p), dtype=np.int64) for p in parts if p]
    pool = _get_pool(threads)
    futures = [pool.submit(work, chunk) for chunk in chunks[1:]]
    work(chunks[0])
    for future in futures:
        future.result()


def cpu_path() -> str:
    """The CPU path the next call will take: ``"numba"`` or ``"pytorch"`` (imports numba)."""
    return "numba" if numba_kernels("logpartition") is not None else "pytorch"


# ----------------------------------------------------------------------------- CPU dispatch
def _compiled_applies(inp: Any) -> bool:
    """Whether the compiled kernels take these working inputs (CPU, float64 working copies)."""
    return inp.cum_scores.device.type == "cpu"


def cpu_forward(inp: Any, semiring: str) -> Any:
    """The forward scan of the CPU path: ``_ForwardState`` (no backpointers) of working inputs
    (float64, padding inert), by the compiled kernels where they apply, else by PyTorch."""
    from ..logpartition.pytorch import _forward_scan, _ForwardState

    if _compiled_applies(inp):
        kernels = numba_kernels("logpartition")
        if kernels is not None:
            if semiring == "max":
                from ..viterbi.numba import max_forward_numba

                ok, out = guarded(lambda: max_forward_numba(inp))
            elif kernels.applies(inp):
                ok, out = guarded(lambda: kernels.forward_numba(inp))
            else:
                ok, out = False, None
            if ok:
                return _ForwardState(out[0], out[1], out[2], None, None)
    return _forward_scan(inp, semiring)


def cpu_backward(inp: Any, state: Any) -> Any:
    """The backward scan of the CPU path (``_BackwardResult``), compiled where it applies."""
    from ..logpartition.pytorch import _backward_scan

    if _compiled_applies(inp):
        kernels = numba_kernels("logpartition")
        if kernels is not None and kernels.applies(inp):
            from ..logpartition.numba_backward import backward_numba

            ok, out = guarded(lambda: backward_numba(inp, state))
            if ok:
                return out
    return _backward_scan(inp, state)


def cpu_viterbi(prepared: Any) -> Any:
    """Viterbi of the CPU path on prepared (kernel-form) inputs: a ``ViterbiPath``."""
    from ..logpartition.pytorch import _working_inputs
    from ..viterbi.pytorch import streaming_viterbi_pytorch

    if _compiled_applies(prepared) and numba_kernels("viterbi") is not None:
        from ..viterbi.numba import streaming_viterbi_numba

        work = _working_inputs(prepared)
        ok, out = guarded(lambda: streaming_viterbi_numba(work, prepared.cum_scores.dtype))
        if ok:
            return out
    return streaming_viterbi_pytorch(*prepared)
