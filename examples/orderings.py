"""Bandwidth and state orderings: measure_effective_bandwidth, snake and RCM orderings.

Changes from the original snippet:
* `torch` is imported.
* It adds `rcm_ordering_from_adjacency` and `apply_permutation` on a scrambled band matrix,
  where the Reverse Cuthill-McKee order recovers a small bandwidth, and checks the permutation
  formula `out[i, j] = adj[perm[i], perm[j]]` and the documented snake order.
"""

import torch

from flash_semicrf import (
    apply_permutation,
    measure_effective_bandwidth,
    rcm_ordering_from_adjacency,
    snake_ordering,
)

torch.manual_seed(0)

adj = torch.eye(5)
print(measure_effective_bandwidth(adj))  # 0
assert measure_effective_bandwidth(adj) == 0
adj[0, 4] = 1  # add an off-diagonal entry
print(measure_effective_bandwidth(adj))  # 4
assert measure_effective_bandwidth(adj) == 4

# Snake ordering for K=10 durations, C=3 labels: durations 0, 9, 1, 8, 2, 7, ... labels inside.
perm = snake_ordering(10, 3)
durations = (perm // 3).tolist()[::3]
print("snake order of durations:", durations)
assert durations == [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]
assert sorted(perm.tolist()) == list(range(30))

# A band matrix (bandwidth 2) whose states were shuffled: its bandwidth looks large.
n = 12
rows, cols = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
band = ((rows - cols).abs() <= 2).float()
shuffle = torch.randperm(n)
scrambled = apply_permutation(band, shuffle)
assert torch.equal(scrambled, band[shuffle][:, shuffle])
print(
    "bandwidth: band",
    measure_effective_bandwidth(band),
    "scrambled",
    measure_effective_bandwidth(scrambled),
)

# Reverse Cuthill-McKee (SciPy) finds an order with a small bandwidth again.
rcm, success = rcm_ordering_from_adjacency(scrambled)
reordered = apply_permutation(scrambled, rcm)
print("RCM succeeded:", success, "bandwidth after RCM:", measure_effective_bandwidth(reordered))
if success:
    assert measure_effective_bandwidth(reordered) <= 2
else:  # without SciPy the identity comes back
    assert torch.equal(rcm, torch.arange(n))
print("ok")
