"""The optional Lightning wrapper (skipped when Lightning is not installed)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import torch

HAS_LIGHTNING = any(
    importlib.util.find_spec(m) is not None for m in ("lightning", "pytorch_lightning")
)


def test_importing_semicrf_nn_never_imports_lightning() -> None:
    code = (
        "import sys, semicrf_nn; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(HAS_LIGHTNING, reason="Lightning is installed")
def test_lightning_module_import_error_is_clear() -> None:
    with pytest.raises(ImportError, match="pip install lightning"):
        importlib.import_module("semicrf_nn.lightning")


@pytest.mark.skipif(not HAS_LIGHTNING, reason="Lightning is not installed")
def test_lightning_module_trains_one_step() -> None:
    from semicrf_nn import SemiMarkovCRFHead, UncertaintySemiMarkovCRFHead
    from semicrf_nn.lightning import SemiCRFLightningModule

    encoder = torch.nn.Linear(5, 8)
    module = SemiCRFLightningModule(
        encoder, UncertaintySemiMarkovCRFHead(3, 4, hidden_dim=8), lr=0.01, penalty_weight=0.1
    )
    batch = {
        "inputs": torch.randn(2, 6, 5),
        "lengths": torch.tensor([6, 4]),
        "labels": torch.randint(0, 3, (2, 6)),
    }
    opt = module.configure_optimizers()
    groups = [set(map(id, g["params"])) for g in opt.param_groups]
    assert groups[0].isdisjoint(groups[1])
    assert sum(map(len, groups)) == len(list(module.parameters()))
    loss = module.training_step(batch, 0)
    assert loss.ndim == 0 and loss >= 0
    loss.backward()
    out = module.predict_step(batch, 0)
    assert len(out["segments"]) == 2
    with pytest.raises(TypeError, match="SemiMarkovCRFHead"):
        SemiCRFLightningModule(encoder, torch.nn.Linear(2, 2))
    assert isinstance(module.crf, SemiMarkovCRFHead)
