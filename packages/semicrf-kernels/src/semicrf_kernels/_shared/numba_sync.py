"""A step barrier between the threads that share one sequence (imports numba).

When a sequence's scan is split over ``parts`` threads (``numba_support.plan_tasks``: each
thread sums its share of every step's duration window; the ``(K, C, C)`` backward splits
labels), every step of its scan ends with :func:`step_barrier`: each part publishes the step it finished in its
own slot of a shared ``int64`` array (a release store, after its plain stores of the step's
values) and waits until every other part's slot reaches the step (acquire loads), so the step's
values of every label are visible before any part reads them. Slots are ``STRIDE`` entries
apart (separate cache lines); the slot after the last part is an abort flag that the Python
side sets when a part raised, so the others return instead of waiting forever.

Waiting spins (a step is microseconds, far less than a sleep) with a ``pause`` hint per poll,
then after ``_SPINS`` polls yields the core to the OS on every poll (``sched_yield``;
``SwitchToThread`` on Windows), so a
part whose partner was descheduled on a loaded machine gives its core back instead of burning
its time slice.

Stalls: the parts run in lockstep, so a part that loses its core to another process holds all
the others up (4-10x slower than one thread was measured on a shared 2-core machine). A part
that has spent more than a third of the scan waiting (counted from its first barrier), more
than the stall limit (``STALL_NS`` in the slot after the abort flag; 0: no limit) and in at
least ten waits of over a millisecond (one long wait is the host of a virtual machine taking a
core; many are a partner without one), or four limits in one wait, marks the scan *stalled*
(abort flag ``STALLED``) and every part returns; the caller then runs the sequence again on one
thread (``numba_support.run_tasks``), which gives the same bits: a stall costs the work done so
far, never the result.
"""

from __future__ import annotations

import ctypes
import platform
import sys

import numpy as np
from llvmlite import binding, ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .numba_jit import jit
from .numba_support import STALLED, STRIDE

__all__ = ["fill", "label_range", "now_ns", "share", "step_barrier"]

_SPINS = 2000
_UNTIMED = 64
#: A part stalls the scan once it has waited more than the limit, more than this inverse share
#: of the scan's time, and in at least _LONG_WAITS waits of over _LONG_WAIT_NS each: a virtual
#: machine's host takes a core for tens of milliseconds now and then (one long wait, a few
#: percent of a scan), while a partner that shares its core with another process keeps
#: arriving a time slice late (half of the scan or more, in many waits of milliseconds).
_STALL_SHARE = 3
_LONG_WAIT_NS = 1_000_000
_LONG_WAITS = 10
#: One wait of more than this many limits stalls the scan on its own (a partner that is gone).
_GONE_LIMITS = 4


def _register_os_functions() -> None:
    """Give the JIT linker the addresses of the OS functions the intrinsics below call, found
    through ctypes: a name it cannot resolve itself would abort the process (LLVM's "symbol not
    found"), whereas a failed lookup here raises at import and the PyTorch path runs instead."""
    if sys.platform == "win32":
        library, names = ctypes.WinDLL("kernel32"), ("SwitchToThread", "GetTickCount64")
    else:
        library, names = ctypes.CDLL(None), ("sched_yield", "clock_gettime")
    for name in names:
        binding.add_symbol(name, ctypes.cast(getattr(library, name), ctypes.c_void_p).value)


_register_os_functions()


def _slot_pointer(context, builder, array_type, array, index):
    ary = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, ary, [index])


@intrinsic
def _load_acquire(typingctx, flags, index):
    def codegen(context, builder, signature, args):
        ptr = _slot_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(flags, index), codegen


@intrinsic
def _store_release(typingctx, flags, index, value):
    def codegen(context, builder, signature, args):
        ptr = _slot_pointer(context, builder, signature.args[0], args[0], args[1])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()

    return types.void(flags, index, types.int64), codegen


_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


@intrinsic
def _cpu_relax(typingctx):
    """A spin-wait hint (x86 ``pause``): the waiting thread hands its core's execution units to
    a sibling hardware thread, which may be the part it waits for (nothing elsewhere)."""

    def codegen(context, builder, signature, args):
        if _X86:  # an LLVM intrinsic: numba's object emission has no inline-asm parser
            fnty = ir.FunctionType(ir.VoidType(), [])
            builder.call(
                cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse2.pause"), []
            )
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _os_yield(typingctx):
    def codegen(context, builder, signature, args):
        name = "SwitchToThread" if sys.platform == "win32" else "sched_yield"
        fnty = ir.FunctionType(ir.IntType(32), [])
        builder.call(cgutils.get_or_insert_function(builder.module, fnty, name), [])
        return context.get_dummy_value()

    return types.void(), codegen


if sys.platform == "win32":

    @intrinsic
    def _now_ns(typingctx):
        """A monotonic clock in nanoseconds (``GetTickCount64``: milliseconds, advancing in
        steps of the system timer, 10-16 ms)."""

        def codegen(context, builder, signature, args):
            i64 = ir.IntType(64)
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(i64, []), "GetTickCount64"
            )
            return builder.mul(builder.call(fn, []), ir.Constant(i64, 1_000_000))

        return types.int64(), codegen

else:
    # CLOCK_MONOTONIC where its number is known; elsewhere CLOCK_REALTIME (a jump only moves
    # one stall decision)
    _CLOCK = {"linux": 1, "darwin": 6}.get(sys.platform.rstrip("0123456789"), 0)
    _LONG_BITS = 8 * ctypes.sizeof(ctypes.c_long)  # struct timespec: two C longs

    @intrinsic
    def _now_ns(typingctx):
        """A monotonic clock in nanoseconds (``clock_gettime``; vDSO, tens of ns)."""

        def codegen(context, builder, signature, args):
            i64, i32, long = ir.IntType(64), ir.IntType(32), ir.IntType(_LONG_BITS)
            timespec = cgutils.alloca_once(builder, ir.ArrayType(long, 2))
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(i32, [i32, timespec.type]), "clock_gettime"
            )
            builder.call(fn, [ir.Constant(i32, _CLOCK), timespec])
            zero = ir.Constant(i32, 0)
            sec = builder.sext(builder.load(builder.gep(timespec, [zero, zero])), i64)
            nsec = builder.sext(
                builder.load(builder.gep(timespec, [zero, ir.Constant(i32, 1)])), i64
            )
            return builder.add(builder.mul(sec, ir.Constant(i64, 1_000_000_000)), nsec)

        return types.int64(), codegen


@jit
def now_ns():
    """Nanoseconds of a monotonic clock (for the stall limit and its tests)."""
    return _now_ns()


@jit
def share(n, part, parts):
    """Items ``i0 <= i < i1`` of ``n`` that are ``part``'s of ``parts`` (contiguous, part 0 the
    first, sizes differing by at most one)."""
    return (part * n) // parts, ((part + 1) * n) // parts


@jit
def label_range(C, part, parts):
    """Labels ``c0 <= c < c1`` of ``part`` of ``parts`` (contiguous, sizes differing by <= 1).

    Unsigned: numba wraps negative indices, and with a signed loop start LLVM cannot prove the
    index non-negative, so the per-index check stayed in the label loops and stopped their
    vectorisation (the window sums ran 5x slower). Use them only as indices and loop bounds:
    numba types ``uint64 +- int64`` as float64.
    """
    return np.uint64((part * C) // parts), np.uint64(((part + 1) * C) // parts)


@jit
def fill(x, c0, c1, value):
    """``x[c] = value`` for ``c0 <= c < c1``."""
    for c in range(c0, c1):
        x[c] = value


@jit
def step_barrier(sync, part, parts, step):
    """Publish that ``part`` finished ``step`` (a positive, increasing count) and wait until
    every part has. ``sync``: ``(STRIDE * (parts + 1),)`` int64, zeros at the start of the
    scan but for the stall limit in nanoseconds at ``STRIDE * parts + 1`` (0: none); after its
    step each part keeps its clock at its first barrier, its time waited and its count of
    waits over ``_LONG_WAIT_NS``. Returns False when the scan was aborted (another part raised)
    or stalled: this part has waited longer than the limit, than ``1 / _STALL_SHARE`` of the
    scan so far and in at least ``_LONG_WAITS`` long waits, or ``_GONE_LIMITS`` limits in this
    one wait; it then sets the flag to ``STALLED``, so the others return too."""
    if parts == 1:
        return True
    flag = parts * STRIDE
    mine = part * STRIDE
    if sync[mine + 1] == 0:
        sync[mine + 1] = _now_ns()
    _store_release(sync, mine, step)
    limit = sync[flag + 1]
    for other in range(parts):
        if other == part:
            continue
        polls = 0
        since = 0
        while _load_acquire(sync, other * STRIDE) < step:
            if _load_acquire(sync, flag) != 0:
                return False
            polls += 1
            # Waits are timed from the _UNTIMED-th poll (a step's usual imbalance never reads
            # the clock) and checked every _UNTIMED polls, then at every yield.
            if polls == _UNTIMED:
                since = _now_ns()
            elif polls > _UNTIMED and (polls > _SPINS or polls % _UNTIMED == 0):
                now = _now_ns()
                this = now - since
                waited = sync[mine + 2] + this
                longs = sync[mine + 3] + (1 if this > _LONG_WAIT_NS else 0)
                if limit > 0 and (
                    this > _GONE_LIMITS * limit
                    or (
                        waited > limit
                        and waited * _STALL_SHARE > now - sync[mine + 1]
                        and longs >= _LONG_WAITS
                    )
                ):
                    _store_release(sync, flag, STALLED)
                    return False
            if polls > _SPINS:
                _os_yield()
            else:
                _cpu_relax()
        if since != 0:
            this = _now_ns() - since
            sync[mine + 2] += this
            if this > _LONG_WAIT_NS:
                sync[mine + 3] += 1
    return True
