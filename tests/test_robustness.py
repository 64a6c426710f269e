"""Faults and bad input: training killed mid-write or mid-step, checkpoints that would run
code, parallel data generation into one cache, and images that are huge or not images."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, same_weights, toy_weights
from PIL import Image

from unmasklib import Unmasker
from unmasklib.checkpoint import load_checkpoint
from unmasklib.data import SyntheticMaskedFaces
from unmasklib.images import load_rgb

TOY = Path(__file__).with_name("toy_training.py")


def train_toy(out: Path, *options: str) -> None:
    done = subprocess.run([sys.executable, str(TOY), str(out), *options],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def train_toy_and_kill(out: Path, *options: str) -> None:
    """Start the toy run, wait until it reports hanging where `options` said, kill -9 it."""
    process = subprocess.Popen([sys.executable, str(TOY), str(out), *options],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / "hanging").exists():
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the toy run never reached its hanging point"
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    (out / "hanging").unlink()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, torch.Tensor]:
    out = tmp_path_factory.mktemp("whole")
    train_toy(out)
    return toy_weights(out)


def test_killed_while_writing_a_checkpoint_the_previous_one_loads(tmp_path, uninterrupted):
    train_toy_and_kill(tmp_path, "--hang-in-write-at", "8")
    assert list(tmp_path.glob(".toy.*.tmp"))  # the half-written file the kill left
    state = load_checkpoint(tmp_path / "toy.pt", "toy", "tiny")
    assert state["step"] == 4 and not state["finished"]
    train_toy(tmp_path)  # resumes at step 4
    assert same_weights(toy_weights(tmp_path), uninterrupted)
    assert not list(tmp_path.glob(".toy.*.tmp"))


@pytest.mark.parametrize("step", [2, 5, 11])
def test_killed_at_any_step_and_resumed_gives_the_uninterrupted_weights(tmp_path, step,
                                                                        uninterrupted):
    train_toy_and_kill(tmp_path, "--hang-in-step", str(step))
    train_toy(tmp_path)
    assert same_weights(toy_weights(tmp_path), uninterrupted)


class RunsCode:
    """Unpickling this would call os.system: what a malicious checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code_ran"
    torch.save({"format": 1, "model": "n3d", "profile": "smoke", "payload": RunsCode(marker)},
               tmp_path / "n3d.pt")
    with pytest.raises(ValueError, match="refused: it holds Python objects"):
        load_checkpoint(tmp_path / "n3d.pt", "n3d", "smoke")
    with pytest.raises(ValueError, match="refused"):
        Unmasker.from_run(tmp_path, profile=TINY)
    assert not marker.exists()


def test_a_checkpoint_of_another_model_or_profile_names_both(tiny_run, tmp_path):
    (tmp_path / "n3d.pt").write_bytes((tiny_run / "inpainting.pt").read_bytes())
    with pytest.raises(ValueError, match="'inpainting' of profile 'smoke', expected 'n3d'"):
        Unmasker.from_run(tmp_path, profile=TINY)


def test_two_processes_generating_one_data_set_into_one_cache_do_not_corrupt_it(tmp_path):
    code = ("from unmasklib.data import SyntheticMaskedFaces; SyntheticMaskedFaces('train', 32, "
            f"image_size=32, seed=3, root={str(tmp_path)!r}, progress=False)")
    processes = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
                 for _ in range(2)]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err.decode()[-3000:]
    cached = SyntheticMaskedFaces("train", 32, image_size=32, seed=3, root=tmp_path,
                                  progress=False)
    fresh = SyntheticMaskedFaces("train", 32, image_size=32, seed=3, progress=False)
    for i in range(32):
        assert torch.equal(cached[i]["masked"], fresh[i]["masked"])
        assert torch.equal(cached[i]["coeffs"], fresh[i]["coeffs"])
    assert not list(tmp_path.rglob("*.tmp*")) and not list(tmp_path.rglob("tmp*"))


@pytest.fixture(scope="module")
def unmasker(tiny_run):
    return Unmasker.from_run(tiny_run, profile=TINY)


def test_a_very_large_image_is_unmasked_at_its_size_through_a_small_crop(unmasker):
    photo = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    result = unmasker.unmask(photo, seed=0)
    assert result.image.shape == photo.shape
    assert np.array_equal(result.image[~result.occlusion], photo[~result.occlusion])
    assert result.crop.shape == (TINY.image_size, TINY.image_size, 3)


def test_an_image_past_pils_size_guard_gets_a_clear_error(tmp_path, monkeypatch):
    Image.new("RGB", (200, 200)).save(tmp_path / "wide.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ValueError, match="wide.png is too large to read safely"):
        load_rgb(tmp_path / "wide.png")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_tensors_are_refused_before_any_network(unmasker, bad):
    image = torch.zeros(3, 16, 16)
    image[1, 3, 4] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        unmasker.unmask(image)
