"""Choosing the CPU path, and running the compiled (numba) kernels safely.

The compiled CPU path (``logpartition/numba.py``, ``viterbi/numba.py``) is the default on the
CPU; the vectorised PyTorch path is its fallback and a second implementation for the tests.
This module never imports numba itself: the kernels' modules do, on the first CPU call.

Choosing the path (:func:`cpu_path`): ``set_cpu_path("numba" | "pytorch" | "auto")`` or the
environment variable ``SEMICRF_CPU_PATH`` (read at every call; ``set_cpu_path`` wins). ``"auto"``
(the default) runs numba when it imports and compiles, else PyTorch with one warning. Forcing
``"numba"`` raises instead of falling back. ``use_triton=False`` only means "no Triton": on the
CPU it still runs this choice.

Threads: the kernels release the GIL and each call runs on up to ``torch.get_num_threads()``
Python threads (:func:`plan_tasks`, :func:`run_tasks`): the sequences dealt over them, or, when
there are at least two threads per sequence and a sequence is long (:func:`split_parts`, the rule:
``(K, C, C)`` transitions by default), each sequence's duration window split over several,
which then meet at a barrier every step (:mod:`semicrf_kernels._shared.numba_sync`); a split
whose parts keep waiting for each other (a part lost its core) stalls and runs again on one
thread. Python threads rather than numba's ``prange``:
numba's built-in ``workqueue`` threading layer aborts when two Python threads call a parallel
kernel at once, and its OpenMP layer hangs in a forked child (DataLoader workers) once the parent
has used it. Each calling thread has its own pool (the parts of a sequence wait for each other,
so they must all run at once); a pool made in another process (before a fork) is discarded, so
forked children start their own.

On-disk cache: compiled code is written next to the package when that is writable, else numba's
per-user cache; where neither is (a read-only site-packages and home), ``NUMBA_CACHE_DIR`` is
set to a folder under the temporary directory before numba is imported, unless the user set it.
Loading it skips numba's registry refresh (:mod:`semicrf_kernels._shared.numba_jit`).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

__all__ = ["STRIDE", "cpu_path", "numba_kernels", "plan_tasks", "run_tasks", "set_cpu_path"]

_PATHS = ("auto", "numba", "pytorch")
_ENV = "SEMICRF_CPU_PATH"
_choice: str | None = None
_failed: str | None = None  # why numba is unusable in this process (None: not known to fail)
_local = threading.local()  # .pool: (pid, workers, ThreadPoolExecutor) of the calling thread

#: Abort-flag values of a sync array (``numba_sync``): a part raised; a part waited too long.
ABORTED = 1
STALLED = 2
#: Entries between two parts' slots in a sync array (64 bytes: a cache line each).
STRIDE = 8
#: Durations per block of a step's window: the unit a split sequence's threads share.
BLOCK = 32
#: Fewest multiply-adds per step and part for a split (:func:`split_parts`).
MIN_STEP_WORK = 1000
#: Fewest multiply-adds in a sequence's scan for a split (:func:`split_parts`): about 0.1 s of
#: one thread. Shorter scans measured slower split than whole on a 2-core machine
#: (``docs/benchmarks.md``).
MIN_SEQUENCE_WORK = 100_000_000
#: A split part that has waited this long at the steps' barriers, for more than a third of the
#: scan and in at least ten waits over 1 ms, marks it stalled (its partner keeps losing its
#: core; ``numba_sync``); the sequence then runs again on one thread (:func:`run_tasks`). On an
#: idle 2-core virtual machine the parts wait 5-20 % of a scan (single waits of 3-30 ms: the
#: host takes a core now and then); beside a busy process, 40-60 %.
STALL_NS = 20_000_000
#: Seconds after a stall during which no sequence is split (the machine is likely still busy).
STALL_HOLD_S = 10.0
_last_stall = float("-inf")  # time.monotonic() of the last stall in this process
#: Split scans that stalled in this process (read by the benchmarks).
stalls = 0


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
            raise _unusable()
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


def _unusable() -> RuntimeError:
    return RuntimeError(
        "the numba CPU path was requested (set_cpu_path / SEMICRF_CPU_PATH), but numba is "
        f"unusable: {_failed}"
    )


def _disable(error: BaseException, requested: str) -> None:
    global _failed
    _failed = f"{type(error).__name__}: {error}"
    if requested == "numba":
        raise _unusable() from error
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


def _get_pool(workers: int) -> ThreadPoolExecutor:
    """This calling thread's pool (at least ``workers`` threads).

    One pool per calling thread: the parts of a split sequence wait for each other, so they
    must all run at once, which a pool shared with other callers' tasks could not promise.
    A pool inherited through fork has no threads in this process: it is never reused.
    """
    held = getattr(_local, "pool", None)
    pid = os.getpid()
    if held is None or held[0] != pid or held[1] < workers:
        if held is not None and held[0] == pid:
            held[2].shutdown(wait=False)  # idle: the last call waited for all its tasks
        held = (pid, workers, ThreadPoolExecutor(workers, "semicrf-numba"))
        _local.pool = held
    return held[2]


def split_parts(B: int, max_length: int, K: int, C: int, per_duration: bool) -> int:
    """How many threads share each sequence (each computing its share of the blocks of
    :data:`BLOCK` durations of every step's window): the dispatch rule of the compiled kernels'
    threads.

    Which transitions split (``SEMICRF_CPU_SPLIT``, read at every call): unset or ``auto``,
    ``(K, C, C)`` transitions only (their step is ``K C^2`` multiply-adds of compute; split 1.4-1.9x
    faster on an idle 2-core machine); ``1``, ``(C, C)`` too (their window sum is
    memory-bound: 0.74-1.22x measured, so off by default); ``0``, never. No split either within
    :data:`STALL_HOLD_S` seconds of a stall (the machine is busy).

    Then ``threads // B`` parts (``threads = torch.get_num_threads()``) when that is at least
    2, capped at the window's blocks (``ceil(min(K, T) / BLOCK)``), and only while a step's work
    (``K C + C^2`` multiply-adds, ``K C^2`` with ``(K, C, C)`` transitions, ``K`` capped at the
    length) is at least :data:`MIN_STEP_WORK` per part and the sequence's at least
    :data:`MIN_SEQUENCE_WORK` (about 0.1 s on one thread): below that the per-step barrier, the
    parts' common work and the threads' start cost more than the split saves. Otherwise 1:
    each sequence on one thread, the sequences dealt over the threads.
    """
    mode = os.environ.get("SEMICRF_CPU_SPLIT", "auto").strip().lower() or "auto"
    if mode not in ("auto", "0", "1"):
        raise ValueError(f"SEMICRF_CPU_SPLIT: expected 'auto', '0' or '1', got {mode!r}")
    if mode == "0" or (mode == "auto" and not per_duration):
        return 1
    if time.monotonic() - _last_stall < STALL_HOLD_S:
        return 1
    threads = torch.get_num_threads()
    k = min(K, max_length)
    step = k * C * C if per_duration else k * C + C * C
    parts = min(threads // max(B, 1), -(-k // BLOCK), step // MIN_STEP_WORK)
    if parts < 2 or step * max_length < MIN_SEQUENCE_WORK:
        return 1
    return parts


def plan_tasks(lengths: Any, K: int, C: int, per_duration: bool) -> tuple[list[Any], Any, int]:
    """The compiled kernels' work, one chunk per thread.

    Returns:
        ``(chunks, sync, parts)``: each chunk an ``(n, 3)`` int64 array of ``(sequence, part,
        parts)`` rows, run in order by one thread; ``sync`` the ``(batch, STRIDE * (parts +
        1))`` int64 state of the per-step barrier (:mod:`semicrf_kernels._shared.numba_sync`):
        zeros but for the stall limit :data:`STALL_NS` after each sequence's abort flag;
        ``parts`` from :func:`split_parts`. With one part sequences are dealt longest first to
        the least loaded chunk, so chunks take about equally long; else each chunk is one part
        of one sequence.
    """
    import numpy as np

    lens = [int(x) for x in lengths]
    B = len(lens)
    parts = split_parts(B, max(lens, default=0), K, C, per_duration)
    sync = np.zeros((B, STRIDE * (parts + 1)), dtype=np.int64)
    sync[:, STRIDE * parts + 1] = STALL_NS
    if parts > 1:
        chunks = [np.array([[b, p, parts]], dtype=np.int64) for b in range(B) for p in range(parts)]
        return chunks, sync, parts
    threads = max(1, min(torch.get_num_threads(), B))
    rows: list[list[int]] = [[] for _ in range(threads)]
    load = [0] * threads
    for b in sorted(range(B), key=lambda b: -lens[b]):
        i = load.index(min(load))
        rows[i].append(b)
        load[i] += lens[b] + 1
    chunks = [np.array([[b, 0, 1] for b in sorted(r)], dtype=np.int64) for r in rows if r]
    return chunks or [np.zeros((0, 3), dtype=np.int64)], sync, 1


def _abort_on_error(work: Callable[[Any], None], chunk: Any, sync: Any) -> None:
    try:
        work(chunk)
    except BaseException:
        sync[:, -STRIDE] = ABORTED  # the parts waiting for this one return instead of hanging
        raise


def run_tasks(
    work: Callable[[Any], None],
    chunks: Sequence[Any],
    sync: Any,
    reset: Callable[[int], None] | None = None,
) -> None:
    """Run ``work(chunk)`` for every chunk of :func:`plan_tasks` at once, the first on the
    calling thread (``work`` calls a kernel that releases the GIL). A split sequence whose scan
    stalled (``numba_sync``) then runs again on one thread, after ``reset(b)`` cleared what
    its parts had accumulated into the outputs (outputs a scan overwrites need no reset); the
    split stays off for :data:`STALL_HOLD_S` seconds."""
    global _last_stall, stalls
    if len(chunks) == 1:
        work(chunks[0])
        return
    pool = _get_pool(len(chunks) - 1)
    futures = []
    error: BaseException | None = None
    try:
        for chunk in chunks[1:]:
            futures.append(pool.submit(_abort_on_error, work, chunk, sync))
    except BaseException as raised:  # e.g. no thread could start: release the submitted parts
        sync[:, -STRIDE] = ABORTED
        error = raised
    if error is None:
        try:
            _abort_on_error(work, chunks[0], sync)
        except BaseException as raised:
            error = raised
    for future in futures:  # always wait: the pool must be idle when the next call starts
        try:
            future.result()
        except BaseException as raised:
            error = error or raised
    if error is not None:
        raise error
    import numpy as np

    stalled = np.flatnonzero(sync[:, -STRIDE] == STALLED).tolist()
    if stalled:
        stalls += len(stalled)
        _last_stall = time.monotonic()
        if reset is not None:
            for b in stalled:
                reset(b)
        work(np.array([[b, 0, 1] for b in stalled], dtype=np.int64))


def cpu_path() -> str:
    """The CPU path the next call will take: ``"numba"`` or ``"pytorch"`` (imports numba)."""
    return "numba" if numba_kernels("logpartition") is not None else "pytorch"


# ----------------------------------------------------------------------------- CPU dispatch
_warned_span = False


def _warn_wide_span() -> None:
    """Once per process: the compiled log partition does not take these inputs."""
    global _warned_span
    if not _warned_span:
        _warned_span = True
        warnings.warn(
            "semicrf_kernels: a finite transition or duration_bias span above 300 nats (e.g. "
            "-1e4 for a forbidden move) sends the log partition to the PyTorch CPU path, "
            "10-50x slower; write forbidden entries as -inf to keep the compiled path.",
            RuntimeWarning,
            stacklevel=4,
        )


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
                _warn_wide_span()
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
