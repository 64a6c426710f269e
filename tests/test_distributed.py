"""Training under `torchrun --nproc_per_node=2` on the CPU (gloo): both ranks end with the same
weights, rank 0 alone writes checkpoints, the log states the effective batch, and an
interrupted distributed run resumes to the weights of an uninterrupted one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from conftest import flat, same_weights, toy_weights

WORKER = Path(__file__).with_name("toy_training.py")


def torchrun(out: Path, *extra: str) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         f"--master_port={port}", "--master_addr=127.0.0.1", str(WORKER), str(out), *extra],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout + done.stderr


def test_two_processes_train_identical_weights_and_rank0_alone_writes(tmp_path):
    log = torchrun(tmp_path)
    first, second = toy_weights(tmp_path, 0), toy_weights(tmp_path, 1)
    # parameters (the critic's too, updated inside the step) and BatchNorm's running statistics
    assert same_weights(first, second)
    assert not torch.equal(first["net.1.running_mean"], torch.zeros(4))  # trained, not initial
    assert (tmp_path / "writes0.txt").read_text() == "4 8 12"
    assert (tmp_path / "writes1.txt").read_text() == ""
    state = torch.load(tmp_path / "toy.pt", weights_only=True)
    assert state["finished"] and same_weights(flat(state["models"]), first)
    assert "2 processes x 4 samples = effective batch size 8" in log
    assert list(tmp_path.glob(".toy.*.tmp")) == []


def test_an_interrupted_distributed_run_resumes_to_the_same_weights(tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    torchrun(whole)
    torchrun(parts, "--stop-at", "6")
    assert not torch.load(parts / "toy.pt", weights_only=True)["finished"]
    log = torchrun(parts)
    assert "resuming" in log
    assert same_weights(toy_weights(whole, 0), toy_weights(parts, 0))
    assert same_weights(toy_weights(parts, 0), toy_weights(parts, 1))
