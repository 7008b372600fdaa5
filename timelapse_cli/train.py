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
weights_only=True). OUT/log.jsonl has every loss term of every step; OUT/run.json the
settings and where the encoder weights came from.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import data, losses
from .errors import TimefliesError
from .fsutil import atomic_path
from .model import Generator, GeneratorConfig, VideoDiscriminator, noise_frames
from .runtime import resolve_device
from .weights import from_pretrained, import_vgg19, loss_network, save_pretrained

StepFn = Callable[[int, int, dict], None]  # (step done, steps total or 0, loss terms)


@dataclass
class TrainOptions:
    data: str
    out: str = "runs/timeflies"
    size: tuple[int, int] = (256, 256)
    clip: int = 64
    width: float = 1.0
    max_steps: int | None = None      # default: epochs * sequences
    epochs: int = 200
    max_minutes: float | None = None
    save_every: int = 100
    seed: int = 0
    vgg: str | None = None            # torchvision vgg19-dcbb9e9d.pth: E_GI, E_GV and the loss network
    init: str | None = None           # a saved generator to start from (default: shipped weights if same width)
    resume: bool = False
    device: str = "auto"
    deterministic: bool = True
    lr_g: float = 1e-4                # decoder, Adam
    lr_d: float = 1e-4                # discriminator, Adam
    lr_v: float = 1e-4                # E_GV, SGD momentum 0.9, weight decay 1e-4
    alpha_decay: float = 0.999        # content loss: alpha = alpha_decay ** step
    weights: losses.LossWeights = field(default_factory=losses.LossWeights)


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

    def average_grads(self, params) -> None:
        """Average gradients across ranks, as DistributedDataParallel does."""
        if self.world == 1:
            return
        import torch.distributed as dist
        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= self.world

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


class Trainer:
    def __init__(self, opts: TrainOptions) -> None:
        self.opts = opts
        self.device = resolve_device(opts.device)
        if opts.deterministic:
            torch.use_deterministic_algorithms(True)
        self.dist = _Dist(self.device)
        sequences = data.scan_sequences(opts.data, opts.clip)  # bad data fails here, by name
        self.shard = sequences[self.dist.rank::self.dist.world]
        if not self.shard:
            raise TimefliesError(f"{len(sequences)} sequence(s) cannot be shared by {self.dist.world} ranks; "
                                 "use fewer processes")
        self.out = Path(opts.out)
        self.G, self.loss_net, self.source = self._build_models()
        self.D = VideoDiscriminator().to(self.device)
        self.opt_g = torch.optim.Adam(self.G.decoder.parameters(), lr=opts.lr_g)
        self.opt_v = torch.optim.SGD(self.G.video_encoder.parameters(), lr=opts.lr_v, momentum=0.9,
                                     weight_decay=1e-4)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=opts.lr_d)
        self.step = 0
        if opts.resume:
            self._load_checkpoint()

    # ------------------------------------------------------------------ set-up

    def _build_models(self):
        """Generator, frozen loss network, and a note of where the encoder weights came from."""
        opts = self.opts
        torch.manual_seed(opts.seed)
        cfg = GeneratorConfig(width=opts.width)
        if opts.init:
            G = from_pretrained(opts.init)
            source = f"generator {opts.init}"
        elif opts.vgg:
            G = Generator(cfg)
            source = f"random decoder; ImageNet VGG-19 from {opts.vgg}"
        else:
            shipped = from_pretrained()
            G = shipped if shipped.config.width == opts.width else Generator(cfg)
            source = ("shipped weights/" if G is shipped else
                      "random initialisation (no --vgg, no --init of this width)")
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
        frames = data.load_frames(seq, start, opts.clip + 2, opts.size).to(self.device)  # (T+2, 3, h, w)
        windows = torch.cat([frames[:-2], frames[1:-1], frames[2:]], 1)  # (T, 9, h, w)
        clip = frames[2:]
        image = clip.mean(0, keepdim=True).flip(-1)
        labels = torch.from_numpy(data.load_labels(seq, opts.size)).to(self.device)
        return windows, image, clip.flip(-1), labels, seq.name

    def losses(self, step: int, windows, image, targets, labels) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """Generator loss terms, the fake frames, and the real/fake discriminator inputs."""
        opts, w = self.opts, self.opts.weights
        present, ids = torch.unique(labels, return_inverse=True)  # ids on 0..K-1
        k = present.numel()
        img_ids = ids.flip(-1)  # I and the targets are flipped, and so is their label map
        t = targets.shape[0]
        noise = noise_frames(opts.seed * 1_000_003 + step, 0, t, targets.shape[-2:],
                             self.G.config.noise_sigma).to(self.device)
        cache = self.G.encode_image(image, img_ids, k)
        fake = self.G.decode(cache, windows, ids, noise)  # (T, 3, h, w)
        if not torch.isfinite(fake).all():
            raise TimefliesError(f"training diverged at step {step + 1} (non-finite frames); resume from "
                                 "the last checkpoint with lower learning rates (--lr-g/--lr-d/--lr-v)")
        terms = {}
        need_phi = w.perc or w.style or w.flow
        if need_phi:
            phi_real = [f.detach() for f in self.loss_net(targets)[3]]
            phi_fake = self.loss_net(fake)[3]
            regions = losses.regions_for(img_ids, k, phi_real)
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
            terms["adv"] = losses.g_adversarial(self.D(d_fake))
        return terms, fake, (d_real, d_fake)

    def train_step(self, step: int) -> dict:
        windows, image, targets, labels, name = self.batch(step)
        terms, fake, (d_real, d_fake) = self.losses(step, windows, image, targets, labels)
        total = losses.total(terms, self.opts.weights)
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_v.zero_grad(set_to_none=True)
        total.backward()
        self.dist.average_grads([*self.G.decoder.parameters(), *self.G.video_encoder.parameters()])
        self.opt_g.step()
        self.opt_v.step()
        log = {k: float(v.detach()) for k, v in terms.items()}
        if self.opts.weights.adv and d_fake.shape[0]:
            self.opt_d.zero_grad(set_to_none=True)
            d = losses.d_loss(self.D(d_real), self.D(d_fake.detach()))
            d.backward()
            self.dist.average_grads(self.D.parameters())
            self.opt_d.step()
            log["d"] = float(d.detach())
        with torch.no_grad():  # the self-supervised reconstruction error, for the curve
            log["recon_mse"] = float(F.mse_loss(fake.clamp(0, 1), targets))
            log["identity_mse"] = float(F.mse_loss(image.expand_as(targets), targets))
        log.update(total=float(total.detach()), alpha=losses.content_alpha(step, self.opts.alpha_decay), sequence=name)
        return log

    # ------------------------------------------------------------------ the loop

    def run(self, on_step: StepFn | None = None) -> TrainResult:
        opts = self.opts
        total_steps = opts.max_steps or opts.epochs * len(self.shard)
        start = time.perf_counter()
        if self.dist.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            _write_json(self.out / "run.json", {**_jsonable(asdict(opts)), "encoders": self.source,
                                                "world_size": self.dist.world})
            self._trim_log()
        last: dict = {}
        self.G.train()
        while self.step < total_steps:
            t0 = time.perf_counter()
            last = self.train_step(self.step)
            last["seconds"] = round(time.perf_counter() - t0, 4)
            self.step += 1
            if self.dist.rank == 0:
                with open(self.out / "log.jsonl", "a") as f:
                    f.write(json.dumps({"step": self.step, **last}) + "\n")
            if on_step:
                on_step(self.step, total_steps, last)
            out_of_time = opts.max_minutes is not None and time.perf_counter() - start > 60 * opts.max_minutes
            if self.dist.any(out_of_time):
                break
            if self.step % opts.save_every == 0 and self.step < total_steps:
                self.save_checkpoint()
        self.save_checkpoint()
        self.dist.close()
        return TrainResult(self.out, self.step, time.perf_counter() - start, self.out / "checkpoint" / "generator", last)

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self) -> None:
        """OUT/checkpoint/ as a whole, written under a temporary name and swapped in."""
        if self.dist.rank != 0:
            return
        with atomic_path(self.out / "checkpoint", directory=True) as tmp:
            save_pretrained(self.G, tmp / "generator", metadata={"step": self.step, "encoders": self.source})
            state = {"step": self.step, "D": self.D.state_dict(), "opt_g": self.opt_g.state_dict(),
                     "opt_v": self.opt_v.state_dict(), "opt_d": self.opt_d.state_dict()}
            torch.save(state, tmp / "state.pt")

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
        self.step = int(state["step"])

    def _trim_log(self) -> None:
        """Drop log lines past the checkpoint we resume from (they will be redone)."""
        log = self.out / "log.jsonl"
        if not log.exists():
            return
        keep = [line for line in log.read_text().splitlines() if line and json.loads(line)["step"] <= self.step]
        with atomic_path(log) as tmp:
            tmp.write_text("".join(line + "\n" for line in keep))


def train(opts: TrainOptions, on_step: StepFn | None = None) -> TrainResult:
    return Trainer(opts).run(on_step)


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))


def _write_json(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")
