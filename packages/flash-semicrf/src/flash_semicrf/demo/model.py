"""The demo's encoder, and the two models trained on top of it.

Both models share the same encoder architecture, a small dilated residual CNN over the one-hot
bases (fast on a CPU, unlike a recurrent net; its receptive field of about 60 bases sees the
composition of a region and the motifs at its edges). Only the output layer differs:

* :class:`SoftmaxTagger`, the baseline: a per-position linear classifier trained with
  cross-entropy, decoded by a per-position argmax.
* :class:`SemiCRFTagger`: a ``SemiMarkovCRFHead`` (the uncertainty subclass, for the boundary
  marginals of the figure) trained with the exact negative log-likelihood and decoded by
  Viterbi. It adds what a per-position classifier cannot express:

  - a learned ``(K, C)`` duration table (each region type's length distribution);
  - boundary projections, scoring a segment's first and last base from the encoder features
    there (where the start/stop codons and splice sites are);
  - the gene grammar as a ``transition_mask``: intergenic -> exon -> (intron -> exon)* ->
    intergenic. When ``K`` covers the longest region, a label cannot follow itself either,
    so every region is exactly one segment.
"""

from __future__ import annotations

import torch
from torch import nn

from .data import GRAMMAR, LONGEST_REGION


def grammar_mask(num_classes: int, max_duration: int) -> torch.Tensor:
    """``(C, C)`` bool: True where ``transition[c_prev, c]`` is allowed by the gene grammar.

    Self-transitions (two adjacent segments of one label) are allowed only when
    ``max_duration < LONGEST_REGION``: then a long region must be split into several segments.
    """
    mask = torch.zeros(num_classes, num_classes, dtype=torch.bool)
    for prev, nxt in GRAMMAR:
        mask[prev, nxt] = True
    if max_duration < LONGEST_REGION:
        mask.fill_diagonal_(True)
    return mask


class Encoder(nn.Module):
    """``(batch, T, in_dim)`` -> ``(batch, T, hidden)`` contextual features.

    A width-9 convolution, then residual blocks of width-5 convolutions with dilations 2, 4
    and 8: a receptive field of 9 + 4 * (2 + 4 + 8) = 65 positions.
    """

    def __init__(self, in_dim: int = 4, hidden: int = 32, dilations=(2, 4, 8)) -> None:
        super().__init__()
        self.inp = nn.Conv1d(in_dim, hidden, kernel_size=9, padding=4)
        self.blocks = nn.ModuleList(
            nn.Conv1d(hidden, hidden, kernel_size=5, padding=2 * d, dilation=d) for d in dilations
        )
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(batch, T, hidden)`` of one-hot bases ``x`` ``(batch, T, in_dim)``."""
        h = self.act(self.inp(x.transpose(1, 2)))
        for conv in self.blocks:
            h = h + self.act(conv(h))
        return h.transpose(1, 2)


class SoftmaxTagger(nn.Module):
    """Baseline: encoder + per-position linear classifier trained with cross-entropy."""

    def __init__(self, num_classes: int, in_dim: int = 4, hidden: int = 32) -> None:
        super().__init__()
        self.encoder = Encoder(in_dim, hidden)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, T, C)`` of inputs ``x`` ``(batch, T, in_dim)``."""
        return self.classifier(self.encoder(x))

    def loss(self, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the valid positions (scalar)."""
        logits = self(x)
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        return nn.functional.cross_entropy(logits[mask], labels[mask])

    @torch.no_grad()
    def predict(self, x: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """Per-position argmax labels, one list of ``lengths[b]`` ints per sequence."""
        pred = self(x).argmax(-1).cpu()
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
            transition_mask=grammar_mask(num_classes, max_duration),
            use_boundary_projections=True,
        )

    def loss(self, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """NLL per valid position (scalar): keeps the learning rate comparable with the baseline."""
        nll = self.crf.compute_loss(self.encoder(x), lengths, labels, reduction="none")
        return nll.sum() / lengths.sum()

    @torch.no_grad()
    def predict(self, x: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """Viterbi labels, one list of ``lengths[b]`` ints per sequence."""
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
        """``(batch, T)`` float ``P(a segment starts at t)`` (1 at ``t = 0``, 0 at padding)."""
        return self.crf.compute_boundary_marginals(self.encoder(x), lengths)
