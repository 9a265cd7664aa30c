"""One run trained by several processes: the process group, and how batches and splits are shared.

Under ``torchrun`` (``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in the environment) :func:`join`
starts the process group, gloo on CPUs and NCCL on GPUs; without them every function here is the
single-process identity, so the training and test code has one path.

What each process does with a global batch of B clips, B divisible by the number of processes N:

* training step s reads the same B clip indices in every process (:class:`vpbench.data.StepBatchSampler`)
  and process r keeps the contiguous slice ``[r·B/N, (r + 1)·B/N)``; DistributedDataParallel averages
  the gradients, so the update is that of the mean loss over the B clips, as in one process;
* scheduled sampling draws its per-sample coin for all B clips in every process and keeps its slice
  (:func:`vpbench.interface.batch_slice.batch_slice`), so every process consumes the same random numbers and the RNG state that
  process 0 checkpoints is every process's;
* validation and test clips are split into N contiguous ranges (:func:`shard`); the val sums are
  all-reduced and the test's per-clip metrics are gathered in clip order before any mean is taken,
  so every clip counts once.

Checkpoints, the log and the store are written by process 0 only; every process resumes from the
same checkpoint. The number of processes is not part of a run's config, so not of its id.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from vpbench.errors import VpbenchError


@dataclass(frozen=True)
class Group:
    """This process's place among ``world`` processes training one run together."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def shard(self, size: int) -> range:
        """The contiguous part of ``range(size)`` this process handles (sizes differ by at most one)."""
        return range(self.rank * size // self.world, (self.rank + 1) * size // self.world)

    def part(self, local_batch: int) -> slice:
        """This process's contiguous slice of a global batch made of ``world`` local batches."""
        return slice(self.rank * local_batch, (self.rank + 1) * local_batch)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over the processes (float64 on the process group's device)."""
        if not self.distributed:
            return values
        total = values.detach().to(_collective_device(), torch.float64).clone()
        dist.all_reduce(total)
        return total.to(values.device)

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """``[n_r, ...]`` from every process -> ``[Σ n_r, ...]`` in rank order (on the CPU)."""
        if not self.distributed:
            return rows
        parts: list = [None] * self.world
        dist.all_gather_object(parts, rows.cpu())
        return torch.cat(parts)

    def broadcast(self, value):
        """Process 0's ``value`` (any picklable object) in every process."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


SINGLE = Group()


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def join(device: torch.device) -> tuple[Group, torch.device]:
    """Start the process group torchrun described (gloo on CPU, NCCL on CUDA) and give this process its device.

    Outside torchrun, or with one process, returns ``(SINGLE, device)`` unchanged.
    """
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return SINGLE, device
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", 0))
        if local >= torch.cuda.device_count():
            raise VpbenchError(f"LOCAL_RANK {local}: only {torch.cuda.device_count()} CUDA device(s) on this node")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=_store_of_this_start(rank, world),
                                rank=rank, world_size=world, timeout=TIMEOUT)
    return Group(rank, world), device


TIMEOUT = timedelta(minutes=30)


def _store_of_this_start(rank: int, world: int) -> dist.Store:
    """The rendezvous store torchrun describes, its keys prefixed by the restart count.

    After torchrun restarts the processes (one died), its store still holds the dead processes'
    addresses under the process group's keys, and the new processes would try to connect to them
    (seen with torch 2.14: "Gloo connectFullMesh failed ... Connection refused"). A prefix per
    start keeps each start's keys apart.
    """
    agent_hosts_it = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=rank == 0 and not agent_hosts_it, timeout=TIMEOUT, multi_tenant=True)
    return dist.PrefixStore(f"vpbench/start_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def leave(group: Group) -> None:
    if group.distributed and dist.is_initialized():
        dist.destroy_process_group()


def check_batch(batch_size: int, group: Group, key: str) -> int:
    """The per-process batch of a global ``batch_size``; an error naming ``key`` when N does not divide it."""
    if batch_size % group.world:
        raise VpbenchError(f"{key} = {batch_size} is not divisible by the {group.world} processes: each process "
                           "takes an equal slice of the global batch")
    return batch_size // group.world
