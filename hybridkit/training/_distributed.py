"""Data-parallel training on several processes with PyTorch ``DistributedDataParallel``.

Launch any script that builds a :class:`SyntheticTrainer` or a :class:`HybridTrainer` with
``torchrun --nproc_per_node=N script.py`` and call :func:`init_distributed` first; the trainers
notice the process group and then

* wrap the network in DDP (gradients averaged over the ranks after every batch, so each rank holds
  the same weights; :attr:`SyntheticTrainer.model` stays the plain module, so checkpoints load
  without DDP),
* shard the batches with :func:`distributed_loader` (``batch_size`` is the *global* batch: each
  rank takes ``batch_size / world_size`` of it; the order depends on the seed and the epoch only),
* report the epoch loss as the mean over all ranks' samples, show progress bars and write
  checkpoints on rank 0 only,
* (hybrid) fit the physical parameters on rank 0 and broadcast them, so every rank continues from
  the same estimate.

Backend: ``gloo`` on CPU, ``nccl`` when CUDA is present (each rank on ``cuda:LOCAL_RANK``).
Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) everything here is a no-op and the
trainers run as a single process.

Example (``train.py``, run as ``torchrun --nproc_per_node=2 train.py``)::

    from hybridkit.training import SyntheticTrainer, init_distributed, distributed_loader
    info = init_distributed()
    trainer = SyntheticTrainer({"device": str(info.device)}, net)
    trainer.train(distributed_loader(dataset, batch_size=32, seed=0), num_epochs=10,
                  progress=info.is_rank_zero)
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..models import rollout

__all__ = ["DistInfo", "init_distributed", "is_distributed", "get_rank", "get_world_size", "is_rank_zero",
           "barrier", "broadcast_json", "all_reduce_sum", "distributed_loader", "cleanup_distributed"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size``, its ``local_rank`` on the node, and
    the ``device`` it should compute on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_rank_zero(self) -> bool:
        """Whether this process logs and writes files."""
        return self.rank == 0


def init_distributed(backend: str | None = None, *, device: str = "auto") -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment (idempotent).

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and ``MASTER_ADDR`` / ``MASTER_PORT``, read by
    torch). Without them (a plain ``python script.py``) nothing is initialised and a single-process
    :class:`DistInfo` is returned.

    Args:
        backend: ``"gloo"`` or ``"nccl"``; None: ``nccl`` when the device is CUDA, else ``gloo``.
        device: ``"auto"`` (CUDA when present: ``cuda:LOCAL_RANK``), ``"cpu"`` or ``"cuda"``.

    Returns:
        The :class:`DistInfo` of this process.
    """
    from .._backend import resolve_device

    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if "WORLD_SIZE" in os.environ and not dist.is_initialized():
        backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
        dist.init_process_group(backend=backend)
    return DistInfo(get_rank(), get_world_size(), local_rank, dev)


def cleanup_distributed() -> None:
    """Leave the process group (if any); call once at the end of a ``torchrun`` script."""
    if is_distributed():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """Whether a process group is initialised (even one of a single process)."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """This process' rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_rank_zero() -> bool:
    """Whether this process is the one that logs and writes (always True in a single process)."""
    return get_rank() == 0


def barrier() -> None:
    """Wait until every rank gets here (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def _comm_device() -> torch.device:
    """Tensors for collectives live on CUDA with nccl, on the CPU with gloo."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_json(obj=None, src: int = 0):
    """Send a JSON-serialisable ``obj`` from rank ``src`` to every rank and return it there.

    JSON rather than pickle: only plain data (numbers, strings, lists, dicts) travel between ranks.
    In a single process ``obj`` is returned as it is.
    """
    if not is_distributed():
        return obj
    dev = _comm_device()
    payload = json.dumps(obj).encode() if get_rank() == src else b""
    size = torch.tensor([len(payload)], dtype=torch.int64, device=dev)
    dist.broadcast(size, src)
    buf = torch.zeros(int(size.item()), dtype=torch.uint8, device=dev)
    if get_rank() == src:
        buf.copy_(torch.frombuffer(bytearray(payload), dtype=torch.uint8))
    dist.broadcast(buf, src)
    return json.loads(bytes(buf.cpu().tolist()).decode())


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum of ``t`` over all ranks (``t`` itself in a single process)."""
    if not is_distributed():
        return t
    out = t.detach().clone().to(_comm_device())
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(t.device)


def distributed_loader(dataset: Dataset, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                       drop_last: bool = False, num_workers: int = 0) -> DataLoader:
    """A loader that gives each rank its share of every global batch.

    Each epoch the windows are permuted with ``seed + epoch`` (the trainer calls
    ``sampler.set_epoch`` before every epoch); rank ``r`` of ``W`` takes positions ``r, r + W, ...``
    of the permutation, in batches of ``batch_size / W``. So batch ``k`` of all ranks together is
    exactly batch ``k`` of the single-process loader (``W = 1``) with the same seed: training on
    ``W`` ranks equals training on one process with the same global batch, up to float round-off.

    Args:
        dataset: any map-style dataset (tensor mode; an :class:`AugmentedDataset` too).
        batch_size: the global batch, a multiple of the world size.
        seed: base seed of the per-epoch permutation.
        shuffle: permute each epoch (False: dataset order).
        drop_last: drop the tail that does not fill a whole global batch on every rank.
        num_workers: loader processes per rank.

    Raises:
        ValueError: ``batch_size`` not a positive multiple of the world size, or an empty dataset.
    """
    world = get_world_size()
    if int(batch_size) < 1 or int(batch_size) % world:
        raise ValueError(
            f"Expected the global batch_size to be a positive multiple of the world size {world}, got "
            f"{batch_size}. Fix: use batch_size={max(world, int(batch_size) // world * world)}."
        )
    if len(dataset) == 0:
        raise ValueError("Expected a non-empty dataset, got one with 0 items.")
    from ..data import make_loader

    # Padding (drop_last=False) repeats the first windows of the permutation so that every rank has
    # the same number of batches (DDP needs the same number of backward passes on every rank).
    sampler = DistributedSampler(dataset, num_replicas=world, rank=get_rank(), shuffle=shuffle,
                                 seed=int(seed), drop_last=drop_last)
    return make_loader(dataset, int(batch_size) // world, shuffle=False, num_workers=num_workers, sampler=sampler)


def set_epoch(data_source, epoch: int) -> None:
    """Tell a loader's epoch-keyed sampler (a :class:`DistributedSampler`, or
    :func:`hybridkit.data.make_loader`'s with ``epoch_keyed=True``) which epoch starts."""
    sampler = getattr(data_source, "sampler", None)
    if callable(getattr(sampler, "set_epoch", None)):
        sampler.set_epoch(int(epoch))


class _Rollout(nn.Module):
    """The whole autoregressive rollout as one ``forward``: DDP then sees one forward and one
    backward per batch, however many steps the rollout takes."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, initial: torch.Tensor, steps: int) -> torch.Tensor:
        return rollout(self.net, initial, steps)


def ddp_rollout(net: nn.Module, device: torch.device) -> nn.Module | None:
    """``net``'s rollout wrapped in DDP when a process group is initialised, else None.

    Parameters are broadcast from rank 0 when wrapping, so every rank starts from rank 0's weights.
    """
    if not is_distributed():
        return None
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(_Rollout(net), device_ids=ids)
