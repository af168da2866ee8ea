"""Gaussian filtering in a d-dimensional feature space on the permutohedral lattice (Adams et al. 2010), in PyTorch.

filter(values)[i] ~ sum_j exp(-|f_i - f_j|^2 / 2) values[j] for N points with features f (N x d), in
O(N d^2) instead of O(N^2). Each point is lifted onto the hyperplane sum(x) = 0 of R^(d+1), where the
lattice's simplices tile space; its value is splatted onto the d+1 vertices of its enclosing simplex
with barycentric weights, blurred along each of the d+1 lattice directions with the kernel
[1/2, 1, 1/2], and read back (sliced) with the same weights. The scale of the features and the blur are
those of Krähenbühl's densecrf (permutohedral.cpp, used by pydensecrf), so a kernel built here weighs
pixels as the published DeepLab CRF results did: an approximation of the Gaussian (its total weight is
scaled by a constant, which the CRF's normalisation removes).

The lattice is built once per image (`Lattice(features)`): vertex keys are packed into one int64 each,
made unique with torch.unique, and every vertex's two neighbours per direction found by binary search.
Filtering is then index_add / gather only, on any device.
"""

from __future__ import annotations

import math
import warnings

import torch


class Lattice:
    """The lattice of N points with features N x d (already divided by their standard deviations)."""

    def __init__(self, features: torch.Tensor):
        n, d = features.shape
        self.d = d
        device = features.device
        features = features.float()
        # densecrf: scale_factor[i] = sqrt(2/3) (d+1) / sqrt((i+1)(i+2))
        scale = math.sqrt(2.0 / 3.0) * (d + 1) / torch.sqrt(torch.arange(1, d + 1, device=device, dtype=torch.float64)
                                                             * torch.arange(2, d + 2, device=device, dtype=torch.float64))
        cf = (features.double() * scale).float()  # N x d
        # elevate: e[j] = sum_{k >= j} cf[k] - j cf[j-1] (j = 1..d), e[0] = sum_k cf[k]
        suffix = cf.flip(1).cumsum(1).flip(1)  # suffix[:, k] = sum_{m >= k} cf[m]
        j = torch.arange(1, d + 1, device=device, dtype=torch.float32)
        tail = torch.cat([suffix[:, 1:], torch.zeros(n, 1, device=device)], 1) - j * cf
        elevated = torch.cat([suffix[:, :1], tail], 1)  # N x (d+1)
        # the closest remainder-0 lattice point, coordinate by coordinate
        scaled = elevated / (d + 1)
        up, down = torch.ceil(scaled) * (d + 1), torch.floor(scaled) * (d + 1)
        rem0 = torch.where(up - elevated < elevated - down, up, down)
        total = (rem0 / (d + 1)).sum(1).round().long()  # N
        # rank of each coordinate's residual (ties: the lower index ranks higher), as densecrf breaks them
        residual = elevated - rem0
        greater = residual[:, None, :] > residual[:, :, None]  # [n, i, k]: residual k > residual i
        equal = residual[:, None, :] == residual[:, :, None]
        lower = torch.ones(d + 1, d + 1, device=device, dtype=torch.bool).tril(-1)  # [i, k]: k < i
        upper = lower.T  # k > i
        rank = ((greater & upper) | ((greater | equal) & lower)).sum(2)  # N x (d+1)
        # move the remainder-0 point so that the coordinates sum to zero
        t = total[:, None]
        pos = (t > 0) & (rank >= d + 1 - t)
        neg = (t < 0) & (rank < -t)
        rem0 = rem0 - (d + 1) * pos + (d + 1) * neg
        rank = rank + t - (d + 1) * pos + (d + 1) * neg
        # barycentric weights of the d+1 enclosing vertices
        v = (elevated - rem0) / (d + 1)
        bary = torch.zeros(n, d + 2, device=device)
        bary.scatter_add_(1, d - rank, v)
        bary.scatter_add_(1, d + 1 - rank, -v)
        bary[:, 0] += 1.0 + bary[:, d + 1]
        self.weights = bary[:, : d + 1].contiguous()  # N x (d+1)
        # vertex r's key: rem0 + canonical[r][rank], canonical[r][j] = r if j <= d - r else r - (d+1); packed into
        # one int64 without building the N x (d+1) x d keys: code(rem0) + sum_k canonical[r][rank_k] radix_k
        corner = rem0.long()[:, :d]
        self._pack_setup(corner)
        base, high = self._pack(corner), rank[:, :d]
        codes = []
        for r in range(d + 1):
            wrapped = torch.zeros_like(base)
            for k in range(d):
                wrapped += (high[:, k] > d - r).long() * self.radix[k]
            codes.append(base + r * self.radix.sum() - (d + 1) * wrapped)
        unique, inverse = torch.unique(torch.stack(codes, 1).reshape(-1), return_inverse=True)
        self.vertices = inverse.view(n, d + 1)  # each point's d+1 vertices, as rows of the value table
        self.m = unique.numel()
        vertex_keys = torch.stack([(unique // self.radix[k]) % self.span[k] + self.low[k] for k in range(d)], 1)
        # neighbours along direction j: key - 1 (+ d+1 at j), key + 1 (- (d+1) at j); j = d moves all by -1 / +1
        self.neighbours = []
        for direction in range(d + 1):
            step = torch.ones(d, dtype=torch.long, device=device)
            if direction < d:
                step[direction] = -d
            self.neighbours.append((self._find(unique, vertex_keys - step), self._find(unique, vertex_keys + step)))

    def _pack_setup(self, corners: torch.Tensor) -> None:
        """Offsets and radices that pack a key into one int64: every vertex is within d of its point's
        remainder-0 corner, and its neighbours one step (d + 1) further."""
        d = self.d
        self.low = corners.amin(0) - 2 * (d + 1)
        self.span = corners.amax(0) + 2 * (d + 1) - self.low + 1
        if float(torch.log2(self.span.double()).sum()) > 62:
            raise ValueError("feature range too large for the lattice's 64-bit keys; lower the resolution or raise the standard deviations")
        self.radix = torch.cat([torch.ones(1, dtype=torch.long, device=corners.device), self.span.cumprod(0)[:-1]])

    def _pack(self, keys: torch.Tensor) -> torch.Tensor:
        code = (keys[..., 0] - self.low[0]) * self.radix[0]
        for k in range(1, self.d):  # a loop over d columns: much faster than a sum over a short last axis
            code += (keys[..., k] - self.low[k]) * self.radix[k]
        return code

    def _find(self, unique: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Row of each key in the value table, or m (a row of zeros) where the lattice has no such vertex."""
        codes = self._pack(keys)
        index = torch.searchsorted(unique, codes).clamp_max(self.m - 1)
        return torch.where(unique[index] == codes, index, torch.full_like(index, self.m))

    def _matrices(self) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """Splat (m x N), the d+1 blurs (m x m) and slice (N x m) as sparse CSR matrices, so that filtering
        is a chain of sparse products (multithreaded on the CPU, cuSPARSE on CUDA). Each is built in row
        order directly: a blur row is always [before, self, after], a missing neighbour given weight 0."""
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the products used here are stable
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return self._build_matrices()

    def _build_matrices(self) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        n, d1 = self.vertices.shape
        device = self.weights.device
        vertices, weights = self.vertices.reshape(-1), self.weights.reshape(-1)

        def csr(rows: int, cols: int, per_row: int, columns: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
            crow = torch.arange(0, rows * per_row + 1, per_row, device=device)
            return torch.sparse_csr_tensor(crow, columns, values, (rows, cols), check_invariants=False)

        slice_ = csr(n, self.m, d1, vertices, weights)
        order = torch.argsort(vertices, stable=True)  # the splat is the slice transposed: entries by vertex
        crow = torch.zeros(self.m + 1, dtype=torch.long, device=device)
        crow[1:] = torch.bincount(vertices, minlength=self.m).cumsum(0)
        splat = torch.sparse_csr_tensor(crow, order // d1, weights[order], (self.m, n), check_invariants=False)
        rows = torch.arange(self.m, device=device)
        blurs = []
        for before, after in self.neighbours:
            has_b, has_a = before < self.m, after < self.m
            columns = torch.stack([torch.where(has_b, before, rows), rows, torch.where(has_a, after, rows)], 1)
            values = torch.stack([0.5 * has_b.float(), torch.ones(self.m, device=device), 0.5 * has_a.float()], 1)
            blurs.append(csr(self.m, self.m, 3, columns.reshape(-1), values.reshape(-1)))
        return splat, blurs, slice_

    def filter(self, values: torch.Tensor) -> torch.Tensor:
        """N x C values, Gaussian-filtered in feature space (up to a constant factor)."""
        if not hasattr(self, "_ops"):
            self._ops = self._matrices()
        splat, blurs, slice_ = self._ops
        table = splat @ values.float()
        for blur in blurs:
            table = blur @ table
        return slice_ @ table
