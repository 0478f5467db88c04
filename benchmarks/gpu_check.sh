#!/usr/bin/env bash
# Run the GPU test suites and the benchmarks from source, in one call, on a GPU machine
# that has python3 with torch and triton but no package registry (and maybe no nox).
#
#   bash benchmarks/gpu_check.sh [quick|tests|verify|bench|all|reliability|distribution|baselines|split|
#                                 perstep]
#   (default: all)
#
# tests: every package's suite on CUDA (more than 10 minutes now); verify: the kernels' scan, split,
# launch and gradient tests on CUDA (one call); bench: bench_streaming.py + check_precision.py; quick:
# tests + a small benchmark; reliability: benchmarks/gpu_reliability.py (compile, CUDA graphs,
# precision, DDP and Lightning on every visible GPU; extra arguments via RELIABILITY_ARGS);
# distribution: sample(100) and topk(10) against one forward (bench_streaming.py --distribution);
# baselines: pytorch-struct and the earlier library (benchmarks/baselines.py), wheels in .whl/baselines/;
# split: issue 12's defaults against those of before, the backward profile, the long rows and CUDA
# graphs (about 5 minutes); perstep: what the defaults cost without host launches (CUDA-graph
# replays), the per-step experiments (benchmarks/experiments/lookahead_forward.py), the
# duration-bias gradient's settings (profile_backward.py --grad), the defaults against those of
# before and with exp_trans at the short rows and the long rows, with precision (under 10
# minutes).
# "all" (tests + bench) needs about 15 minutes: split it where a call is limited to 10.
#
# pytest/hypothesis, when missing there, are installed from wheels in .whl/, and Lightning from
# .whl/lightning/ (see docs/development.md for how to fetch them on a machine with a registry).
# Results go to $OUT (if set) and to benchmarks/results/.
set -uo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-all}"
ROOT="$(pwd)"
export PYTHONPATH="$ROOT/packages/semicrf-semirings/src:$ROOT/packages/semicrf-core/src:$ROOT/packages/semicrf-kernels/src:$ROOT/packages/semicrf-nn/src:$ROOT/packages/flash-semicrf/src:${PYTHONPATH:-}"
export PYTHONUNBUFFERED=1
export GIT_COMMIT="${GIT_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
RESULTS="${OUT:-$ROOT/benchmarks/results}"
mkdir -p "$RESULTS"

if ! python3 -c "import pytest, hypothesis" 2>/dev/null; then
    if compgen -G ".whl/*.whl" >/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:$PYTHONPATH"
    else
        echo "pytest/hypothesis missing and no .whl/ folder: tests skipped" >&2
    fi
fi

if [[ "$MODE" == "reliability" && -d .whl/lightning ]] && ! python3 -c "import lightning" 2>/dev/null; then
    # --no-deps with the names listed: torch, fsspec, packaging come from the machine's python.
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --find-links .whl/lightning --target /tmp/site-lightning \
        lightning lightning-utilities pytorch-lightning torchmetrics tqdm pyyaml \
        && export PYTHONPATH="$PYTHONPATH:/tmp/site-lightning"
fi

python3 - <<'PY'
import torch, triton
print(f"torch {torch.__version__}  triton {triton.__version__}  cuda {torch.version.cuda}")
print(f"device: {torch.cuda.get_device_name()}  ({torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB)")
PY

status=0
run() { echo; echo "=== $*"; "$@" || status=1; }

if [[ "$MODE" == "all" || "$MODE" == "tests" || "$MODE" == "quick" ]]; then
    for pkg in semicrf-semirings semicrf-core semicrf-kernels semicrf-nn flash-semicrf; do
        if compgen -G "packages/$pkg/tests/test_*.py" >/dev/null; then
            run python3 -m pytest "packages/$pkg/tests" -q -x -p no:cacheprovider \
                --junitxml="$RESULTS/pytest_${pkg}.xml"
        fi
    done
fi
if [[ "$MODE" == "verify" ]]; then
    # the CUDA tests of the Triton kernels that change most (scans, split, launches, gradients),
    # to verify kernel work done without a GPU within one call (the full "tests" no longer fits
    # in 10 minutes: kernel compiles dominate)
    K_TESTS=packages/semicrf-kernels/tests
    run timeout 540 python3 -m pytest -q -x -p no:cacheprovider \
        $K_TESTS/shared $K_TESTS/logpartition/test_triton_grad.py \
        $K_TESTS/logpartition/test_triton_fused_pair.py $K_TESTS/logpartition/test_triton_scan.py \
        --junitxml="$RESULTS/pytest_verify.xml"
fi
if [[ "$MODE" == "all" || "$MODE" == "bench" ]]; then
    run python3 benchmarks/bench_streaming.py --out "$RESULTS"
    [[ -f benchmarks/check_precision.py ]] && run python3 benchmarks/check_precision.py --out "$RESULTS"
fi
if [[ "$MODE" == "reliability" ]]; then
    # shellcheck disable=SC2086
    run python3 benchmarks/gpu_reliability.py --out "$RESULTS" ${RELIABILITY_ARGS:-}
fi
if [[ "$MODE" == "quick" ]]; then
    run python3 benchmarks/bench_streaming.py --quick --out "$RESULTS"
fi
if [[ "$MODE" == "split" ]]; then
    # issue 12, what the last run (benchmarks/results/split_NVIDIA-H100_2026-12-07_f3a4e31.md)
    # left to measure: the defaults it chose (auto: fused pair, ring for the paired scans,
    # 32-position super-blocks at 64 <= K < 128) against those of before, in one call, with the
    # precision of the defaults; the backward profile (batch-sum kernel rewritten since); the
    # long rows and CUDA graphs for the record
    T=benchmarks/experiments/split_tune.py
    run python3 $T --sizes 32x1000x32x24,64x512x16x8,8x10000x100x24,4x2048x64x128 \
        --configs before,auto --precision
    run python3 benchmarks/experiments/profile_backward.py
    run python3 benchmarks/experiments/profile_backward.py --shape 64,512,16,8
    run python3 $T --sizes 1x100000x200x24,1x400000x3000x24 --configs auto --precision
    run python3 benchmarks/gpu_reliability.py --only b --out "$RESULTS"
fi
if [[ "$MODE" == "perstep" ]]; then
    T=benchmarks/experiments/split_tune.py
    run timeout 130 python3 $T --sizes 32x1000x32x24,64x512x16x8,8x10000x100x24 \
        --configs before,auto,expt --precision
    run timeout 90 python3 $T --sizes 4x2048x64x128 \
        --configs auto,ringc128w4,ringc128w8,ringc128w4exp --precision
    run timeout 110 python3 $T --graph --sizes 1x100000x200x24 --configs auto,s32,s128
    run timeout 70 python3 $T --graph --sizes 8x10000x100x24,32x1000x32x24,64x512x16x8 \
        --configs auto
    run timeout 100 python3 benchmarks/experiments/lookahead_forward.py
    run timeout 45 python3 benchmarks/experiments/profile_backward.py --grad \
        "programs_per_sm=8;programs_per_sm=16;db_stages=2;db_stages=3;programs_per_sm=16,db_stages=2"
    run timeout 100 python3 $T --sizes 1x100000x200x24,1x400000x3000x24 --configs auto --precision
fi
if [[ "$MODE" == "baselines" ]]; then
    # each external library in a folder of its own, without ours on the path (the earlier
    # library's import name is ours): wheels in .whl/baselines/
    for lib in struct earlier; do
        whl=$(compgen -G ".whl/baselines/$([[ $lib == struct ]] && echo torch_struct || echo flash_semicrf)-*.whl")
        [[ -z "$whl" ]] && { echo "no wheel for $lib in .whl/baselines/" >&2; continue; }
        python3 -m pip install -q --no-index --no-deps --no-compile --target "/tmp/base-$lib" "$whl"
        run env PYTHONPATH="/tmp/base-$lib" python3 benchmarks/baselines.py --lib "$lib" \
            --sizes "${BASELINE_SIZES:-32x1000x32x24,64x512x16x8,4x2048x64x128,8x10000x100x24,1x100000x200x24}" \
            --out "$RESULTS/baselines_${lib}.jsonl"
    done
fi
if [[ "$MODE" == "distribution" ]]; then
    # sample(100) and topk(10) against one forward at the two sizes of issue 14.
    run python3 benchmarks/bench_streaming.py --distribution --no-torch \
        --only 1x100000x200x24,32x1000x32x24 --out "$RESULTS"
fi
echo; echo "gpu_check: $([[ $status == 0 ]] && echo PASSED || echo FAILED)"
exit $status
