"""Train a semi-CRF with PyTorch Lightning's ``strategy="ddp"``.

    python examples/distributed/lightning_ddp.py --devices 2            # 2 processes (CPU or GPUs)
    python examples/distributed/lightning_ddp.py --devices 1 --epochs 1
    python examples/distributed/lightning_ddp.py --devices 2 --json out.json   # + measurements

``semicrf_nn.lightning.SemiCRFLightningModule`` wraps an encoder and a CRF head: training steps
minimise the NLL, validation steps log the loss, the boundary F1 of the Viterbi segments and
(with an ``UncertaintySemiMarkovCRFHead``) the mean entropy. Lightning's DDP strategy starts one
process per device itself (it re-runs this script, hence the ``__main__`` guard) and gives each
its own share of the data through a distributed sampler.

A callback times every training step (forward, backward with the gradient all-reduce, optimizer
step; the device is synchronised at both ends, data loading is not counted) after
``--warmup-steps`` untimed ones, and at the end of training checks that every rank holds the same
parameters. Rank 0 prints the throughput in sequences per second (all ranks together) and, with
``--json``, writes it with the validation metrics.

Needs the optional ``lightning`` package (``pip install 'flash-semicrf[lightning]'``); without
it the script says so and exits cleanly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch


def _lightning():
    try:
        import lightning.pytorch as pl
    except ImportError:
        try:
            import pytorch_lightning as pl
        except ImportError:
            return None
    return pl


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    """Stack a list of single sequences into a batch padded to its longest sequence."""
    lengths = torch.stack([it["lengths"] for it in items])
    t_max = int(lengths.max())
    return {
        "inputs": torch.stack([it["inputs"][:t_max] for it in items]),
        "labels": torch.stack([it["labels"][:t_max] for it in items]),
        "lengths": lengths,
    }


def throughput_callback(pl, warmup_steps: int):
    """A Lightning callback that times training steps and checks parameter equality across ranks."""

    class Throughput(pl.Callback):
        def __init__(self) -> None:
            self.steps = 0
            self.timed_steps = 0
            self.sequences = 0
            self.seconds = 0.0
            self.result: dict = {}

        @staticmethod
        def _sync(module) -> None:
            if module.device.type == "cuda":
                torch.cuda.synchronize(module.device)

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            self._sync(module)
            self._start = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            self._sync(module)
            elapsed = time.perf_counter() - self._start
            self.steps += 1
            if self.steps > warmup_steps:
                self.timed_steps += 1
                self.seconds += elapsed
                self.sequences += len(batch["lengths"])

        def on_train_end(self, trainer, module) -> None:
            # Collectives run on every rank, inside fit, while the process group exists.
            strategy = trainer.strategy
            stats = torch.tensor([self.sequences, self.seconds], device=module.device)
            total = strategy.reduce(stats.clone(), reduce_op="sum")
            flat = torch.cat([p.detach().flatten() for p in module.parameters()])
            gathered = strategy.all_gather(flat)
            gathered = gathered.reshape(trainer.world_size, -1)
            mean_seconds = float(total[1]) / trainer.world_size
            self.result = {
                "world_size": trainer.world_size,
                "timed_steps_per_rank": self.timed_steps,
                "sequences": int(total[0]),
                "seconds_per_rank": mean_seconds,
                # None when every step was a warm-up step (raise --train-size).
                "sequences_per_second": float(total[0]) / mean_seconds if total[0] else None,
                "parameters_in_sync": bool((gathered == gathered[0]).all()),
            }

    return Throughput()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=2, help="processes (one per device)")
    p.add_argument("--accelerator", default="auto", help="auto, cpu or gpu")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-size", type=int, default=64)
    p.add_argument("--val-size", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=8, help="per process")
    p.add_argument("--seq-len", type=int, default=200)
    p.add_argument("--max-duration", type=int, default=60)
    p.add_argument("--warmup-steps", type=int, default=2, help="untimed first steps (Triton JIT)")
    p.add_argument("--json", default=None, help="write the measurements here (rank 0)")
    args = p.parse_args()

    pl = _lightning()
    if pl is None:
        print(
            "lightning is not installed; this example needs it: "
            "pip install 'flash-semicrf[lightning]' (or pip install lightning). Skipping."
        )
        sys.exit(0)

    from flash_semicrf.demo.data import make_gene_dataset
    from flash_semicrf.demo.model import Encoder
    from semicrf_nn import UncertaintySemiMarkovCRFHead
    from semicrf_nn.lightning import SemiCRFLightningModule

    pl.seed_everything(0, workers=True)
    hidden = 32
    module = SemiCRFLightningModule(
        encoder=Encoder(4, hidden),
        crf=UncertaintySemiMarkovCRFHead(
            num_classes=3, max_duration=args.max_duration, hidden_dim=hidden
        ),
        lr=5e-3,
    )

    def loader(size: int, seed: int, shuffle: bool) -> torch.utils.data.DataLoader:
        data = make_gene_dataset(size, max_len=args.seq_len, seed=seed)
        items = [
            {"inputs": data.inputs[i], "labels": data.labels[i], "lengths": data.lengths[i]}
            for i in range(len(data))
        ]
        return torch.utils.data.DataLoader(
            items, batch_size=args.batch_size, shuffle=shuffle, collate_fn=collate
        )

    timer = throughput_callback(pl, args.warmup_steps)
    trainer = pl.Trainer(
        accelerator=args.accelerator,
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        max_epochs=args.epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, loader(args.train_size, 0, True), loader(args.val_size, 1, False))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if trainer.is_global_zero:
        result = {
            **timer.result,
            "validation": metrics,
            "device": str(trainer.strategy.root_device),
        }
        speed = result["sequences_per_second"]
        print(
            f"world_size={trainer.world_size}: "
            f"{'n/a' if speed is None else f'{speed:.1f}'} sequences/s "
            f"({result['timed_steps_per_rank']} timed steps per rank), parameters in sync: "
            f"{result['parameters_in_sync']}, validation: {metrics}"
        )
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
        if not all(torch.isfinite(torch.tensor(v)) for v in metrics.values()):
            raise SystemExit("non-finite validation metrics")
        if not result["parameters_in_sync"]:
            raise SystemExit("parameters differ across ranks")
        print("ok")


if __name__ == "__main__":
    main()
