"""DistributedDataParallel on the CPU: two gloo processes train one step of a model with the head;
the gradients they end up with equal the single-process gradients of the same global batch.

The loss is ``compute_loss(..., reduction="mean")`` over each rank's local batch; DDP averages
the ranks' gradients, so with equal local batch sizes the result is the gradient of the mean
over the global batch, which is what one process computes. Each rank pads its shard only to its
own longest sequence (padding never changes a result), so this also checks padding invariance
across processes. Agreement is to 1e-6 (float32 all-reduce sums in another order).

This file is also the workers' script: the test runs it in a fresh interpreter, which spawns the
two processes (``torch.multiprocessing`` needs an importable main module; pytest's importlib
mode does not give the test module one).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from semicrf_nn import SemiMarkovCRFHead

WORLD_SIZE = 2
B, T, C, K, F, H = 4, 11, 3, 4, 5, 8


class Tagger(nn.Module):
    """A small encoder and a CRF head; ``forward`` returns the loss (DDP wraps ``forward``)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(F, H), nn.Tanh())
        self.crf = SemiMarkovCRFHead(
            C, K, hidden_dim=H, use_boundary_projections=True, duration_distribution="poisson"
        )

    def forward(self, x, lengths, labels):
        return self.crf.compute_loss(self.encoder(x), lengths, labels, reduction="mean")


def build_model() -> Tagger:
    torch.manual_seed(0)
    return Tagger()


def global_batch():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, F, generator=g)
    lengths = torch.tensor([11, 4, 9, 6])  # shards pad to 11 and 9
    labels = (torch.arange(T) // 3 + torch.randint(0, C, (B, 1), generator=g)) % C
    return x, lengths, labels


def shard(rank: int):
    """Rank ``rank``'s equal share of the global batch, padded to its own longest sequence."""
    x, lengths, labels = global_batch()
    per_rank = B // WORLD_SIZE
    rows = slice(rank * per_rank, (rank + 1) * per_rank)
    t_max = int(lengths[rows].max())
    return x[rows, :t_max], lengths[rows], labels[rows, :t_max]


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE)
    try:
        model = nn.parallel.DistributedDataParallel(build_model())
        loss = model(*shard(rank))
        loss.backward()
        grads = {name: p.grad for name, p in model.module.named_parameters()}
        torch.save({"loss": loss.detach(), "grads": grads}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with the gloo backend is not available",
)
def test_ddp_gradients_equal_single_process_gradients(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, __file__, str(tmp_path), str(_free_port())],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    model = build_model()
    loss = model(*global_batch())
    loss.backward()
    expected = dict(model.named_parameters())
    local_losses = []
    for rank in range(WORLD_SIZE):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        local_losses.append(result["loss"])
        assert result["grads"].keys() == expected.keys()
        for name, grad in result["grads"].items():
            torch.testing.assert_close(grad, expected[name].grad, rtol=0, atol=1e-6, msg=name)
    # The local means average to the global mean (equal shard sizes).
    torch.testing.assert_close(torch.stack(local_losses).mean(), loss.detach(), rtol=1e-6, atol=0)


if __name__ == "__main__":
    torch.multiprocessing.spawn(_worker, args=(int(sys.argv[2]), sys.argv[1]), nprocs=WORLD_SIZE)
