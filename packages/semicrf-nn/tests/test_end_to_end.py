"""A small synthetic task: an encoder + CRF head trains on the CPU and finds the boundaries.

Segments have label-specific durations (label 0: 3-4, label 1: 6-7, label 2: 4-5; consecutive
segments differ in label) and each position emits its label's mean plus Gaussian noise. A
per-position classifier confuses labels often; the semi-CRF's learned duration model and segment
scores recover the boundaries.
"""

from __future__ import annotations

import torch
from torch import nn

from semicrf_nn import SemiMarkovCRFHead, boundary_f1, labels_to_segment_lists

DURATIONS = {0: (3, 4), 1: (6, 7), 2: (4, 5)}
C, D, K, T = 3, 6, 8, 40
NOISE = 0.4


def make_data(n: int, g: torch.Generator):
    """``n`` sequences of length in ``[T-10, T]``: inputs ``(n, T, D)``, labels, lengths, segments."""
    lengths = torch.randint(T - 10, T + 1, (n,), generator=g)
    labels = torch.zeros(n, T, dtype=torch.int64)
    segments = []
    for i in range(n):
        t, prev, segs = 0, -1, []
        L = int(lengths[i])
        while t < L:
            c = int(torch.randint(0, C - 1, (1,), generator=g))
            c = c + 1 if prev >= 0 and c >= prev else c  # any label but the previous one
            lo, hi = DURATIONS[c]
            e = min(t + int(torch.randint(lo, hi + 1, (1,), generator=g)), L)
            labels[i, t:e] = c
            segs.append((t, e - 1, c))
            t, prev = e, c
        segments.append(segs)
    means = torch.eye(D)[:C]
    inputs = means[labels] + NOISE * torch.randn(n, T, D, generator=g)
    return inputs, labels, lengths, segments


class ConvEncoder(nn.Module):
    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv1d(D, hidden, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)


def test_synthetic_segmentation_reaches_high_boundary_f1() -> None:
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    x_train, y_train, l_train, _ = make_data(256, g)
    x_test, _, l_test, s_test = make_data(64, g)
    encoder = ConvEncoder()
    head = SemiMarkovCRFHead(C, K, hidden_dim=16)
    opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=0.02)
    first = None
    for _ in range(300):
        idx = torch.randint(0, 256, (16,), generator=g)
        loss = head.compute_loss(
            encoder(x_train[idx]), l_train[idx], y_train[idx], use_triton=False
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
    assert float(loss.detach()) < 0.2 * first
    with torch.no_grad():
        predicted = head.decode_with_traceback(encoder(x_test), l_test, use_triton=False).segments
    scores = boundary_f1(predicted, s_test)
    assert scores.f1 >= 0.9, scores
    # The per-position nearest-mean classifier (which knows the true means) is far worse.
    nearest = ((x_test[..., None, :] - torch.eye(D)[:C]) ** 2).sum(-1).argmin(-1)
    naive = boundary_f1(labels_to_segment_lists(nearest, l_test, T), s_test)
    assert scores.f1 > naive.f1 + 0.1, (scores, naive)
    # The learned durations reflect the data: the most likely duration of label 1 is 6 or 7.
    assert int(head.duration_bias[:, 1].argmax()) + 1 in (6, 7)
