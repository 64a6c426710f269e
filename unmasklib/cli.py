"""`unmask3d` (also `python -m unmasklib`): the notebooks' library calls from a shell.

    unmask3d synth [--profile cpu] [--out runs/cpu]           write the synthetic data set
    unmask3d train identity|n3d|inpaint [--profile cpu] [--out DIR] [--data PHOTOS] [--resume]
    unmask3d evaluate [--profile cpu] [--out DIR]             the table and figures of notebook 05
    unmask3d unmask INPUT... --out DIR [--run runs/<profile>] [--expression jaw_open=1.0]
                    [--samples K] [--seed S] [--find-face | --eyes X1,Y1,X2,Y2]

Like the notebooks, a command that finds an upstream artefact missing from its run folder
(data, identity encoder, N3D) produces it first, with a note. A user mistake is reported on
stderr as one line, `unmask3d: error: ...`, with exit status 2; `unmask` carries on past a bad
input file and exits with status 1 when any failed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .config import PROFILES, resolve_run

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm"}


class UsageError(Exception):
    """A mistake in how the command was called: reported in one line, no traceback."""


def error_text(error: Exception) -> str:
    """What to print of `error`: its message (a KeyError's str() would add quotes)."""
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


def named_values(pairs: Sequence[str], flag: str) -> dict[str, float]:
    """["jaw_open=1.0", "smile=-0.5"] -> {"jaw_open": 1.0, "smile": -0.5}."""
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise UsageError(f"{flag} takes NAME=VALUE with a number, got {pair!r}")
    return values


def eye_points(text: str | None) -> np.ndarray | None:
    """"X1,Y1,X2,Y2" (or ten numbers for the five points) -> `(2, 2)` / `(5, 2)` pixels."""
    if text is None:
        return None
    try:
        numbers = [float(v) for v in text.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) not in (4, 10):
        raise UsageError(f"--eyes takes X1,Y1,X2,Y2 (or ten numbers for the five points), "
                         f"got {text!r}")
    return np.array(numbers).reshape(-1, 2)


def input_files(inputs: Sequence[str]) -> list[Path]:
    """The files named, folders expanded to the images inside them (sorted)."""
    files = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UsageError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {path}")
            files += found
        else:
            files.append(path)  # a missing file is reported with the others' results
    return files


def run_synth(args: argparse.Namespace) -> int:
    from .data import SyntheticMaskedFaces

    profile, folder = resolve_run(args.profile, args.out)
    splits = ("train", "test") if args.split == "both" else (args.split,)
    for split in splits:
        size = args.count or (profile.train_samples if split == "train" else profile.test_samples)
        faces = SyntheticMaskedFaces.of_run(profile, folder, split, size)
        print(f"{split}: {len(faces)} faces at {profile.image_size} px in {faces.folder}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from .training.distributed import world

    profile, folder = resolve_run(args.profile, args.out)
    check_resume(args, folder)
    common = {"retrain": args.retrain, "device": args.device}
    if args.model == "identity":
        from .training.identity import train_identity_encoder

        if args.data is not None:
            raise UsageError("--data is for n3d and inpaint: the identity encoder needs "
                             "identity labels, which a folder of photos does not have")
        _, run = train_identity_encoder(profile, folder, **common)
    else:
        from .training.identity import load_or_train_identity_encoder

        encoder = load_or_train_identity_encoder(profile, folder, args.device)
        if args.model == "n3d":
            from .training.n3d import train_n3d

            _, run = train_n3d(encoder, profile, folder, photos=args.data, **common)
        else:
            from .training.inpainting import train_inpainting
            from .training.n3d import load_or_train_n3d

            n3d = load_or_train_n3d(profile, folder, args.device, encoder=encoder)
            _, run = train_inpainting(n3d, encoder, profile, folder, photos=args.data, **common)
    if world().main:  # under torchrun every process gets here; one line is enough
        state = "reused" if run.reused else f"trained to step {run.step}"
        print(f"{args.model}: {state}; checkpoint {run.path}")
    return 0


def check_resume(args: argparse.Namespace, folder: Path) -> None:
    """`--resume` insists on an unfinished checkpoint to continue; without it a finished one
    is reused and an unfinished one resumed anyway, as in the notebooks."""
    if args.resume and args.retrain:
        raise UsageError("--resume and --retrain contradict each other")
    if args.resume:
        from .checkpoint import checkpoint_path
        from .trained import IDENTITY_NAME, N3D_NAME, inpainting_name

        names = {"identity": IDENTITY_NAME, "n3d": N3D_NAME, "inpaint": inpainting_name()}
        path = checkpoint_path(folder, names[args.model])
        if not path.exists():
            raise UsageError(f"--resume: no checkpoint to resume at {path}")


def run_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate, markdown_table, write_report
    from .training.identity import load_or_train_identity_encoder
    from .training.inpainting import load_or_train_inpainting
    from .training.n3d import load_or_train_n3d

    profile, folder = resolve_run(args.profile, args.out)
    generators = {name: load_or_train_inpainting(profile, folder, flag, args.device)
                  for name, flag in (("ours", True), ("no 3D prior", False))}
    result = evaluate(generators, load_or_train_n3d(profile, folder, args.device),
                      load_or_train_identity_encoder(profile, folder, args.device),
                      profile, folder)
    paths = write_report(result, folder / "report")
    print(markdown_table(result.table()))
    print(f"report: {', '.join(str(p) for p in paths)}")
    return 0


def run_unmask(args: argparse.Namespace) -> int:
    from .alignment import FaceNotFoundError
    from .images import save_image
    from .pipeline import Unmasker, edit_coeffs, sample_session
    from .training import load_or_train
    from .training.inpainting import load_or_train_inpainting

    expression = named_values(args.expression, "--expression")
    pose = named_values(args.pose, "--pose")
    eyes = eye_points(args.eyes)
    if args.samples < 0:
        raise UsageError(f"--samples must be 0 or more, got {args.samples}")
    named = args.run is not None and args.run.name in PROFILES
    profile, run = resolve_run(args.profile or (args.run.name if named else None), args.run)
    if not run.is_dir():
        raise UsageError(f"no run folder at {run}: make one with `make demo` or "
                         "`unmask3d train inpaint --out RUN`")
    unmasker = load_or_train(lambda: Unmasker.from_run(run, profile, args.device),
                             lambda: load_or_train_inpainting(profile, run, device=args.device))
    # Unknown component or angle names are the caller's mistake, not a file's: say so once.
    edit_coeffs(unmasker.face_model, unmasker.face_model.zero_coeffs(1), expression, pose)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in input_files(args.inputs):
        try:
            session = unmasker.session(path, eyes=eyes, find_face=args.find_face)
            result = session.update(expression, pose, seed=args.seed)
            written = [save_image(result.image, out / f"{path.stem}.png")]
            if args.samples:
                for k, sample in enumerate(sample_session(session, args.samples, args.seed)):
                    written.append(save_image(sample.image, out / f"{path.stem}_sample{k}.png"))
            share = float(result.occlusion.mean())
            painted = ("no mask found: written as it is" if share == 0
                       else f"{100 * share:.1f} % of it painted" if share >= 0.001
                       else "under 0.1 % of it painted")
            print(f"{path}: {painted}; {', '.join(str(p) for p in written)}")
        except (OSError, ValueError, KeyError, FaceNotFoundError) as error:
            failed += 1
            print(f"unmask3d: error: {path}: {error_text(error)}", file=sys.stderr)
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="unmask3d", description="Face mask removal with a 3D face prior (unmasklib).",
        epilog="Profiles: " + ", ".join(PROFILES) + " (default $UNMASK_PROFILE, else cpu).")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_run(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--profile", choices=sorted(PROFILES),
                         help="run profile (default $UNMASK_PROFILE, else cpu)")
        sub.add_argument("--out", type=Path, default=None,
                         help="run folder (default runs/<profile>)")

    def with_device(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--device", default=None,
                         help="cpu, cuda, cuda:1, mps (default: CUDA, MPS, else CPU)")

    synth = commands.add_parser("synth", help="write the synthetic masked-face data set",
                                description="Generate (or complete) the run's cached "
                                "synthetic data set: masked faces with exact ground truth.")
    with_run(synth)
    synth.add_argument("--split", choices=("train", "test", "both"), default="both")
    synth.add_argument("--count", type=int, default=None,
                       help="faces per split (default: the profile's)")
    synth.set_defaults(handler=run_synth)

    train = commands.add_parser("train", help="train the identity encoder, N3D or the "
                                "inpainting generator", description="Train one network of "
                                "the method; missing upstream networks are trained first.")
    train.add_argument("model", choices=("identity", "n3d", "inpaint"))
    with_run(train)
    with_device(train)
    train.add_argument("--data", type=Path, default=None,
                       help="a folder of your own face photos, trained on beside the "
                       "synthetic faces (n3d, inpaint): each aligned by the five points YuNet "
                       "finds, its 3D face fitted once (MaskedFaceFolder)")
    train.add_argument("--resume", action="store_true",
                       help="continue the interrupted run in the run folder (an error if "
                       "there is none)")
    train.add_argument("--retrain", action="store_true",
                       help="train afresh even where a checkpoint exists")
    train.set_defaults(handler=run_train)

    evaluate = commands.add_parser("evaluate", help="score every method on the held-out "
                                   "faces", description="Notebook 05's evaluation: "
                                   "metrics.json, table.md and figures in <run>/report/.")
    with_run(evaluate)
    with_device(evaluate)
    evaluate.set_defaults(handler=run_evaluate)

    unmask = commands.add_parser("unmask", help="remove the masks from image files",
                                 description="Unmask each INPUT (files, or folders of "
                                 "images) into --out as <name>.png, plus <name>_sample<k>.png "
                                 "for --samples K completions from the 3DMM prior.")
    unmask.add_argument("inputs", nargs="+", metavar="INPUT")
    unmask.add_argument("--out", required=True, type=Path, help="folder for the results")
    unmask.add_argument("--run", type=Path, default=None,
                        help="trained run folder (default runs/<profile>, as train and "
                        "evaluate use it)")
    unmask.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="the run's profile (default: the run folder's name when it is a "
                        "profile's, else $UNMASK_PROFILE, else cpu)")
    unmask.add_argument("--expression", action="append", default=[], metavar="NAME=VALUE",
                        help="set a named expression component, e.g. jaw_open=1.0 "
                        "(repeatable)")
    unmask.add_argument("--pose", action="append", default=[], metavar="NAME=VALUE",
                        help="set yaw, pitch or roll in radians (repeatable)")
    unmask.add_argument("--samples", type=int, default=0, help="also write K prior samples")
    unmask.add_argument("--seed", type=int, default=0)
    face = unmask.add_mutually_exclusive_group()
    face.add_argument("--find-face", action="store_true",
                      help="the inputs are whole photos: find the face and its five points (YuNet)")
    face.add_argument("--eyes", default=None, metavar="X1,Y1,X2,Y2",
                      help="the eye centres in pixels (or ten numbers: the five points)")
    with_device(unmask)
    unmask.set_defaults(handler=run_unmask)
    return main


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except (UsageError, FileNotFoundError, ValueError, KeyError) as error:
        print(f"unmask3d: error: {error_text(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("unmask3d: interrupted; finished checkpoints are kept and an interrupted "
              "training resumes where its last checkpoint left it", file=sys.stderr)
        return 130
