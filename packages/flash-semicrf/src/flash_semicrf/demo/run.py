"""``flash-semicrf demo``: train a semi-CRF and a softmax baseline on synthetic genes.

:func:`run_demo` generates a training and a held-out split of :mod:`.data`, trains the two
models of :mod:`.model` the same way (same encoder, initialisation seed, batches, optimiser,
learning rate and number of steps), decodes the held-out split (Viterbi for the semi-CRF,
per-position argmax for the softmax), scores both with :mod:`.metrics`, and writes
``demo.png`` (true vs predicted regions of one held-out sequence, and the semi-CRF's boundary
marginals along it) and ``metrics.json`` to the output folder.

The defaults are chosen to finish in about a minute on two CPU cores (well under two minutes)
while the semi-CRF's boundary F1 clearly beats the softmax's: 256 training sequences of 300-400
bases, 8 epochs of batches of 16 (128 Adam steps at learning rate 0.01), hidden size 32 and
``K = 100`` (the longest region, so every region is one segment). On a GPU the head's kernels
run in Triton; nothing here has to ask for it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import torch

from .config import DemoConfig
from .data import LABEL_NAMES, GeneDataset, make_gene_dataset
from .metrics import label_runs, segmentation_metrics
from .model import SemiCRFTagger, SoftmaxTagger

#: Region colours of the figure (intergenic, exon, intron).
COLORS = ("#c8c8c8", "#1f77b4", "#ff7f0e")
#: How many held-out sequences the figure chooses its example from.
_FIGURE_CANDIDATES = 16


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return device


def _batches(
    data: GeneDataset, batch_size: int, gen: torch.Generator | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(inputs (b, t, 4), lengths (b,), labels (b, t))`` batches, ``t`` the batch's longest.

    Shuffled with ``gen``, in order when ``gen`` is None.
    """
    n = len(data)
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        lengths = data.lengths[idx]
        t_max = int(lengths.max())
        yield data.inputs[idx, :t_max], lengths, data.labels[idx, :t_max]


def _train(
    model: torch.nn.Module, data: GeneDataset, cfg: DemoConfig, device: torch.device, name: str
) -> float:
    """Train ``model`` in place; return the wall-clock seconds it took."""
    from tqdm.auto import tqdm

    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    # The same shuffling seed for both models: they see the same batches in the same order.
    gen = torch.Generator().manual_seed(cfg.seed)
    steps = cfg.epochs * ((len(data) + cfg.batch_size - 1) // cfg.batch_size)
    start = time.perf_counter()
    with tqdm(total=steps, desc=f"train {name:>8}", disable=not cfg.progress, leave=True) as bar:
        for _ in range(cfg.epochs):
            for x, lengths, labels in _batches(data, cfg.batch_size, gen):
                loss = model.loss(x.to(device), lengths.to(device), labels.to(device))
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                bar.set_postfix(loss=f"{loss.item():.3f}")
                bar.update()
    return time.perf_counter() - start


def _predict(
    model: torch.nn.Module, data: GeneDataset, cfg: DemoConfig, device: torch.device
) -> list[list[int]]:
    model.eval()
    preds: list[list[int]] = []
    for x, lengths, _ in _batches(data, cfg.batch_size, None):
        preds.extend(model.predict(x.to(device), lengths.to(device)))
    return preds


def _gold(data: GeneDataset) -> list[list[int]]:
    return [data.labels[b, : int(data.lengths[b])].tolist() for b in range(len(data))]


def _example_index(gold: list[list[int]]) -> int:
    """The held-out sequence the figure shows: the one with most regions among the first few."""
    candidates = range(min(_FIGURE_CANDIDATES, len(gold)))
    return max(candidates, key=lambda b: (len(label_runs(gold[b])), -b))


def _figure(
    path: Path,
    gold: list[int],
    preds: dict[str, list[int]],
    marginals: torch.Tensor,
    f1: dict[str, float],
) -> None:
    """Write the figure: truth and each model's regions, then the boundary marginals.

    Args:
        path: the PNG to write.
        gold: the example's ``L`` true labels.
        preds: ``{"semi-CRF": labels, "softmax": labels}``, each ``L`` predicted labels.
        marginals: ``(L,)`` or longer float ``P(a segment starts at t)`` of the semi-CRF.
        f1: held-out boundary F1 of each model (shown beside its track).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    L = len(gold)
    true_bounds = [s for s, _, _ in label_runs(gold)[1:]]
    tracks = [("truth", gold)] + [(f"{k}\n(boundary F1 {f1[k]:.2f})", v) for k, v in preds.items()]
    fig, axes = plt.subplots(
        len(tracks) + 1, 1, figsize=(11, 5.4), sharex=True, height_ratios=[1] * len(tracks) + [2.4]
    )
    for ax, (title, labels) in zip(axes, tracks):
        for start, end, label in label_runs(labels):
            ax.axvspan(start - 0.5, end + 0.5, color=COLORS[label], lw=0)
        for t in true_bounds:
            ax.axvline(t - 0.5, color="red", lw=0.6, alpha=0.5)
        ax.set_yticks([])
        ax.set_ylabel(title, rotation=0, ha="right", va="center", fontsize=9)
    ax = axes[-1]
    ax.plot(range(L), marginals[:L].float().cpu().numpy(), color="black", lw=1)
    for t in true_bounds:
        ax.axvline(t, color="red", lw=0.8, ls="--", alpha=0.7)
    ax.set_ylabel(
        "semi-CRF\nP(region\nstarts at t)", rotation=0, ha="right", va="center", fontsize=9
    )
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(-0.5, L - 0.5)
    # The axis ends at the sequence's own length, not at --seq-len: say so.
    ax.set_xlabel(
        f"position t in one held-out sequence, 0 to {L - 1} (its length is {L}; "
        "red: true boundaries)"
    )
    axes[0].legend(
        handles=[Patch(color=c, label=n) for c, n in zip(COLORS, LABEL_NAMES)],
        loc="lower center",
        bbox_to_anchor=(0.5, 1.05),
        ncol=3,
        frameon=False,
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_demo(cfg: DemoConfig) -> dict:
    """Train both models, evaluate them on held-out data, write the figure and the metrics JSON.

    On the CPU it runs on one intra-op thread (restored afterwards): its operations are far too
    small to gain from more, and on a busy machine OpenMP threads waiting for a shared core
    made it several times slower.

    Args:
        cfg: the options (see :class:`DemoConfig`); ``cfg.out`` is created if needed.

    Returns:
        The JSON written to ``cfg.out/metrics.json``: ``config``, ``device``, ``test_regions``
        and ``test_boundaries`` (held-out counts), ``example_sequence`` (the held-out index the
        figure shows), and ``semi_crf`` / ``softmax``, each with ``boundary_precision``,
        ``boundary_recall``, ``boundary_f1``, ``segment_accuracy``, ``position_accuracy`` (see
        :func:`segmentation_metrics`) and ``train_seconds``.

    Raises:
        ValueError: a size or device the demo cannot use.
    """
    device = _resolve_device(cfg.device)
    if device.type != "cpu":
        return _run(cfg, device)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(cfg, device)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: DemoConfig, device: torch.device) -> dict:
    if cfg.seq_len < 20:
        raise ValueError(f"seq_len must be >= 20, got {cfg.seq_len}")
    for name in ("train_size", "test_size", "max_duration", "epochs", "batch_size", "hidden"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    train = make_gene_dataset(cfg.train_size, cfg.seq_len, noise=cfg.noise, seed=cfg.seed)
    test = make_gene_dataset(cfg.test_size, cfg.seq_len, noise=cfg.noise, seed=cfg.seed + 10_000)
    num_classes = len(LABEL_NAMES)

    # The same seed before each model: both encoders start from the same weights.
    torch.manual_seed(cfg.seed)
    crf = SemiCRFTagger(num_classes, cfg.max_duration, hidden=cfg.hidden).to(device)
    torch.manual_seed(cfg.seed)
    soft = SoftmaxTagger(num_classes, hidden=cfg.hidden).to(device)

    t_crf = _train(crf, train, cfg, device, "semi-CRF")
    t_soft = _train(soft, train, cfg, device, "softmax")
    gold = _gold(test)
    crf_pred = _predict(crf, test, cfg, device)
    soft_pred = _predict(soft, test, cfg, device)
    m_crf = segmentation_metrics(gold, crf_pred)
    m_soft = segmentation_metrics(gold, soft_pred)

    b = _example_index(gold)
    L = int(test.lengths[b])
    x, lengths = test.inputs[b : b + 1, :L].to(device), test.lengths[b : b + 1].to(device)
    marginals = crf.boundary_marginals(x, lengths)[0]
    _figure(
        out / "demo.png",
        gold[b],
        {"semi-CRF": crf_pred[b], "softmax": soft_pred[b]},
        marginals,
        {"semi-CRF": m_crf["boundary_f1"], "softmax": m_soft["boundary_f1"]},
    )

    result = {
        "config": asdict(cfg),
        "device": str(device),
        "test_regions": sum(len(label_runs(g)) for g in gold),
        "test_boundaries": sum(len(label_runs(g)) - 1 for g in gold),
        "example_sequence": b,
        "semi_crf": {**m_crf, "train_seconds": t_crf},
        "softmax": {**m_soft, "train_seconds": t_soft},
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def format_report(result: dict) -> str:
    """The metrics of :func:`run_demo` as a text table (semi-CRF and softmax side by side)."""
    rows = [
        ("boundary precision", "boundary_precision"),
        ("boundary recall", "boundary_recall"),
        ("boundary F1", "boundary_f1"),
        ("segment accuracy", "segment_accuracy"),
        ("position accuracy", "position_accuracy"),
        ("training time (s)", "train_seconds"),
    ]
    lines = [
        f"held-out: {result['test_boundaries']} boundaries, {result['test_regions']} regions "
        f"({result['device']})",
        f"{'metric':<22}{'semi-CRF':>10}{'softmax':>10}",
        "-" * 42,
    ]
    for title, key in rows:
        lines.append(f"{title:<22}{result['semi_crf'][key]:>10.3f}{result['softmax'][key]:>10.3f}")
    return "\n".join(lines)
