"""Presenting a BenchmarkResult: Rich tables, a JSON file and a PNG of plots."""
from __future__ import annotations

import json
from pathlib import Path

from rich import box
from rich.table import Table

from .benchmark import PAPER_FPS, BenchmarkResult
from .fsutil import atomic_path


def tables(result: BenchmarkResult) -> list[Table]:
    """The Rich tables of whichever parts the result holds, in the order they ran."""
    out = []
    if result.speed:
        out.append(_speed_table(result.speed, result.machine))
    if result.stages:
        out.append(_stages_table(result.stages))
    if result.quality:
        out.append(_quality_table(result.quality))
    if result.evaluation:
        out += _eval_tables(result.evaluation)
    if result.borders:
        out.append(_borders_table(result.borders))
    return out


def _speed_table(speed: list[dict], m: dict) -> Table:
    peak = m["peak_gflops"]
    t = _table(f"Frame generation speed ({m['device']}; {m['cpu']}, {m['torch_threads']} threads)",
               f"side x side output. FPS: median of {speed[0]['frames']}-frame runs, +- half their "
               "range, image preparation included; long: without it, as a long video approaches. "
               "GFLOP/f: per frame (conv and matmul, counted by torch.utils.flop_counter); of peak: "
               f"GFLOP/s against this device's float32 3x3 conv rate, {peak['conv3x3']:.0f} GFLOP/s "
               f"(matmul {peak['matmul']:.0f}). vs full / vs paper: timeflies FPS over timeflies-full's "
               "/ over paper-size's (the paper's architecture, width 1.0, run the same way).",
               "side", "method", "FPS", "long", "GFLOP/f", "GFLOP/s", "of peak", "vs full", "vs paper")
    full = {r["res"]: r["fps"] for r in speed if r["method"] == "timeflies-full"}
    paper = {r["res"]: r["fps"] for r in speed if r["method"] == "paper-size"}
    last = None
    for r in speed:
        if last is not None and r["res"] != last:
            t.add_section()
        last = r["res"]
        spread = 50 * (r["fps_max"] - r["fps_min"]) / r["fps"]
        mine = r["method"] == "timeflies"
        ratio = f"{r['fps'] / full[r['res']]:.1f}x" if mine and r["res"] in full else ""
        vs_paper = f"{r['fps'] / paper[r['res']]:.1f}x" if mine and r["res"] in paper else ""
        t.add_row(str(r["res"]), r["method"], f"{_num(r['fps'])} ±{spread:.0f}%", _num(r["fps_long"]),
                  _gflop(r["gflop_per_frame"]), _gflop(r["gflops"]),
                  _percent(r["gflops"] / peak["conv3x3"]) if r["gflops"] > 0 else "-", ratio, vs_paper)
    return t


def _stages_table(s: dict) -> Table:
    t = _table(f"Where animate's time goes: {s['frames']} frames at {s['width']}x{s['height']}, "
               f"labels from {s['labels_from']}",
               f"{Path(s['image']).name} + {Path(s['reference']).name}; {s['seconds']:.1f} s in all; "
               f"{s.get('sky', '')}" + _motion_caption(s.get("motion")),
               "stage", "seconds", "share", "per frame")
    for name, sec in s["stages"].items():
        t.add_row(name, f"{sec:.2f}", f"{100 * sec / s['seconds']:.0f}%", f"{1000 * sec / s['frames']:.0f} ms")
    return t


def _motion_caption(m: dict | None) -> str:
    if not m:
        return ""
    return (f"; output's optical flow: sky {m['sky_speed']:.2f} px/frame towards {m['sky_degrees']:.0f}°, "
            f"ground {m['ground_speed']:.3f} px/frame")


def _quality_table(q: dict) -> Table:
    t = _table(f"Quality on {Path(q['image']).name} + {Path(q['reference']).name} "
               f"({q['frames']} frames, {q['size'][0]}x{q['size'][1]}, labels from {q['labels_from']})",
               f"lower is better except SSIM and the r columns; Gram distance on {q['style_network']}; "
               "lum r: Pearson r of per-frame mean luma, output vs reference; struct r: gradient "
               "magnitudes of photo vs frame (luma normalised), mean over frames",
               "method", "E_tmp", "sigma_tmp", "SSIM(I, F~)", "Gram(F~, F)", "lum r", "struct r")
    for r in q["rows"]:
        t.add_row(r["method"], _num(r["e_tmp"]), _num(r["sigma_tmp"]), _num(r["ssim"]), _num(r["gram"]),
                  _num(r.get("luminance_r")), _num(r.get("structure_r")))
    return t


def _eval_tables(ev: dict) -> list[Table]:
    cols = ("PSNR", "SSIM", "E_tmp", "sigma_tmp")
    per = _table(f"Held-out check on {ev['data']}: I = flipped mean frame, target = flipped frames",
                 "higher PSNR/SSIM is better; still = output I, the floor; sigma_tmp compares each "
                 "method's change with the target's; sky motion off (the target's clouds are not the "
                 "mean frame's), hard sky borders", "sequence", "method", *cols)
    for s in ev["sequences"]:
        for i, r in enumerate(s["rows"]):
            name = f"{s['sequence']} ({s['frames']})" if i == 0 else ""
            per.add_row(name, r["method"], *(_num(r[c.lower()]) for c in cols))
        per.add_section()
    mean = _table(f"Mean over {len(ev['sequences'])} sequences", None, "method", *cols)
    for r in ev["mean"]:
        mean.add_row(r["method"], *(_num(r[c.lower()]) for c in cols))
    return [per, mean]


def _borders_table(rows: list[dict]) -> Table:
    from .borders import BAND, REFERENCE

    t = _table(f"Sky borders: error against the hand-drawn border, with {Path(REFERENCE).name}",
               f"mean |output - output with the hand-drawn sky| (0..255) in a band of +-{BAND} px around "
               "the hand-drawn border and elsewhere; hard: the built-in segmenter's map, soft: with the "
               "sky matte (animate's default); IoU: the map's sky against the hand-drawn one",
               "photo", "method", "sky IoU", "band hard", "band soft", "rest hard", "rest soft")
    for r in rows:
        t.add_row(r["photo"], r["method"], _num(r["sky_iou"]), _num(r["band_hard"]), _num(r["band_soft"]),
                  _num(r["interior_hard"]), _num(r["interior_soft"]))
    return t


def _table(title: str, caption: str | None, *columns: str) -> Table:
    """A table with light rules (it fits 80 columns), names left-aligned, figures right."""
    t = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in columns:
        text = col in ("method", "stage", "sequence")
        t.add_column(col, justify="left" if text else "right", no_wrap=True)
    return t


def _num(x) -> str:
    if x is None:
        return "-"
    if x != x or x in (float("inf"), float("-inf")):
        return str(x)
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def _percent(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 else "<1%"


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
            ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.0e}"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
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
            ax.legend(fontsize=7, ncol=2 if panel == "speed" else 1)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
