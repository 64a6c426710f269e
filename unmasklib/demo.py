"""The main job (`make demo`): the face gallery, then every numbered notebook run headless, in
order, with one profile. What it leaves in `runs/<profile>/report/`:

    notebooks/      the executed notebooks
    timings.json    seconds per notebook, the host's ResNet-50 step and the budget ratio
    metrics.json, table.md, *.png   the evaluation (notebook 05 writes them)

    python -m unmasklib.demo [--profile cpu] [--notebooks notebooks/]

Progress stays visible: a line per notebook with its time, and the notebooks' own output
(training bars included: the kernel gets `UNMASK_PROGRESS=text`) echoed to the console.
Finished checkpoints in the run folder are reused, so a rerun only redoes what is missing.
The budget is `host_speed.DEMO_BUDGET_STEPS` ResNet-50 forward+backward steps of the host it
runs on: the step is timed first and again last, and the ratio, printed last, uses the mean
of the two (a shared machine's speed drifts: one session timed 3.45 s before a run and 2.34 s
after it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .config import get_profile, run_dir
from .gallery import main as gallery_main
from .host_speed import DEMO_BUDGET_STEPS, resnet50_step_seconds


class EchoingClient(NotebookClient):
    """A notebook client that also writes the kernel's printed output to this console."""

    def output(self, outs, msg, display_id, cell_index):  # noqa: ANN001, ANN201 (nbclient's)
        if msg["msg_type"] == "stream":
            stream = sys.stderr if msg["content"]["name"] == "stderr" else sys.stdout
            stream.write(msg["content"]["text"])
            stream.flush()
        return super().output(outs, msg, display_id, cell_index)


def terminal_text(text: str) -> str:
    """Stream text as a terminal leaves it: on each line only what follows its last carriage
    return, so a progress bar's hundreds of redraws keep their final state."""
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))


def collapse_streams(notebook: nbformat.NotebookNode) -> None:
    """Merge each cell's consecutive stream outputs of one name (nbclient stores one per
    message: a training bar's every redraw) into one, as `terminal_text` renders it."""
    for cell in notebook.cells:
        merged = []
        for output in cell.get("outputs", []):
            if (output.output_type == "stream" and merged
                    and merged[-1].output_type == "stream" and merged[-1].name == output.name):
                merged[-1].text += output.text
            else:
                merged.append(output)
        for output in merged:
            if output.output_type == "stream":
                output.text = terminal_text(output.text)
        if "outputs" in cell:
            cell.outputs = merged


def run_notebook(path: Path, out_dir: Path) -> float:
    """Execute the notebook at `path` (working directory: its folder), write the executed
    copy into `out_dir`, and return the seconds it took. A failing cell raises (nbclient's
    CellExecutionError names the cell); the partial notebook is still written."""
    notebook = nbformat.read(path, as_version=4)
    client = EchoingClient(notebook, timeout=None, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        collapse_streams(notebook)
        out_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, out_dir / path.name)
    return time.perf_counter() - start


def budget_line(total: float, step: float) -> str:
    """The demo's time `total` (s) in ResNet-50 steps of `step` s, against the budget."""
    steps = total / step
    verdict = "within" if steps <= DEMO_BUDGET_STEPS else "OVER"
    return (f"== {total / 60:.1f} min = {steps:.0f} ResNet-50 steps of this host: "
            f"{steps / DEMO_BUDGET_STEPS:.2f} of the budget of {DEMO_BUDGET_STEPS} ({verdict})")


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="run profile (default: $UNMASK_PROFILE "
                        "or cpu)")
    parser.add_argument("--notebooks", type=Path,
                        default=Path(__file__).resolve().parents[1] / "notebooks",
                        help="folder of the numbered notebooks (default: the checkout's)")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    os.environ["UNMASK_PROFILE"] = profile.name  # the kernels inherit both
    os.environ["UNMASK_PROGRESS"] = "text"
    notebooks = sorted(args.notebooks.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise SystemExit(f"no numbered notebooks in {args.notebooks}")
    report = run_dir(profile) / "report"
    timings: dict[str, float] = {"resnet50_step_first": resnet50_step_seconds()}
    print(f"== this host: ResNet-50 forward+backward (256 px, batch 8) "
          f"{timings['resnet50_step_first']:.2f} s; budget {DEMO_BUDGET_STEPS} steps = "
          f"{DEMO_BUDGET_STEPS * timings['resnet50_step_first'] / 60:.0f} min", flush=True)
    start = time.perf_counter()
    print(f"== gallery ({profile.name})", flush=True)
    gallery_main(["--profile", profile.name])
    for k, path in enumerate(notebooks, 1):
        print(f"== [{k}/{len(notebooks)}] {path.stem} ({profile.name}) ...", flush=True)
        timings[path.stem] = run_notebook(path, report / "notebooks")
        print(f"== [{k}/{len(notebooks)}] {path.stem}: {timings[path.stem] / 60:.1f} min "
              f"(total {(time.perf_counter() - start) / 60:.1f} min)", flush=True)
    timings["total"] = time.perf_counter() - start
    timings["resnet50_step_last"] = resnet50_step_seconds()
    timings["resnet50_step"] = (timings["resnet50_step_first"]
                                + timings["resnet50_step_last"]) / 2
    (report / "timings.json").write_text(json.dumps(timings, indent=1))
    print(f"== done in {timings['total'] / 60:.1f} min; report in {report}", flush=True)
    print(f"== ResNet-50 forward+backward after the run {timings['resnet50_step_last']:.2f} s; "
          f"the mean of both, {timings['resnet50_step']:.2f} s, is this host's step",
          flush=True)
    print(budget_line(timings["total"], timings["resnet50_step"]), flush=True)
    return timings


if __name__ == "__main__":
    main()
