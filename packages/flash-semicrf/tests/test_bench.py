"""``flash-semicrf bench`` runs its CPU suite and reports clear errors for bad devices."""

from __future__ import annotations

import pytest
import torch

from flash_semicrf.bench import (
    card_name,
    format_table,
    git_commit,
    make_inputs,
    run_bench,
    time_cuda,
)


def test_quick_cpu_table(tmp_path) -> None:
    table = run_bench(quick=True, device="cpu", out=str(tmp_path))
    lines = table.splitlines()
    assert lines[0].startswith("device: ")
    row = next(line for line in lines if line.startswith("| 2x128x8x4 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # forward, Viterbi score, Viterbi + path and fwd+bwd were all measured (positive ms).
    assert all(float(c) > 0 for c in cells[1:5])
    written = list(tmp_path.glob("streaming_cpu_*.md"))
    assert len(written) == 1 and "2x128x8x4" in written[0].read_text()


def test_inputs_are_valid_cumulative_scores() -> None:
    cum, trans, db, lengths = make_inputs(3, 50, 4, 5, torch.device("cpu"))
    assert cum.shape == (3, 51, 5) and trans.shape == (5, 5) and db.shape == (4, 5)
    assert torch.equal(cum[:, 0], torch.zeros(3, 5))
    assert cum[:, -1].abs().max() < 1e-3  # zero-centred scores sum to ~0
    assert torch.equal(lengths, torch.full((3,), 50))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_make_inputs_shapes_dtypes_and_scale(dtype) -> None:
    B, T, K, C = 2, 40, 6, 3
    cum, trans, db, lengths = make_inputs(B, T, K, C, "cpu", seed=3, dtype=dtype, scale=0.5)
    assert cum.shape == (B, T + 1, C) and trans.shape == (C, C) and db.shape == (K, C)
    assert lengths.shape == (B,) and lengths.dtype == torch.int64
    assert cum.dtype == trans.dtype == db.dtype == dtype
    assert torch.equal(cum[:, 0], torch.zeros(B, C, dtype=dtype))
    # Zero-centred scores (centred in float32): the total over time is about 0.
    assert cum[:, -1].double().abs().max() < 1e-3
    # The same draws at every dtype, cast once from float64 / float32.
    ref = make_inputs(B, T, K, C, "cpu", seed=3, dtype=torch.float64, scale=0.5)
    assert all(torch.equal(x, r.to(x.dtype)) for x, r in zip((cum, trans, db), ref[:3]))
    # `scale` multiplies transition and duration bias only.
    small = make_inputs(B, T, K, C, "cpu", seed=3, dtype=torch.float64)  # scale 0.1
    assert torch.equal(small[0], ref[0])
    for x, r in zip(small[1:3], ref[1:3]):
        torch.testing.assert_close(5 * x, r, rtol=1e-6, atol=0)


def test_make_inputs_is_seeded() -> None:
    one = make_inputs(2, 10, 3, 4, "cpu", seed=1)
    assert all(torch.equal(a, b) for a, b in zip(one, make_inputs(2, 10, 3, 4, "cpu", seed=1)))
    assert not torch.equal(one[0], make_inputs(2, 10, 3, 4, "cpu", seed=2)[0])


def test_git_commit_and_card_name(monkeypatch) -> None:
    monkeypatch.setenv("GIT_COMMIT", "abc1234")
    assert git_commit() == "abc1234"
    monkeypatch.delenv("GIT_COMMIT")
    assert git_commit()  # a short sha, or "unknown" outside a checkout
    assert card_name("cpu") == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("long", [False, True])
def test_time_cuda(long: bool) -> None:
    x = torch.randn(256, 256, device="cuda")
    assert time_cuda(lambda: x @ x, long=long, warmup=1, rep=5) > 0


@pytest.mark.parametrize(("device", "match"), [("tpu9", "not a device"), ("meta", "cpu or cuda")])
def test_bad_device(device, match) -> None:
    with pytest.raises(ValueError, match=match):
        run_bench(quick=True, device=device)


def test_cuda_requested_without_cuda() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        run_bench(quick=True, device="cuda")


def test_format_table_marks_missing_values() -> None:
    from flash_semicrf.bench import Row

    table = format_table([Row(config="1x2x3x4", note="out of memory")], torch.device("cpu"))
    assert "| 1x2x3x4 | - | - | - | - | - | - | - | out of memory |" in table
