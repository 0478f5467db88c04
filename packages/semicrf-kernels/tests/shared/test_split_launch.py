"""Tests of the split scan's host side (``_shared/split_launch.py``): the rule and the launches'
order. The kernels themselves are tested in ``test_triton_split_scan.py``."""

from __future__ import annotations

import pytest
import torch

from semicrf_kernels._shared import split_launch


@pytest.fixture(autouse=True)
def _no_override():
    split_launch.SPLIT_OVERRIDE.clear()
    yield
    split_launch.SPLIT_OVERRIDE.clear()


def test_short_windows_are_not_split():
    # K = 32 < 2 S: the plain serial scan
    assert split_launch.split_config(1000, 32, 32, 8, 132, torch.float32) is None
    # one super-block only: nothing to split
    assert split_launch.split_config(60, 3000, 32, 8, 132, torch.float32) is None


def test_super_block_follows_the_window_and_the_pairing():
    cfg = split_launch.split_config
    # a scan alone: 8-block super-blocks, partials merged by the reduce kernel
    for T, K in ((400_000, 3000), (100_000, 200), (1_000_000, 1000)):
        alone = cfg(T, K, 32, 8, 132, torch.float32)
        assert (alone.superblock, alone.reduce) == (64, True)
    # paired with another scan: 16 blocks where K >= 32 blocks, else 8 blocks without reduce
    for T, K in ((400_000, 3000), (1_000_000, 1000), (100_000, 256)):
        paired = cfg(T, K, 32, 8, 132, torch.float32, paired=True)
        assert (paired.superblock, paired.reduce) == (128, True)
    paired = cfg(100_000, 200, 32, 8, 132, torch.float32, paired=True)
    assert (paired.superblock, paired.reduce) == (64, False)
    # 64 <= K < 128: a scan alone takes 32-position super-blocks (labels up to 32), a paired one
    # stays unsplit; a wide label set (block_p 4) with K = 64 is not split, alone or paired
    alone = cfg(10_000, 100, 32, 8, 132, torch.float32)
    assert (alone.superblock, alone.reduce) == (32, True)
    assert cfg(10_000, 64, 32, 8, 132, torch.float32).superblock == 32
    assert cfg(10_000, 63, 32, 8, 132, torch.float32) is None
    assert cfg(10_000, 127, 32, 8, 132, torch.float32).superblock == 32
    assert cfg(10_000, 128, 32, 8, 132, torch.float32).superblock == 64  # K >= 128: 64 as before
    assert cfg(32, 100, 32, 8, 132, torch.float32) is None  # one super-block: nothing to split
    assert cfg(10_000, 100, 32, 8, 132, torch.float32, paired=True) is None
    for paired in (False, True):
        assert cfg(10_000, 100, 64, 8, 132, torch.float32, paired) is None
        assert cfg(2048, 64, 128, 4, 132, torch.float32, paired) is None
    # the super-block counts positions: a wider label set (4-position blocks) keeps it
    assert cfg(100_000, 200, 64, 4, 132, torch.float32).superblock == 64
    assert cfg(400_000, 3000, 64, 4, 132, torch.float32, paired=True).superblock == 128


@pytest.mark.parametrize("paired", [False, True])
@pytest.mark.parametrize("sms", [4, 114, 132])
@pytest.mark.parametrize("K, block_c", [(300, 32), (1000, 16), (3000, 32), (257, 128)])
def test_long_windows_fill_the_device(sms, K, block_c, paired):
    cfg = split_launch.split_config(400_000, K, block_c, 8, sms, torch.float32, paired)
    assert cfg is not None
    assert cfg.superblock % 8 == 0
    # every far row is covered, and the grid has at least two programs per multiprocessor
    assert cfg.nsplit * cfg.rows_per_split >= K
    assert (cfg.nsplit - 1) * cfg.rows_per_split < K
    assert cfg.rows_per_split % cfg.block_sf == 0
    # (or, where K is too short for that, slices of one tile each)
    programs = -(-cfg.superblock // cfg.block_pf) * cfg.nsplit
    assert programs >= 2 * sms or cfg.rows_per_split == cfg.block_sf
    # a far tile stays within its register budget
    assert cfg.block_pf * cfg.block_sf * block_c <= 4096


def test_float64_halves_the_far_tile():
    f32 = split_launch.split_config(400_000, 3000, 32, 8, 132, torch.float32)
    f64 = split_launch.split_config(400_000, 3000, 32, 8, 132, torch.float64)
    assert f64.block_sf * 2 == f32.block_sf


def test_override_forces_the_split_and_its_tiles():
    split_launch.SPLIT_OVERRIDE.update(enable=True, superblock=4, rows_per_split=2, block_sf=2)
    cfg = split_launch.split_config(12, 3, 4, 2, 4, torch.float32)
    assert cfg.superblock == 4 and cfg.rows_per_split == 2 and cfg.nsplit == 2
    assert not cfg.overlap  # the alternating schedule: the overlapped one measured slower
    split_launch.SPLIT_OVERRIDE["overlap"] = True
    assert split_launch.split_config(12, 3, 4, 2, 4, torch.float32).overlap


def test_interleave_alternates_and_runs_every_step():
    order = []

    def steps(name, n):
        for i in range(n):
            order.append((name, i))
            yield

    split_launch.interleave((None, steps("bwd", 3)), (None, steps("fwd", 2)))
    assert order == [("bwd", 0), ("fwd", 0), ("bwd", 1), ("fwd", 1), ("bwd", 2)]


def test_run_launches_exhausts_the_generator():
    seen = []

    def steps():
        for i in range(4):
            seen.append(i)
            yield

    split_launch.run_launches(steps())
    assert seen == [0, 1, 2, 3]
