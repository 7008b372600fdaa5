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
    if result.cross_scene:
        out += _cross_tables(result.cross_scene)
    if result.sky_clips:
        out.append(_sky_clips_table(result.sky_clips))
    return out


def _sky_clips_table(sc: dict) -> Table:
    worst = "-" if sc["worst_degrees"] is None else f"{sc['worst_degrees']:.0f}°"
    t = _table(f"Sky clips as the reference for {Path(sc['photo']).name}: {sc['moving_ok']} of {sc['moving']} "
               f"drifting clips move its sky within {sc['max_degrees']:.0f}° (worst {worst}), {sc['still_ok']} of "
               f"{sc['still']} slower ones leave it still",
               f"drift: the clip's mean sky flow vector at 128 px, px/frame (at least {sc['drift']} must move the "
               "sky); output: the output's mean sky flow; error: between their directions",
               "clip", "drift", "towards", "moved", "output", "towards", "error", "")
    deg = lambda x: "-" if x is None else f"{x:.0f}°"  # noqa: E731
    for r in sc["rows"]:
        t.add_row(r["clip"], f"{r['drift']:.2f}", deg(r["drift_degrees"]), "yes" if r["moved"] else "no",
                  "-" if r["out_speed"] is None else f"{r['out_speed']:.2f}", deg(r["out_degrees"]),
                  deg(r["error_degrees"]), "ok" if r["ok"] else "FAIL")
    return t


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
    night = _night_table(ev)
    return [per, mean] + ([night] if night else [])


def _night_table(ev: dict) -> Table | None:
    """PSNR on the night frames (target mean luma < 0.12) of the sequences that have them."""
    nights = [s for s in ev["sequences"] if s.get("night")]
    if not nights:
        return None
    t = _table("Night frames (target mean luminance < 0.12): PSNR",
               "black: an all-black frame; target flat: each target frame's own mean colour (an oracle "
               "of the global colour); vs: the method's PSNR minus theirs", "sequence", "method", "PSNR",
               "vs black", "vs flat")
    for name, n in [*((f"{s['sequence']} ({s['night']['frames']})", s["night"]) for s in nights),
                    (f"mean of {len(nights)}", ev["night_mean"])]:
        t.add_row(name, "(black)", f"{n['black']:.2f}", "", "")
        t.add_row("", "(target flat)", f"{n['target_flat']:.2f}", "", "")
        for r in n["rows"]:
            t.add_row("", r["method"], f"{r['psnr']:.2f}", f"{r['psnr'] - n['black']:+.2f}",
                      f"{r['psnr'] - n['target_flat']:+.2f}")
        t.add_section()
    return t


_CROSS_COLS = ("PSNR", "black", "flat", "day r", "lit", "xref", "lift", "lift∪")


def _cross_cells(r: dict) -> list[str]:
    f = lambda x, spec: "-" if x != x else format(x, spec)  # noqa: E731 (NaN: undefined)
    return [f(r["psnr"], ".1f"), f(r["black"], ".1f"), f(r["own_flat"], ".1f"), f(r["daylight_left"], ".2f"),
            f(r["lit_share"], ".3f"), f(r["share_ratio"], ".2f"), f(r["lift"], ".2f"), f(r["lift_union"], ".2f")]


def _cross_tables(cs: dict) -> list[Table]:
    """Per camera x reference (a table per reference), then means per camera, per reference
    and over all pairs. No padding but the rule between columns, so that ten fit 80 columns."""
    caption = (f"on the output's darkest {100 * cs['dark_share']:.0f}% of frames, each against the camera's real "
               "night frame closest in mean luminance: PSNR of the output, of black, of the output's own mean "
               "colour (flat); day r: correlation of the output's luminance with the photo's over its unlit "
               "pixels ((real nights) row: the real frames'); lit: share of 8x8 blocks holding a lit pixel, "
               "xref: over the reference's darkest frame's share; lift: P(real lit | output lit) / P(real "
               "lit), lift∪: against the union of the camera's real nights; -: undefined")
    per = []
    for ref in dict.fromkeys(p["reference"] for p in cs["pairs"]):
        t = _table(f"Cross-scene with truth: a camera's brightest day frame + {ref}", caption, "camera", "method",
                   *_CROSS_COLS)
        for p in (p for p in cs["pairs"] if p["reference"] == ref):
            for i, r in enumerate(p["rows"]):
                t.add_row(p["camera"] if i == 0 else "", r["method"], *_cross_cells(r))
            t.add_row("", "(real nights)", "", "", "", f"{p['real_daylight_left']:.2f}",
                      f"{p['real_lit_share']:.3f}", "", "", "")
            t.add_section()
        t.padding = (0, 0)
        per.append(t)
    mean = _table("Cross-scene with truth: means", "per camera over its references, per reference over "
                  "the cameras, and over all pairs", "over", "method", *_CROSS_COLS)
    started = False
    for key in ("by_camera", "by_reference", "mean"):
        for i, r in enumerate(cs[key]):
            new = i == 0 or r["group"] != cs[key][i - 1]["group"]
            if new and started:
                mean.add_section()
            group = r["group"] if r["group"] is not None else f"all {r['pairs']} pairs"
            mean.add_row(group if new else "", r["method"], *_cross_cells(r))
            started = True
    mean.padding = (0, 0)
    return [*per, mean]


def _borders_table(rows: list[dict]) -> Table:
    from .borders import BAND, REFERENCE

    t = _table(f"Sky borders: error against the hand-drawn border, with {Path(REFERENCE).name}",
               f"mean |output - output with the hand-drawn sky| (0..255) in a band of +-{BAND} px around "
               "the hand-drawn border and elsewhere; hard: the built-in segmenter's map, soft: with the "
               "sky matte (animate's default); night: the band in the night frames alone; IoU: the map's "
               "sky against the hand-drawn one",
               "photo", "method", "sky\nIoU", "band\nhard", "band\nsoft", "night\nhard", "night\nsoft",
               "rest\nhard", "rest\nsoft")
    for r in rows:
        t.add_row(r["photo"], r["method"], _num(r["sky_iou"]), _num(r["band_hard"]), _num(r["band_soft"]),
                  _num(r.get("band_hard_night")), _num(r.get("band_soft_night")),
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
