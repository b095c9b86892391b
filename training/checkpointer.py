"""One checkpointer for everything a fold needs to continue exactly where it stopped.

Each object with state is registered once, by name; `save()` writes all of them to one file
(atomically: a kill mid-write leaves the previous file) and `load()` restores all of them:

    ckpt = Checkpointer(fold_dir / "state.pt", exp.hash())
    ckpt.register("model", model)          # anything with state_dict() / load_state_dict()
    ckpt.register("torch_rng", TorchRNG())
    ...
    ckpt.load()                            # False: nothing saved yet
    ckpt.save()

The file is a dict {name: obj.state_dict(), ..., "config_hash": hash}; a file written under
another configuration is refused with a TrainingError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch

from models.checkpoint import safe_torch_load
from utils.errors import TrainingError
from utils.io import atomic_path

CONFIG_HASH_KEY = "config_hash"


class Stateful(Protocol):
    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> Any: ...


class Checkpointer:
    """Saves and restores registered `Stateful` objects as one file, in registration order.

    An entry that the file lacks (an object registered after the file was written), or that
    is empty ({} or []: a disabled GradScaler, no CUDA RNG on a CPU run), leaves its object
    as it is.
    """

    def __init__(self, path: str | Path, config_hash: str) -> None:
        self.path = Path(path)
        self.config_hash = config_hash
        self.objects: dict[str, Stateful] = {}

    def register(self, name: str, obj: Stateful) -> None:
        if name == CONFIG_HASH_KEY or name in self.objects:
            raise ValueError(f"checkpoint entry {name!r} is taken")
        self.objects[name] = obj

    def save(self) -> None:
        payload = {name: obj.state_dict() for name, obj in self.objects.items()}
        payload[CONFIG_HASH_KEY] = self.config_hash
        with atomic_path(self.path) as tmp:
            torch.save(payload, tmp)

    def load(self) -> bool:
        """Restore every registered object from the file; False if there is no file yet."""
        if not self.path.exists():
            return False
        payload = safe_torch_load(self.path)
        if not isinstance(payload, dict) or payload.get(CONFIG_HASH_KEY) != self.config_hash:
            raise TrainingError(
                f"{self.path} belongs to a run with another configuration; use a new "
                "--save_path (or --no-resume to start this fold over)"
            )
        for name, obj in self.objects.items():
            state = payload.get(name)
            if state is None or (isinstance(state, (dict, list)) and not state):
                continue
            obj.load_state_dict(state)
        return True


class TorchRNG:
    """The CPU generator of torch (dropout masks, SpecAugment, initial weights)."""

    def state_dict(self) -> torch.Tensor:
        return torch.get_rng_state()

    def load_state_dict(self, state: torch.Tensor) -> None:
        torch.set_rng_state(state)


class CudaRNG:
    """The generators of every visible GPU; an empty list when `device` is not CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.enabled = device.type == "cuda"

    def state_dict(self) -> list[torch.Tensor]:
        return torch.cuda.get_rng_state_all() if self.enabled else []

    def load_state_dict(self, state: list[torch.Tensor]) -> None:
        if self.enabled:
            torch.cuda.set_rng_state_all(state)
