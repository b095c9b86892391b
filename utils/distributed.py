"""torch.distributed plumbing for `torchrun` / `accelerate launch` (one process per device).

Nothing here does anything in a single-process run: `init_distributed()` returns a
context with world_size 1 and every helper becomes a no-op.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from utils.evaluation import Predictions


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

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
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    ctx = DistContext(rank, world_size, local_rank)
    return ctx, torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def any_true(flag: bool, ctx: DistContext) -> bool:
    """True when `flag` is true on any rank (e.g. a non-finite loss somewhere)."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather_predictions(preds: Predictions, ctx: DistContext) -> Predictions:
    """Every rank's predictions, merged once per utterance (samplers pad shards by repetition)."""
    if not ctx.enabled:
        return preds
    parts: list[Predictions | None] = [None] * ctx.world_size
    dist.all_gather_object(parts, preds)
    merged = Predictions.concat([p for p in parts if p is not None])
    _, first = np.unique(np.asarray(merged.names), return_index=True)
    keep = np.sort(first)
    return Predictions([merged.names[i] for i in keep], merged.labels[keep], merged.logits[keep])


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
