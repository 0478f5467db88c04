"""`BandedMatrix`: square matrices stored as their diagonals, with (log, +) and (max, +) products."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from semicrf_semirings.base import logsumexp

__all__ = ["BandedMatrix"]


def _check_band(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 0, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _offsets(lu: int, ld: int, device: torch.device) -> Tensor:
    """Diagonal offsets `t = j - i` stored in columns `0 .. lu+ld` of `data`: `-ld .. lu`."""
    return torch.arange(-ld, lu + 1, device=device)


@dataclass
class BandedMatrix:
    """A batch of square `n x n` matrices of which only `ld` lower and `lu` upper diagonals are kept.

    Storage: `data[b, i, t + ld] = dense[b, i, i + t]` for offsets `t` in `[-ld, lu]`. Cells whose
    column `i + t` falls outside `[0, n)` hold `fill`, and `to_dense` writes `fill` off the band.
    The products `multiply_log` and `multiply_max` treat every cell off the band (whatever `fill`
    is) as the semiring zero, i.e. as absent; give a log-space matrix `fill=-inf` (or `-1e9`) so
    that `to_dense` shows the same matrix the products use.

    Attributes:
        data: `(batch, n, lu + ld + 1)`, floating point.
        lu: number of upper diagonals kept (`>= 0`).
        ld: number of lower diagonals kept (`>= 0`).
        fill: the value of cells off the band (for `to_dense`).
    """

    data: Tensor
    lu: int
    ld: int
    fill: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.data, Tensor):
            raise TypeError(f"data must be a torch.Tensor, got {type(self.data).__name__}")
        if not self.data.dtype.is_floating_point:
            raise TypeError(f"data must be a floating-point tensor, got dtype {self.data.dtype}")
        _check_band("lu", self.lu)
        _check_band("ld", self.ld)
        if self.data.dim() != 3:
            raise ValueError(
                f"data must be 3D (batch, n, lu+ld+1), got {self.data.dim()}D with shape "
                f"{tuple(self.data.shape)}"
            )
        if self.data.shape[-1] != self.lu + self.ld + 1:
            raise ValueError(
                f"data.shape[-1] must be lu+ld+1 = {self.lu + self.ld + 1} (lu={self.lu}, "
                f"ld={self.ld}), got {self.data.shape[-1]}"
            )

    @property
    def n(self) -> int:
        """The matrix size `n`."""
        return self.data.shape[1]

    @property
    def width(self) -> int:
        """Stored diagonals: `lu + ld + 1`."""
        return self.lu + self.ld + 1

    @classmethod
    def from_dense(cls, dense: Tensor, lu: int, ld: int, fill: float = 0.0) -> BandedMatrix:
        """Keep the band of dense square matrices.

        Args:
            dense: `(batch, n, n)` (or `(n, n)`, treated as batch 1), floating point.
            lu: upper diagonals to keep, `>= 0`.
            ld: lower diagonals to keep, `>= 0`.
            fill: value stored in cells outside the matrix and written off the band by `to_dense`.

        Returns:
            `BandedMatrix` with `data (batch, n, lu+ld+1)`; entries off the band are dropped.

        Raises:
            TypeError: if `dense` is not a floating-point tensor or a band is not an int.
            ValueError: if `dense` is not square 2D/3D or a band is negative.
        """
        if not isinstance(dense, Tensor):
            raise TypeError(f"dense must be a torch.Tensor, got {type(dense).__name__}")
        if not dense.dtype.is_floating_point:
            raise TypeError(f"dense must be a floating-point tensor, got dtype {dense.dtype}")
        if dense.dim() == 2:
            dense = dense.unsqueeze(0)
        if dense.dim() != 3 or dense.shape[-1] != dense.shape[-2]:
            raise ValueError(
                f"dense must be (batch, n, n) or (n, n), got shape {tuple(dense.shape)}"
            )
        _check_band("lu", lu)
        _check_band("ld", ld)
        n = dense.shape[-1]
        rows = torch.arange(n, device=dense.device).unsqueeze(1)
        cols = rows + _offsets(lu, ld, dense.device)  # (n, w)
        inside = (cols >= 0) & (cols < n)
        data = dense[:, rows, cols.clamp(0, max(n - 1, 0))]
        data = torch.where(inside, data, torch.full_like(data, fill))
        return cls(data, lu, ld, fill)

    def to_dense(self) -> Tensor:
        """The dense matrices `(batch, n, n)`: the band from `data`, `fill` elsewhere."""
        n = self.n
        rows = torch.arange(n, device=self.data.device).unsqueeze(1)
        cols = rows + _offsets(self.lu, self.ld, self.data.device)
        inside = (cols >= 0) & (cols < n)
        r, c = rows.expand_as(cols)[inside], cols[inside]
        dense = self.data.new_full((self.data.shape[0], n, n), self.fill)
        dense[:, r, c] = self.data[:, inside]
        return dense

    def transpose(self) -> BandedMatrix:
        """The transposed matrices: band `(lu, ld)` becomes `(ld, lu)`."""
        n = self.n
        lu, ld = self.ld, self.lu
        rows = torch.arange(n, device=self.data.device).unsqueeze(1)
        offs = _offsets(lu, ld, self.data.device)  # offsets t of the transpose
        src_rows = rows + offs  # A^T[i, i + t] = A[i + t, i], stored at A.data[i + t, -t + A.ld]
        inside = (src_rows >= 0) & (src_rows < n)
        src_cols = (self.ld - offs).expand_as(src_rows)
        data = self.data[:, src_rows.clamp(0, max(n - 1, 0)), src_cols]
        data = torch.where(inside, data, torch.full_like(data, self.fill))
        return BandedMatrix(data, lu, ld, self.fill)

    def _multiply(self, other: BandedMatrix, reduce: str) -> BandedMatrix:
        if not isinstance(other, BandedMatrix):
            raise TypeError(f"other must be a BandedMatrix, got {type(other).__name__}")
        if other.n != self.n:
            raise ValueError(f"matrix sizes differ: self n={self.n}, other n={other.n}")
        if self.data.shape[0] != other.data.shape[0] and 1 not in (
            self.data.shape[0],
            other.data.shape[0],
        ):
            raise ValueError(
                f"batch sizes do not broadcast: self {self.data.shape[0]}, other "
                f"{other.data.shape[0]}"
            )
        n, dev = self.n, self.data.device
        # Offsets beyond n-1 lie outside every row, so the band never needs to exceed them.
        lu = min(self.lu + other.lu, max(n - 1, 0))
        ld = min(self.ld + other.ld, max(n - 1, 0))
        i = torch.arange(n, device=dev).view(n, 1, 1)
        a = _offsets(self.lu, self.ld, dev).view(1, -1, 1)  # self's offset: k = i + a
        t = _offsets(lu, ld, dev).view(1, 1, -1)  # output offset: j = i + t
        k = i + a
        b = t - a  # other's offset: j = k + b
        valid = (k >= 0) & (k < n) & (b >= -other.ld) & (b <= other.lu)  # (n, wa, wt)
        kk = k.clamp(0, max(n - 1, 0)).expand_as(valid)
        bb = (b + other.ld).clamp(0, other.width - 1).expand_as(valid)
        gathered = other.data[:, kk, bb]  # (batch, n, wa, wt): other[k, j]
        terms = self.data.unsqueeze(-1) + gathered
        # Cells off a band are the semiring zero, -inf at any magnitude of the entries (a finite
        # stand-in stops being negligible next to entries of 1e30).
        terms = torch.where(valid, terms, torch.full_like(terms, -torch.inf))
        if reduce == "log":
            # NaN-free gradient where every term is -inf (a cell no path reaches).
            out = logsumexp(terms, dim=2)
        else:
            out = terms.amax(dim=2)
            # No gradient through a cell no path reaches (amax would spread it over the -infs).
            out = torch.where(out > -torch.inf, out, out.detach())
        j = i.view(n, 1) + t.view(1, -1)
        inside = (j >= 0) & (j < n)
        out = torch.where(inside, out, torch.full_like(out, self.fill))
        return BandedMatrix(out, lu, ld, self.fill)

    def multiply_log(self, other: BandedMatrix) -> BandedMatrix:
        """Log-semiring product `self @ other`: `out[i, j] = logsumexp_k self[i, k] + other[k, j]`.

        Only cells on both bands take part (cells off a band are the log zero). The result has
        band `lu = self.lu + other.lu`, `ld = self.ld + other.ld` (capped at `n - 1`) and
        `self.fill`.

        Args:
            other: `BandedMatrix` of the same `n`; batch sizes equal or one of them 1.

        Returns:
            `BandedMatrix` with `data (batch, n, lu+ld+1)`.
        """
        return self._multiply(other, "log")

    def multiply_max(self, other: BandedMatrix) -> BandedMatrix:
        """Max-semiring product `self @ other`: `out[i, j] = max_k self[i, k] + other[k, j]`.

        Same bands and arguments as `multiply_log`.
        """
        return self._multiply(other, "max")
