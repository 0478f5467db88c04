"""PyTorch Lightning wrapper: an encoder plus a CRF head as a ``LightningModule``.

Available only when ``lightning`` (or the older ``pytorch_lightning``) is installed; importing
``semicrf_nn`` itself never needs it. Import it explicitly::

    from semicrf_nn.lightning import SemiCRFLightningModule
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - depends on the environment
    try:
        import pytorch_lightning as pl
    except ImportError as exc:
        raise ImportError(
            "semicrf_nn.lightning needs the 'lightning' package (pip install lightning)"
        ) from exc

from .gold import labels_to_segment_lists
from .head import SemiMarkovCRFHead
from .metrics import boundary_f1
from .uncertainty import UncertaintySemiMarkovCRFHead

__all__ = ["SemiCRFLightningModule"]


class SemiCRFLightningModule(pl.LightningModule):
    """Train ``crf`` on top of ``encoder`` with the NLL loss.

    Batches are dicts with ``inputs`` (what ``encoder`` takes, ``(batch, T, ...)``), ``lengths``
    ``(batch,)`` and, for training/validation, ``labels`` ``(batch, T)``.

    Args:
        encoder: module mapping ``inputs`` to ``(batch, T, hidden_dim)``.
        crf: the head.
        lr: AdamW learning rate of the encoder and the emission/boundary projections.
        crf_lr_scale: multiplier of ``lr`` for the CRF's structural parameters (transitions,
            duration distribution, sequence-boundary scores).
        weight_decay: AdamW weight decay of the encoder group.
        penalty_weight: weight of ``crf.parameter_penalty(penalty_p)`` added to the loss.
        penalty_p: the ``p`` of that penalty.
    """

    def __init__(
        self,
        encoder: nn.Module,
        crf: SemiMarkovCRFHead,
        lr: float = 1e-3,
        crf_lr_scale: float = 1.0,
        weight_decay: float = 0.0,
        penalty_weight: float = 0.0,
        penalty_p: float = 2.0,
    ) -> None:
        super().__init__()
        if not isinstance(crf, SemiMarkovCRFHead):
            raise TypeError(f"crf must be a SemiMarkovCRFHead, got {type(crf).__name__}")
        for name, value in (("lr", lr), ("crf_lr_scale", crf_lr_scale)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        self.encoder = encoder
        self.crf = crf
        self.lr = lr
        self.crf_lr_scale = crf_lr_scale
        self.weight_decay = weight_decay
        self.penalty_weight = penalty_weight
        self.penalty_p = penalty_p

    def forward(
        self, inputs: torch.Tensor, lengths: torch.Tensor
    ) -> dict[str, torch.Tensor | None]:
        """``crf(encoder(inputs), lengths)``: the partition dict."""
        return self.crf(self.encoder(inputs), lengths)

    def _loss(self, batch: dict[str, Any]) -> torch.Tensor:
        hidden = self.encoder(batch["inputs"])
        loss = self.crf.compute_loss(hidden, batch["lengths"], batch["labels"])
        if self.penalty_weight > 0:
            loss = loss + self.penalty_weight * self.crf.parameter_penalty(self.penalty_p)
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["lengths"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        n = len(batch["lengths"])
        self.log("val/loss", loss, sync_dist=True, batch_size=n)
        hidden = self.encoder(batch["inputs"])
        pred = self.crf.decode_with_traceback(hidden, batch["lengths"]).segments
        gold = labels_to_segment_lists(batch["labels"], batch["lengths"], batch["labels"].shape[1])
        self.log("val/boundary_f1", boundary_f1(pred, gold).f1, sync_dist=True, batch_size=n)
        if isinstance(self.crf, UncertaintySemiMarkovCRFHead):
            entropy = self.crf.compute_entropy_streaming(hidden, batch["lengths"])
            self.log("val/entropy_mean", entropy.mean(), sync_dist=True, batch_size=n)
        return loss

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        result = self.crf.decode_with_traceback(self.encoder(batch["inputs"]), batch["lengths"])
        return {"scores": result.scores, "segments": result.segments, "lengths": batch["lengths"]}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        structural = [
            p
            for name, p in self.crf.named_parameters()
            if not (name.startswith("projection") or name.startswith("proj_"))
        ]
        ids = {id(p) for p in structural}
        emission = [p for p in self.parameters() if id(p) not in ids]
        return torch.optim.AdamW(
            [
                {"params": emission, "lr": self.lr, "weight_decay": self.weight_decay},
                {"params": structural, "lr": self.lr * self.crf_lr_scale, "weight_decay": 0.0},
            ]
        )
