"""Compile the main streaming kernels for a GPU architecture without a GPU; report registers.

    python tools/compile_check.py [--arch 90] [--only NAME,...] [--cache]

Triton compiles ahead of time for a target (``GPUTarget``) with the ``ptxas`` its wheel ships,
so a kernel change can be checked on a machine without a GPU, and against another Triton
version than the installed one (put that wheel's files first on ``PYTHONPATH``, see
``docs/development.md``): does every kernel compile, and how many registers and spill bytes
does ``ptxas`` give it (spills and register pressure show in the speed of latency-bound
kernels). Each kernel is compiled in one configuration (float32, ``C = 24`` tiles, the
transition in registers); the scans, far/reduce, gradient and drift kernels are covered, not the
``(K, C, C)``, sampling, top-k or traceback kernels. Compile times are measured with an empty
Triton cache unless ``--cache``. This does not run anything: correctness stays with the
interpreter tests, speed with a GPU run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

F32, F64, I64, I32 = "*fp32", "*fp64", "*i64", "*i32"

SCAN_FLAGS = dict(
    HAS_PS=True, HAS_PE=True, TRANS_REGS=True, RENORM_BLOCK=False,
    BLOCK_C=32, BLOCK_P=8, BLOCK_S=16, BLOCK_TC=32, BLOCK_R=0,
)  # fmt: skip
#: the log-semiring scans' EXP_TRANS (``ScanConfig.exp_trans``; the Viterbi kernel has none).
#: Every constexpr must be given: one left out compiles as a runtime integer, both branches.
LOG = {"EXP_TRANS": False}
EXP = {"EXP_TRANS": True}
#: the register ring (``ScanConfig.ring``) at 32x1000x32x24 and 8x10000x100x24; the rule runs the
#: 128-row ring on 8 warps only (``--warps 8``; on 4 it spills)
RING32 = {**SCAN_FLAGS, "BLOCK_K": 2, "BLOCK_R": 32}
RING128 = {**SCAN_FLAGS, "BLOCK_K": 2, "BLOCK_R": 128}
SCAN_PTRS = dict(
    cum_ptr=F32, trans_ptr=F32, trans_t_ptr=F32, db_ptr=F32, len_ptr=I64, ps_ptr=F32,
    pe_ptr=F32, alpha_ptr=F32, win_ptr=F32, shift_ptr=F64, score_ptr=F64, final_ptr=I64,
    gamma_ptr=F32, bwin_ptr=F32, bshift_ptr=F64, farv_ptr=F32, fard_ptr=I32, bpd_ptr=I32,
    bpa_ptr=I32,
)  # fmt: skip


def kernels() -> list[tuple[str, object, dict, dict]]:
    """``(name, kernel, pointer types, constexprs)`` at ``C = 24`` tiles (``BLOCK_C = 32``)."""
    from semicrf_kernels._shared import triton_far
    from semicrf_kernels.logpartition import triton_grad, triton_scan
    from semicrf_kernels.viterbi import triton as viterbi

    grad_rows = dict(
        len_ptr=I64, cum_ptr=F32, db_ptr=F32, wf_ptr=F32, ra_ptr=F64, wb_ptr=F32, rb_ptr=F64,
        lz_ptr=F64, out_ptr=F64, alpha_ptr=F32, first_ptr=F32, trans_ptr=F32, logz_ptr=F64,
        g_ptr=F32, ps_ptr=F32, pe_ptr=F32, gcum_ptr=F32, gps_ptr=F32, gpe_ptr=F32, part_ptr=F64,
    )  # fmt: skip
    far = dict(
        cum_ptr=F32, db_ptr=F32, len_ptr=I64, win_ptr=F32, shift_ptr=F64, farv_ptr=F32,
        fard_ptr=I32, outv_ptr=F32, outd_ptr=I32,
    )  # fmt: skip
    return [
        ("forward scan", triton_scan._forward_scan_cc_kernel, SCAN_PTRS,
         {**SCAN_FLAGS, **LOG, "BLOCK_K": 2}),
        ("backward scan", triton_scan._backward_scan_cc_kernel, SCAN_PTRS,
         {**SCAN_FLAGS, **LOG, "BLOCK_K": 2}),
        ("paired scans", triton_scan._paired_scan_cc_kernel, SCAN_PTRS, {**SCAN_FLAGS, **LOG}),
        ("viterbi scan", viterbi._viterbi_scan_cc_kernel, SCAN_PTRS,
         {**SCAN_FLAGS, "STORE_BP": True, "BLOCK_K": 2}),
        ("forward ring 32", triton_scan._forward_scan_cc_kernel, SCAN_PTRS, {**RING32, **LOG}),
        ("forward ring 128", triton_scan._forward_scan_cc_kernel, SCAN_PTRS, {**RING128, **LOG}),
        ("backward ring 32", triton_scan._backward_scan_cc_kernel, SCAN_PTRS, {**RING32, **LOG}),
        ("forward scan exp", triton_scan._forward_scan_cc_kernel, SCAN_PTRS,
         {**SCAN_FLAGS, **EXP, "BLOCK_K": 2}),
        ("forward ring 32 exp", triton_scan._forward_scan_cc_kernel, SCAN_PTRS, {**RING32, **EXP}),
        ("paired scans exp", triton_scan._paired_scan_cc_kernel, SCAN_PTRS,
         {**SCAN_FLAGS, **EXP, "BLOCK_R": 32}),
        ("viterbi ring 32", viterbi._viterbi_scan_cc_kernel, SCAN_PTRS,
         {**RING32, "STORE_BP": True}),
        ("far window", triton_far._far_window_kernel, far,
         dict(REVERSE=False, MAXSR=False, BLOCK_C=32, BLOCK_PF=16, BLOCK_SF=8)),
        ("far reduce", triton_far._far_reduce_kernel, far,
         dict(MAXSR=False, BLOCK_C=32, BLOCK_P=8, BLOCK_K=16)),
        ("marginals", triton_grad._marginals_kernel, grad_rows,
         dict(KCC=False, HAS_PS=True, HAS_PE=True, WANT_PS=True, WANT_PE=True, BLOCK_T=32,
              BLOCK_C=32)),
        ("grad duration bias", triton_grad._grad_db_cc_kernel, grad_rows,
         dict(BLOCK_S=8, BLOCK_D=8, BLOCK_C=32, I64=False, STAGES=1)),
        ("grad transition", triton_grad._grad_trans_cc_kernel, grad_rows,
         dict(BLOCK_S=8, BLOCK_TC=8, BLOCK_C=32)),
        ("batch sums", triton_grad._batch_sum_kernel, grad_rows, dict(BLOCK_R=32, BLOCK_N=128)),
        ("cut mass", triton_grad._cut_mass_cc_kernel, grad_rows,
         dict(BLOCK_C=32, BLOCK_S=8, BLOCK_D=8)),
        ("drift lz", triton_grad._drift_lz_kernel, {**grad_rows, "corr_ptr": F64},
         dict(BLOCK_T=1024)),
    ]  # fmt: skip


def compile_one(kernel, ptrs: dict, consts: dict, arch: int, warps: int):
    """The compiled kernel for ``sm_{arch}``: scalars are int32, pointers typed by ``ptrs``."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    sig = {
        name: "constexpr" if name in consts else ptrs.get(name, "i32") for name in kernel.arg_names
    }
    src = ASTSource(kernel, sig, constexprs=consts)
    return triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": warps})


def ptxas_report(ptx: str, arch: int) -> str:
    """``ptxas -v``'s registers and spill line for ``ptx``."""
    try:  # the ptxas Triton itself compiles with for this architecture (3.6+)
        from triton.backends.nvidia.compiler import get_ptxas

        ptxas = get_ptxas(arch).path
    except ImportError:
        import triton

        ptxas = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
        f.write(ptx)
    try:
        out = subprocess.run(
            [ptxas, "-v", f"--gpu-name=sm_{arch}a" if arch >= 90 else f"--gpu-name=sm_{arch}",
             f.name, "-o", os.devnull],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        raise RuntimeError(f"ptxas failed: {out.stderr.strip()[:300]}")
    keep = [ln.split("info    : ")[-1].strip() for ln in out.stderr.splitlines()]
    return "; ".join(ln for ln in keep if "registers" in ln or "spill" in ln)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", type=int, default=90, help="compute capability x 10 (90: H100/H200)")
    p.add_argument("--warps", type=int, default=4)
    p.add_argument("--only", default="", help="comma-separated names (default: all)")
    p.add_argument("--cache", action="store_true", help="use Triton's cache (compile times 0)")
    args = p.parse_args()
    if not args.cache:  # before triton is imported: it reads the cache directory then
        os.environ["TRITON_CACHE_DIR"] = tempfile.mkdtemp(prefix="compile_check_")
    import triton

    print(f"triton {triton.__version__}, sm_{args.arch}, {args.warps} warps")
    print("| kernel | compile s | ptxas |\n| --- | ---: | --- |")
    failed = 0
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    for name, kernel, ptrs, consts in kernels():
        if only and name not in only:
            continue
        t = time.perf_counter()
        try:
            k = compile_one(kernel, ptrs, consts, args.arch, args.warps)
            seconds = time.perf_counter() - t
            report = ptxas_report(k.asm["ptx"], args.arch)
        except Exception as exc:  # a kernel that does not compile is the finding
            failed += 1
            why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            print(f"| {name} | - | FAILED: {why} |")
            continue
        print(f"| {name} | {seconds:.1f} | {report} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
