"""The compiled kernels' threads: the split rule, the task plan, the step barrier, and that a
part that raises does not leave the others waiting."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from semicrf_kernels._shared import numba_support
from semicrf_kernels._shared.numba_support import STRIDE, plan_tasks, run_tasks, split_parts

pytest.importorskip("numba")


@pytest.fixture(autouse=True)
def _split_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # (C, C) transitions split only with SEMICRF_CPU_SPLIT=1; these tests use both kinds
    monkeypatch.setenv("SEMICRF_CPU_SPLIT", "1")


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_split_modes(threads, monkeypatch: pytest.MonkeyPatch) -> None:
    threads(2)
    for unset in (None, "", "auto"):  # the default: (K, C, C) transitions only
        if unset is None:
            monkeypatch.delenv("SEMICRF_CPU_SPLIT")
        else:
            monkeypatch.setenv("SEMICRF_CPU_SPLIT", unset)
        assert split_parts(1, 50_000, 500, 24, False) == 1
        assert split_parts(1, 2000, 1000, 24, True) == 2
    monkeypatch.setenv("SEMICRF_CPU_SPLIT", "0")
    assert split_parts(1, 50_000, 500, 24, False) == 1
    assert split_parts(1, 2000, 1000, 24, True) == 1
    monkeypatch.setenv("SEMICRF_CPU_SPLIT", "1")
    assert split_parts(1, 50_000, 500, 24, False) == 2
    monkeypatch.setenv("SEMICRF_CPU_SPLIT", "yes")
    with pytest.raises(ValueError, match=r"SEMICRF_CPU_SPLIT.*'yes'"):
        split_parts(1, 50_000, 500, 24, False)


def test_no_split_for_a_while_after_a_stall(threads, monkeypatch: pytest.MonkeyPatch) -> None:
    threads(2)
    monkeypatch.setattr(numba_support, "_last_stall", time.monotonic())
    assert split_parts(1, 2000, 1000, 24, True) == 1
    monkeypatch.setattr(
        numba_support, "_last_stall", time.monotonic() - numba_support.STALL_HOLD_S - 1
    )
    assert split_parts(1, 2000, 1000, 24, True) == 2


def test_split_rule(threads) -> None:
    threads(2)
    assert split_parts(1, 50_000, 500, 24, False) == 2  # one long sequence: both threads
    assert split_parts(1, 2000, 1000, 24, True) == 2
    assert split_parts(2, 5000, 16, 8, False) == 1  # as many sequences as threads
    assert split_parts(1, 5000, 16, 8, False) == 1  # a window of one block
    assert split_parts(1, 50_000, 30, 200, False) == 1
    assert split_parts(1, 60, 2000, 24, False) == 1  # a sequence too short for a thread start
    threads(8)
    assert split_parts(2, 50_000, 500, 24, False) == 4
    assert split_parts(1, 50_000, 500, 24, False) == 8
    assert split_parts(1, 50_000, 100, 24, False) == 2  # steps too small for more parts
    assert split_parts(1, 50_000, 64, 200, False) == 2  # two blocks
    threads(1)
    assert split_parts(1, 50_000, 500, 24, False) == 1


def test_plan_deals_whole_sequences_or_parts(threads) -> None:
    threads(2)
    chunks, sync, parts = plan_tasks(np.array([5, 90, 40, 60]), 4, 3, False)
    assert parts == 1
    rows = np.concatenate(chunks)
    assert len(chunks) == 2 and sorted(rows[:, 0].tolist()) == [0, 1, 2, 3]
    assert (rows[:, 1] == 0).all() and (rows[:, 2] == 1).all()
    assert sync.shape == (4, 2 * STRIDE)
    assert not np.delete(sync, STRIDE + 1, axis=1).any()  # zeros but for the stall limit
    assert (sync[:, STRIDE + 1] == numba_support.STALL_NS).all()
    chunks, sync, parts = plan_tasks(np.array([50_000]), 500, 24, False)
    assert parts == 2
    assert [c.tolist() for c in chunks] == [[[0, 0, 2]], [[0, 1, 2]]]
    assert sync.shape == (1, 3 * STRIDE)


def test_a_part_that_raises_releases_the_others(threads) -> None:
    """Part 1 waits at the barrier for part 0, which raises: the call raises, not hangs."""
    from semicrf_kernels._shared.numba_sync import step_barrier

    waited = []

    def work(chunk):
        b, part, parts = (int(x) for x in chunk[0])
        if part == 0:
            raise ValueError("part 0 failed")
        waited.append(step_barrier(sync[b], part, parts, 1))

    chunks = [np.array([[0, p, 2]], dtype=np.int64) for p in range(2)]
    sync = np.zeros((1, 3 * STRIDE), dtype=np.int64)
    done = threading.Event()

    def call():
        with pytest.raises(ValueError, match="part 0 failed"):
            run_tasks(work, chunks, sync)
        done.set()

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    assert done.wait(60), "run_tasks hung after a part raised"
    assert waited == [False]


def test_barrier_orders_the_steps() -> None:
    """Two threads each write their half of a row per step; after the step's barrier each reads
    the other's half: always the current step's values."""
    from semicrf_kernels._shared.numba_sync import step_barrier

    steps = 500
    rows = np.zeros((steps + 1, 2))
    sync = np.zeros(3 * STRIDE, dtype=np.int64)
    seen = {0: [], 1: []}

    def part(p):
        for t in range(1, steps + 1):
            rows[t, p] = t
            assert step_barrier(sync, p, 2, t)
            seen[p].append(rows[t, 1 - p])

    workers = [threading.Thread(target=part, args=(p,)) for p in (0, 1)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert seen[0] == seen[1] == [float(t) for t in range(1, steps + 1)]


def test_a_partner_that_never_arrives_stalls_the_scan() -> None:
    """Part 1 waits at step 1 for part 0, which never comes (as when another process holds
    its core): past the stall limit part 1 gives up and marks the scan stalled."""
    from semicrf_kernels._shared.numba_sync import now_ns, step_barrier

    sync = np.zeros(3 * STRIDE, dtype=np.int64)
    sync[2 * STRIDE + 1] = 20_000_000  # 20 ms
    step_barrier(sync, 1, 2, 0)  # compile before timing
    start = now_ns()
    assert not step_barrier(sync, 1, 2, 1)
    waited = now_ns() - start
    assert sync[2 * STRIDE] == numba_support.STALLED
    assert 4 * 20_000_000 <= waited < 2_000_000_000  # one wait of four limits: a partner gone
    sync[:] = 0  # no limit: a late partner is waited for
    sync[2 * STRIDE + 1] = 0
    late = threading.Timer(0.05, lambda: step_barrier(sync, 0, 2, 1))
    late.start()
    assert step_barrier(sync, 1, 2, 1)
    late.join()


def _late_partner(sync, steps, delay_s):
    """Part 0 of 2 arriving ``delay_s`` late at each of ``steps`` barriers (a Python thread)."""

    def run():
        for t in range(1, steps + 1):
            time.sleep(delay_s)
            if not step_barrier(sync, 0, 2, t):
                return

    from semicrf_kernels._shared.numba_sync import step_barrier

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_partner_late_at_every_step_stalls_the_scan() -> None:
    """Many waits of milliseconds, most of the scan spent waiting: stalled at about the tenth."""
    from semicrf_kernels._shared.numba_sync import step_barrier

    sync = np.zeros(3 * STRIDE, dtype=np.int64)
    sync[2 * STRIDE + 1] = 2_000_000  # 2 ms
    step_barrier(np.zeros(3 * STRIDE, dtype=np.int64), 1, 2, 0)  # compile first
    partner = _late_partner(sync, 40, 0.003)  # 3 ms: below the 8 ms of a partner gone
    done = []
    for t in range(1, 41):
        if not step_barrier(sync, 1, 2, t):
            break
        done.append(t)
    partner.join(10)
    assert sync[2 * STRIDE] == numba_support.STALLED
    assert len(done) < 30  # ten long waits are needed (fewer only if one wait passed 8 ms)


def test_one_long_wait_does_not_stall_the_scan() -> None:
    """A single late arrival (a host taking the core once) is waited for."""
    from semicrf_kernels._shared.numba_sync import step_barrier

    sync = np.zeros(3 * STRIDE, dtype=np.int64)
    sync[2 * STRIDE + 1] = 5_000_000  # 5 ms: waited past it, but in one wait of < 4 limits
    step_barrier(np.zeros(3 * STRIDE, dtype=np.int64), 1, 2, 0)
    partner = _late_partner(sync, 1, 0.008)
    assert step_barrier(sync, 1, 2, 1)
    partner.join(10)
    assert sync[2 * STRIDE] == 0


def test_now_ns_is_a_clock() -> None:
    from semicrf_kernels._shared.numba_sync import now_ns

    first = now_ns()
    time.sleep(0.02)
    assert 15_000_000 <= now_ns() - first < 2_000_000_000


def test_a_stalled_split_runs_again_on_one_thread(threads) -> None:
    """A split part that stalls makes every part return, and run_tasks runs the sequence again
    as one part, after ``reset``."""
    calls, resets = [], []

    def work(chunk):
        calls.append(chunk.tolist())
        if chunk[0, 2] > 1:
            sync[int(chunk[0, 0]), -STRIDE] = numba_support.STALLED

    sync = np.zeros((2, 3 * STRIDE), dtype=np.int64)
    chunks = [np.array([[1, p, 2]], dtype=np.int64) for p in range(2)]
    run_tasks(work, chunks, sync, resets.append)
    assert resets == [1] and calls[-1] == [[1, 0, 1]] and len(calls) == 3
    assert split_parts(1, 2000, 1000, 24, True) == 1  # held off after the stall


def test_numba_support_does_not_import_numba() -> None:
    assert "numba" not in numba_support.__dict__
