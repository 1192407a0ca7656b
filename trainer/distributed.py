"""torchrun / DDP setup: NCCL on CUDA, gloo on CPU, and a single-process fallback with the same API."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    enabled: bool = False  # a process group is up: DDP, even with one process under torchrun
    owns_group: bool = False  # this run created the process group, so it also destroys it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def backend(self) -> str | None:
        return dist.get_backend() if self.enabled else None

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj` (picklable), in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def mean(self, values: list[float]) -> list[float]:
        """Element-wise mean of `values` over ranks (for logging losses of the whole step)."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return (t / self.world_size).tolist()


def init_distributed() -> DistContext:
    """Join the process group torchrun describes in the environment, or run alone.

    Under a launcher (WORLD_SIZE and RANK set, as torchrun does) the run is DDP even with one
    process, so `torchrun --nproc_per_node 1` exercises the same NCCL path as a multi-GPU job.
    """
    launched = "WORLD_SIZE" in os.environ and "RANK" in os.environ
    world_size = int(os.environ.get("WORLD_SIZE", "1")) if launched else 1
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    owns = launched and not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    enabled = dist.is_available() and dist.is_initialized()
    rank = dist.get_rank() if enabled else 0
    world_size = dist.get_world_size() if enabled else world_size
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device, enabled=enabled,
                       owns_group=owns)


def shutdown_distributed(ctx: DistContext) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()
