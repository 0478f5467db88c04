"""Tiny streaming cases shared by the tests that compare a path against enumeration.

``(B, T, C, K, per_duration, proj, forbid)``: K = 1, 2 and K > T, C = 1, 3, 5, batch 1 to 3,
``(K, C, C)`` transitions, projections and forbidden entries (the ``forbid`` fraction).
"""

TINY = [
    (1, 5, 3, 1, False, False, 0.0),
    (3, 6, 3, 2, False, True, 0.0),
    (2, 5, 1, 3, False, True, 0.0),
    (2, 4, 5, 6, False, False, 0.0),
    (3, 6, 3, 4, True, True, 0.0),
    (2, 5, 2, 2, True, False, 0.0),
    (3, 6, 3, 3, False, True, 0.3),
    (2, 5, 3, 7, True, True, 0.3),
]
