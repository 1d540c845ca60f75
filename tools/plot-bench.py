#!/usr/bin/env python3
"""Draw the benchmark report's plot from results.json (make bench).

    tools/plot-bench.py RESULTS.json OUT.png

Left: the macro benchmarks and the Linux boot as ratios to native
(pivisor/native, KVM/native; 1.0 is no overhead). Right: the micro
benchmarks' cost per operation in guest instructions (log scale), native
against pivisor and KVM. The title says the QEMU version, mode and date.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    with open(src) as f:
        data = json.load(f)
    meta = data["meta"]
    vals = {}
    for r in data["results"]:
        vals[(r["benchmark"], r["config"])] = r["value"]
    configs = [c for c in ("pivisor", "kvm") if any(k[1] == c for k in vals)]

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    macro = ["M1", "M2", "M3", "M4", "M5", "M6", "M7", "M8", "M9", "BOOT"]
    width = 0.8 / max(len(configs), 1)
    for i, c in enumerate(configs):
        xs, ys = [], []
        for j, b in enumerate(macro):
            n, v = vals.get((b, "native")), vals.get((b, c))
            if n and v and n > 0:
                xs.append(j + i * width)
                ys.append(v / n)
        left.bar(xs, ys, width, label=f"{c}/native")
        for x, y in zip(xs, ys):
            left.annotate(f"{y:.3f}", (x, y), ha="center", va="bottom", fontsize=7)
    left.axhline(1.0, color="grey", linewidth=0.8)
    left.set_xticks([j + width * (len(configs) - 1) / 2 for j in range(len(macro))])
    left.set_xticklabels(macro)
    left.set_ylabel("ratio to native (lower is better)")
    left.set_title("Linux guest (M6 plain TCG, noisy)")
    left.legend()

    micro = ["B1", "B2r", "B2w", "B3", "B4", "B5"]
    allc = ["native"] + configs
    width = 0.8 / len(allc)
    for i, c in enumerate(allc):
        xs, ys = [], []
        for j, b in enumerate(micro):
            v = vals.get((b, c))
            if v is not None:
                xs.append(j + i * width)
                ys.append(max(v, 1.0))
        right.bar(xs, ys, width, label=c)
    right.set_yscale("log")
    right.set_xticks([j + width * (len(allc) - 1) / 2 for j in range(len(micro))])
    right.set_xticklabels(micro)
    right.set_ylabel("guest instructions per operation (log)")
    right.set_title("bare-metal micro benchmarks")
    right.legend()

    fig.suptitle(f"pivisor benchmarks - {meta.get('qemu', '?')}, raspi4b, "
                 f"-icount shift=0 - {meta.get('date', '?')}", fontsize=10)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: plot-bench.py RESULTS.json OUT.png")
    main(sys.argv[1], sys.argv[2])
