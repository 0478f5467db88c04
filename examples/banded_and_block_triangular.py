"""Sparse matrices of the semi-Markov state space: BandedMatrix and BlockTriangularMatrix.

Changes from the original snippets:
* `torch` is imported, and the seed fixed.
* `BlockTriangularMatrix.from_dense` keeps the blocks `(k1, k2)` with `k1 + k2 < span`, 0-based
  (docs/conventions.md section 3); with K=4, C=3, span=4 that is the original API's 10 blocks.
* It adds the log- and max-semiring products (`multiply_log`, `multiply_max`,
  `block_triang_matmul`) and checks them against dense products computed here with plain
  torch operations, plus the round trips to dense.
"""

import torch

from flash_semicrf import BandedMatrix, BlockTriangularMatrix, block_triang_matmul
from flash_semicrf.semirings import LogSemiring

torch.manual_seed(0)

# ---- BandedMatrix ----
dense = torch.randn(2, 10, 10)
banded = BandedMatrix.from_dense(dense, lu=2, ld=2)
print("banded data:", tuple(banded.data.shape))  # (2, 10, 5)
assert banded.data.shape == (2, 10, 5)

# Back to dense: the band is kept, the rest is `fill` (0.0 here).
reconstructed = banded.to_dense()
rows, cols = torch.meshgrid(torch.arange(10), torch.arange(10), indexing="ij")
in_band = (cols - rows <= 2) & (rows - cols <= 2)
assert torch.equal(reconstructed, torch.where(in_band, dense, torch.zeros(())))
assert torch.equal(banded.transpose().to_dense(), reconstructed.transpose(-1, -2))

# Log-space matrices use a very negative fill, so the products and to_dense agree.
a = BandedMatrix.from_dense(torch.randn(2, 10, 10), lu=1, ld=2, fill=float("-inf"))
b = BandedMatrix.from_dense(torch.randn(2, 10, 10), lu=2, ld=0, fill=float("-inf"))
A, B = a.to_dense(), b.to_dense()
expected_log = torch.logsumexp(A[:, :, :, None] + B[:, None, :, :], dim=2)
expected_max = (A[:, :, :, None] + B[:, None, :, :]).amax(dim=2)
product = a.multiply_log(b)
print("log product band: lu =", product.lu, "ld =", product.ld)  # 3 and 2
assert torch.allclose(product.to_dense(), expected_log, atol=1e-5)
assert torch.allclose(a.multiply_max(b).to_dense(), expected_max, atol=1e-6)

# ---- BlockTriangularMatrix ----
K, C, span = 4, 3, 4
dense = torch.randn(2, K * C, K * C)  # state index k * C + c
bt = BlockTriangularMatrix.from_dense(dense, K=K, C=C, span=span)
print("block-triangular values:", tuple(bt.values.shape))  # (2, 10, 3, 3)
assert bt.values.shape == (2, 10, 3, 3)

# Kept blocks are copied exactly; the others are 0 (or the semiring zero) in to_dense.
k_of = torch.arange(K * C) // C
kept = (k_of[:, None] + k_of[None, :]) < span  # (K*C, K*C)
assert torch.equal(bt.to_dense(), torch.where(kept, dense, torch.zeros(())))

# Semiring product over converted (ssize, ...) values, keeping the output blocks k1 + k3 < span.
left = BlockTriangularMatrix.from_dense(LogSemiring.convert(dense), K=K, C=C, span=span)
right_dense = torch.randn(2, K * C, K * C)
right = BlockTriangularMatrix.from_dense(LogSemiring.convert(right_dense), K=K, C=C, span=span)
out = block_triang_matmul(left, right, LogSemiring, span=span)
# The same product done densely: absent blocks are minus infinity, then logsumexp over k2, c.
L = torch.where(kept, dense, torch.full((), float("-inf")))
R = torch.where(kept, right_dense, torch.full((), float("-inf")))
full = torch.logsumexp(L[:, :, :, None] + R[:, None, :, :], dim=2)
got = LogSemiring.unconvert(out.to_dense(LogSemiring))
assert torch.allclose(got[:, kept], full[:, kept], atol=1e-5)
print("ok")
