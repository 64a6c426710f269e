"""The `unmask3d` command line: help, user mistakes as one line, and `unmask` on a batch of
good and broken inputs (one bad file never stops the others)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
import torch
from conftest import TINY
from PIL import Image

from unmasklib.cli import main
from unmasklib.data import held_out_faces
from unmasklib.pipeline import as_rgb_array


@pytest.mark.parametrize("command", [[], ["synth"], ["train"], ["evaluate"], ["unmask"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert "usage: unmask3d" in capsys.readouterr().out


def test_python_dash_m_runs_the_same_command_line():
    done = subprocess.run([sys.executable, "-m", "unmasklib", "unmask", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--expression NAME=VALUE" in done.stdout


@pytest.fixture(scope="module")
def inputs(tiny_run, tmp_path_factory):
    """A folder of one good face in many encodings, and broken files."""
    folder = tmp_path_factory.mktemp("inputs")
    face = as_rgb_array(held_out_faces(TINY, tiny_run, progress=False)[0]["masked"])
    Image.fromarray(face).save(folder / "face.png")
    Image.fromarray(face).convert("L").save(folder / "grey.png")
    Image.fromarray(face).convert("RGBA").save(folder / "rgba.png")
    Image.fromarray(face).convert("CMYK").save(folder / "cmyk.jpg")
    deep = (face.mean(axis=2) * 257).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep16.png")
    Image.fromarray(face[:1, :1]).save(folder / "one_pixel.png")
    Image.fromarray(face).resize((3000, 2000)).save(folder / "large.jpg")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("not an image")
    (folder / "truncated.png").write_bytes((folder / "face.png").read_bytes()[:200])
    return folder


def test_unmask_writes_every_good_input_and_names_every_bad_one(tiny_run, inputs, tmp_path,
                                                               capsys):
    good = ["face.png", "grey.png", "rgba.png", "cmyk.jpg", "deep16.png", "one_pixel.png",
            "large.jpg"]
    bad = ["empty.png", "notes.png", "truncated.png", "missing.png"]
    code = main(["unmask", *(str(inputs / name) for name in good + bad), "--out",
                 str(tmp_path), "--run", str(tiny_run), "--profile", "smoke", "--samples", "2",
                 "--expression", "jaw_open=1.5"])
    printed = capsys.readouterr()
    assert code == 1
    for name in good:
        stem = name.rsplit(".", 1)[0]
        with Image.open(inputs / name) as source, Image.open(tmp_path / f"{stem}.png") as out:
            assert out.size == source.size and out.mode == "RGB"
        assert (tmp_path / f"{stem}_sample1.png").exists()
    # one line per written input: how much of it was painted, then the files
    lines = printed.out.strip().splitlines()
    assert len(lines) == len(good)
    for name, line in zip(good, lines, strict=True):
        assert line.startswith(str(inputs / name) + ": ")
        assert re.search(r": (\d+\.\d|under 0\.1) % of it painted; |: no mask found: written as "
                         r"it is; ", line)
    errors = printed.err.strip().splitlines()
    assert len(errors) == len(bad) and "Traceback" not in printed.err
    for name, line in zip(bad, errors, strict=True):
        assert line.startswith("unmask3d: error: ") and name in line


def test_the_same_seed_gives_the_same_file(tiny_run, inputs, tmp_path):
    for out in ("a", "b"):
        main(["unmask", str(inputs / "face.png"), "--out", str(tmp_path / out), "--run",
              str(tiny_run), "--profile", "smoke", "--seed", "3"])
    assert (tmp_path / "a" / "face.png").read_bytes() == (tmp_path / "b" / "face.png").read_bytes()


@pytest.mark.parametrize(("arguments", "message"), [
    (["--expression", "jaw_open=wide"], "NAME=VALUE with a number"),
    (["--expression", "jaw=1"], "no expression component 'jaw'"),
    (["--pose", "tilt=0.1"], "no angle 'tilt'"),
    (["--eyes", "1,2,3"], "X1,Y1,X2,Y2"),
    (["--samples", "-1"], "--samples must be 0 or more"),
])
def test_user_mistakes_are_one_line_and_exit_status_2(tiny_run, inputs, tmp_path, capsys,
                                                      arguments, message):
    code = main(["unmask", str(inputs / "face.png"), "--out", str(tmp_path), "--run",
                 str(tiny_run), "--profile", "smoke", *arguments])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_missing_run_folder_and_a_resume_without_checkpoint_are_explained(tmp_path, capsys):
    assert main(["unmask", "x.png", "--out", str(tmp_path), "--run",
                 str(tmp_path / "nowhere")]) == 2
    assert "no run folder" in capsys.readouterr().err
    assert main(["train", "n3d", "--profile", "smoke", "--out", str(tmp_path),
                 "--resume"]) == 2
    assert "no checkpoint to resume" in capsys.readouterr().err
    assert main(["train", "identity", "--profile", "smoke", "--out", str(tmp_path),
                 "--data", str(tmp_path)]) == 2
    assert "identity labels" in capsys.readouterr().err


def test_unmask_reads_the_run_of_its_profile_under_the_runs_root(monkeypatch, tmp_path):
    import unmasklib.pipeline as pipeline

    opened = []

    def from_run(folder, profile, device):
        opened.append((folder, profile.name))
        raise KeyboardInterrupt  # stop before anything is loaded or trained

    monkeypatch.setenv("UNMASK_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(pipeline.Unmasker, "from_run", staticmethod(from_run))
    assert main(["unmask", "x.png", "--out", str(tmp_path / "out"), "--profile", "smoke"]) == 130
    named = tmp_path / "elsewhere" / "smoke"
    named.mkdir(parents=True)
    assert main(["unmask", "x.png", "--out", str(tmp_path / "out"), "--run", str(named)]) == 130
    assert opened == [(tmp_path / "runs" / "smoke", "smoke"), (named, "smoke")]


def test_train_passes_its_options_to_the_library_call(monkeypatch, tmp_path, capsys):
    import unmasklib.training.identity as identity
    import unmasklib.training.n3d as n3d
    from unmasklib.training import Run

    calls = []
    encoder = torch.nn.Identity()

    def fake_train_n3d(given, profile, folder, **options):
        calls.append((given, profile.name, folder, options))
        return None, Run(folder / "n3d.pt", 20, True, False, {}, {})

    monkeypatch.setattr(identity, "load_or_train_identity_encoder", lambda *args: encoder)
    monkeypatch.setattr(n3d, "train_n3d", fake_train_n3d)
    photos = tmp_path / "photos"
    photos.mkdir()
    assert main(["train", "n3d", "--profile", "smoke", "--out", str(tmp_path), "--data",
                 str(photos), "--retrain", "--device", "cpu"]) == 0
    assert calls == [(encoder, "smoke", tmp_path,
                      {"photos": photos, "retrain": True, "device": "cpu"})]
    assert "n3d: trained to step 20" in capsys.readouterr().out


def test_photos_join_the_training_set_and_the_run_settings(tmp_path):
    from unmasklib.data import train_faces
    from unmasklib.training.n3d import photo_settings

    photos = tmp_path / "photos"
    photos.mkdir()
    astronaut = skimage.data.astronaut()
    Image.fromarray(astronaut).save(photos / "astronaut.png")
    Image.fromarray(astronaut[:, ::-1]).save(photos / "mirrored.png")
    Image.new("RGB", (80, 60), (40, 90, 120)).save(photos / "no_face.png")
    with pytest.warns(UserWarning, match="without a face.*no_face.png"):
        train = train_faces(TINY, tmp_path / "run", progress=False, photos=photos)
    assert len(train) == TINY.train_samples + 2
    last = train[len(train) - 1]
    # The photos carry pseudo ground truth, fitted once and kept in the run's data folder.
    assert last["has_ground_truth"] and last["masked"].shape == (3, 64, 64)
    assert torch.isfinite(last["coeffs"]).all() and torch.isfinite(last["landmarks"]).all()
    assert photo_settings(photos) == {"photos": str(photos.resolve()), "photo_count": 3}
    assert photo_settings(None) == {}
