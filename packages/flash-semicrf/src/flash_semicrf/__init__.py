"""flash-semicrf: fast, exact semi-Markov CRFs for PyTorch.

This meta-package gathers the public API of its four layers under one import; every name is the
very object of the layer that defines it (re-exported, never wrapped or copied):

* ``semicrf_nn``: ``SemiMarkovCRFHead``, ``UncertaintySemiMarkovCRFHead``,
  ``SemiCRFDistribution``, ``Segment``, ``ViterbiResult``, the duration distributions, gold
  scoring and boundary metrics;
* ``semicrf_kernels``: ``semi_crf_streaming_forward``, ``semi_crf_streaming_viterbi``,
  ``ViterbiPath``, ``Segmentation``, ``semi_crf_streaming_sample``, ``semi_crf_streaming_topk``,
  the streaming cross-entropy and KL, ``labels_to_segments``, ``segments_to_labels``,
  ``SemiCRFStreaming``, ``compute_edge_block_streaming``, ``NEG_INF``;
* ``semicrf_core``: ``SemiMarkov``, ``BandedMatrix``, ``BlockTriangularMatrix`` and the orderings;
* ``semicrf_semirings``: under ``flash_semicrf.semirings`` (and ``.semirings.checkpoint``).

Low-level streaming pieces (Triton launchers included) are in ``flash_semicrf.streaming``.
``SemiCRFLightningModule`` is exported only when ``lightning`` is installed. ``versions()``
names the version of each layer in use.

Nothing is imported until a name is first used (``import flash_semicrf`` does not import
torch): the command line answers ``--help`` and ``--version`` without paying torch's import.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._optional import HAS_LIGHTNING

__version__ = "2026.12.0"

#: Public name -> the submodule of this package that re-exports it from its layer.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "BandedMatrix",
            "BlockTriangularMatrix",
            "SemiMarkov",
            "apply_permutation",
            "block_triang_matmul",
            "hsmm",
            "measure_effective_bandwidth",
            "rcm_ordering_from_adjacency",
            "snake_ordering",
        ),
        "core",
    ),
    **dict.fromkeys(
        (
            "BoundaryScores",
            "CallableDuration",
            "DurationDistribution",
            "GeometricDuration",
            "LearnedDuration",
            "NegativeBinomialDuration",
            "PoissonDuration",
            "Segment",
            "Segmentation",
            "SegmentationMarginals",
            "SemiCRFDistribution",
            "SemiMarkovCRFHead",
            "UncertaintySemiMarkovCRFHead",
            "UniformDuration",
            "ViterbiResult",
            "boundary_f1",
            "create_duration_distribution",
            "labels_to_segment_lists",
            "labels_to_segments",
            "score_gold_vectorized",
            "segments_to_labels",
        ),
        "nn",
    ),
    **dict.fromkeys(
        (
            "HAS_TRITON",
            "NEG_INF",
            "SemiCRFStreaming",
            "StreamingMarginals",
            "ViterbiPath",
            "compute_edge_block_streaming",
            "score_path_segments",
            "semi_crf_streaming_cross_entropy",
            "semi_crf_streaming_forward",
            "semi_crf_streaming_kl_divergence",
            "semi_crf_streaming_sample",
            "semi_crf_streaming_topk",
            "semi_crf_streaming_viterbi",
            "streaming_marginals",
            "streaming_marginals_pytorch",
        ),
        "streaming",
    ),
}

# Submodules, importable as attributes but kept out of __all__: a star import must not shadow
# `torch.nn`.
_SUBMODULES = ("core", "nn", "semirings", "streaming")

#: Distribution name -> import name of the four layers this meta-package imports.
_LAYERS: dict[str, str] = {
    "semicrf-semirings": "semicrf_semirings",
    "semicrf-core": "semicrf_core",
    "semicrf-kernels": "semicrf_kernels",
    "semicrf-nn": "semicrf_nn",
}


def _layer_versions() -> dict[str, str]:
    return {dist: importlib.import_module(module).__version__ for dist, module in _LAYERS.items()}


def versions() -> dict[str, str]:
    """Versions of flash-semicrf and of each layer it imports.

    Returns:
        A new dict ``{distribution name: version}`` with the keys ``"flash-semicrf"``,
        ``"semicrf-semirings"``, ``"semicrf-core"``, ``"semicrf-kernels"`` and ``"semicrf-nn"``.
        Useful in bug reports: the layers are released separately and pinned by this package.
    """
    return {"flash-semicrf": __version__, **_layer_versions()}


def _all() -> list[str]:
    names = [
        "HAS_LIGHTNING",
        *_EXPORTS,
        "__layer_versions__",
        "__version__",
        "versions",
    ]
    # Resolved by __getattr__ below, and only where their dependency is installed.
    if __getattr__("HAS_TRITON"):
        names.append("SemiCRFStreamingTriton")
    if HAS_LIGHTNING:
        names.append("SemiCRFLightningModule")
    return sorted(names)


def __getattr__(name: str) -> Any:
    # Every name is resolved on first access and then cached in the module: importing torch
    # and the layers costs seconds, which `flash-semicrf --help` must not pay.
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    elif name == "__all__":
        value = _all()
    elif name == "__layer_versions__":
        value = _layer_versions()
    elif name == "SemiCRFStreamingTriton":
        # Triton kernels are slow to import: not cached, resolved through the layer each time.
        return __getattr__("streaming").SemiCRFStreamingTriton
    elif name == "SemiCRFLightningModule":
        if not HAS_LIGHTNING:
            raise AttributeError(
                "SemiCRFLightningModule needs the 'lightning' package, which is not installed "
                "(pip install 'flash-semicrf[lightning]')"
            )
        return __getattr__("nn").SemiCRFLightningModule
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBMODULES) | set(_all()))
