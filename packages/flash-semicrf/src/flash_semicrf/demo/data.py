"""A synthetic gene-structure segmentation data set, generated on the fly (no download).

Each sequence is a window of a DNA-like genome, labelled per base as intergenic (0), exon (1)
or intron (2). It starts in intergenic DNA, then alternates genes and intergenic regions; a
gene is ``exon (intron exon)*``: after each exon the gene goes on with an intron with
probability :data:`CONTINUE_GENE`, else it ends. The window ends wherever the sequence length
falls, possibly inside a region.

What makes the data look like a real use:

* **Label-specific lengths.** Each region type draws its length from its own shifted negative
  binomial (a sum of geometric draws above a minimum), truncated to ``[min_len, max_len]``:
  peaked, with a different mode per type (:data:`REGIONS`).
* **Composition.** Intergenic DNA is AT-rich, exons are GC-rich (as coding sequence tends to
  be), introns are G/T-rich (their poly-T stretches and G runs): each type differs from the
  two others in two of the four bases (:data:`REGIONS`). One base is a weak vote; a window of
  bases says more, but a window that straddles a boundary is mixed.
* **Signals at every boundary, after the consensus sequences of real genes** (:data:`MOTIFS`).
  A gene's first exon starts with the start codon ``ATG`` in a Kozak context (``gccRcc|ATGg``);
  its last exon ends with a stop codon (``TAA``, ``TAG`` or ``TGA``); an intron starts with the
  splice donor (``maG|GTragt``) and ends with a polypyrimidine tract (C/T-rich) and the splice
  acceptor (``yAG|g``). Upper case marks strong sites (``ATG``, ``GT`` and ``AG`` always
  written, ``R``/``Y`` with probability 0.8), lower case weak ones (0.5-0.6). These motifs also occur by chance inside regions (``ATG``, ``GT`` and ``AG``
  are common), so a motif alone does not make a boundary.
* **Noise.** A fraction ``noise`` of all bases, motifs included, is then replaced by a uniform
  random base (which may equal the old one).

Without the motifs no model could place the boundaries exactly: composition alone says where a
region roughly is, not at which base it starts (decoding with the true generative model, the
motifs left out, scores a boundary F1 below 0.1).

A per-position classifier decides every base on its own from a noisy window: it finds the
regions but blurs their edges and breaks them up where a window looks like another type. A
semi-CRF scores whole segments (duration prior, the motifs at a segment's first and last base,
the gene grammar of allowed transitions) and so returns clean regions with exact boundaries.
That is the point the demo makes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

INTERGENIC, EXON, INTRON = 0, 1, 2
LABEL_NAMES = ("intergenic", "exon", "intron")
BASES = "ACGT"
A, C, G, T = 0, 1, 2, 3

#: Probability that a gene goes on with an intron after an exon (else the gene ends).
CONTINUE_GENE = 0.6
STOP_CODONS = ((T, A, A), (T, A, G), (T, G, A))


@dataclass(frozen=True)
class MotifSite:
    """One position of a boundary signal.

    Attributes:
        offset: position relative to the boundary (0 is the first base of the new region,
            -1 the last base of the previous one).
        bases: the consensus bases there (one is drawn uniformly).
        prob: probability that the consensus is written (else the region's background base
            stays); 1.0 for the invariant bases (``ATG``, ``GT``, ``AG``).
    """

    offset: int
    bases: tuple[int, ...]
    prob: float


def _sites(first: int, pattern: str, prob: float) -> tuple[MotifSite, ...]:
    # IUPAC letters: R = A/G (purine), Y = C/T (pyrimidine), M = A/C.
    codes = {"A": (A,), "C": (C,), "G": (G,), "T": (T,), "R": (A, G), "Y": (C, T), "M": (A, C)}
    return tuple(MotifSite(first + i, codes[ch], prob) for i, ch in enumerate(pattern))


#: Signals at each boundary type ``(previous, next)``, after the consensus sequences of real
#: genes (lower case = weak). The stop codon at a gene's end is drawn separately from
#: :data:`STOP_CODONS`.
MOTIFS: dict[tuple[int, int], tuple[MotifSite, ...]] = {
    # Kozak context gccRcc|ATGg: the start codon opens the first exon.
    (INTERGENIC, EXON): _sites(-6, "GCC", 0.5)
    + _sites(-3, "R", 0.8)
    + _sites(-2, "CC", 0.5)
    + _sites(0, "ATG", 1.0)
    + _sites(3, "G", 0.6),
    # Splice donor maG|GTragt.
    (EXON, INTRON): _sites(-3, "M", 0.5)
    + _sites(-2, "AG", 0.6)
    + _sites(0, "GT", 1.0)
    + _sites(2, "RAGT", 0.6),
    # Polypyrimidine tract, then the splice acceptor yAG|g.
    (INTRON, EXON): _sites(-14, "Y" * 11, 0.7)
    + _sites(-3, "Y", 0.8)
    + _sites(-2, "AG", 1.0)
    + _sites(0, "G", 0.5),
    (EXON, INTERGENIC): (),
}


@dataclass(frozen=True)
class RegionSpec:
    """Length distribution and base composition of one region type.

    Attributes:
        mean_len: mean length before truncation.
        min_len: shortest region (the negative binomial is shifted by it).
        max_len: longest region (draws above it are clipped).
        composition: ``P(A), P(C), P(G), P(T)`` of a base inside the region.
    """

    mean_len: float
    min_len: int
    max_len: int
    composition: tuple[float, float, float, float]


REGIONS: dict[int, RegionSpec] = {
    INTERGENIC: RegionSpec(55.0, 20, 100, (0.36, 0.14, 0.14, 0.36)),
    EXON: RegionSpec(32.0, 12, 64, (0.14, 0.36, 0.36, 0.14)),
    INTRON: RegionSpec(42.0, 20, 80, (0.14, 0.14, 0.36, 0.36)),
}

#: The longest region of any type: with ``K >= LONGEST_REGION`` every region is one segment.
LONGEST_REGION = max(spec.max_len for spec in REGIONS.values())

#: Allowed label changes ``(previous, next)``: the gene grammar.
GRAMMAR = frozenset({(INTERGENIC, EXON), (EXON, INTRON), (EXON, INTERGENIC), (INTRON, EXON)})

# Shape of the negative binomial: the number of geometric draws summed. 4 gives a peaked
# distribution (coefficient of variation 1/2 of the part above the minimum).
_NB_SHAPE = 4


@dataclass
class GeneDataset:
    """Tensors of one split.

    Attributes:
        inputs: ``(num_seqs, T, 4)`` float32 one-hot bases (A, C, G, T); all zero at padding.
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
    # A sum of _NB_SHAPE geometric draws above the minimum: peaked, unlike a single geometric,
    # so a duration prior has something to learn.
    mean_extra = spec.mean_len - spec.min_len
    p = _NB_SHAPE / (_NB_SHAPE + mean_extra)
    u = torch.rand(_NB_SHAPE, generator=gen, dtype=torch.float64).clamp_min(1e-12)
    extra = int(torch.floor(torch.log(u) / torch.log1p(torch.tensor(-p))).sum())
    return min(spec.max_len, spec.min_len + extra)


def _regions(length: int, gen: torch.Generator) -> list[tuple[int, int]]:
    """Regions ``(label, start)`` tiling ``[0, length)``, in order (the last one may be cut)."""
    regions: list[tuple[int, int]] = []
    start, label = 0, INTERGENIC
    while start < length:
        regions.append((label, start))
        start += _region_length(REGIONS[label], gen)
        if label == EXON:
            go_on = float(torch.rand(1, generator=gen)) < CONTINUE_GENE
            label = INTRON if go_on else INTERGENIC
        else:
            label = EXON
    return regions


def _sequence(length: int, noise: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One sequence: ``(length,)`` int64 bases and ``(length,)`` int64 labels."""
    regions = _regions(length, gen)
    labels = torch.empty(length, dtype=torch.long)
    probs = torch.empty(length, 4)
    ends = [start for _, start in regions[1:]] + [length]
    for (label, start), end in zip(regions, ends):
        labels[start:end] = label
        probs[start:end] = torch.tensor(REGIONS[label].composition)
    bases = torch.multinomial(probs, 1, generator=gen)[:, 0]
    # Boundaries inside the window: the start of every region but the first.
    for (prev, _), (label, start) in itertools.pairwise(regions):
        sites = MOTIFS[(prev, label)]
        u = torch.rand(len(sites), generator=gen)
        # 6 is a multiple of every consensus size (1, 2), so pick % size is uniform.
        pick = torch.randint(0, 6, (len(sites),), generator=gen)
        for site, ui, k in zip(sites, u.tolist(), pick.tolist()):
            at = start + site.offset
            if ui < site.prob and 0 <= at < length:
                bases[at] = site.bases[k % len(site.bases)]
        if (prev, label) == (EXON, INTERGENIC):
            stop = STOP_CODONS[int(torch.randint(len(STOP_CODONS), (1,), generator=gen))]
            bases[start - 3 : start] = torch.tensor(stop)
    flip = torch.rand(length, generator=gen) < noise
    bases[flip] = torch.randint(0, 4, (int(flip.sum()),), generator=gen)
    return bases, labels


def make_gene_dataset(
    num_seqs: int,
    max_len: int = 400,
    min_len: int | None = None,
    noise: float = 0.1,
    seed: int = 0,
) -> GeneDataset:
    """Generate ``num_seqs`` sequences with lengths in ``[min_len, max_len]``.

    Args:
        num_seqs: number of sequences (>= 1).
        max_len: padded length ``T`` (>= 20).
        min_len: shortest sequence (default ``max_len * 3 // 4``).
        noise: fraction of bases replaced by uniform random bases, in ``[0, 1)``.
        seed: random seed; the same arguments always give the same data.

    Returns:
        A :class:`GeneDataset` (float32 one-hot ``inputs``, int64 ``labels`` and ``lengths``).
    """
    for name, value in (("num_seqs", num_seqs), ("max_len", max_len), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
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
    for b in range(num_seqs):
        length = int(lengths[b])
        bases, labels[b, :length] = _sequence(length, noise, gen)
        inputs[b, torch.arange(length), bases] = 1.0
    return GeneDataset(inputs=inputs, labels=labels, lengths=lengths)
