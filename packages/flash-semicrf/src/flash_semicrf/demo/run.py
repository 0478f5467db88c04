"""``flash-semicrf demo``: train a semi-CRF and a softmax baseline on synthetic genes."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .data import LABEL_NAMES, GeneDataset, make_gene_dataset
from .metrics import segmentation_metrics
from .model import SemiCRFTagger, SoftmaxTagger


@dataclass
class DemoConfig:
    """Options of the demo (each is a command-line flag of the same name)."""

    train_size: int = 192
    test_size: int = 64
    seq_len: int = 400
    max_duration: int = 80
    epochs: int = 6
    batch_size: int = 16
    lr: float = 5e-3
    hidden: int = 32
    noise: float = 0.25
    device: str = "auto"
    seed: int = 0
    out: str = "flash-semicrf-demo"
    progress: bool = True


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return device


def _batches(data: GeneDataset, batch_size: int, gen: torch.Generator | None):
    order = torch.randperm(len(data), generator=gen) if gen is not None else torch.arange(len(data))
    for i in range(0, len(data), batch_size):
        idx = order[i : i + batch_size]
        lengths = data.lengths[idx]
        t_max = int(lengths.max())
        yield data.inputs[idx, :t_max], lengths, data.labels[idx, :t_max]


def _train(model, data: GeneDataset, cfg: DemoConfig, device: torch.device, name: str) -> float:
    from tqdm.auto import tqdm

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
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


def _predict(model, data: GeneDataset, cfg: DemoConfig, device: torch.device) -> list[list[int]]:
    model.eval()
    preds: list[list[int]] = []
    for x, lengths, _ in _batches(data, cfg.batch_size, None):
        preds.extend(model.predict(x.to(device), lengths.to(device)))
    return preds


def _gold(data: GeneDataset) -> list[list[int]]:
    return [data.labels[b, : int(data.lengths[b])].tolist() for b in range(len(data))]


def _figure(path: Path, gold, crf_pred, soft_pred, marginals: torch.Tensor) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colors = ("#bbbbbb", "#1f77b4", "#ff7f0e")
    fig, axes = plt.subplots(4, 1, figsize=(11, 5.2), sharex=True, height_ratios=[1, 1, 1, 2.2])
    for ax, labels, title in zip(
        axes[:3], (gold, crf_pred, soft_pred), ("truth", "semi-CRF (Viterbi)", "softmax baseline")
    ):
        start = 0
        for t in range(1, len(labels) + 1):
            if t == len(labels) or labels[t] != labels[start]:
                ax.axvspan(start, t, color=colors[labels[start]], lw=0)
                start = t
        ax.set_yticks([])
        ax.set_ylabel(title, rotation=0, ha="right", va="center", fontsize=9)
    L = len(gold)
    axes[3].plot(range(L), marginals[:L].cpu().numpy(), color="black", lw=1)
    for t in range(1, L):
        if gold[t] != gold[t - 1]:
            axes[3].axvline(t, color="red", lw=0.6, alpha=0.6)
    axes[3].set_ylabel("P(segment\nstarts at t)", rotation=0, ha="right", va="center", fontsize=9)
    axes[3].set_ylim(-0.02, 1.02)
    axes[3].set_xlabel("position (red: true boundaries)")
    axes[0].legend(
        handles=[Patch(color=c, label=n) for c, n in zip(colors, LABEL_NAMES)],
        loc="upper center",
        bbox_to_anchor=(0.5, 1.9),
        ncol=3,
        frameon=False,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_demo(cfg: DemoConfig) -> dict:
    """Train both models, evaluate on held-out data, write the figure and metrics JSON."""
    device = _resolve_device(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    train = make_gene_dataset(cfg.train_size, cfg.seq_len, noise=cfg.noise, seed=cfg.seed)
    test = make_gene_dataset(cfg.test_size, cfg.seq_len, noise=cfg.noise, seed=cfg.seed + 1)
    num_classes = len(LABEL_NAMES)

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

    x, lengths, _ = next(_batches(test, 1, None))
    marg = crf.boundary_marginals(x.to(device), lengths.to(device))[0]
    _figure(out / "demo.png", gold[0], crf_pred[0], soft_pred[0], marg)

    result = {
        "config": asdict(cfg),
        "device": str(device),
        "semi_crf": {**m_crf, "train_seconds": t_crf},
        "softmax": {**m_soft, "train_seconds": t_soft},
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def format_report(result: dict) -> str:
    rows = [
        ("boundary precision", "boundary_precision"),
        ("boundary recall", "boundary_recall"),
        ("boundary F1", "boundary_f1"),
        ("segment accuracy", "segment_accuracy"),
        ("position accuracy", "position_accuracy"),
        ("training time (s)", "train_seconds"),
    ]
    lines = [f"{'held-out metric':<22}{'semi-CRF':>10}{'softmax':>10}", "-" * 42]
    for title, key in rows:
        lines.append(f"{title:<22}{result['semi_crf'][key]:>10.3f}{result['softmax'][key]:>10.3f}")
    return "\n".join(lines)
