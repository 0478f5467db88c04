"""Cumulative scores ``(batch, T+1, C)`` float64, the input every streaming op reads."""

from .op import cumulative_scores, cumulative_scores_backward_op, cumulative_scores_op

__all__ = ["cumulative_scores", "cumulative_scores_backward_op", "cumulative_scores_op"]
