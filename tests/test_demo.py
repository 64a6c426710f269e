"""`make demo`'s runner on a folder of two tiny notebooks (smoke profile, temporary runs)."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from unmasklib import demo, host_speed


@pytest.fixture(autouse=True)
def restored_environment(monkeypatch, tmp_path):
    """demo.main sets the profile and progress style for its kernels in os.environ: undo it."""
    monkeypatch.setenv("UNMASK_PROFILE", "smoke")
    monkeypatch.setenv("UNMASK_PROGRESS", "auto")
    monkeypatch.setenv("UNMASK_RUNS", str(tmp_path / "runs"))
    # Steps of 0.4 s before the run and 0.6 s after it stand for the host's ResNet-50 time
    # (measuring it takes ~15 s).
    steps = iter([0.4, 0.6])
    monkeypatch.setattr(demo, "resnet50_step_seconds", lambda: next(steps))


def write_notebook(path, *sources: str) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)


def test_the_demo_runs_the_numbered_notebooks_in_order_and_echoes_them(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(folder / "02_second.ipynb",
                   "import os\nprint('second', os.environ['UNMASK_PROFILE'])")
    write_notebook(folder / "01_first.ipynb",
                   "import os\nprint('progress', os.environ['UNMASK_PROGRESS'])")
    write_notebook(folder / "notes.ipynb", "raise RuntimeError('not a numbered notebook')")
    timings = demo.main(["--profile", "smoke", "--notebooks", str(folder)])
    out = capsys.readouterr().out
    assert out.index("progress text") < out.index("second smoke")  # in order, echoed
    assert "[1/2] 01_first" in out and "[2/2] 02_second" in out
    report = tmp_path / "runs" / "smoke" / "report"
    executed = nbformat.read(report / "notebooks" / "01_first.ipynb", as_version=4)
    assert executed.cells[0].outputs[0].text == "progress text\n"
    assert json.loads((report / "timings.json").read_text()) == timings
    assert set(timings) == {"resnet50_step_first", "01_first", "02_second", "total",
                            "resnet50_step_last", "resnet50_step"}
    assert out.splitlines()[0].startswith("== this host: ResNet-50 forward+backward (256 px, "
                                          "batch 8) 0.40 s; budget 1070 steps = 7 min")
    assert timings["resnet50_step"] == pytest.approx(0.5)  # the mean of before and after
    assert "after the run 0.60 s; the mean of both, 0.50 s" in out.splitlines()[-2]
    assert f"= {timings['total'] / 0.5:.0f} ResNet-50 steps of this host" in out.splitlines()[-1]
    assert (tmp_path / "runs" / "smoke" / "gallery.png").exists()


def test_a_failing_notebook_stops_the_demo_and_names_the_cell(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(folder / "01_broken.ipynb", "raise ValueError('deliberately broken')")
    with pytest.raises(CellExecutionError, match="deliberately broken"):
        demo.main(["--profile", "smoke", "--notebooks", str(folder)])
    assert (tmp_path / "runs" / "smoke" / "report" / "notebooks" / "01_broken.ipynb").exists()


def test_the_budget_line_counts_resnet50_steps():
    assert demo.budget_line(1070 * 2.0, 2.0) == (
        "== 35.7 min = 1070 ResNet-50 steps of this host: 1.00 of the budget of 1070 (within)")
    assert demo.budget_line(1200.0, 1.0).endswith("1.12 of the budget of 1070 (OVER)")


def test_resnet50_step_is_timed_on_a_real_network():
    assert 0 < host_speed.resnet50_step_seconds(batch=2, size=32, repeats=1) < 60


def test_progress_redraws_are_kept_as_a_terminal_shows_them():
    assert demo.terminal_text("\rbar 1/3\rbar 2/3\rbar 3/3\ndone\n") == "bar 3/3\ndone\n"
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=text)
                    for text in ("\rfit 0%", "\rfit 50%", "\rfit 100%", "\n")]
    cell.outputs.insert(1, nbformat.v4.new_output("stream", name="stdout", text="note\n"))
    notebook.cells = [cell]
    demo.collapse_streams(notebook)
    assert [(o.name, o.text) for o in cell.outputs] == [
        ("stderr", "fit 0%"), ("stdout", "note\n"), ("stderr", "fit 100%\n")]
