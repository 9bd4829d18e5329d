"""torchrun awareness: rank and world size from the environment, single process when absent.

Backend: nccl on GPU, gloo on CPU. Only three collectives are used (barrier, a broadcast of a
small Python object, and teardown), so the same code runs under `torchrun --nproc_per_node K`
and as a plain process.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from sgbench.errors import UserError


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def dist_env() -> DistEnv:
    """Read RANK / WORLD_SIZE / LOCAL_RANK (set by torchrun); defaults: one process."""
    try:
        env = DistEnv(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                      int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError:
        raise UserError("RANK, WORLD_SIZE and LOCAL_RANK must be integers when set") from None
    if not (env.world_size >= 1 and 0 <= env.rank < env.world_size):
        raise UserError(f"invalid RANK={env.rank} for WORLD_SIZE={env.world_size}")
    return env


def worker_device(env: DistEnv, device: str | None = None) -> torch.device:
    """The device of this worker: cuda:LOCAL_RANK when CUDA is present (or asked), else cpu."""
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda requested but no CUDA device is available")
        if dev.index is None:
            dev = torch.device("cuda", env.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    return dev


@contextlib.contextmanager
def process_group(env: DistEnv, device: torch.device):
    """Initialise the default group for K > 1 workers (env:// rendezvous from torchrun)."""
    if not env.distributed or dist.is_initialized():
        yield
        return
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def broadcast_object(env: DistEnv, obj):
    """rank 0's `obj` on every rank."""
    if not env.distributed:
        return obj
    box = [obj if env.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]
