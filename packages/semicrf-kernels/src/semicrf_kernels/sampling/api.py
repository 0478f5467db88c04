"""``semi_crf_streaming_sample``: validation, then the sampler for the inputs' device."""

from __future__ import annotations

import torch

from .._shared.numba_support import numba_kernels
from .._shared.triton_support import triton_available_for
from ..segmentation import Segmentation
from ..validation import check_count, check_num_warps, validate_streaming_inputs
from .pytorch import streaming_sample_pytorch

__all__ = ["semi_crf_streaming_sample"]


def semi_crf_streaming_sample(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    num_samples: int,
    *,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    use_triton: bool = True,
    num_warps: int = 4,
    validate: bool = True,
) -> Segmentation:
    """Exact samples from the segmentation distribution of the streaming model.

    The model is ``docs/conventions.md`` section 1 (arguments as in
    :func:`semicrf_kernels.semi_crf_streaming_forward`). One forward scan stores ``alpha``
    (O(batch T C)); each sample is then drawn from its end backwards, segment by segment, from
    the exact conditionals: O(K + C) work per sampled segment with ``(C, C)`` transitions,
    O(K C) with ``(K, C, C)``. No ``T K C`` tensor is built. Not differentiable.

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative scores.
        transition: ``(C, C)`` or ``(K, C, C)``.
        duration_bias: ``(K, C)``.
        lengths: ``(batch,)`` integer lengths in ``[1, T]``.
        K: the longest segment.
        num_samples: samples per sequence, ``>= 1``.
        proj_start: optional ``(batch, T, C)``.
        proj_end: optional ``(batch, T, C)``.
        generator: a ``torch.Generator`` on ``cum_scores``' device; the same generator state
            gives the same samples. None uses the default generator.
        use_triton: run the Triton kernels where they can run (CUDA, or the CPU under
            ``TRITON_INTERPRET=1``); else, on the CPU, the compiled (numba) sampler (the
            PyTorch one where numba is unavailable or ``set_cpu_path("pytorch")`` chose it),
            and the PyTorch sampler on other devices. They agree in distribution, not
            draw by draw.
        num_warps: warps per Triton program (a power of two).
        validate: run the value checks of :func:`validate_streaming_inputs`.

    Returns:
        :class:`semicrf_kernels.Segmentation` (per-position form, not the per-segment
        ``ViterbiPath``): ``labels`` and ``starts`` ``(num_samples, batch, T)``, ``scores
        (num_samples, batch)`` each sample's total score (float32, float64 for float64 inputs).
        A sequence with no allowed segmentation has labels ``-1``, no starts, score ``-inf``.

    Raises:
        ValueError: ``num_samples < 1``, a generator on another device, or bad inputs.
        TypeError: wrong types.
    """
    check_count("num_samples", num_samples)
    validate_streaming_inputs(
        cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end, validate=validate
    )
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator: expected a torch.Generator or None, got {type(generator).__name__}"
            )
        if generator.device.type != cum_scores.device.type:
            raise ValueError(
                f"generator: expected a generator on cum_scores' device {cum_scores.device}, "
                f"got one on {generator.device}"
            )
    check_num_warps(num_warps)
    if use_triton and triton_available_for(cum_scores):
        from .triton import streaming_sample_triton

        return streaming_sample_triton(
            cum_scores, transition, duration_bias, lengths, K, num_samples,
            proj_start=proj_start, proj_end=proj_end, generator=generator, num_warps=num_warps,
        )  # fmt: skip
    if cum_scores.device.type == "cpu" and numba_kernels("logpartition") is not None:
        # the compiled CPU path (set_cpu_path("pytorch") or SEMICRF_CPU_PATH=pytorch: PyTorch)
        from .numba import streaming_sample_numba

        return streaming_sample_numba(
            cum_scores, transition, duration_bias, lengths, K, num_samples,
            proj_start=proj_start, proj_end=proj_end, generator=generator,
        )  # fmt: skip
    return streaming_sample_pytorch(
        cum_scores, transition, duration_bias, lengths, K, num_samples,
        proj_start=proj_start, proj_end=proj_end, generator=generator,
    )  # fmt: skip
