"""Reliability checks on a CUDA machine: torch.compile, CUDA graphs, float32 precision, DDP.

    python benchmarks/gpu_reliability.py                 # (a)-(d), T up to 1e5
    python benchmarks/gpu_reliability.py --long          # precision also at T = 4e5
    python benchmarks/gpu_reliability.py --skip-ddp      # no multi-process runs ((d), (e))
    python benchmarks/gpu_reliability.py --smoke         # tiny sizes, runs on a CPU (dry run)

(a) ``torch.compile`` (inductor, ``fullgraph=True``) of an encoder + ``UncertaintySemiMarkovCRFHead``
    loss, of ``decode`` and of the boundary marginals: values and gradients against eager.
(b) CUDA graphs: the streaming forward + backward and ``semi_crf_streaming_viterbi`` captured in
    ``torch.cuda.CUDAGraph`` objects on static inputs (``validate=False``), and a whole model
    (encoder + head: loss, gradients of every parameter, ``decode``; the head left at its default
    ``validate=True``, which capture turns off), replayed on new inputs copied into them, against
    eager runs on those inputs.
(c) Precision of the Triton kernels: float32 against float64 on the same (float32-rounded)
    inputs at T = 1e3, 1e4, 1e5 (and 4e5 with ``--long``): log Z (relative), gradients
    (max-norm relative, per tensor) and the Viterbi score (relative).
(d) DDP throughput of ``examples/distributed/ddp_train.py`` under torchrun on 1 GPU and, when
    two are visible, on 2 GPUs.
(f) Mixed precision: training steps of the model of (a) under ``torch.autocast(dtype=bfloat16)``
    next to the same steps in float32: dtypes, finiteness, losses and gradients to bf16 precision.
(e) The same with Lightning's ``strategy="ddp"`` (``examples/distributed/lightning_ddp.py``), when
    ``lightning`` can be imported (``benchmarks/gpu_check.sh`` installs it from ``.whl/lightning``).

Prints a markdown report and writes it to ``$OUT/reliability_<card>_<date>.md`` when ``$OUT``
is set (else to ``benchmarks/results/``). Exits with status 1 if a check fails.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from flash_semicrf.bench import git_commit
from semicrf_kernels import semi_crf_streaming_forward, semi_crf_streaming_viterbi
from semicrf_nn import UncertaintySemiMarkovCRFHead

ROOT = Path(__file__).resolve().parents[1]
FAILURES: list[str] = []


def card_name() -> str:
    if not torch.cuda.is_available():
        return "cpu"
    name = torch.cuda.get_device_name().replace("NVIDIA", "").strip()
    return re.sub(r"[^A-Za-z0-9]+", "-", name.split()[0] if name else "gpu").strip("-")


def verdict(ok: bool, what: str) -> str:
    if not ok:
        FAILURES.append(what)
    return "pass" if ok else "**FAIL**"


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max-norm relative difference of ``a`` to the reference ``b`` (0 for equal tensors)."""
    a, b = a.double(), b.double()
    finite = torch.isfinite(b)
    if not bool(torch.equal(torch.isfinite(a), finite)):
        return float("inf")
    diff = (a - b)[finite].abs().max() if bool(finite.any()) else torch.zeros(())
    scale = b[finite].abs().max() if bool(finite.any()) else torch.ones(())
    return float(diff / scale.clamp(min=1e-30))


def random_problem(B: int, T: int, C: int, K: int, device, seed: int = 0):
    """Zero-centred random emissions (as the head makes them), transitions, durations."""
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    emissions -= emissions.mean(dim=1, keepdim=True)
    cum = torch.nn.functional.pad(emissions.cumsum(dim=1), (0, 0, 1, 0))
    trans = 0.5 * torch.randn(C, C, generator=g, dtype=torch.float64)
    bias = 0.5 * torch.randn(K, C, generator=g, dtype=torch.float64)
    lengths = torch.tensor([T - i * max(1, T // (2 * B)) for i in range(B)], dtype=torch.int64)
    return [x.float().to(device) for x in (cum, trans, bias)], lengths.to(device)


# ----------------------------------------------------------------------------- (a) compile
class Tagger(nn.Module):
    def __init__(self, C: int, K: int, F: int, H: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(F, H), nn.GELU(), nn.Linear(H, H))
        self.crf = UncertaintySemiMarkovCRFHead(C, K, hidden_dim=H, use_boundary_projections=True)

    def loss(self, x, lengths, labels):
        return self.crf.compute_loss(self.encoder(x), lengths, labels)

    def decode(self, x, lengths):
        return self.crf.decode(self.encoder(x), lengths)

    def boundaries(self, x, lengths):
        return self.crf.compute_boundary_marginals(self.encoder(x), lengths)


def tagging_batch(B: int, T: int, C: int, F: int, device, seed: int):
    """Features, lengths (the first at T) and constant-run labels of one batch."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, F, generator=g)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    lengths[0] = T
    labels = ((torch.arange(T) // 7)[None] + torch.arange(B)[:, None] + seed) % C
    return x.to(device), lengths.to(device), labels.to(device)


def check_compile(device, smoke: bool) -> list[str]:
    backend = "aot_eager" if device.type == "cpu" else "inductor"
    B, T, C, K, F, H = (3, 12, 3, 4, 5, 8) if smoke else (8, 512, 12, 32, 64, 128)
    torch.manual_seed(0)
    model = Tagger(C, K, F, H).to(device)
    x, lengths, labels = tagging_batch(B, T, C, F, device, seed=0)
    params = list(model.parameters())
    start = time.perf_counter()
    loss_c = torch.compile(model.loss, fullgraph=True, backend=backend)(x, lengths, labels)
    grads_c = torch.autograd.grad(loss_c, params)
    compile_s = time.perf_counter() - start
    loss_e = model.loss(x, lengths, labels)
    grads_e = torch.autograd.grad(loss_e, params)
    d_loss = rel(loss_c.detach(), loss_e.detach())
    # Each gradient's error against the largest gradient entry of the model: the emission
    # projection's bias gets a zero gradient in exact arithmetic (centering removes it), so its
    # float32 value is rounding noise and its own scale means nothing.
    grad_scale = max(float(g.abs().max()) for g in grads_e)
    errors = {
        name: float((a - b).abs().max()) / grad_scale
        for (name, _), a, b in zip(model.named_parameters(), grads_c, grads_e)
    }
    worst_name = max(errors, key=errors.get)
    own_scale = ", ".join(
        f"`{name}` {rel(a, b):.1e} (largest entry {float(b.abs().max()):.1e})"
        for (name, _), a, b in zip(model.named_parameters(), grads_c, grads_e)
    )
    d_grad = errors[worst_name]
    with torch.no_grad():
        dec_c = torch.compile(model.decode, fullgraph=True, backend=backend)(x, lengths)
        dec_e = model.decode(x, lengths)
        marg_c = torch.compile(model.boundaries, fullgraph=True, backend=backend)(x, lengths)
        marg_e = model.boundaries(x, lengths)
    d_dec = rel(dec_c, dec_e)
    d_marg = rel(marg_c, marg_e)
    ok = d_loss <= 1e-5 and d_grad <= 1e-4 and d_dec <= 1e-5 and d_marg <= 1e-4
    return [
        "## (a) torch.compile of the head",
        "",
        f"`torch.compile(fullgraph=True, backend={backend!r})`, B={B}, T={T}, C={C}, K={K}, "
        f"hidden {H}, boundary projections; first call (compile + run) {compile_s:.1f} s.",
        "",
        "| quantity | relative difference to eager | tolerance | result |",
        "| --- | ---: | ---: | --- |",
        f"| loss | {d_loss:.2e} | 1e-5 | {verdict(d_loss <= 1e-5, 'compile loss')} |",
        f"| gradients (worst: `{worst_name}`; error / largest gradient entry) | {d_grad:.2e} "
        f"| 1e-4 | {verdict(d_grad <= 1e-4, 'compile grads')} |",
        f"| decode (Viterbi scores) | {d_dec:.2e} | 1e-5 | {verdict(d_dec <= 1e-5, 'compile decode')} |",
        f"| boundary marginals | {d_marg:.2e} | 1e-4 | {verdict(d_marg <= 1e-4, 'compile marginals')} |",
        "",
        f"Each gradient against its own largest entry: {own_scale}.",
        "",
        f"compile: {'pass' if ok else 'FAIL'}",
        "",
    ]


# ----------------------------------------------------------------------------- (b) CUDA graphs
def capture(fn, warmups: int = 3) -> tuple[torch.cuda.CUDAGraph, object]:
    """Warm ``fn`` up on a side stream (Triton JIT, allocator), then capture one call of it;
    the graph and the (static) outputs of the captured call."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmups):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out


def check_cuda_graphs(device, smoke: bool) -> list[str]:
    head = ["## (b) CUDA graph capture", ""]
    if device.type != "cuda":
        return [*head, "skipped: needs CUDA", ""]
    from semicrf_kernels._shared import split_launch

    lines = []
    # the plain scan, and a window long enough for the split scan, in both of its schedules
    # (the overlapped one forks two streams with events between them)
    sizes = (
        [(2, 64, 4, 8, False)] if smoke else [(8, 2000, 16, 32, False), (2, 3000, 8, 600, False)]
    )
    sizes += [] if smoke else [(2, 3000, 8, 600, True)]
    for *size, overlap in sizes:
        split_launch.SPLIT_OVERRIDE["overlap"] = overlap
        try:
            lines += _graph_rows(device, *size)
        finally:
            split_launch.SPLIT_OVERRIDE.pop("overlap", None)
    return [
        *head,
        "Static inputs (float32), captured once, replayed on 3 new input sets (new scores and "
        "lengths copied in); compared with eager runs on them. K = 600 runs the split scan "
        "(second row of it: the overlapped schedule).",
        "",
        "| B, T, C, K | captured | worst relative difference to eager | tolerance | result |",
        "| --- | --- | ---: | ---: | --- |",
        *lines,
        "",
    ]


def _graph_rows(device, B: int, T: int, C: int, K: int) -> list[str]:
    (cum, trans, bias), lengths = random_problem(B, T, C, K, device, seed=1)
    static = [x.clone().requires_grad_() for x in (cum, trans, bias)]
    static_lengths = lengths.clone()

    def forward_backward():
        z = semi_crf_streaming_forward(*static, static_lengths, K, validate=False)
        return (z, *torch.autograd.grad(z.sum(), static))

    def viterbi():
        return tuple(
            semi_crf_streaming_viterbi(
                *(x.detach() for x in static), static_lengths, K, validate=False
            )
        )

    graph_fb, out_fb = capture(forward_backward)
    graph_v, out_v = capture(viterbi)

    rows = []
    worst = {"forward + backward": 0.0, "viterbi": 0.0}
    for seed in (2, 3, 4):
        (c2, t2, b2), l2 = random_problem(B, T, C, K, device, seed=seed)
        l2 = l2.flip(0)  # other lengths in other rows
        with torch.no_grad():
            for dst, src in zip(static, (c2, t2, b2)):
                dst.copy_(src)
            static_lengths.copy_(l2)
        graph_fb.replay()
        graph_v.replay()
        torch.cuda.synchronize()
        leaves = [x.clone().requires_grad_() for x in (c2, t2, b2)]
        z = semi_crf_streaming_forward(*leaves, l2, K)
        eager_fb = (z, *torch.autograd.grad(z.sum(), leaves))
        with torch.no_grad():
            eager_v = tuple(semi_crf_streaming_viterbi(c2, t2, b2, l2, K))
        worst["forward + backward"] = max(
            worst["forward + backward"],
            *(rel(a.detach(), b.detach()) for a, b in zip(out_fb, eager_fb)),
        )
        worst["viterbi"] = max(worst["viterbi"], *(rel(a, b) for a, b in zip(out_v, eager_v)))
    for name, value in worst.items():
        ok = verdict(value <= 1e-6, f"cuda graph {name} at K={K}")
        rows.append(f"| {B}, {T}, {C}, {K} | {name} | {value:.2e} | 1e-6 | {ok} |")
    return rows


def check_model_cuda_graph(device, smoke: bool) -> list[str]:
    """Capture a whole model: encoder + head loss, the gradients of every parameter, decode."""
    head = ["### (b2) A model with the head, captured whole", ""]
    if device.type != "cuda":
        return [*head, "skipped: needs CUDA", ""]
    B, T, C, K, F, H = (2, 64, 4, 8, 5, 16) if smoke else (8, 1000, 12, 32, 64, 128)
    torch.manual_seed(0)
    model = Tagger(C, K, F, H).to(device)  # validate=True: capture itself turns the checks off
    params = list(model.parameters())
    static_x, static_lengths, static_labels = tagging_batch(B, T, C, F, device, seed=1)

    def step(x, lengths, labels):
        loss = model.loss(x, lengths, labels)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            scores = model.decode(x, lengths)
        return (loss.detach(), *grads, scores)

    graph, captured = capture(lambda: step(static_x, static_lengths, static_labels))

    worst = {"loss": 0.0, "parameter gradients (worst)": 0.0, "decode (Viterbi scores)": 0.0}
    for seed in (2, 3, 4):
        x, lengths, labels = tagging_batch(B, T, C, F, device, seed=seed)
        lengths = lengths.flip(0)
        static_x.copy_(x)
        static_lengths.copy_(lengths)
        static_labels.copy_(labels)
        graph.replay()
        torch.cuda.synchronize()
        eager = step(x, lengths, labels)
        diffs = [rel(a, b) for a, b in zip(captured, eager)]
        worst["loss"] = max(worst["loss"], diffs[0])
        worst["parameter gradients (worst)"] = max(
            worst["parameter gradients (worst)"], *diffs[1:-1]
        )
        worst["decode (Viterbi scores)"] = max(worst["decode (Viterbi scores)"], diffs[-1])
    rows = [
        f"| {name} | {value:.2e} | 1e-6 | {verdict(value <= 1e-6, 'model cuda graph ' + name)} |"
        for name, value in worst.items()
    ]
    return [
        *head,
        f"Encoder (2 linear layers, hidden {H}) + `UncertaintySemiMarkovCRFHead` (boundary "
        f"projections, default `validate=True`), B={B}, T={T}, C={C}, K={K}: `compute_loss`, "
        f"`torch.autograd.grad` of all {len(params)} parameter tensors and `decode` captured in "
        "one graph, replayed on 3 new batches (new features, lengths and labels copied in).",
        "",
        "| captured | worst relative difference to eager | tolerance | result |",
        "| --- | ---: | ---: | --- |",
        *rows,
        "",
    ]


# ----------------------------------------------------------------------------- (c) precision
def check_precision(device, smoke: bool, long: bool) -> list[str]:
    if smoke:
        Ts, (B, C, K) = [50, 200], (2, 4, 8)
    else:
        Ts, (B, C, K) = [1_000, 10_000, 100_000] + ([400_000] if long else []), (2, 8, 32)
    use_triton = device.type == "cuda"
    lines = [
        "## (c) Float32 precision of the kernels",
        "",
        f"{'Triton' if use_triton else 'PyTorch'} kernels, float32 against float64 on the same "
        f"float32-rounded inputs, B={B}, C={C}, K={K}, zero-centred N(0,1) emissions. Targets: "
        "log Z 1e-5, gradients 1e-4, Viterbi score 1e-5 (relative).",
        "",
        "| T | log Z | grad cum_scores | grad transition | grad duration_bias | Viterbi score | result |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for T in Ts:
        floats, lengths = random_problem(B, T, C, K, device, seed=T)
        results = {}
        for dtype in (torch.float32, torch.float64):
            leaves = [x.to(dtype).requires_grad_() for x in floats]
            z = semi_crf_streaming_forward(
                *leaves, lengths, K, use_triton=use_triton, validate=False
            )
            grads = torch.autograd.grad(z.sum(), leaves)
            with torch.no_grad():
                path = semi_crf_streaming_viterbi(
                    *(x.to(dtype) for x in floats),
                    lengths,
                    K,
                    use_triton=use_triton,
                    validate=False,
                )
            results[dtype] = (z.detach(), grads, path.scores)
            del leaves, z, grads, path
        z32, g32, v32 = results[torch.float32]
        z64, g64, v64 = results[torch.float64]
        e_z, e_v = rel(z32, z64), rel(v32, v64)
        e_g = [rel(a, b) for a, b in zip(g32, g64)]
        ok = e_z <= 1e-5 and max(e_g) <= 1e-4 and e_v <= 1e-5
        lines.append(
            f"| {T:,} | {e_z:.1e} | {e_g[0]:.1e} | {e_g[1]:.1e} | {e_g[2]:.1e} | {e_v:.1e} | "
            f"{verdict(ok, f'precision T={T}')} |"
        )
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return [*lines, ""]


def run_for_json(cmd: list[str], what: str) -> dict | None:
    """Run a launcher that writes its measurements to the path after ``--json`` (appended
    here, in a temporary folder that is also the working directory); the JSON, or ``None``
    (counted as a failure, output printed) if it failed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        run = subprocess.run(
            [*cmd, "--json", str(out)], capture_output=True, text=True, timeout=1800, cwd=tmp
        )
        if run.returncode == 0 and out.exists():
            return json.loads(out.read_text())
    FAILURES.append(what)
    print(run.stdout[-2000:], run.stderr[-3000:], file=sys.stderr)
    return None


# ----------------------------------------------------------------------------- (d) DDP
def check_ddp(device, smoke: bool) -> list[str]:
    lines = ["## (d) DDP throughput (`examples/distributed/ddp_train.py`)", ""]
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    sizes = ["--steps", "3", "--warmup", "1", "--seq-len", "100", "--max-duration", "20"]
    if not smoke:
        sizes = ["--steps", "30", "--warmup", "5", "--seq-len", "400", "--max-duration", "80"]
    counts = [1, 2] if (gpus >= 2 or device.type == "cpu") else [1]
    lines += [
        f"torchrun --standalone, {' '.join(sizes)}, batch 8 per process, "
        f"{'nccl' if gpus else 'gloo'} backend.",
        "",
        "| processes | sequences/s (all ranks) | scaling | parameters in sync |",
        "| ---: | ---: | ---: | --- |",
    ]
    base = None
    for n in counts:
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={n}", str(ROOT / "examples/distributed/ddp_train.py"),
            *sizes, "--device", "cuda" if gpus else "cpu",
        ]  # fmt: skip
        result = run_for_json(cmd, f"ddp {n} processes")
        if result is None:
            lines.append(f"| {n} | **FAIL** | | |")
            continue
        speed = result["sequences_per_second"]
        base = base or speed
        sync = verdict(result["parameters_in_sync"], f"ddp sync {n}")
        lines.append(f"| {n} | {speed:.1f} | {speed / base:.2f}x | {sync} |")
    if len(counts) == 1:
        lines.append("| 2 | n/a (one GPU visible) | | |")
    return [*lines, ""]


# ----------------------------------------------------------------------------- (f) autocast
def check_autocast(device, smoke: bool) -> list[str]:
    """bf16 autocast training steps next to float32 ones (same start, same batches)."""
    B, T, C, K, F, H = (3, 40, 3, 6, 5, 16) if smoke else (8, 1000, 12, 32, 64, 128)
    steps = 3 if smoke else 20
    torch.manual_seed(0)
    models = {"float32": Tagger(C, K, F, H).to(device)}
    models["bf16"] = Tagger(C, K, F, H).to(device)
    models["bf16"].load_state_dict(models["float32"].state_dict())
    losses: dict[str, list[float]] = {name: [] for name in models}
    first_grads: dict[str, list[torch.Tensor]] = {}
    dtypes_ok = finite = True
    for name, model in models.items():
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        for step in range(steps):
            x, lengths, labels = tagging_batch(B, T, C, F, device, seed=100)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=name == "bf16"):
                loss = model.loss(x, lengths, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grads = [p.grad for p in model.parameters()]
            dtypes_ok &= loss.dtype == torch.float32 and all(
                g.dtype == torch.float32 for g in grads
            )
            finite &= bool(torch.isfinite(loss)) and all(
                bool(torch.isfinite(g).all()) for g in grads
            )
            if step == 0:
                first_grads[name] = [g.detach().clone() for g in grads]
            losses[name].append(float(loss))
            opt.step()
    d_loss0 = abs(losses["bf16"][0] - losses["float32"][0]) / abs(losses["float32"][0])
    scale = max(float(g.abs().max()) for g in first_grads["float32"])
    d_grad0 = max(
        float((a - b).abs().max()) / scale
        for a, b in zip(first_grads["bf16"], first_grads["float32"])
    )
    d_last = abs(losses["bf16"][-1] - losses["float32"][-1]) / abs(losses["float32"][-1])
    bf16_eps = 2.0**-8
    return [
        "## (f) Mixed precision (`torch.autocast`, bfloat16)",
        "",
        f"Model of (a), B={B}, T={T}, C={C}, K={K}; {steps} AdamW steps from the same start on one "
        "batch, one run under autocast bf16 (encoder and projections in bf16, the head's "
        "sums in float32/float64), one in float32.",
        "",
        "| check | value | expected | result |",
        "| --- | ---: | --- | --- |",
        f"| loss and gradients float32 | {dtypes_ok} | True | {verdict(dtypes_ok, 'autocast dtypes')} |",
        f"| losses and gradients finite | {finite} | True | {verdict(finite, 'autocast finite')} |",
        f"| first loss, relative difference | {d_loss0:.1e} | <= 4 eps(bf16) = 1.6e-2 | {verdict(d_loss0 <= 4 * bf16_eps, 'autocast loss')} |",
        f"| first gradients, error / largest entry | {d_grad0:.1e} | <= 4 eps(bf16) | {verdict(d_grad0 <= 4 * bf16_eps, 'autocast grads')} |",
        f"| loss after {steps} steps: bf16 / float32 | {losses['bf16'][-1]:.4f} / {losses['float32'][-1]:.4f} (rel. {d_last:.1e}) | (information) | - |",
        f"| loss first -> last (bf16) | {losses['bf16'][0]:.4f} -> {losses['bf16'][-1]:.4f} | decreasing | {verdict(losses['bf16'][-1] < losses['bf16'][0], 'autocast training')} |",
        "",
    ]


# ----------------------------------------------------------------------------- (e) Lightning
def check_lightning(device, smoke: bool) -> list[str]:
    lines = ['## (e) Lightning `strategy="ddp"` (`examples/distributed/lightning_ddp.py`)', ""]
    try:
        import lightning  # noqa: F401
    except ImportError:
        return [*lines, "skipped: `lightning` is not installed", ""]
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    sizes = ["--train-size", "32", "--val-size", "8", "--seq-len", "60", "--max-duration", "12"]
    if not smoke:
        sizes = ["--train-size", "960", "--val-size", "64", "--seq-len", "400", "--max-duration", "80"]  # fmt: skip
    sizes += ["--epochs", "2", "--batch-size", "8", "--warmup-steps", "1" if smoke else "5"]
    counts = [1, 2] if (gpus >= 2 or device.type == "cpu") else [1]
    lines += [
        f"`lightning_ddp.py {' '.join(sizes)}`, accelerator {'gpu' if gpus else 'cpu'}; time "
        "inside training steps (forward, backward with the all-reduce, optimizer step).",
        "",
        "| devices | sequences/s (all ranks) | scaling | parameters in sync | val boundary F1 |",
        "| ---: | ---: | ---: | --- | ---: |",
    ]
    base = None
    for n in counts:
        cmd = [
            sys.executable, str(ROOT / "examples/distributed/lightning_ddp.py"),
            "--devices", str(n), "--accelerator", "gpu" if gpus else "cpu", *sizes,
        ]  # fmt: skip
        result = run_for_json(cmd, f"lightning {n} devices")
        if result is None:
            lines.append(f"| {n} | **FAIL** | | | |")
            continue
        speed = result["sequences_per_second"] or 0.0
        base = base or speed
        sync = verdict(result["parameters_in_sync"], f"lightning sync {n}")
        f1 = result["validation"].get("val/boundary_f1", float("nan"))
        lines.append(f"| {n} | {speed:.1f} | {speed / base:.2f}x | {sync} | {f1:.3f} |")
    if len(counts) == 1:
        lines.append("| 2 | n/a (one GPU visible) | | | |")
    return [*lines, ""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--long", action="store_true", help="precision also at T = 4e5")
    p.add_argument("--skip-ddp", action="store_true")
    p.add_argument("--smoke", action="store_true", help="tiny sizes; runs without a GPU")
    p.add_argument("--out", default=os.environ.get("OUT"), help="folder of the report")
    p.add_argument(
        "--only", default="abcdef", help="sections to run, e.g. 'a' or 'ab' (default: all)"
    )
    args = p.parse_args()
    if not torch.cuda.is_available() and not args.smoke:
        raise SystemExit("needs a CUDA GPU (or --smoke for a dry run on the CPU)")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    date = datetime.date.today().isoformat()
    report = [
        f"# Reliability on {card_name()} ({date})",
        "",
        f"`benchmarks/gpu_reliability.py{' --long' if args.long else ''}"
        f"{'' if args.only == 'abcdef' else ' --only ' + args.only}` at commit "
        f"{git_commit()}: torch "
        f"{torch.__version__}, device {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}.",
        "",
    ]
    sections = {
        "a": lambda: check_compile(device, args.smoke),
        "b": lambda: (
            check_cuda_graphs(device, args.smoke) + check_model_cuda_graph(device, args.smoke)
        ),
        "c": lambda: check_precision(device, args.smoke, args.long),
        "d": lambda: check_ddp(device, args.smoke),
        "e": lambda: check_lightning(device, args.smoke),
        "f": lambda: check_autocast(device, args.smoke),
    }
    chosen = [key for key in sections if key in args.only and not (args.skip_ddp and key in "de")]
    for key in chosen:
        try:
            lines = sections[key]()
        except Exception as exc:  # report and go on: one broken check must not hide the others
            FAILURES.append(repr(exc))
            lines = [f"**ERROR** {type(exc).__name__}: {exc}", ""]
        print("\n".join(lines), flush=True)
        report += lines
    report.append(
        f"**{'All checks passed' if not FAILURES else 'Failed: ' + '; '.join(FAILURES)}**"
    )
    text = "\n".join(report) + "\n"
    out_dir = Path(args.out) if args.out else ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.only == "abcdef" else f"_{''.join(chosen)}"
    path = out_dir / f"reliability_{card_name()}_{date}{suffix}.md"
    path.write_text(text)
    print(f"\nwritten to {path}")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
