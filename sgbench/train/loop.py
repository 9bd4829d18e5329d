"""The generic training loop: optimiser, warm-up, EMA, precision, DDP, checkpoints, resume.

Tasks (`sgbench.train.tasks`) supply data, model, loss and export; this loop is the same for all.
Data order: each epoch is a permutation seeded by (seed, epoch); rank r of W takes every W-th
index, so resuming at step s recomputes exactly where the stream was. Per-step randomness (noise,
t, label dropout, token selection) is reseeded from (seed, rank, step) at start and on resume.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from sgbench.errors import UserError
from sgbench.train import checkpoint as ckpt
from sgbench.train.config import TrainConfig, from_dict
from sgbench.train.tasks import get_task


# ---------------------------------------------------------------- distributed helpers
def dist_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment (1 process if unset)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def pick_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("config.train.device: cuda requested but no GPU is available")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    return torch.device("cpu")


def autocast_context(precision: str, device: torch.device):
    """The sampler's precision names and mapping (one definition: sampling.precision)."""
    from sgbench.sampling.precision import autocast_dtype

    dtype = autocast_dtype(precision, device)
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


# ---------------------------------------------------------------- pure helpers
def lr_at(step: int, base_lr: float, warmup: int) -> float:
    """Linear warm-up over `warmup` steps (step counted from 0), then constant."""
    return base_lr * min(1.0, (step + 1) / warmup) if warmup > 0 else base_lr


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    ep = [p for p in ema.parameters()]
    mp = [p.detach() for p in model.parameters()]
    torch._foreach_mul_(ep, decay)
    torch._foreach_add_(ep, mp, alpha=1.0 - decay)
    for eb, mb in zip(ema.buffers(), model.buffers()):
        eb.copy_(mb)


def batch_indices(step: int, n: int, local_batch: int, rank: int, world: int, seed: int) -> np.ndarray:
    """Indices of this rank's batch at `step` (epochs = seeded permutations, sharded by rank)."""
    per_rank = n // world
    per_epoch = per_rank // local_batch
    if per_epoch == 0:
        raise UserError(f"dataset of {n} items is smaller than one global batch ({local_batch * world})")
    epoch, k = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)[rank::world][:per_rank]
    return perm[k * local_batch : (k + 1) * local_batch]


def step_seed(seed: int, rank: int, step: int) -> int:
    return int(np.random.default_rng([seed, rank, step]).integers(2**62))


# ---------------------------------------------------------------- the loop
def train(cfg: TrainConfig, raw: dict, progress: bool = True, trust_checkpoint: bool = False,
          force: bool = False) -> dict:
    """Run (or resume) training described by `cfg`; returns the summary dict (rank 0).

    The export (`output.export`, under `output.dir` unless absolute) never replaces an existing
    file unless `force`; `trust_checkpoint` lets a resume read a checkpoint holding Python objects.
    """
    from sgbench.train.export import export_target

    rank, world, local_rank = dist_env()
    export = export_target(cfg.output, force) if rank == 0 else None  # refused now, not after training
    lc = cfg.train
    device = pick_device(lc.device, local_rank)
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    if lc.threads:
        torch.set_num_threads(lc.threads)
    if lc.batch_size % world:
        raise UserError(f"config.train.batch_size {lc.batch_size} is not divisible by {world} processes")
    local_batch = lc.batch_size // world

    task_cls = get_task(cfg.task)
    task = task_cls(
        cfg,
        from_dict(task_cls.model_config, cfg.model, "config.model"),
        from_dict(task_cls.objective_config, cfg.objective, "config.objective"),
    )
    torch.manual_seed(lc.seed)  # identical initial weights on every rank
    splits = task.build_data()
    model = task.build_model(splits).to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False) if lc.ema_decay > 0 else None
    opt = torch.optim.AdamW(model.parameters(), lr=lc.lr, betas=lc.betas, weight_decay=lc.weight_decay)

    run_dir = Path(cfg.output.dir)
    start = 0
    latest = ckpt.latest_checkpoint(run_dir) if cfg.output.resume else None
    if latest is not None:
        state = ckpt.load_checkpoint(latest, trust=trust_checkpoint)
        if state.get("task") != cfg.task:
            raise UserError(f"{latest} was trained with task {state.get('task')!r}, config says {cfg.task!r}")
        try:
            model.load_state_dict(state["model"])
            if ema is not None and state.get("ema") is not None:
                ema.load_state_dict(state["ema"])
        except RuntimeError as e:
            raise UserError(f"{latest} does not fit the configured model: {str(e).splitlines()[0]}") from None
        opt.load_state_dict(state["opt"])
        start = int(state["step"])
        if start > lc.steps:
            raise UserError(f"{latest} is at step {start}, beyond train.steps {lc.steps}; raise steps or use --no-resume")
        if rank == 0:
            print(f"resuming from {latest} at step {start}", flush=True)
    elapsed_before = float(state.get("wall_s", 0.0)) if latest is not None else 0.0

    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    autocast = autocast_context(lc.precision, device)
    meta = task.model_metadata()

    def payload(step, wall):
        return {
            "model": model.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "opt": opt.state_dict(),
            "step": step,
            "config": meta,  # the model's metadata (as in exported safetensors): loaders need only this
            "train_config": raw,  # the YAML mapping as loaded
            "task": cfg.task,
            "wall_s": wall,
        }

    log_path = run_dir / "log.jsonl"
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
    from sgbench.progress import bar as progress_bar

    # on a terminal only (log.jsonl is the record); a resumed run's steps do not count towards the rate
    bar = progress_bar(lc.steps, f"train {cfg.task}", "step", enabled=rank == 0 and progress, initial=start,
                       mininterval=2.0)

    model.train()
    t0 = time.perf_counter()
    running, running_n = 0.0, 0
    step = start
    for step in range(start, lc.steps):
        torch.manual_seed(step_seed(lc.seed, rank, step))
        idx = batch_indices(step, len(splits.train), local_batch, rank, world, lc.seed)
        batch = splits.train.get(idx)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, lc.lr, lc.warmup_steps)
        with autocast():
            loss, extra = task.loss(net, batch, step)
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite loss at step {step}: {float(loss)}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if lc.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), lc.grad_clip)
        opt.step()
        if ema is not None:
            ema_update(ema, model, lc.ema_decay)
        done = step + 1
        running += float(loss.detach())
        running_n += 1
        bar.update(1)
        if done % lc.log_every == 0 or done == lc.steps:
            avg = running / running_n
            running, running_n = 0.0, 0
            if rank == 0:
                bar.set_postfix(loss=f"{avg:.4f}", lr=f"{lr_at(step, lc.lr, lc.warmup_steps):.1e}")
                rec = {"step": done, "loss": avg, "wall_s": elapsed_before + time.perf_counter() - t0, **extra}
                with open(log_path, "a") as f:
                    f.write(json.dumps(rec) + "\n")
        keep = ckpt.should_keep(done, lc.keep_every, lc.keep_steps)
        if done % lc.ckpt_every == 0 or keep or done == lc.steps:
            if rank == 0:
                wall = elapsed_before + time.perf_counter() - t0
                p = payload(done, wall)
                if keep:
                    ckpt.save_checkpoint(ckpt.ckpt_dir(run_dir) / ckpt.kept_name(done), p)
                ckpt.save_checkpoint(ckpt.ckpt_dir(run_dir) / "latest.pt", p)
            if world > 1:
                import torch.distributed as dist

                dist.barrier()
    bar.close()

    wall = elapsed_before + time.perf_counter() - t0
    summary = {}
    if rank == 0:
        final = ema if ema is not None else model
        final.eval()
        summary = {
            "task": cfg.task,
            "steps": lc.steps,
            "trained_steps_this_run": lc.steps - start,
            "wall_s": round(wall, 1),
            "steps_per_s": round((lc.steps - start) / max(time.perf_counter() - t0, 1e-9), 3),
            "threads": torch.get_num_threads(),
            "world_size": world,
            "device": str(device),
            "params": sum(p.numel() for p in model.parameters()),
        }
        with torch.no_grad():
            summary.update(task.evaluate(final, splits))
        if export is not None:
            task.export(final, export, {k: summary[k] for k in ("steps", "wall_s", "threads", "device")})
            summary["export"] = str(export)
        tmp = run_dir / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2))
        os.replace(tmp, run_dir / "summary.json")
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return summary
