"""torch.distributed plumbing for `torchrun` / `accelerate launch` (one process per device).

Nothing here does anything in a single-process run: `init_distributed()` returns a
context with world_size 1 and every helper becomes a no-op.

On GPUs the process group is device-aware ("cpu:gloo,cuda:nccl"): NCCL has no CPU
backend, so a CPU tensor in a NCCL-only group fails at the first collective. Tensor
collectives here put their tensors on the rank's device (`DistContext.device`); object
collectives (pickles) go through gloo.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from utils.errors import MMERError


class DistributedError(MMERError, RuntimeError):
    """The launcher's description does not fit this machine (e.g. a LOCAL_RANK without a GPU)."""


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")  # the rank's device: collectives' tensors live here

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto") -> tuple[DistContext, torch.device]:
    """Join the process group that the launcher describes (RANK, WORLD_SIZE, LOCAL_RANK)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        from utils.precision import resolve_device

        return DistContext(), resolve_device(device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    # any cuda spec ("cuda", "cuda:0", ...): under a launcher the rank's GPU is LOCAL_RANK's
    wants_cuda = device.split(":")[0] == "cuda"
    use_cuda = wants_cuda or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if local_rank >= n_gpus:
            raise DistributedError(
                f"LOCAL_RANK {local_rank} has no GPU: this machine has {n_gpus} "
                f"(start at most {n_gpus} processes per node, or pass --device cpu)"
            )
        torch.cuda.set_device(local_rank)
    rank_device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="cpu:gloo,cuda:nccl" if use_cuda else "gloo")
    return DistContext(rank, world_size, local_rank, rank_device), rank_device


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()  # through gloo in the device-aware group


def all_max(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The element-wise maximum of `values` over ranks (e.g. flags: a non-finite loss or a
    stop request on any rank), reduced in place on the rank's device; no host sync here."""
    if not ctx.enabled:
        return values
    if values.device != ctx.device:
        values = values.to(ctx.device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return values


def gather_objects(obj: object, ctx: DistContext) -> list:
    """Every rank's `obj`, in rank order (pickled through the process group)."""
    if not ctx.enabled:
        return [obj]
    parts: list = [None] * ctx.world_size
    dist.all_gather_object(parts, obj)
    return parts


def shutdown(ctx: DistContext, exit_code: int | None = None) -> None:
    """Leave the process group. With gloo, some machines abort in a C++ destructor at
    interpreter exit ("terminate called without an active exception") even after
    destroy_process_group; when `exit_code` is given, a distributed worker flushes and
    leaves with os._exit so that the launcher sees the real status."""
    if not ctx.enabled or not dist.is_initialized():
        return
    dist.barrier()
    dist.destroy_process_group()
    if exit_code is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)
