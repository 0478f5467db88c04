"""What the `install` nox session runs inside each fresh environment built from the wheels.

    python tools/wheel_smoke.py kernels   # semicrf-kernels alone: a forward and a backward
    python tools/wheel_smoke.py nn        # semicrf-nn alone: one training step of a head

Each check first proves that the layers came from installed wheels (not from the workspace)
and that no higher layer is installed, then does the work and checks the numbers are sane.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import sysconfig
from pathlib import Path

#: Each check's package and the packages above it, which must not be installed beside it.
ABOVE = {
    "kernels": ("semicrf_kernels", ("semicrf_nn", "flash_semicrf")),
    "nn": ("semicrf_nn", ("flash_semicrf",)),
}


def _check_installed_alone(module: str, above: tuple[str, ...]) -> None:
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    for name in ("semicrf_semirings", "semicrf_core", "semicrf_kernels", "semicrf_nn"):
        if name == module or importlib.util.find_spec(name) is None:
            continue
        # A lower layer present must be an installed wheel too.
        origin = Path(importlib.util.find_spec(name).origin).resolve()
        if site not in origin.parents:
            sys.exit(f"{name} imports from {origin}, not from the wheel in {site}")
    origin = Path(importlib.import_module(module).__file__).resolve()
    if site not in origin.parents:
        sys.exit(f"{module} imports from {origin}, not from the wheel in {site}")
    for name in above:
        if importlib.util.find_spec(name) is not None:
            sys.exit(f"{name} is installed beside {module}: expected {module} alone")


def kernels() -> None:
    import torch

    from semicrf_kernels import semi_crf_streaming_forward

    torch.manual_seed(0)
    B, T, K, C = 2, 11, 4, 3
    scores = torch.randn(B, T, C, dtype=torch.float64)
    cum = torch.cat([torch.zeros(B, 1, C, dtype=torch.float64), scores.cumsum(1)], 1)
    cum.requires_grad_(True)
    transition = torch.randn(C, C, dtype=torch.float64, requires_grad=True)
    duration_bias = torch.randn(K, C, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([T, 7])
    log_z = semi_crf_streaming_forward(cum, transition, duration_bias, lengths, K)
    log_z.sum().backward()
    assert log_z.shape == (B,) and torch.isfinite(log_z).all(), log_z
    for name, t in (("cum_scores", cum), ("transition", transition), ("bias", duration_bias)):
        assert t.grad is not None and torch.isfinite(t.grad).all(), name
    # The duration gradient sums to the expected number of segments: at least one a sequence.
    assert float(duration_bias.grad.sum()) >= B - 1e-9
    print(f"semicrf-kernels alone: log Z = {log_z.tolist()}, forward and backward ok")


def nn() -> None:
    import torch

    from semicrf_nn import SemiMarkovCRFHead

    torch.manual_seed(0)
    B, T, H, C, K = 3, 20, 8, 4, 5
    head = SemiMarkovCRFHead(num_classes=C, max_duration=K, hidden_dim=H)
    optimiser = torch.optim.SGD(head.parameters(), lr=0.1)
    hidden = torch.randn(B, T, H)
    lengths = torch.tensor([20, 15, 9])
    labels = torch.randint(0, C, (B, T))
    before = [p.detach().clone() for p in head.parameters()]
    loss = head.compute_loss(hidden, lengths, labels)
    loss.backward()
    optimiser.step()
    value = loss.item()
    assert math.isfinite(value) and value >= 0, value
    changed = sum(not torch.equal(a, p) for a, p in zip(before, head.parameters()))
    assert changed > 0, "one SGD step changed no parameter"
    print(f"semicrf-nn alone: loss {value:.4f}, {changed} parameter tensors updated")


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    if which not in ABOVE:
        sys.exit(f"usage: python {sys.argv[0]} {{{','.join(ABOVE)}}}")
    _check_installed_alone(*ABOVE[which])
    {"kernels": kernels, "nn": nn}[which]()


if __name__ == "__main__":
    main()
