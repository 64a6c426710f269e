"""The shared training machinery: batches, checkpoints, exact resume, guards, reuse."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unmasklib import plots, training
from unmasklib.checkpoint import load_checkpoint, save_checkpoint
from unmasklib.data import collate
from unmasklib.devices import pick_device
from unmasklib.training import NonFiniteLossError, fit

STEPS = 10
SEED = 3


class Tiny(nn.Module):
    """A conv net with dropout: dropout draws from the global RNG, which resume must restore."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(torch.relu(self.conv(x))).flatten(1))


def tiny_data(n: int = 24) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    return [{"x": torch.randn(1, 8, 8, generator=generator), "label": i % 3,
             "name": f"s{i}", "flag": i % 2 == 0} for i in range(n)]


def build(init_seed: int) -> tuple[dict, dict]:
    """A classifier and a critic (updated by the step function itself, as a GAN's D would
    be), with their optimisers."""
    torch.manual_seed(init_seed)
    models = {"net": Tiny(), "critic": nn.Linear(3, 1)}
    return models, {name: training.adam(model.parameters(), lr=1e-3)
                    for name, model in models.items()}


def make_step(optimizers: dict, nan_at: int | None = None, log: list | None = None):
    def step_fn(networks: dict, batch: dict, step: int) -> dict:
        if log is not None:
            log.append(optimizers["net"].param_groups[0]["lr"])
        noise = torch.randn(batch["x"].shape, generator=training.step_generator(SEED, step))
        logits = networks["net"](batch["x"] + 0.1 * noise)
        critic = (networks["critic"](logits.detach()) - 1).square().mean()
        training.descend([optimizers["critic"]], critic, "critic", step)
        ce = F.cross_entropy(logits, batch["label"])
        if step == nan_at:
            ce = ce * float("nan")
        return {"total": ce, "ce": ce, "critic": critic.detach()}
    return step_fn


def run(folder: Path, init_seed: int = 0, **kwargs) -> tuple[dict, training.Run]:
    models, optimizers = build(init_seed)
    nan_at = kwargs.pop("nan_at", None)
    result = fit("tiny", "smoke", folder, models, optimizers,
                 make_step(optimizers, nan_at),
                 lambda: training.Batches(tiny_data(), 8, SEED),
                 STEPS, seed=SEED, lr=1e-3, checkpoint_every=3, stepped=["net"],
                 progress=False, **kwargs)
    return models, result


def assert_same_weights(a: dict, b: dict) -> None:
    for name in a:
        for key, value in a[name].state_dict().items():
            assert torch.equal(value, b[name].state_dict()[key]), f"{name}.{key}"


def test_batch_order_is_a_function_of_seed_and_step():
    n, batch = 20, 6  # 3 batches per epoch, 2 samples left out of each

    def indices(seed: int, step: int) -> torch.Tensor:
        return training.batch_indices(n, batch, seed, step)

    epoch = torch.cat([indices(0, step) for step in range(3)])
    assert len(set(epoch.tolist())) == 18 and int(epoch.min()) >= 0 and int(epoch.max()) < n
    assert torch.equal(indices(0, 4), indices(0, 4))
    assert not torch.equal(indices(0, 3), indices(0, 0))  # a new permutation each epoch
    assert not torch.equal(indices(1, 0), indices(0, 0))
    with pytest.raises(ValueError, match="batch_size"):
        training.batch_indices(4, 5, 0, 0)


def test_collate_stacks_tensors_and_keeps_strings():
    batch = collate(tiny_data(3))
    assert batch["x"].shape == (3, 1, 8, 8)
    assert batch["label"].dtype == torch.int64 and batch["label"].tolist() == [0, 1, 2]
    assert batch["flag"].dtype == torch.bool and batch["flag"].tolist() == [True, False, True]
    assert batch["name"] == ["s0", "s1", "s2"]


def test_learning_rate_drops_tenfold_at_the_mid_point(tmp_path):
    assert [training.learning_rate(s, 1e-4, 3) for s in (0, 2, 3, 9)] == [1e-4, 1e-4, 1e-5, 1e-5]
    models, optimizers = build(0)
    seen: list[float] = []
    fit("tiny", "smoke", tmp_path, models, optimizers, make_step(optimizers, log=seen),
        lambda: training.Batches(tiny_data(), 8, SEED), 6, progress=False)
    assert seen == pytest.approx([1e-4] * 3 + [1e-5] * 3, rel=1e-12)


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    straight, full = run(tmp_path / "a")
    assert full.finished and full.step == STEPS and len(full.history["ce"]) == STEPS

    _, first = run(tmp_path / "b", stop_at=5)
    assert (first.step, first.finished) == (5, False)
    assert load_checkpoint(first.path, "tiny", "smoke")["step"] == 5
    torch.rand(100)  # whatever happens between the two sessions must not matter
    resumed, second = run(tmp_path / "b", init_seed=99)
    assert second.finished and not second.reused
    assert_same_weights(straight, resumed)
    assert second.history == full.history

    # ...and the same seed gives the same weights without any resume.
    again, _ = run(tmp_path / "c")
    assert_same_weights(straight, again)


def test_checkpoint_contents_load_with_weights_only(tmp_path):
    _, result = run(tmp_path)
    state = torch.load(result.path, weights_only=True)
    assert (state["model"], state["profile"], state["step"], state["finished"]) == \
        ("tiny", "smoke", STEPS, True)
    assert set(state["models"]) == set(state["optimizers"]) == {"net", "critic"}
    assert set(state["history"]) == {"total", "ce", "critic"}
    assert state["settings"]["steps"] == STEPS and state["settings"]["seed"] == SEED
    assert {"torch", "python", "numpy"} <= set(state["rng"])
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.pt"]  # no temporary files left


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"'ce' is nan at step 7.*step 6\) is intact"):
        run(tmp_path, nan_at=7)
    state = load_checkpoint(tmp_path / "tiny.pt", "tiny", "smoke")
    assert (state["step"], state["finished"]) == (6, False)
    assert len(state["history"]["ce"]) == 6 and all(map(math.isfinite, state["history"]["ce"]))
    assert all(torch.isfinite(v).all() for v in state["models"]["net"].values())
    assert issubclass(NonFiniteLossError, RuntimeError)


def test_checkpoint_of_another_model_or_profile_is_refused(tmp_path):
    _, result = run(tmp_path)
    with pytest.raises(ValueError, match=r"holds model 'tiny' of profile 'smoke', "
                                         r"expected 'identity' of profile 'cpu'"):
        load_checkpoint(result.path, "identity", "cpu")
    models, optimizers = build(0)
    with pytest.raises(ValueError, match="expected 'tiny' of profile 'cpu'"):
        fit("tiny", "cpu", tmp_path, models, optimizers, make_step(optimizers),
            lambda: training.Batches(tiny_data(), 8, SEED), STEPS, progress=False)


def test_finished_run_is_reused_unless_retrain(tmp_path, capsys):
    trained, _ = run(tmp_path)
    models, optimizers = build(7)

    def must_not_train(networks, batch, step):
        raise AssertionError("a finished run was trained again")

    kwargs = dict(seed=SEED, lr=1e-3, checkpoint_every=3, stepped=["net"], progress=False)
    reused = fit("tiny", "smoke", tmp_path, models, optimizers, must_not_train,
                 lambda: training.Batches(tiny_data(), 8, SEED), STEPS, **kwargs)
    assert reused.reused and "reusing the finished checkpoint" in capsys.readouterr().out
    assert len(reused.history["ce"]) == STEPS
    assert_same_weights(trained, models)

    with pytest.raises(AssertionError, match="trained again"):
        fit("tiny", "smoke", tmp_path, models, optimizers, must_not_train,
            lambda: training.Batches(tiny_data(), 8, SEED), STEPS, retrain=True, **kwargs)
    # Other settings: not reused but trained afresh, with a note.
    with pytest.raises(AssertionError, match="trained again"):
        fit("tiny", "smoke", tmp_path, models, optimizers, must_not_train,
            lambda: training.Batches(tiny_data(), 8, SEED), STEPS + 1, **kwargs)
    assert "steps differ" in capsys.readouterr().out


def test_interrupted_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "m.pt", {"step": 1})

    def broken_save(obj, file):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2})
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_step_fn_must_return_a_total(tmp_path):
    models, optimizers = build(0)
    with pytest.raises(ValueError, match="'total'"):
        fit("tiny", "smoke", tmp_path, models, optimizers,
            lambda networks, batch, step: {"ce": networks["net"](batch["x"]).mean()},
            lambda: training.Batches(tiny_data(), 8, SEED), 2, progress=False)


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    expected = ("cuda" if torch.cuda.is_available()
                else "mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device().type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")


def test_history_plot_smooths_and_picks_log_scale_for_decaying_losses():
    assert plots.smooth([1, 2, 3, 4], 2).tolist() == [1, 1.5, 2.5, 3.5]
    steps = torch.arange(200, dtype=torch.float64)
    history = {"total": (20 * torch.exp(-steps / 50)).tolist(), "signed": torch.sin(steps).tolist()}
    figure = plots.plot_history(history)
    axes = figure.axes
    assert [ax.get_title() for ax in axes] == ["total", "signed"]
    assert [ax.get_yscale() for ax in axes] == ["log", "linear"]
    assert len(axes[0].lines[0].get_xdata()) == 200  # raw curve, then the smoothed one
    plots.plt.close(figure)
