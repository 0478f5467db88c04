"""A synthetic gene-structure segmentation data set, generated on the fly (no download).

Each sequence is DNA-like: intergenic regions, then one or more genes made of exons separated
by introns, then intergenic again. Every region type has its own length distribution (a shifted
negative binomial, truncated to ``[min_len, max_len]``) and its own base composition; introns
start with the splice donor ``GT`` and end with the acceptor ``AG`` (as in real genes), and a
fraction of the bases is replaced by uniform noise. A per-position classifier sees composition
only through a noisy window, so it fragments long regions; a semi-CRF with duration priors
does not. That is the point the demo makes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

INTERGENIC, EXON, INTRON = 0, 1, 2
LABEL_NAMES = ("intergenic", "exon", "intron")
BASES = "ACGT"


@dataclass(frozen=True)
class RegionSpec:
    """Length distribution and base composition of one region type."""

    mean_len: float
    min_len: int
    max_len: int
    composition: tuple[float, float, float, float]  # P(A), P(C), P(G), P(T)


REGIONS: dict[int, RegionSpec] = {
    INTERGENIC: RegionSpec(45.0, 15, 80, (0.36, 0.14, 0.14, 0.36)),
    EXON: RegionSpec(28.0, 8, 60, (0.14, 0.36, 0.36, 0.14)),
    INTRON: RegionSpec(35.0, 12, 70, (0.22, 0.14, 0.40, 0.24)),
}


@dataclass
class GeneDataset:
    """Tensors of one split.

    Attributes:
        inputs: ``(num_seqs, T, 4)`` float32 one-hot bases (A, C, G, T).
        labels: ``(num_seqs, T)`` int64 region labels (0 intergenic, 1 exon, 2 intron);
            positions ``>= lengths[b]`` hold 0 and are padding.
        lengths: ``(num_seqs,)`` int64 valid lengths.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    lengths: torch.Tensor

    def __len__(self) -> int:
        return self.inputs.shape[0]


def _region_length(spec: RegionSpec, gen: torch.Generator) -> int:
    # Negative binomial (sum of 4 geometric draws) above the minimum: peaked, unlike a
    # geometric, so a duration prior has something to learn.
    shape = 4
    mean_extra = spec.mean_len - spec.min_len
    p = shape / (shape + mean_extra)
    u = torch.rand(shape, generator=gen).clamp_min(1e-12)
    n = int(torch.floor(torch.log(u) / torch.log(torch.tensor(1.0 - p))).sum().item())
    return max(spec.min_len, min(spec.max_len, spec.min_len + n))


def _label_sequence(length: int, gen: torch.Generator) -> list[tuple[int, int]]:
    """Regions ``(label, length)`` covering exactly ``length`` positions."""
    regions: list[tuple[int, int]] = []
    total = 0
    state = INTERGENIC
    while total < length:
        n = _region_length(REGIONS[state], gen)
        n = min(n, length - total)
        regions.append((state, n))
        total += n
        if state == INTERGENIC:
            state = EXON
        elif state == EXON:
            # After an exon: another intron (gene continues) or back to intergenic.
            state = INTRON if torch.rand(1, generator=gen).item() < 0.6 else INTERGENIC
        else:
            state = EXON
    return regions


def make_gene_dataset(
    num_seqs: int,
    max_len: int = 400,
    min_len: int | None = None,
    noise: float = 0.25,
    seed: int = 0,
) -> GeneDataset:
    """Generate ``num_seqs`` sequences with lengths in ``[min_len, max_len]``.

    Args:
        num_seqs: number of sequences (>= 1).
        max_len: padded length ``T`` (>= 20).
        min_len: shortest sequence (default ``max_len * 3 // 4``).
        noise: fraction of bases replaced by uniform random bases, in ``[0, 1)``.
        seed: random seed; the same arguments always give the same data.
    """
    if num_seqs < 1:
        raise ValueError(f"num_seqs must be >= 1, got {num_seqs}")
    if max_len < 20:
        raise ValueError(f"max_len must be >= 20, got {max_len}")
    if not 0.0 <= noise < 1.0:
        raise ValueError(f"noise must be in [0, 1), got {noise}")
    min_len = max_len * 3 // 4 if min_len is None else min_len
    if not 1 <= min_len <= max_len:
        raise ValueError(f"min_len must be in [1, max_len={max_len}], got {min_len}")
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.zeros(num_seqs, max_len, 4)
    labels = torch.zeros(num_seqs, max_len, dtype=torch.long)
    lengths = torch.randint(min_len, max_len + 1, (num_seqs,), generator=gen)
    comp = {k: torch.tensor(v.composition) for k, v in REGIONS.items()}
    for b in range(num_seqs):
        length = int(lengths[b])
        pos = 0
        bases = torch.empty(length, dtype=torch.long)
        for label, n in _label_sequence(length, gen):
            labels[b, pos : pos + n] = label
            bases[pos : pos + n] = torch.multinomial(
                comp[label], n, replacement=True, generator=gen
            )
            if label == INTRON and n >= 4:
                # Splice donor GT at the intron start, acceptor AG at its end.
                bases[pos : pos + 2] = torch.tensor([2, 3])
                bases[pos + n - 2 : pos + n] = torch.tensor([0, 2])
            pos += n
        flip = torch.rand(length, generator=gen) < noise
        bases[flip] = torch.randint(0, 4, (int(flip.sum()),), generator=gen)
        inputs[b, torch.arange(length), bases] = 1.0
    return GeneDataset(inputs=inputs, labels=labels, lengths=lengths)
