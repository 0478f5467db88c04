"""``torch.compile(fullgraph=True)`` of models using the head: no graph break, eager results.

The kernels are ``torch.library`` custom operators (the ``op.py`` of each ``semicrf_kernels`` op folder) with fake
implementations and an autograd formula, and the head skips its value checks under
``torch.compiler.is_compiling()``, so the loss, its backward and ``decode`` trace as one graph.

Backend: ``aot_eager``. It runs everything the library takes part in (Dynamo tracing, the fake
implementations with symbolic shapes, AOT autograd's joint graph) without inductor's C++ build,
which takes minutes on the CI's CPUs; inductor itself is exercised on CUDA by
``benchmarks/gpu_reliability.py``. Tolerances are float32 rounding: a compiled graph may
reorder float32 ops.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from semicrf_nn import SemiMarkovCRFHead, UncertaintySemiMarkovCRFHead

C, K, F, H = 3, 4, 5, 6
CONFIGS = {
    "default": {},
    "boundaries": {
        "use_boundary_projections": True,
        "use_sequence_boundaries": True,
        "center_emissions": False,
    },
    "kcc_masked_geometric": {
        "duration_dependent_transitions": True,
        "transition_mask": torch.tensor([[1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=torch.bool),
        "duration_distribution": "geometric",
    },
    "negbin": {"duration_distribution": "negative_binomial"},
}


class Tagger(nn.Module):
    """A small encoder and a CRF head."""

    def __init__(self, head_cls=SemiMarkovCRFHead, **head_kwargs) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(F, H), nn.Tanh(), nn.Linear(H, H))
        self.crf = head_cls(C, K, hidden_dim=H, **head_kwargs)

    def loss(self, x, lengths, labels):
        return self.crf.compute_loss(self.encoder(x), lengths, labels)

    def decode(self, x, lengths):
        return self.crf.decode(self.encoder(x), lengths)


def batch(B: int, T: int, seed: int):
    """Inputs, lengths (first at T) and labels made of constant runs (a self-transition is
    allowed by every config, so the gold is never forbidden)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, F, generator=g)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    run = torch.randint(1, 4, (B, T), generator=g).cumsum(dim=1) // 4  # run index per position
    labels = (run + torch.randint(0, C, (B, 1), generator=g)) % C
    return x, lengths, labels


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def compiled(fn):
    return torch.compile(fn, fullgraph=True, backend="aot_eager")


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_compiled_loss_and_gradients_equal_eager(config: str) -> None:
    model = Tagger(**CONFIGS[config])
    loss = compiled(model.loss)
    # A second shape makes Dynamo recompile with symbolic sizes; a third reuses that graph.
    shapes = ((3, 9, 0), (2, 12, 1), (4, 7, 2)) if config == "default" else ((3, 9, 0), (2, 7, 1))
    for B, T, seed in shapes:
        x, lengths, labels = batch(B, T, seed)
        value = loss(x, lengths, labels)
        grads = torch.autograd.grad(value, list(model.parameters()))
        expected = model.loss(x, lengths, labels)
        expected_grads = torch.autograd.grad(expected, list(model.parameters()))
        assert value.dtype == torch.float32 and bool(torch.isfinite(value))
        close(value, expected)
        for g, e in zip(grads, expected_grads):
            close(g, e)


def test_compiled_training_steps_follow_eager_ones() -> None:
    eager = Tagger(**CONFIGS["boundaries"])
    model = copy.deepcopy(eager)
    step = compiled(model.loss)
    opt_c = torch.optim.SGD(model.parameters(), lr=0.1)
    opt_e = torch.optim.SGD(eager.parameters(), lr=0.1)
    x, lengths, labels = batch(4, 10, 3)
    for _ in range(3):
        for opt, fn in ((opt_c, step), (opt_e, eager.loss)):
            opt.zero_grad()
            fn(x, lengths, labels).backward()
            opt.step()
    for p, q in zip(model.parameters(), eager.parameters()):
        close(p, q)


@pytest.mark.parametrize("config", ["default", "kcc_masked_geometric"])
def test_compiled_decode_and_partition_equal_eager(config: str) -> None:
    model = Tagger(**CONFIGS[config])
    decode = compiled(model.decode)
    partition = compiled(lambda h, lengths: model.crf(h, lengths)["partition"])
    for B, T, seed in ((3, 9, 4), (2, 6, 5)):
        x, lengths, _ = batch(B, T, seed)
        with torch.no_grad():
            close(decode(x, lengths), model.decode(x, lengths))
            h = model.encoder(x)
            close(partition(h, lengths), model.crf(h, lengths)["partition"])


def test_compiled_uncertainty_weighted_loss_equals_eager() -> None:
    model = Tagger(UncertaintySemiMarkovCRFHead)
    x, lengths, labels = batch(3, 5, 6)

    def weighted(x, lengths, labels):
        return model.crf.compute_loss_uncertainty_weighted(
            model.encoder(x), lengths, labels, uncertainty_weight=0.5
        )

    value = compiled(weighted)(x, lengths, labels)
    close(value, weighted(x, lengths, labels))


def test_decode_with_traceback_runs_compiled_with_graph_breaks() -> None:
    # It builds Python lists of Segment objects on the host, so it cannot be one graph; it must
    # still work under torch.compile (Dynamo falls back to eager around the breaks).
    model = Tagger()
    x, lengths, _ = batch(3, 9, 7)
    fn = torch.compile(
        lambda x, lengths: model.crf.decode_with_traceback(model.encoder(x), lengths),
        backend="aot_eager",
    )
    with torch.no_grad():
        got = fn(x, lengths)
        expected = model.crf.decode_with_traceback(model.encoder(x), lengths)
    close(got.scores, expected.scores)
    assert got.segments == expected.segments


def test_exact_backend_loss_compiles_without_graph_break() -> None:
    model = Tagger()
    x, lengths, labels = batch(3, 6, 8)
    fn = compiled(lambda x, lengths, labels: model.crf.compute_loss(
        model.encoder(x), lengths, labels, backend="exact"
    ))  # fmt: skip
    close(fn(x, lengths, labels), model.crf.compute_loss(model.encoder(x), lengths, labels))


@pytest.mark.parametrize("backend", ["streaming", "exact"])
@pytest.mark.parametrize("which", ["boundary", "position"])
@pytest.mark.parametrize("projections", [False, True])
def test_marginals_compile_without_graph_break(backend: str, which: str, projections: bool) -> None:
    model = Tagger(UncertaintySemiMarkovCRFHead, use_boundary_projections=projections)
    x, lengths, _ = batch(3, 6, 9)
    h = model.encoder(x).detach()
    method = getattr(model.crf, f"compute_{which}_marginals")
    fn = compiled(lambda h, lengths: method(h, lengths, backend=backend))
    close(fn(h, lengths), method(h, lengths, backend=backend))


@pytest.mark.parametrize("which", ["boundary", "position"])
def test_sharded_marginals_compile_with_a_graph_break(which: str) -> None:
    # The sharded semiring recomputes with torch.autograd inside its backward: Dynamo splits the
    # graph there (documented in docs/reliability.md) and the values stay those of eager mode.
    model = Tagger(UncertaintySemiMarkovCRFHead)
    x, lengths, _ = batch(3, 6, 11)
    h = model.encoder(x).detach()
    method = getattr(model.crf, f"compute_{which}_marginals")
    call = lambda h, lengths: method(h, lengths, backend="binary_tree_sharded")  # noqa: E731
    with pytest.raises(Exception, match=r"(?i)unsupported|graph break|requires_grad"):
        compiled(call)(h, lengths)
    torch._dynamo.reset()
    got = torch.compile(call, backend="aot_eager")(h, lengths)
    close(got, method(h, lengths))
