"""Presenting a BenchmarkResult: Rich tables, a JSON file and a PNG of plots."""
from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from .benchmark import PAPER_FPS, BenchmarkResult
from .fsutil import atomic_path


def tables(result: BenchmarkResult) -> list[Table]:
    out = []
    m = result.machine
    if result.speed:
        t = Table(title=f"Frame generation speed ({m['device']}; {m['cpu']}, {m['torch_threads']} threads)",
                  caption=f"side x side output; FPS: median of {result.speed[0]['frames']}-frame runs (spread: half their range), "
                          "image preparation included; long: without it, as a long video approaches; "
                          "GFLOP/f: per frame, conv and matmul, counted by torch.utils.flop_counter; of peak: GFLOP/s "
                          "against the 3x3 conv rate; "
                          f"float32 on this device: matmul {m['peak_gflops']['matmul']:.0f}, "
                          f"3x3 conv {m['peak_gflops']['conv3x3']:.0f} GFLOP/s")
        peak = m["peak_gflops"]["conv3x3"]
        for col in ("side", "method", "FPS", "spread", "long", "GFLOP/f", "GFLOP/s", "of peak", "vs full"):
            t.add_column(col, justify="left" if col == "method" else "right", no_wrap=col == "method")
        full = {r["res"]: r["fps"] for r in result.speed if r["method"] == "timeflies-full"}
        last = None
        for r in result.speed:
            if last is not None and r["res"] != last:
                t.add_section()
            last = r["res"]
            ratio = f"{r['fps'] / full[r['res']]:.1f}x" if r["method"] == "timeflies" and r["res"] in full else ""
            t.add_row(str(r["res"]), r["method"], _num(r["fps"]), f"±{50 * (r['fps_max'] - r['fps_min']) / r['fps']:.0f}%",
                      _num(r["fps_long"]), _gflop(r["gflop_per_frame"]), _gflop(r["gflops"]),
                      f"{100 * r['gflops'] / peak:.0f}%" if r["gflops"] >= 0.01 else "-", ratio)
        out.append(t)
    if result.stages:
        s = result.stages
        t = Table(title=f"Where animate's time goes: {s['frames']} frames at {s['width']}x{s['height']}, "
                        f"labels from {s['labels_from']}",
                  caption=f"{Path(s['image']).name} + {Path(s['reference']).name}; {s['seconds']:.1f} s in all")
        for col in ("stage", "seconds", "share", "per frame"):
            t.add_column(col, justify="left" if col == "stage" else "right")
        for name, sec in s["stages"].items():
            t.add_row(name, f"{sec:.2f}", f"{100 * sec / s['seconds']:.0f}%", f"{1000 * sec / s['frames']:.0f} ms")
        out.append(t)
    if result.quality:
        q = result.quality
        t = Table(title=f"Quality on {Path(q['image']).name} + {Path(q['reference']).name} "
                        f"({q['frames']} frames, {q['size'][0]}x{q['size'][1]}, labels from {q['labels_from']})",
                  caption=f"lower is better except SSIM; Gram distance on {q['style_network']}")
        for col in ("method", "E_tmp", "sigma_tmp", "SSIM(I, F~)", "Gram(F~, F)"):
            t.add_column(col, justify="left" if col == "method" else "right")
        for r in q["rows"]:
            t.add_row(r["method"], _num(r["e_tmp"]), _num(r["sigma_tmp"]), _num(r["ssim"]), _num(r["gram"]))
        out.append(t)
    if result.evaluation:
        out += _eval_tables(result.evaluation)
    return out


def _eval_tables(ev: dict) -> list[Table]:
    cols = ("PSNR", "SSIM", "E_tmp", "sigma_tmp")
    per = Table(title=f"Held-out check on {ev['data']}: I = flipped mean frame, target = flipped frames",
                caption="higher PSNR/SSIM is better; still = output I, the floor; sigma_tmp compares each "
                        "method's change with the target's")
    per.add_column("sequence")
    per.add_column("method")
    for col in cols:
        per.add_column(col, justify="right")
    for s in ev["sequences"]:
        for i, r in enumerate(s["rows"]):
            name = f"{s['sequence']} ({s['frames']})" if i == 0 else ""
            per.add_row(name, r["method"], *(_num(r[c.lower()]) for c in cols))
        per.add_section()
    mean = Table(title=f"Mean over {len(ev['sequences'])} sequences")
    mean.add_column("method")
    for col in cols:
        mean.add_column(col, justify="right")
    for r in ev["mean"]:
        mean.add_row(r["method"], *(_num(r[c.lower()]) for c in cols))
    return [per, mean]


def _num(x) -> str:
    if x is None:
        return "-"
    if x != x or x in (float("inf"), float("-inf")):
        return str(x)
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def _gflop(x: float) -> str:
    return "<0.01" if 0 < x < 0.01 else _num(x)


def write_json(result: BenchmarkResult, path: str | Path) -> None:
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(result.to_json(), indent=2) + "\n")


def plot(result: BenchmarkResult, path: str | Path) -> None:
    """FPS against resolution (paper Table 2), SSIM against Gram distance (Fig. 7), and
    the held-out PSNR per method, as panels of one PNG (those the result has data for)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p, has in (("speed", result.speed), ("quality", result.quality),
                               ("eval", result.evaluation)) if has]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "speed":
            for name in dict.fromkeys(r["method"] for r in result.speed):
                rows = [r for r in result.speed if r["method"] == name]
                ax.plot([r["res"] for r in rows], [r["fps"] for r in rows], "o-", label=name)
            res = sorted({r["res"] for r in result.speed})
            paper = [r for r in res if r in PAPER_FPS]
            if paper:
                ax.plot(paper, [PAPER_FPS[r] for r in paper], "kx--", label="paper's Time Flies, RTX 2080 Ti")
            ax.set(xscale="log", yscale="log", xlabel="output side (pixels)", ylabel="frames per second",
                   title=f"Speed on {result.machine['device']}")
            ax.set_xticks(res, [str(r) for r in res])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # only the sides measured
            ax.grid(True, which="both", alpha=0.3)
        elif panel == "quality":
            for r in result.quality["rows"]:
                if r["ssim"] is not None:
                    ax.scatter(r["gram_per_frame"], r["ssim_per_frame"], s=12, label=r["method"], alpha=0.7)
            ax.set(xlabel=f"Gram distance to F_t ({result.quality['style_network']}) - lower: style matched",
                   ylabel="SSIM(I, F~_t) - higher: structure kept", title="Structure vs style (paper Fig. 7)")
            ax.set_xscale("log")  # distances span decades; a distance of 0 is not drawn
            ax.grid(True, alpha=0.3)
        else:
            rows = result.evaluation["mean"]
            bars = ax.bar([r["method"] for r in rows], [r["psnr"] for r in rows], color="tab:gray")
            ax.bar_label(bars, labels=[f"{r['psnr']:.1f} dB\nSSIM {r['ssim']:.2f}" for r in rows], fontsize=8)
            ax.set(ylabel="mean PSNR against the target (dB)",
                   title=f"Held-out check, {len(result.evaluation['sequences'])} sequences")
            ax.set_ylim(0, 1.15 * max(r["psnr"] for r in rows))
            ax.tick_params(axis="x", rotation=30)
        if panel != "eval":
            ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
