"""The compiled kernels' threads: the split rule, the task plan, the step barrier, and that a
part that raises does not leave the others waiting."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from semicrf_kernels._shared import numba_support
from semicrf_kernels._shared.numba_support import STRIDE, plan_tasks, run_tasks, split_parts

pytest.importorskip("numba")


@pytest.fixture(autouse=True)
def _split_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # the one-sequence split is opt-in; these tests are about it
    monkeypatch.setenv("SEMICRF_CPU_SPLIT", "1")


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_split_is_opt_in(threads, monkeypatch: pytest.MonkeyPatch) -> None:
    threads(2)
    monkeypatch.delenv("SEMICRF_CPU_SPLIT")
    assert split_parts(1, 50_000, 500, 24, False) == 1
    monkeypatch.setenv("SEMICRF_CPU_SPLIT", "0")
    assert split_parts(1, 50_000, 500, 24, False) == 1
    monkeypatch.setenv("SEMICRF_CPU_SPLIT", "1")
    assert split_parts(1, 50_000, 500, 24, False) == 2


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
    assert sync.shape == (4, 2 * STRIDE) and not sync.any()
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


def test_numba_support_does_not_import_numba() -> None:
    assert "numba" not in numba_support.__dict__
