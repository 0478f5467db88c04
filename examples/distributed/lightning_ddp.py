"""Train a semi-CRF with PyTorch Lightning's ``strategy="ddp"``.

    python examples/distributed/lightning_ddp.py --devices 2            # 2 processes (CPU or GPUs)
    python examples/distributed/lightning_ddp.py --devices 1 --epochs 1

``semicrf_nn.lightning.SemiCRFLightningModule`` wraps an encoder and a CRF head: training steps
minimise the NLL, validation steps log the loss, the boundary F1 of the Viterbi segments and
(with an ``UncertaintySemiMarkovCRFHead``) the mean entropy. Lightning's DDP strategy starts one
process per device itself (it re-runs this script, hence the ``__main__`` guard) and gives each
its own share of the data through a distributed sampler.

Needs the optional ``lightning`` package (``pip install 'flash-semicrf[lightning]'``); without
it the script says so and exits cleanly.
"""

from __future__ import annotations

import argparse
import sys

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

    trainer = pl.Trainer(
        accelerator=args.accelerator,
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        max_epochs=args.epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, loader(args.train_size, 0, True), loader(args.val_size, 1, False))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if trainer.is_global_zero:
        print(f"world_size={trainer.world_size} validation: {metrics}")
        if not all(torch.isfinite(torch.tensor(v)) for v in metrics.values()):
            raise SystemExit("non-finite validation metrics")
        print("ok")


if __name__ == "__main__":
    main()
