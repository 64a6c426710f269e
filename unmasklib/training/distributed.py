"""Training across processes: `torchrun --nproc_per_node=N` runs every phase unchanged.

torchrun starts N copies of the same program and tells each its place through the
environment (RANK, WORLD_SIZE, LOCAL_RANK). Then:

- each process reads its own slice of every global batch (`Batches` shards by rank), so the
  effective batch is the profile's and the run means the same thing on 1 or N processes;
- `fit` hands the step function PyTorch's own `DistributedDataParallel` replicas of the
  networks it trains (`replicate`): they start from rank 0's weights, and their backward pass
  averages the gradients in buckets while it runs, as torchrun users expect and profile. A
  step function that updates a network itself (a GAN's critic) goes through its replica too;
  a network that only scores (the critic inside G's loss, frozen N3D) is called unwrapped;
- BatchNorm as DistributedDataParallel does it: each process normalises with its own share's
  batch statistics, and the running statistics are rank 0's, broadcast before every forward
  pass (and once more after training), so all ranks hold the same weights. No phase needs
  SyncBatchNorm: its cross-process statistics would cost a synchronisation per layer and only
  change the normalisation of shares smaller than the profiles' per-process batches;
- rank 0 alone writes checkpoints and shows progress; the others wait for the write.

Processes talk over gloo on the CPU and NCCL on CUDA GPUs. One process trains the networks
themselves, unwrapped: the same code, bit for bit the weights of before.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class World:
    """This process's place: rank in [0, size), and its GPU index on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes checkpoints and logs (rank 0)."""
        return self.rank == 0


def world() -> World:
    """Where this process stands, from torchrun's environment; one process without it."""
    return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                 int(os.environ.get("LOCAL_RANK", 0)))


def start_distributed() -> World:
    """Join the process group (once) when torchrun started several processes: NCCL when this
    process has a CUDA GPU, else gloo."""
    here = world()
    if here.size > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(here.local_rank)
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        # Leave the group while the interpreter is still whole: gloo's worker threads may
        # still hold tensors at exit, and freeing them during finalisation aborts the process
        # ("terminate called without an active exception", SIGABRT), seen once in CI.
        atexit.register(leave_distributed)
    return here


def leave_distributed() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(indices: torch.Tensor) -> torch.Tensor:
    """This process's contiguous share of a global batch's sample indices `(B,)`; B must be a
    multiple of the number of processes."""
    here = world()
    if here.size == 1:
        return indices
    if len(indices) % here.size:
        raise ValueError(f"a batch of {len(indices)} cannot be split evenly over {here.size} "
                         "processes: choose a batch size that is a multiple of it")
    return indices.view(here.size, -1)[here.rank]


def _several() -> bool:
    """Whether this process is one of several in a started process group."""
    return dist.is_initialized() and dist.get_world_size() > 1


def mean_across(values: torch.Tensor) -> torch.Tensor:
    """`values` averaged over all processes (itself with one process)."""
    if not _several():
        return values
    total = values.detach().clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


def replicate(models: Mapping[str, nn.Module], device: torch.device) -> dict[str, nn.Module]:
    """The networks a step function trains: under torchrun each wrapped in
    `DistributedDataParallel` (which copies rank 0's weights to every process), alone
    `models` themselves."""
    if not _several():
        return dict(models)
    ids = [device.index] if device.type == "cuda" else None
    return {name: DistributedDataParallel(model, device_ids=ids)
            for name, model in models.items()}


def unwrapped(network: nn.Module) -> nn.Module:
    """The network inside a `DistributedDataParallel` replica (itself when not wrapped), for
    a forward pass whose weights get no gradient."""
    return network.module if isinstance(network, DistributedDataParallel) else network


def buffers_from_rank0(models: Mapping[str, nn.Module]) -> None:
    """Overwrite every process's buffers with rank 0's, e.g. BatchNorm's running statistics,
    which each process updates from its own samples. (Parameters need no such copy: DDP
    starts every replica from rank 0's and keeps them equal.)"""
    if not _several():
        return
    for model in models.values():
        for tensor in model.buffers():
            dist.broadcast(tensor.data, src=0)


def wait_for_all() -> None:
    """A barrier: no process goes on before every process got here (e.g. past rank 0's
    checkpoint write)."""
    if _several():
        dist.barrier()
