"""``mask=``: torch-crf style ``(batch, T)`` prefix masks accepted wherever ``lengths`` is.

Every head method keeps its positional signature and also takes ``mask`` as a keyword: a bool
``(batch, T)`` tensor, True on each sequence's valid prefix. ``lengths`` may then be omitted;
when both are given they must agree.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from .validation import value_checks_enabled

__all__ = ["accepts_mask", "lengths_from_mask"]

F = TypeVar("F", bound=Callable[..., Any])

_MASK_DOC = """            mask: (keyword) optional bool ``(batch, T)`` prefix mask, True at valid positions
                (as torch-crf takes it), instead of or as well as ``lengths`` (they must then
                agree)."""


def lengths_from_mask(
    mask: object, hidden_states: torch.Tensor, lengths: torch.Tensor | None, *, check_values: bool
) -> torch.Tensor:
    """``(batch,)`` int64 lengths of a prefix ``mask``; checks it against ``lengths`` if given.

    Raises:
        TypeError: ``mask`` is not a bool (or 0/1 integer) tensor.
        ValueError: its shape is not ``(batch, T)`` of ``hidden_states``; (when checking values)
            it is not a prefix mask, or disagrees with ``lengths``.
    """
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask: expected a bool (batch, T) tensor, got {type(mask).__name__}")
    if mask.is_floating_point() or mask.is_complex():
        raise TypeError(f"mask: expected a bool (batch, T) tensor, got dtype {mask.dtype}")
    B, T = hidden_states.shape[:2]
    if tuple(mask.shape) != (B, T):
        raise ValueError(
            f"mask: expected shape (batch, T) = ({B}, {T}) of hidden_states, got "
            f"{tuple(mask.shape)}"
        )
    if mask.device != hidden_states.device:
        raise ValueError(
            f"mask: expected a tensor on hidden_states' device {hidden_states.device}, got "
            f"{mask.device}"
        )
    mask = mask.bool()
    derived = mask.sum(dim=1)
    if check_values:
        if B and int(derived.min()) < 1:
            b = int((derived < 1).nonzero()[0])
            raise ValueError(
                f"mask: expected at least one True in every row (lengths >= 1), row {b} is "
                "all False"
            )
        prefix = torch.arange(T, device=mask.device) < derived[:, None]
        if not torch.equal(prefix, mask):
            b = int((prefix != mask).any(dim=1).nonzero()[0])
            raise ValueError(
                f"mask: expected a prefix mask (True then False in every row), row {b} is "
                f"{mask[b].int().tolist()}"
            )
        if lengths is not None and not torch.equal(derived, lengths.to(derived.device).long()):
            raise ValueError(
                f"mask and lengths disagree: the mask's lengths are {derived.tolist()}, lengths "
                f"are {lengths.tolist()}"
            )
    return derived if lengths is None else lengths


def accepts_mask(method: F) -> F:
    """Let a head method ``(self, hidden_states, lengths, ...)`` also take ``mask=``.

    ``lengths`` becomes optional when ``mask`` is given; the method receives lengths either way.
    A method whose signature defaults ``lengths`` to None (``decode_labels``, ``distribution``)
    treats neither given as every sequence full length, as torch-crf does without a mask; the
    others raise.
    """
    param = inspect.signature(method).parameters.get("lengths")
    full_by_default = param is not None and param.default is None

    @functools.wraps(method)
    def wrapper(self, hidden_states, *args, mask=None, **kwargs):
        if args:
            lengths, rest = args[0], args[1:]
        else:
            lengths, rest = kwargs.pop("lengths", None), ()
        if mask is not None:
            checking = value_checks_enabled(getattr(self, "validate", True))
            lengths = lengths_from_mask(mask, hidden_states, lengths, check_values=checking)
        elif lengths is None and full_by_default:
            B, T = hidden_states.shape[:2]
            lengths = torch.full((B,), T, dtype=torch.int64, device=hidden_states.device)
        elif lengths is None:
            raise ValueError(
                f"{method.__name__}: expected lengths ((batch,) integer) or mask= ((batch, T) "
                "bool), got neither"
            )
        return method(self, hidden_states, lengths, *rest, **kwargs)

    doc = wrapper.__doc__ or ""
    marker = "\n\n        Returns:"
    if marker in doc:
        wrapper.__doc__ = doc.replace(marker, "\n" + _MASK_DOC + marker, 1)
    return wrapper  # type: ignore[return-value]
