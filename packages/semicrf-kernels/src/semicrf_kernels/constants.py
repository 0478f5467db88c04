"""Numerical constants shared by every streaming path."""

#: Large finite negative score used for "forbidden" (log-space zero). Values ``<= NEG_INF / 2``
#: in ``transition`` or ``duration_bias`` are treated as ``-inf`` (forbidden). It is finite so
#: that sums of it stay finite in float32 (``2 * -1e38`` would overflow to ``-inf``).
NEG_INF: float = -1e9
