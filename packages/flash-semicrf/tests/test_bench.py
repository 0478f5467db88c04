"""``flash-semicrf bench`` runs its CPU suite and reports clear errors for bad devices."""

from __future__ import annotations

import pytest
import torch

from flash_semicrf.bench import format_table, make_inputs, run_bench


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
