"""A small training run through `training.fit`, as a separate process, for the tests that
kill, resume or distribute training (test_distributed.py, test_robustness.py):

    python tests/toy_training.py OUT [--stop-at N] [--hang-in-write-at N] [--hang-in-step N]
    torchrun --nproc_per_node=2 tests/toy_training.py OUT

Trains a small convolutional network with BatchNorm on fixed random data for 12 steps of 8
(a checkpoint every 4), with a critic that the step function updates itself (as phase 2 updates
its discriminator), then writes this rank's final weights to OUT/rank<r>.pt and the steps of
the checkpoints it wrote to OUT/writes<r>.txt. The --hang options touch OUT/hanging and
sleep, so that the test can kill the process there: halfway through writing the checkpoint
of step N, or inside step N before its update.
"""

import argparse
import io
import time
from pathlib import Path

import torch
from torch import nn

from unmasklib.training import Batches, adam, descend, fit

parser = argparse.ArgumentParser()
parser.add_argument("out", type=Path)
parser.add_argument("--stop-at", type=int, default=None)
parser.add_argument("--hang-in-write-at", type=int, default=None)
parser.add_argument("--hang-in-step", type=int, default=None)
args = parser.parse_args()


def hang() -> None:
    (args.out / "hanging").touch()
    time.sleep(600)


writes = []
real_torch_save = torch.save


def save_or_hang(state, file, *rest, **options):
    if state["step"] == args.hang_in_write_at:
        data = io.BytesIO()
        real_torch_save(state, data)
        file.write(data.getvalue()[:len(data.getvalue()) // 2])
        file.flush()
        hang()
    writes.append(state["step"])
    return real_torch_save(state, file, *rest, **options)


torch.save = save_or_hang  # what checkpoint.py calls
data = [{"image": torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(i)),
         "target": torch.tensor(float(i % 3))} for i in range(32)]
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1))
critic = nn.Linear(1, 1)
optimizers = {"adam": adam(net.parameters(), 1e-2), "critic": adam(critic.parameters(), 1e-2)}


def step_fn(networks, batch, step):
    if step == args.hang_in_step:
        hang()
    prediction = networks["net"](batch["image"])[:, 0]
    judged = networks["critic"](prediction.detach()[:, None])[:, 0]
    descend([optimizers["critic"]], ((judged - batch["target"]) ** 2).mean(), "critic", step)
    return {"total": ((prediction - batch["target"]) ** 2).mean()}


args.out.mkdir(parents=True, exist_ok=True)
run = fit("toy", "tiny", args.out, {"net": net, "critic": critic}, optimizers,
          step_fn, lambda: Batches(data, 8, seed=0), steps=12, lr=1e-2, checkpoint_every=4,
          stepped=["adam"], stop_at=args.stop_at, progress=False)
rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
real_torch_save({"net": net.state_dict(), "critic": critic.state_dict()},
                args.out / f"rank{rank}.pt")
(args.out / f"writes{rank}.txt").write_text(" ".join(map(str, writes)))
