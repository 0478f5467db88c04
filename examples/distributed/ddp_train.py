"""Train the demo's semi-CRF tagger with DistributedDataParallel, and measure its throughput.

Launch one process per device with torchrun::

    torchrun --standalone --nproc_per_node 2 examples/distributed/ddp_train.py          # CPU or GPU
    torchrun --standalone --nproc_per_node 2 examples/distributed/ddp_train.py --steps 50 --json out.json

On CUDA every process drives the GPU ``LOCAL_RANK`` with the ``nccl`` backend (the head's
kernels are Triton there); on the CPU the processes use ``gloo`` and the PyTorch kernels.
Launched without torchrun, it runs as a single process.

The model is ``flash_semicrf.demo``'s: a convolutional + GRU encoder and an
``UncertaintySemiMarkovCRFHead`` on synthetic gene-structure data, the same data on every rank
(generated from one seed), each rank training on its own share of every global batch. The loss
is the demo's (NLL per valid position of the local batch); DDP averages the gradients. After
training, the script checks that every rank holds the same parameters, prints the throughput in
sequences per second (global: all ranks together), and ends with ``ok``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.distributed as dist
from torch import nn

from flash_semicrf.demo.data import make_gene_dataset
from flash_semicrf.demo.model import SemiCRFTagger


class LossOf(nn.Module):
    """DDP synchronises gradients in the hooks of ``forward``: make the loss the forward."""

    def __init__(self, tagger: SemiCRFTagger) -> None:
        super().__init__()
        self.tagger = tagger

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor):
        return self.tagger.loss(x, lengths, labels)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20, help="timed optimisation steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed first steps (Triton JIT)")
    p.add_argument("--batch-size", type=int, default=8, help="sequences per process and step")
    p.add_argument("--seq-len", type=int, default=400, help="padded length T")
    p.add_argument("--max-duration", type=int, default=80, help="K, the longest segment")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--json", default=None, help="write the measurements here (rank 0)")
    return p.parse_args()


def setup(device_name: str) -> tuple[int, int, torch.device]:
    """Join the process group torchrun describes (or run alone); return rank, size, device."""
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = torch.cuda.is_available() if device_name == "auto" else device_name == "cuda"
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
        if "OMP_NUM_THREADS" not in os.environ:
            # Ranks share the CPU: split its cores between them (no oversubscription).
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world)
    return rank, world, device


def parameters_in_sync(model: nn.Module, world: int) -> bool:
    """Whether every rank holds exactly rank 0's parameters."""
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    if world == 1:
        return True
    reference = flat.clone()
    dist.broadcast(reference, src=0)
    differs = (flat != reference).any().to(torch.int32)
    dist.all_reduce(differs, op=dist.ReduceOp.MAX)
    return not bool(differs)


def main() -> None:
    args = parse_args()
    rank, world, device = setup(args.device)
    torch.manual_seed(args.seed)  # the same initial weights everywhere (DDP also broadcasts)
    tagger = SemiCRFTagger(3, args.max_duration, hidden=args.hidden).to(device)
    model = LossOf(tagger)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    total = args.warmup + args.steps
    global_batch = args.batch_size * world
    data = make_gene_dataset(global_batch * total, max_len=args.seq_len, seed=args.seed)

    losses = []
    for step in range(total):
        if step == args.warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if world > 1:
                dist.barrier()
            start = time.perf_counter()
        # This rank's share of global batch `step`, padded to its own longest sequence.
        first = step * global_batch + rank * args.batch_size
        rows = slice(first, first + args.batch_size)
        lengths = data.lengths[rows]
        t_max = int(lengths.max())
        x = data.inputs[rows, :t_max].to(device)
        labels = data.labels[rows, :t_max].to(device)
        loss = model(x, lengths.to(device), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    if world > 1:
        dist.barrier()
    elapsed = time.perf_counter() - start
    throughput = args.steps * global_batch / elapsed
    in_sync = parameters_in_sync(model, world)

    if rank == 0:
        result = {
            "world_size": world,
            "device": str(device.type),
            "steps": args.steps,
            "batch_size_per_process": args.batch_size,
            "seq_len": args.seq_len,
            "max_duration": args.max_duration,
            "seconds": elapsed,
            "sequences_per_second": throughput,
            "first_loss": losses[0],
            "last_loss": losses[-1],
            "parameters_in_sync": in_sync,
        }
        print(
            f"world_size={world} device={device.type} T={args.seq_len} K={args.max_duration} "
            f"batch={args.batch_size}/process: {throughput:.1f} sequences/s "
            f"({args.steps} steps in {elapsed:.2f} s); loss {losses[0]:.3f} -> {losses[-1]:.3f}; "
            f"parameters in sync across ranks: {in_sync}"
        )
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
    if world > 1:
        dist.barrier()  # every rank is past its last collective before any tears gloo down
        dist.destroy_process_group()
    if not in_sync:
        raise SystemExit("ranks hold different parameters after training")
    if rank == 0:
        print("ok")


if __name__ == "__main__":
    main()
