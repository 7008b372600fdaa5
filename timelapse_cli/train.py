"""Self-supervised training of the generator (method.md, "Self-supervised training").

For a clip F_1..F_T of one static-camera sequence: I = the horizontally flipped temporal
mean, the target of F~_t is F_t flipped, and F~_t = G(I, window_t) with window_t =
(F_t-2, F_t-1, F_t) (the two frames before the clip fill the first windows). One step
is one clip; an epoch visits every sequence once (of this rank's shard).

Everything random in a step (which sequence, where the clip starts, the noise map) is
drawn from generators seeded by (seed, step), and model and optimiser states go into
every checkpoint, so `--resume` continues exactly where a run stopped.

Checkpoint layout, OUT/checkpoint/: generator/ (safetensors + config, loadable by
`animate --weights`), state.pt (discriminator, optimisers, step; read with
weights_only=True). OUT/log.jsonl has every loss term of every step and, every
`val_every` steps, the PSNR on the validation sequences; OUT/best/ holds the generator
that scored best there. OUT/run.json has the settings and where the encoder weights came
from; OUT/labels/ the label maps made for sequences that have none.

TrainOptions' defaults are the "fast" recipe (recipe.py), which runs on a laptop CPU.
"""
from __future__ import annotations

import copy
import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import data, losses
from .errors import TimefliesError
from .model import Generator, GeneratorConfig, VideoDiscriminator, noise_frames
from .runfolder import RunFolder
from .runtime import resolve_device
from .weights import from_pretrained, import_vgg19, loss_network, save_pretrained

StepFn = Callable[[int, int, dict], None]  # (step done, steps total or 0, loss terms)


def _log_squared_error_only() -> losses.LossWeights:
    return losses.LossWeights(adv=0.0, perc=0.0, content=0.0, style=0.0, flow=0.0, cycle=0.0, log_mse=1.0)


@dataclass
class TrainOptions:
    data: str
    out: str = "runs/timeflies"
    size: int | tuple[int, int] = 128  # long side (aspect kept), or (w, h)
    clip: int = 8
    clips: int = 1                    # clips per optimiser step (gradients averaged)
    photo: str = "sequence"           # I = flipped mean of the clip (the paper) or of the whole sequence
    width: float = 0.25
    output: str = "affine"            # GeneratorConfig.output of a new model: rgb or affine
    affine_base: str = "transfer"     # GeneratorConfig.affine_base: photo or transfer
    noise_sigma: float = 0.5          # GeneratorConfig.noise_sigma: std of the noise map (0 = none)
    affine_smooth: int = 8            # GeneratorConfig.affine_smooth: block of the smoothed matrices
    max_steps: int | None = None      # default: epochs * sequences
    epochs: int = 200
    max_minutes: float | None = None
    save_every: int = 100
    seed: int = 0
    vgg: str | None = None            # torchvision vgg19-dcbb9e9d.pth: E_GI, E_GV and the loss network
    init: str | None = None           # a saved generator to start from (default: shipped weights if same width)
    resume: bool = False
    overwrite: bool = False           # replace an earlier run in `out` (runfolder.RunFolder.prepare)
    device: str = "auto"
    deterministic: bool = True
    lr_g: float = 1e-5                # decoder, Adam
    lr_d: float = 1e-4                # discriminator, Adam
    lr_v: float = 1e-5                # E_GV, SGD momentum 0.9, weight decay 1e-4
    alpha_decay: float = 0.999        # content loss: alpha = alpha_decay ** step
    weights: losses.LossWeights = field(default_factory=_log_squared_error_only)
    exclude: tuple[str, ...] = ()     # name patterns of sequences never used (test sets)
    val: tuple[str, ...] = ()         # name patterns of validation sequences (not trained on)
    val_every: int = 250              # steps between validations
    val_size: int = 128               # long side of the validation frames
    val_frames: int | None = None     # frames per validation sequence (at most; None = all)
    segmenter: str = "auto"           # label maps for sequences without segmentation.png; none = one class


@dataclass
class TrainResult:
    out: Path
    steps: int
    seconds: float
    generator_dir: Path
    last: dict


class _Dist:
    """torch.distributed when launched by torchrun (gloo on CPU, NCCL on CUDA), else one process."""

    def __init__(self, device: torch.device) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1:
            import torch.distributed as dist
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def wrap(self, module: nn.Module) -> nn.Module:
        """DistributedDataParallel over the ranks (gradients averaged in backward), or the
        module itself in a single process."""
        if self.world == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(module)

    def any(self, flag: bool) -> bool:
        if self.world == 1:
            return flag
        import torch.distributed as dist
        t = torch.tensor([int(flag)])
        dist.all_reduce(t)
        return bool(t.item())

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as dist
            dist.barrier()
            dist.destroy_process_group()


class GeneratorLoss(nn.Module):
    """One clip through the generator and its loss terms, as a module so that
    DistributedDataParallel can wrap it: its trainable parameters are D_G's and E_GV's
    (E_GI and the loss network are frozen). The discriminator comes in as an argument,
    not a submodule: it has its own DistributedDataParallel for its own step."""

    def __init__(self, G: Generator, loss_net: nn.Module, opts: "TrainOptions") -> None:
        super().__init__()
        self.G, self.loss_net, self.opts = G, loss_net, opts

    def forward(self, step: int, index: int, windows, image, targets, labels, D) -> tuple[dict, torch.Tensor, tuple]:
        """windows (T, 9, h, w), image (1, 3, h, w), targets (T, 3, h, w), labels (h, w) ->
        (loss terms, fake frames (T, 3, h, w), (real, fake) discriminator inputs). `step`
        sets the content loss' alpha, `index` (the clip's number) seeds the noise map."""
        opts, w = self.opts, self.opts.weights
        present, ids = torch.unique(labels, return_inverse=True)  # ids on 0..K-1
        k = present.numel()
        img_ids = ids.flip(-1)  # I and the targets are flipped, and so is their label map
        t = targets.shape[0]
        noise = noise_frames(opts.seed * 1_000_003 + index, 0, t, targets.shape[-2:],
                             self.G.config.noise_sigma).to(image.device)
        cache = self.G.encode_image(image, img_ids, k)
        fake = self.G.decode(cache, windows, ids, noise)  # (T, 3, h, w)
        if not torch.isfinite(fake).all():
            raise Diverged(step + 1, "the generated frames")
        terms = {}
        need_phi = w.perc or w.style or w.flow
        if need_phi:
            phi_real = [f.detach() for f in self.loss_net(targets)[3]]
            phi_fake = self.loss_net(fake)[3]
            regions = losses.regions_for(img_ids, k, phi_real)
        if w.pixel:
            terms["pixel"] = losses.pixel(targets, fake)
        if w.mse:
            terms["mse"] = losses.mse(targets, fake)
        if w.log_mse:
            terms["log_mse"] = losses.log_mse(targets, fake)
        if w.perc:
            terms["perc"] = losses.perceptual(phi_real, phi_fake)
        if w.content:
            feat_i = self.G.image_encoder(image)[0]
            feat_f = self.G.image_encoder(fake)[0]
            alpha = losses.content_alpha(step, opts.alpha_decay)
            terms["content"] = losses.content(feat_i, feat_f, losses.whiten(image), losses.whiten(fake), alpha)
        if w.style:
            terms["style"] = losses.style(phi_real, phi_fake, regions)
        if w.flow:
            terms["flow"] = losses.flow(phi_real, phi_fake, regions)
        # 3-frame windows of the generated and of the (flipped) real clip, t >= 3rd frame.
        fake_win = torch.cat([fake[:-2], fake[1:-1], fake[2:]], 1)
        real_win = torch.cat([targets[:-2], targets[1:-1], targets[2:]], 1)
        if w.cycle and fake_win.shape[0]:
            ev_real = [f.detach() for f in self.G.video_encoder(real_win)]
            ev_fake = list(self.G.video_encoder(fake_win))
            terms["cycle"] = losses.cycle(ev_real, ev_fake, losses.regions_for(img_ids, k, ev_real))
        ref = windows[2:]
        d_real, d_fake = torch.cat([ref, real_win], 1), torch.cat([ref, fake_win], 1)
        if w.adv and fake_win.shape[0]:
            terms["adv"] = losses.g_adversarial(D(d_fake))
        return terms, fake, (d_real, d_fake)


class Trainer:
    def __init__(self, opts: TrainOptions) -> None:
        self.opts = opts
        self.device = resolve_device(opts.device)
        if opts.deterministic:
            torch.use_deterministic_algorithms(True)
        if opts.photo not in ("clip", "sequence"):
            raise TimefliesError(f"unknown photo '{opts.photo}'; use clip or sequence")
        self.dist = _Dist(self.device)
        self.out = Path(opts.out)
        self.run_dir = None  # only rank 0 writes into OUT
        if self.dist.rank == 0:  # before anything is written into OUT
            self.run_dir = RunFolder.prepare(self.out, {"--data": opts.data, "--init": opts.init, "--vgg": opts.vgg},
                                             opts.resume, opts.overwrite)
        # Bad data fails here, by name; held-out sequences are not even opened.
        sequences = data.scan_sequences(opts.data, opts.clip, exclude=(*opts.exclude, *opts.val))
        self.shard = self._label(sequences[self.dist.rank::self.dist.world])
        if not self.shard:
            raise TimefliesError(f"{len(sequences)} sequence(s) cannot be shared by {self.dist.world} ranks; "
                                 "use fewer processes")
        self.val_seqs = []
        if opts.val and self.dist.rank == 0:
            found = data.find_sequences(opts.data, 2, "validation needs at least 2: drop it from --val")
            self.val_seqs = self._label(data.matching(found, opts.val))
            if not self.val_seqs:
                raise TimefliesError(f"no sequence of '{opts.data}' matches --val {' '.join(opts.val)}; "
                                     "check the names")
        self.best_val = float("-inf")
        self._means: dict = {}  # sequence means, for photo="sequence"
        self.G, self.loss_net, self.source = self._build_models()
        self.D = VideoDiscriminator().to(self.device)
        self.opt_g = torch.optim.Adam(self.G.decoder.parameters(), lr=opts.lr_g)
        self.opt_v = torch.optim.SGD(self.G.video_encoder.parameters(), lr=opts.lr_v, momentum=0.9,
                                     weight_decay=1e-4)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=opts.lr_d)
        self.step = 0
        self.saved_step: int | None = None  # the step of the checkpoint in OUT/checkpoint/
        if opts.resume:
            self._load_checkpoint()
        # Wrapped after loading: DistributedDataParallel starts every rank from rank 0's state.
        self.g_loss = self.dist.wrap(GeneratorLoss(self.G, self.loss_net, opts))
        self.d_step = self.dist.wrap(self.D)

    # ------------------------------------------------------------------ set-up

    def _label(self, sequences: list[data.Sequence]) -> list[data.Sequence]:
        """Sequences without segmentation.png get a map from the segmenter animate uses by
        default (the one benchmark --eval uses too), cached in OUT/labels/."""
        if self.opts.segmenter == "none" or all(s.label_path for s in sequences):
            return sequences
        from .segment import resolve_segmenter

        segmenter = resolve_segmenter(self.opts.segmenter, device=str(self.device))
        labelled = data.with_label_maps(sequences, self.out / "labels", segmenter)
        if self.run_dir:  # the maps made here are the run's own files
            self.run_dir.record(*(f"labels/{s.label_path.name}" for s in labelled
                                  if s.label_path.parent == self.out / "labels"))
        return labelled

    def _build_models(self):
        """Generator, frozen loss network, and a note of where the encoder weights came from."""
        opts = self.opts
        torch.manual_seed(opts.seed)
        cfg = GeneratorConfig(width=opts.width, output=opts.output, affine_base=opts.affine_base,
                              noise_sigma=opts.noise_sigma, affine_smooth=opts.affine_smooth)
        if opts.init:
            G = from_pretrained(opts.init)
            source = f"generator {opts.init}"
        elif opts.vgg:
            G = Generator(cfg)
            source = f"random decoder; ImageNet VGG-19 from {opts.vgg}"
        else:
            shipped = from_pretrained()
            G = shipped if shipped.config == cfg else Generator(cfg)
            if G is not shipped:
                G.seed_video_encoder()  # E_GV starts as E_GI's first layers
            source = ("shipped weights/" if G is shipped else
                      "random initialisation, E_GV from E_GI's first layers "
                      "(no --vgg, no --init, shipped weights of another config)")
        # The loss network Phi: ImageNet VGG-19 when given, else the generator's own E_GI.
        loss_net, _ = loss_network(G, opts.vgg)
        if opts.vgg:
            if G.config.width == 1.0:
                import_vgg19(G, opts.vgg)
            else:
                source += " (loss network only: E_GI of a narrower model stays as initialised)"
        for p in [*G.image_encoder.parameters(), *loss_net.parameters()]:
            p.requires_grad_(False)  # E_GI and the loss network are fixed
        return G.to(self.device), loss_net.to(self.device).eval(), source

    # ------------------------------------------------------------------ one step

    def batch(self, step: int):
        """The clip of `step`: (windows (T, 9, h, w), image (1, 3, h, w), targets (T, 3, h, w), labels)."""
        opts = self.opts
        epoch, i = divmod(step, len(self.shard))
        order = np.random.default_rng([opts.seed, epoch, self.dist.rank]).permutation(len(self.shard))
        seq = self.shard[order[i]]
        rng = np.random.default_rng([opts.seed, step, self.dist.rank, 1])
        start = data.clip_start(seq, opts.clip, rng)
        size = data.frame_size(seq, opts.size)
        frames = data.load_frames(seq, start, opts.clip + 2, size).to(self.device)  # (T+2, 3, h, w)
        windows = torch.cat([frames[:-2], frames[1:-1], frames[2:]], 1)  # (T, 9, h, w)
        clip = frames[2:]
        mean = clip.mean(0, keepdim=True) if opts.photo == "clip" else self._sequence_mean(seq, size)
        labels = torch.from_numpy(data.load_labels(seq, size)).to(self.device)
        return windows, mean.flip(-1), clip.flip(-1), labels, seq.name

    def _sequence_mean(self, seq: data.Sequence, size: tuple[int, int]) -> torch.Tensor:
        """The mean of all of `seq`'s frames at `size`, (1, 3, h, w): the photo of the held-out
        check (benchmark --eval), computed once per sequence."""
        key = (seq.name, size)
        if key not in self._means:
            total = torch.zeros(1, 3, size[1], size[0])
            for start in range(0, seq.frames, 64):  # in chunks: memory stays bounded
                total += data.load_frames(seq, start, min(64, seq.frames - start), size).sum(0, keepdim=True)
            self._means[key] = (total / seq.frames).to(self.device)
        return self._means[key]

    def losses(self, step: int, windows, image, targets, labels, index: int | None = None) -> tuple[dict, torch.Tensor, tuple]:
        """Generator loss terms, the fake frames, and the real/fake discriminator inputs;
        `index` (default `step`) seeds the clip's noise map."""
        return self.g_loss(step, step if index is None else index, windows, image, targets, labels, self.D)

    def train_step(self, step: int) -> dict:
        """One optimiser step on `clips` clips, their gradients averaged; logs their mean terms."""
        n = self.opts.clips
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_v.zero_grad(set_to_none=True)
        log: dict = {}
        d_inputs = []
        for i in range(n):
            windows, image, targets, labels, name = self.batch(step * n + i)
            terms, fake, d_in = self.losses(step, windows, image, targets, labels, index=step * n + i)
            total = losses.total(terms, self.opts.weights)
            (total / n).backward()
            d_inputs.append(d_in)
            with torch.no_grad():  # the self-supervised reconstruction error, for the curve
                terms = {**terms, "total": total, "recon_mse": F.mse_loss(fake.clamp(0, 1), targets),
                         "identity_mse": F.mse_loss(image.expand_as(targets), targets)}
            for k, v in terms.items():
                log[k] = log.get(k, 0.0) + float(v.detach()) / n
        self.opt_g.step()
        self.opt_v.step()
        if self.opts.weights.adv and d_inputs[0][1].shape[0]:
            self.opt_d.zero_grad(set_to_none=True)
            d_sum = 0.0
            for d_real, d_fake in d_inputs:
                logits = self.d_step(torch.cat([d_real, d_fake.detach()]))  # one forward: one DDP sync
                d = losses.d_loss(logits[:d_real.shape[0]], logits[d_real.shape[0]:])
                (d / n).backward()
                d_sum += float(d.detach()) / n
            self.opt_d.step()
            log["d"] = d_sum
        log.update(alpha=losses.content_alpha(step, self.opts.alpha_decay), sequence=name)
        return log

    # ------------------------------------------------------------------ the loop

    def run(self, on_step: StepFn | None = None) -> TrainResult:
        opts = self.opts
        total_steps = opts.max_steps or -(-opts.epochs * len(self.shard) // opts.clips)
        start = time.perf_counter()
        if self.run_dir:
            with self.run_dir.file("run.json") as tmp:
                _write_json(tmp, {**_jsonable(asdict(opts)), "encoders": self.source, "world_size": self.dist.world})
            self._trim_log()
        last: dict = {}
        if self.val_seqs and self.step == 0:
            self.validate()  # the starting point: the initialisation may already be the best
        self.G.train()
        while self.step < total_steps:
            t0 = time.perf_counter()
            try:
                last = self.train_step(self.step)
            except Diverged as e:  # the frames went non-finite: say which checkpoint is kept
                raise Diverged(e.step, e.what, self.saved_step) from None
            last["seconds"] = round(time.perf_counter() - t0, 4)
            self._check_finite(last)  # before anything of this step is logged or saved
            self.step += 1
            if self.run_dir:
                self.run_dir.append("log.jsonl", json.dumps({"step": self.step, **last}) + "\n")
            if on_step:
                on_step(self.step, total_steps, last)
            out_of_time = opts.max_minutes is not None and time.perf_counter() - start > 60 * opts.max_minutes
            if self.dist.any(out_of_time):
                break
            if self.val_seqs and self.step % opts.val_every == 0:
                self.validate()
            if self.step % opts.save_every == 0 and self.step < total_steps:
                self.save_checkpoint()
        if self.val_seqs and self.step % opts.val_every:
            self.validate()
        self.save_checkpoint()
        self.dist.close()
        return TrainResult(self.out, self.step, time.perf_counter() - start, self.out / "checkpoint" / "generator", last)

    # ------------------------------------------------------------------ validation

    def validate(self) -> float:
        """The held-out check (benchmark --eval) on the validation sequences with the current
        generator: mean PSNR into log.jsonl; the best generator so far into OUT/best/."""
        from .animation import Animator
        from .benchmark import BenchmarkOptions, evaluate

        bopts = BenchmarkOptions(methods=("timeflies",), size=self.opts.val_size,
                                 max_frames=self.opts.val_frames, seed=self.opts.seed)
        model = copy.deepcopy(self.G)  # animate's memory layout and eval mode, on a copy
        with torch.inference_mode():
            ev = evaluate(Animator(device=str(self.device), model=model), self.opts.data, bopts,
                          sequences=self.val_seqs)
        psnr = ev["mean"][0]["psnr"]
        per_seq = {s["sequence"]: round(s["rows"][0]["psnr"], 3) for s in ev["sequences"]}
        self.run_dir.append("log.jsonl", json.dumps({"step": self.step, "val_psnr": psnr, "val": per_seq}) + "\n")
        if psnr > self.best_val:
            self.best_val = psnr
            with self.run_dir.folder("best") as tmp:
                save_pretrained(self.G, tmp, metadata={"step": self.step, "val_psnr": psnr})
                _write_json(tmp / "val.json", {"step": self.step, "val_psnr": psnr, "val": per_seq})
        return psnr

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self) -> None:
        """OUT/checkpoint/ as a whole, written under a temporary name and swapped in."""
        if not self.run_dir:
            return
        with self.run_dir.folder("checkpoint") as tmp:
            save_pretrained(self.G, tmp / "generator", metadata={"step": self.step, "encoders": self.source})
            state = {"step": self.step, "best_val": self.best_val, "D": self.D.state_dict(),
                     "opt_g": self.opt_g.state_dict(),
                     "opt_v": self.opt_v.state_dict(), "opt_d": self.opt_d.state_dict()}
            buffer = io.BytesIO()  # torch.save on a full disk fails with an unhelpful RuntimeError
            torch.save(state, buffer)
            (tmp / "state.pt").write_bytes(buffer.getvalue())
        self.saved_step = self.step

    def _check_finite(self, terms: dict) -> None:
        """End the run at the first step whose loss or weights stop being finite numbers:
        nothing of that step is logged or saved, and OUT/checkpoint/ keeps the last good one."""
        bad = next((f"the loss term '{k}'" for k, v in terms.items()
                    if isinstance(v, float) and not math.isfinite(v)), None)
        if bad is None:
            bad = next((f"the weight '{n}'" for n, p in self.G.named_parameters()
                        if p.requires_grad and not torch.isfinite(p).all()), None)
        if self.dist.any(bad is not None):
            raise Diverged(self.step + 1, bad or "another rank's step", self.saved_step)

    def _load_checkpoint(self) -> None:
        ckpt = self.out / "checkpoint"
        if not (ckpt / "state.pt").is_file():
            raise TimefliesError(f"nothing to resume: '{ckpt}/state.pt' not found; run without --resume")
        G = from_pretrained(ckpt / "generator", self.device)
        self.G.load_state_dict(G.state_dict())
        state = torch.load(ckpt / "state.pt", map_location=self.device, weights_only=True)
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_v.load_state_dict(state["opt_v"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step = self.saved_step = int(state["step"])
        self.best_val = float(state.get("best_val", float("-inf")))

    def _trim_log(self) -> None:
        """Drop log lines past the checkpoint we resume from (they will be redone)."""
        log = self.out / "log.jsonl"
        if not log.exists():
            return
        keep = [line for line in log.read_text().splitlines() if line and json.loads(line)["step"] <= self.step]
        with self.run_dir.file("log.jsonl") as tmp:
            tmp.write_text("".join(line + "\n" for line in keep))


class Diverged(TimefliesError):
    """A training step gave non-finite values: the run ends, its last good checkpoint stays."""

    def __init__(self, step: int, what: str, saved: int | None = None) -> None:
        self.step, self.what = step, what
        kept = ("no checkpoint had been saved yet" if saved is None else
                f"the checkpoint of step {saved} is kept: resume from it")
        super().__init__(f"training diverged at step {step}: {what} is not finite; {kept} with lower learning "
                         "rates (--lr-g/--lr-d/--lr-v)")


def train(opts: TrainOptions, on_step: StepFn | None = None) -> TrainResult:
    return Trainer(opts).run(on_step)


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))


def _write_json(path: Path, obj: dict) -> None:
    """Into a temporary file or folder (RunFolder.file/.folder), which is renamed when complete."""
    path.write_text(json.dumps(obj, indent=2) + "\n")
