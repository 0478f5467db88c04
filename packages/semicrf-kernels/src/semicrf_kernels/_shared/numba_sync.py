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
"""

from __future__ import annotations

import platform
import sys

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .numba_jit import jit
from .numba_support import STRIDE

__all__ = ["fill", "label_range", "share", "step_barrier"]

_SPINS = 2000


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
    scan. Returns False when the scan was aborted (another part raised)."""
    if parts == 1:
        return True
    _store_release(sync, part * STRIDE, step)
    for other in range(parts):
        if other == part:
            continue
        polls = 0
        while _load_acquire(sync, other * STRIDE) < step:
            if _load_acquire(sync, parts * STRIDE) != 0:
                return False
            polls += 1
            if polls > _SPINS:
                _os_yield()
            else:
                _cpu_relax()
    return True
