"""The demo's encoder, and the two models trained on top of it.

Both models share the same encoder architecture (a small dilated CNN followed by a
bidirectional GRU); only the output layer differs: a per-position softmax for the baseline,
a ``SemiMarkovCRFHead`` for the semi-CRF.
"""

from __future__ import annotations

import torch
from torch import nn


class Encoder(nn.Module):
    """``(batch, T, in_dim)`` -> ``(batch, T, hidden)`` contextual features."""

    def __init__(self, in_dim: int = 4, hidden: int = 32) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(in_dim, hidden, kernel_size=9, padding=4),
            nn.GELU(),
            nn.Conv1d(hidden, hidden, kernel_size=9, padding=8, dilation=2),
            nn.GELU(),
        )
        self.rnn = nn.GRU(hidden, hidden // 2, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)
        out, _ = self.rnn(h)
        return out


class SoftmaxTagger(nn.Module):
    """Baseline: encoder + per-position linear classifier trained with cross-entropy."""

    def __init__(self, num_classes: int, in_dim: int = 4, hidden: int = 32) -> None:
        super().__init__()
        self.encoder = Encoder(in_dim, hidden)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, T, C)``."""
        return self.classifier(self.encoder(x))

    def loss(self, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self(x)
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        return nn.functional.cross_entropy(logits[mask], labels[mask])

    @torch.no_grad()
    def predict(self, x: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        pred = self(x).argmax(-1)
        return [pred[b, : int(lengths[b])].tolist() for b in range(x.shape[0])]


class SemiCRFTagger(nn.Module):
    """Encoder + ``SemiMarkovCRFHead`` (the head projects the encoder's features to C scores)."""

    def __init__(
        self,
        num_classes: int,
        max_duration: int,
        in_dim: int = 4,
        hidden: int = 32,
        duration_distribution: str = "learned",
    ) -> None:
        super().__init__()
        from semicrf_nn import UncertaintySemiMarkovCRFHead

        self.encoder = Encoder(in_dim, hidden)
        self.crf = UncertaintySemiMarkovCRFHead(
            num_classes=num_classes,
            max_duration=max_duration,
            hidden_dim=hidden,
            duration_distribution=duration_distribution,
        )

    def loss(self, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # Mean NLL per position keeps the learning rate comparable with the baseline's.
        nll = self.crf.compute_loss(self.encoder(x), lengths, labels, reduction="none")
        return nll.sum() / lengths.sum()

    @torch.no_grad()
    def predict(self, x: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        result = self.crf.decode_with_traceback(self.encoder(x), lengths)
        out = []
        for b, segs in enumerate(result.segments):
            labels = [0] * int(lengths[b])
            for seg in segs:
                labels[seg.start : seg.end + 1] = [seg.label] * (seg.end - seg.start + 1)
            out.append(labels)
        return out

    @torch.no_grad()
    def boundary_marginals(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(batch, T)`` P(a segment starts at t)."""
        return self.crf.compute_boundary_marginals(self.encoder(x), lengths)
