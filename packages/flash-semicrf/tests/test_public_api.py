"""Every public name imports from where docs/api/ says, as the very object
(``is``) of the layer that defines it: the meta-package re-exports, it never copies or wraps."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib import metadata

import pytest

import flash_semicrf

# (documented import path, name, layer module that defines the object). Written out by
# hand from the original API design (see docs/api/): a name dropped from the meta-package must fail here.
SPEC_NAMES: list[tuple[str, str, str]] = [
    ("flash_semicrf", "SemiMarkovCRFHead", "semicrf_nn"),
    ("flash_semicrf", "UncertaintySemiMarkovCRFHead", "semicrf_nn"),
    ("flash_semicrf", "semi_crf_streaming_forward", "semicrf_kernels"),
    ("flash_semicrf", "create_duration_distribution", "semicrf_nn"),
    ("flash_semicrf", "LearnedDuration", "semicrf_nn"),
    ("flash_semicrf", "GeometricDuration", "semicrf_nn"),
    ("flash_semicrf", "NegativeBinomialDuration", "semicrf_nn"),
    ("flash_semicrf", "PoissonDuration", "semicrf_nn"),
    ("flash_semicrf", "UniformDuration", "semicrf_nn"),
    ("flash_semicrf", "CallableDuration", "semicrf_nn"),
    ("flash_semicrf", "SemiMarkov", "semicrf_core"),
    ("flash_semicrf", "Segment", "semicrf_nn"),
    ("flash_semicrf", "ViterbiResult", "semicrf_nn"),
    ("flash_semicrf", "BandedMatrix", "semicrf_core"),
    ("flash_semicrf", "BlockTriangularMatrix", "semicrf_core"),
    ("flash_semicrf", "block_triang_matmul", "semicrf_core"),
    ("flash_semicrf", "measure_effective_bandwidth", "semicrf_core"),
    ("flash_semicrf", "snake_ordering", "semicrf_core"),
    ("flash_semicrf", "rcm_ordering_from_adjacency", "semicrf_core"),
    ("flash_semicrf", "apply_permutation", "semicrf_core"),
    ("flash_semicrf.streaming", "compute_edge_block_streaming", "semicrf_kernels"),
    ("flash_semicrf.streaming", "SemiCRFStreaming", "semicrf_kernels"),
    ("flash_semicrf.streaming", "SemiCRFStreamingTriton", "semicrf_kernels.streaming"),
    ("flash_semicrf.streaming", "HAS_TRITON", "semicrf_kernels"),
    ("flash_semicrf.streaming", "NEG_INF", "semicrf_kernels"),
    ("flash_semicrf.semirings", "LogSemiring", "semicrf_semirings"),
    ("flash_semicrf.semirings", "MaxSemiring", "semicrf_semirings"),
    ("flash_semicrf.semirings", "StdSemiring", "semicrf_semirings"),
    ("flash_semicrf.semirings", "KMaxSemiring", "semicrf_semirings"),
    ("flash_semicrf.semirings", "EntropySemiring", "semicrf_semirings"),
    ("flash_semicrf.semirings", "KLDivergenceSemiring", "semicrf_semirings"),
    ("flash_semicrf.semirings", "CrossEntropySemiring", "semicrf_semirings"),
    ("flash_semicrf.semirings.checkpoint", "CheckpointSemiring", "semicrf_semirings.checkpoint"),
    (
        "flash_semicrf.semirings.checkpoint",
        "CheckpointShardSemiring",
        "semicrf_semirings.checkpoint",
    ),
]

# The original API's Triton launchers: importable from flash_semicrf.streaming when HAS_TRITON.
SPEC_TRITON_NAMES: list[tuple[str, str, str]] = [
    ("flash_semicrf.streaming", "launch_streaming_triton_kernel", "semicrf_kernels.streaming"),
    ("flash_semicrf.streaming", "launch_streaming_triton_backward", "semicrf_kernels.streaming"),
    (
        "flash_semicrf.streaming",
        "launch_streaming_triton_kernel_max_bp",
        "semicrf_kernels.streaming",
    ),
    ("flash_semicrf.streaming", "semi_crf_streaming_viterbi_triton", "semicrf_kernels.streaming"),
]

# Our additions that users need beside the original API's names.
EXTRA_NAMES: list[tuple[str, str, str]] = [
    ("flash_semicrf", "semi_crf_streaming_viterbi", "semicrf_kernels"),
    ("flash_semicrf", "ViterbiPath", "semicrf_kernels"),
    ("flash_semicrf", "score_path_segments", "semicrf_kernels"),
    ("flash_semicrf", "SemiCRFStreaming", "semicrf_kernels"),
    ("flash_semicrf", "StreamingMarginals", "semicrf_kernels"),
    ("flash_semicrf", "streaming_marginals_pytorch", "semicrf_kernels"),
    ("flash_semicrf", "streaming_marginals", "semicrf_kernels"),
    ("flash_semicrf.streaming", "streaming_marginals", "semicrf_kernels"),
    ("flash_semicrf", "compute_edge_block_streaming", "semicrf_kernels"),
    ("flash_semicrf", "NEG_INF", "semicrf_kernels"),
    ("flash_semicrf", "HAS_TRITON", "semicrf_kernels"),
    ("flash_semicrf", "score_gold_vectorized", "semicrf_nn"),
    ("flash_semicrf", "labels_to_segments", "semicrf_kernels"),
    ("flash_semicrf", "labels_to_segment_lists", "semicrf_nn"),
    ("flash_semicrf", "segments_to_labels", "semicrf_kernels"),
    ("flash_semicrf", "Segmentation", "semicrf_kernels"),
    ("flash_semicrf", "SemiCRFDistribution", "semicrf_nn"),
    ("flash_semicrf", "SegmentationMarginals", "semicrf_nn"),
    ("flash_semicrf", "semi_crf_streaming_sample", "semicrf_kernels"),
    ("flash_semicrf", "semi_crf_streaming_topk", "semicrf_kernels"),
    ("flash_semicrf", "semi_crf_streaming_cross_entropy", "semicrf_kernels"),
    ("flash_semicrf", "semi_crf_streaming_kl_divergence", "semicrf_kernels"),
    ("flash_semicrf.streaming", "semi_crf_streaming_sample", "semicrf_kernels"),
    ("flash_semicrf.streaming", "semi_crf_streaming_topk", "semicrf_kernels"),
    ("flash_semicrf.streaming", "Segmentation", "semicrf_kernels"),
    ("flash_semicrf", "boundary_f1", "semicrf_nn"),
    ("flash_semicrf", "BoundaryScores", "semicrf_nn"),
    ("flash_semicrf", "DurationDistribution", "semicrf_nn"),
    ("flash_semicrf", "hsmm", "semicrf_core"),
    ("flash_semicrf.streaming", "semi_crf_streaming_forward", "semicrf_kernels"),
    ("flash_semicrf.streaming", "semi_crf_streaming_viterbi", "semicrf_kernels"),
    ("flash_semicrf.streaming", "ViterbiPath", "semicrf_kernels"),
    ("flash_semicrf.semirings", "Semiring", "semicrf_semirings"),
    ("flash_semicrf.semirings", "LogSpaceSemiring", "semicrf_semirings"),
    ("flash_semicrf.semirings", "NEG_INF", "semicrf_semirings"),
    ("flash_semicrf.semirings.checkpoint", "matmul_size", "semicrf_semirings.checkpoint"),
]

LAYERS = {
    "semicrf-semirings": "semicrf_semirings",
    "semicrf-core": "semicrf_core",
    "semicrf-kernels": "semicrf_kernels",
    "semicrf-nn": "semicrf_nn",
}


def _check_same_object(where: str, name: str, layer: str) -> None:
    # `from where import name`, exactly as a user writes it.
    namespace: dict[str, object] = {}
    exec(f"from {where} import {name}", namespace)
    ours = namespace[name]
    theirs = getattr(importlib.import_module(layer), name)
    assert ours is theirs, f"{where}.{name} is not {layer}.{name}"
    # Classes and functions are defined in the layer, not in the meta-package.
    defined_in = getattr(ours, "__module__", None)
    if isinstance(ours, type) or callable(ours):
        top = layer.split(".")[0]
        assert defined_in is not None and defined_in.split(".")[0] == top, (
            f"{where}.{name} is defined in {defined_in}, expected the layer {top}"
        )


@pytest.mark.parametrize(("where", "name", "layer"), SPEC_NAMES + EXTRA_NAMES)
def test_name_is_the_layers_object(where: str, name: str, layer: str) -> None:
    _check_same_object(where, name, layer)


@pytest.mark.parametrize(("where", "name", "layer"), SPEC_TRITON_NAMES)
def test_triton_name_is_the_layers_object(where: str, name: str, layer: str) -> None:
    streaming = importlib.import_module("flash_semicrf.streaming")
    if not streaming.HAS_TRITON:
        assert name not in streaming.__all__
        with pytest.raises((AttributeError, ImportError)):
            _check_same_object(where, name, layer)
        return
    assert name in streaming.__all__
    _check_same_object(where, name, layer)


def test_triton_autograd_is_exported_at_top_level_when_available() -> None:
    import semicrf_kernels

    if flash_semicrf.HAS_TRITON:
        assert flash_semicrf.SemiCRFStreamingTriton is semicrf_kernels.SemiCRFStreamingTriton
        assert "SemiCRFStreamingTriton" in flash_semicrf.__all__


@pytest.mark.parametrize(
    "module", ["flash_semicrf", "flash_semicrf.streaming", "flash_semicrf.semirings"]
)
def test_every_name_in_all_resolves(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert missing == []
    assert len(set(mod.__all__)) == len(mod.__all__), "duplicate names in __all__"


def test_spec_names_are_listed_in_all() -> None:
    for where, name, _ in SPEC_NAMES:
        assert name in importlib.import_module(where).__all__, f"{name} not in {where}.__all__"


def test_unknown_name_raises_attribute_error() -> None:
    for module in ("flash_semicrf", "flash_semicrf.streaming", "flash_semicrf.nn"):
        with pytest.raises(AttributeError, match="no_such_name"):
            _ = importlib.import_module(module).no_such_name


def test_lightning_helper_only_when_lightning_imports() -> None:
    from flash_semicrf._optional import HAS_LIGHTNING

    try:
        importlib.import_module("semicrf_nn.lightning")
        importable = True
    except ImportError:
        importable = False
    assert importable == HAS_LIGHTNING
    assert ("SemiCRFLightningModule" in flash_semicrf.__all__) == importable
    if importable:
        from semicrf_nn.lightning import SemiCRFLightningModule

        assert flash_semicrf.SemiCRFLightningModule is SemiCRFLightningModule
    else:
        with pytest.raises(AttributeError, match="lightning"):
            _ = flash_semicrf.SemiCRFLightningModule


def test_versions_name_each_layer() -> None:
    found = flash_semicrf.versions()
    assert set(found) == {"flash-semicrf", *LAYERS}
    assert found["flash-semicrf"] == flash_semicrf.__version__ == "2026.12.0"
    for dist, module in LAYERS.items():
        assert found[dist] == importlib.import_module(module).__version__
        assert flash_semicrf.__layer_versions__[dist] == found[dist]
    # A caller mutating the result must not change the next answer.
    found["semicrf-nn"] = "tampered"
    assert flash_semicrf.versions()["semicrf-nn"] != "tampered"


@pytest.mark.parametrize("dist", ["flash-semicrf", *LAYERS])
def test_module_versions_match_installed_metadata(dist: str) -> None:
    try:
        installed = metadata.version(dist)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{dist} is not installed as a distribution (source checkout)")
    assert flash_semicrf.versions()[dist] == installed


def test_import_is_lazy_about_triton_and_lightning() -> None:
    # Importing the package must not compile Triton kernels nor import lightning (seconds each).
    code = (
        "import sys, flash_semicrf, flash_semicrf.streaming, flash_semicrf.nn\n"
        "heavy = [m for m in sys.modules if m == 'triton' or m.startswith('triton.')\n"
        "         or m.startswith('lightning') or m.startswith('pytorch_lightning')\n"
        "         or m.startswith('semicrf_kernels.logpartition.triton')\n"
        "         or m in ('semicrf_kernels.viterbi.triton', 'semicrf_kernels._shared.triton_scan')]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == ""


def test_star_import_does_not_shadow_torch_nn() -> None:
    namespace: dict[str, object] = {}
    exec("from torch import nn\nfrom flash_semicrf import *", namespace)
    import torch

    assert namespace["nn"] is torch.nn
    assert "SemiMarkovCRFHead" in namespace
