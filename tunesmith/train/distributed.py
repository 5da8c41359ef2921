"""Training on several processes of one machine with torch.distributed (gloo, CPU): ``--nproc N``.

:func:`launch` starts N processes (``torch.multiprocessing.spawn``), each a *rank* that runs the family's usual
training function with a :class:`Group` naming its rank. What differs from one process is small and lives
in the trainer's step and in the harness:

- every rank draws the same global batch (same seed, same generator) and trains on its rows ``rank::N``;
  DistributedDataParallel averages the gradients, so a step equals one process's step on the whole batch;
- rank 0's clock is everyone's (:meth:`Group.agree`): the time budget, the learning rate and the last step
  are the same on every rank;
- rank 0 alone evaluates and writes the checkpoints, the card, ``metrics.csv`` and the curves.

``N == 1`` is :data:`SINGLE`: no process is started and no collective runs (today's single-process path).
The ranks meet through a file in a fresh temporary directory, and gloo's connections stay on loopback.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tunesmith.errors import DependencyError, ParameterError


@dataclass(frozen=True)
class Group:
    """This process's place among the ranks of one training run (``size == 1``: a run on its own)."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that evaluates and writes files."""
        return self.rank == 0

    def agree(self, value: float) -> float:
        """Rank 0's ``value`` on every rank."""
        if self.size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        torch.distributed.broadcast(tensor, src=0)
        return float(tensor)

    def total(self, value: float) -> float:
        """The sum of ``value`` over the ranks, on every rank."""
        if self.size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        torch.distributed.all_reduce(tensor)
        return float(tensor)

    def barrier(self) -> None:
        if self.size > 1:
            torch.distributed.barrier()

    def shard(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This rank's rows of a global batch: ``rank``, ``rank + size`` ..."""
        if self.size == 1:
            return batch
        return {name: tensor[self.rank :: self.size] for name, tensor in batch.items()}

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` for the training step: DistributedDataParallel over it on several ranks (its parameters
        are the model's own, so checkpoints keep reading and writing ``model``)."""
        if self.size == 1:
            return model
        return torch.nn.parallel.DistributedDataParallel(model)


SINGLE = Group()


def check_nproc(nproc: int, batch_size: int) -> None:
    """ParameterError unless ``nproc`` processes can share a global batch of ``batch_size`` rows."""
    if nproc < 1:
        raise ParameterError(f"--nproc must be at least 1, got {nproc}", field="nproc")
    if nproc > batch_size:
        raise ParameterError(f"--nproc {nproc} is more than the batch size {batch_size}: every process needs at "
                             "least one row of each batch", field="nproc")
    if nproc > 1 and not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        raise DependencyError("--nproc needs torch.distributed with the gloo backend, which this torch lacks")


def launch(train: Callable[..., Any], nproc: int, *args: Any, threads: int | None = None) -> None:
    """Run ``train(*args, group=Group(rank, nproc))`` in ``nproc`` new processes and wait for them all.

    Each process gets ``threads`` PyTorch threads (default: the machine's cores shared out). An exception in
    any rank stops the others and is raised here."""
    import torch.multiprocessing as mp

    threads = threads or max(1, (os.cpu_count() or 1) // nproc)
    with tempfile.TemporaryDirectory(prefix="tunesmith-ranks-") as meeting:
        mp.spawn(_rank_main, args=(nproc, str(Path(meeting) / "store"), threads, train, args), nprocs=nproc,
                 join=True)


def _rank_main(rank: int, size: int, store: str, threads: int, train: Callable[..., Any],
               args: tuple[Any, ...]) -> None:
    """One rank (in its own process): join the group, train, leave.

    A rank that trained to the end leaves with ``os._exit(0)`` once the group is destroyed: the interpreter's
    own shutdown would tear down objects still holding gloo's native threads (DistributedDataParallel's
    reducer keeps the process group alive), which aborted a finished rank now and then ("terminate called
    without an active exception", SIGABRT, after its work was done and saved). A rank that fails raises as
    before, so :func:`launch` reports its exception."""
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # the ranks share this machine: loopback only
    torch.set_num_threads(threads)
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=size)
    try:
        train(*args, group=Group(rank, size))
        torch.distributed.barrier()
    finally:
        gc.collect()  # the wrapped model and its reducer go before their process group
        torch.distributed.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
