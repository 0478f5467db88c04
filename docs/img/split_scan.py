"""Draw docs/img/split_scan.png: which program of the split scan computes which (output, row) term.

    python docs/img/split_scan.py

Every output position ``t`` (vertical axis) reduces over the window rows ``r in [t - K, t)``
(horizontal axis). Super-blocks of ``S`` outputs: the far rows (older than the previous
super-block) are cut into slices, one far program per (output tile, slice), all in parallel and
while the previous super-block is scanned; the serial program covers only the near rows (the
previous super-block and its own), one block of ``P`` positions after another.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.patches as mpatches
import matplotlib.pyplot as plt

T, K, S, PF, RS, P = 40, 18, 8, 4, 6, 2


def main() -> None:
    fig, ax = plt.subplots(figsize=(7.5, 6.2))
    far_colors = ["#9ecae1", "#6baed6", "#4292c6", "#2171b5"]
    for t in range(1, T + 1):
        t0 = ((t - 1) // S) * S + 1
        far_end = t0 - S  # far rows end one super-block back (none for the first two)
        for r in range(max(0, t - K), t):
            if r < far_end and far_end > 1:
                tile = (t - t0) // PF
                split = (far_end - 1 - r) // RS
                color = far_colors[(tile + split) % 2 + 2 * (split % 2)]
            else:
                color = "#fd8d3c"
            ax.add_patch(mpatches.Rectangle((r, t - 0.5), 1, 1, color=color, lw=0))
    for t0 in range(1, T + 1, S):
        ax.axhline(t0 - 0.5, color="k", lw=0.8)
        ax.axvline(t0, color="grey", lw=0.4, ls=":")
    ax.set_xlim(0, T)
    ax.set_ylim(T + 0.5, 0.5)
    ax.set_xlabel("window row r (the segment starts at r)")
    ax.set_ylabel("output position t (the segment ends before t)")
    ax.set_title(
        f"Split scan, K = {K}, super-blocks of S = {S}: who computes each (t, r) term",
        fontsize=10,
    )
    handles = [
        mpatches.Patch(
            color="#4292c6",
            label="far kernel: one program per (PF outputs, RS rows), all in parallel,\n"
            "while the previous super-block is scanned",
        ),
        mpatches.Patch(
            color="#fd8d3c",
            label="serial kernel: near rows only (previous and own super-block)",
        ),
    ]
    ax.legend(handles=handles, loc="upper right", fontsize=8)
    out = Path(__file__).with_suffix(".png")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()
