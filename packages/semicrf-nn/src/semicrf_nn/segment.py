"""Decoded segments: ``Segment`` and ``ViterbiResult``.

The kernels layer returns Viterbi paths as tensors; these light Python containers are what
users see after one transfer to the host (see ``SemiMarkovCRFHead.decode_with_traceback``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

__all__ = ["Segment", "ViterbiResult"]


@dataclass
class Segment:
    """One labelled segment of a sequence.

    Attributes:
        start: first position covered (0-based, inclusive).
        end: last position covered (**inclusive**), so ``end >= start``.
        label: label index in ``[0, C)``.
        score: the segment's contribution to the path score: content (sum of the per-position
            scores over ``[start, end]``), duration bias, boundary scores, and the transition
            from the previous segment's label, or for the first segment the start score
            ``logsumexp_{c'} transition[c', label]``. A Viterbi path's segment scores add up to
            its Viterbi score. Segments built from gold labels (``labels_to_segment_lists``) have
            score ``0.0``.
    """

    start: int
    end: int
    label: int
    score: float = 0.0

    @property
    def duration(self) -> int:
        """Number of positions covered, ``end - start + 1``."""
        return self.end - self.start + 1


class ViterbiResult(NamedTuple):
    """Result of ``decode_with_traceback``.

    Attributes:
        scores: ``(batch,)`` float tensor, the Viterbi (best path) score of each sequence.
        segments: ``segments[b]`` is the best segmentation of sequence ``b`` as a list of
            :class:`Segment` in order; it tiles ``[0, lengths[b])`` exactly. It is empty when the
            sequence has no allowed segmentation (score ``-inf``).
    """

    scores: torch.Tensor
    segments: list[list[Segment]]
