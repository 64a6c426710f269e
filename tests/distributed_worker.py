"""One process of the distributed-training test (tests/test_distributed.py), started by
`torchrun --nproc_per_node=2 tests/distributed_worker.py OUT [STOP_AT]`.

Trains a small convolutional network with BatchNorm through `training.fit` on fixed random
data, then writes this rank's final weights to OUT/rank<r>.pt and the number of checkpoint
writes it made to OUT/writes<r>.txt."""

import sys
from pathlib import Path

import torch
from torch import nn

import unmasklib.training.loop as loop
from unmasklib.training import Batches, adam, fit

out = Path(sys.argv[1])
stop_at = int(sys.argv[2]) if len(sys.argv) > 2 else None
writes = []
original_save = loop.save_checkpoint


def counting_save(path, state):
    writes.append(state["step"])
    return original_save(path, state)


loop.save_checkpoint = counting_save
torch.manual_seed(0)
data = [{"image": torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(i)),
         "target": torch.tensor(float(i % 3))} for i in range(32)]
net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1))


def step_fn(batch, step):
    prediction = net(batch["image"])[:, 0]
    return {"total": ((prediction - batch["target"]) ** 2).mean()}


run = fit("toy", "tiny", out, {"net": net}, {"adam": adam(net.parameters(), 1e-2)}, step_fn,
          lambda: Batches(data, 8, seed=0), steps=12, lr=1e-2, checkpoint_every=4,
          stop_at=stop_at, progress=False)
rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
torch.save(net.state_dict(), out / f"rank{rank}.pt")
(out / f"writes{rank}.txt").write_text(" ".join(map(str, writes)))
