"""The training loop every phase shares: Adam's learning-rate drop, progress, loss history,
periodic and final checkpoints, exact resume, a non-finite guard, reuse of finished runs.

A phase supplies its networks and optimisers (dicts by name, so a GAN's G and D live in one
checkpoint), `make_batches() -> batches`, where `batches(step) -> batch`, and
`step_fn(networks, batch, step) -> {term: scalar tensor}`. The step function receives the
networks it trains from the loop: under torchrun each wrapped in PyTorch's
`DistributedDataParallel` (`training.distributed`), alone the networks themselves.
The loop minimises the term "total" with the optimisers named in `stepped` (default all); a
step function that must update a network itself (a GAN's discriminator before the generator's
forward pass) does so with `descend` and leaves that optimiser out of `stepped`. Every term
returned is checked, logged and shown, so "total" is usually a weighted sum of the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from ..checkpoint import (
    checkpoint_path,
    load_checkpoint,
    load_weights,
    make_checkpoint,
    restore_rng,
    save_checkpoint,
)
from ..config import Profile
from ..progress import progress_bar
from .batches import to_device
from .distributed import (
    buffers_from_rank0,
    mean_across,
    replicate,
    start_distributed,
    wait_for_all,
    world,
)

T = TypeVar("T")
StepFn = Callable[[Mapping[str, nn.Module], dict, int], Mapping[str, torch.Tensor]]
ADAM_BETAS = (0.9, 0.999)


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or infinite; training stopped before it reached any weights."""

    def __init__(self, term: str, step: int, value: float, note: str = "") -> None:
        self.term, self.step, self.value = term, step, value
        super().__init__(f"loss term {term!r} is {value} at step {step}; training stopped"
                         + (f". {note}" if note else ""))


@dataclass
class Run:
    """What `fit` did: where the checkpoint is, how far it got, and the loss history
    (term -> one float per step, steps 0 .. step-1)."""

    path: Path
    step: int
    finished: bool
    reused: bool
    history: dict[str, list[float]]
    settings: dict


def adam(parameters: Iterable[nn.Parameter], lr: float = 1e-4) -> torch.optim.Adam:
    """The seed's optimiser: Adam with betas (0.9, 0.999)."""
    return torch.optim.Adam(parameters, lr=lr, betas=ADAM_BETAS)


def learning_rate(step: int, lr: float, drop_step: int, drop: float = 0.1) -> float:
    """The learning rate of step `step`: `lr` before `drop_step`, `lr * drop` from it on."""
    return lr if step < drop_step else lr * drop


def descend(optimizers: Iterable[torch.optim.Optimizer], loss: torch.Tensor, term: str = "total",
            step: int = -1) -> None:
    """One update of `optimizers` on the scalar `loss`, refused (NonFiniteLossError naming
    `term` and `step`) before anything changes when the loss is not finite. Under torchrun the
    check sees the mean loss of all processes (so all refuse together), and the backward pass
    of networks wrapped by `fit` averages their gradients across processes."""
    value = float(mean_across(loss.detach()))
    if not math.isfinite(value):
        raise NonFiniteLossError(term, step, value)
    optimizers = list(optimizers)
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    for optimizer in optimizers:
        optimizer.step()


def fit(model_name: str, profile: Profile | str, folder: str | Path,
        models: Mapping[str, nn.Module], optimizers: Mapping[str, torch.optim.Optimizer],
        step_fn: StepFn, make_batches: Callable[[], Callable[[int], dict]], steps: int, *,
        seed: int = 0, lr: float = 1e-4, lr_drop_step: int | None = None, lr_drop: float = 0.1,
        checkpoint_every: int | None = None, settings: Mapping | None = None,
        stepped: Sequence[str] | None = None, stop_at: int | None = None,
        retrain: bool = False, progress: bool = True,
        after_step: Callable[[int], None] | None = None) -> Run:
    """Train `models` for `steps` steps, or reuse / resume the run in `<folder>/<model_name>.pt`.

    models, optimizers: name -> network / optimiser; the networks are already on their device,
        and batches are moved to the device of the first one's parameters. Training leaves
        the networks in train mode.
    step_fn(networks, batch, step): the loss terms of one step, scalar tensors including
        "total"; `networks` are `models`, under torchrun wrapped for distributed training.
    make_batches(): called only when there is training to do (a reused run builds no data);
        returns `batches(step)`, the batch of step `step`, which for an exact resume must depend
        on `step` (and the run's seed) only, as `training.Batches` does.
    lr, lr_drop_step, lr_drop: every optimiser runs at `lr` until `lr_drop_step` (default: the
        mid-point, `steps // 2`) and at `lr * lr_drop` from there on.
    checkpoint_every: also write a checkpoint every this many steps (the final one is marked
        finished); settings: what else defines the run (sizes, data version): a checkpoint made
        with other settings (or another schedule) is not reused but trained afresh.
    stop_at: stop (with a checkpoint) once this many steps are done, to be resumed later.
    retrain: ignore any checkpoint there. Otherwise a finished one is loaded and reused (no
        training), an unfinished one resumed at its step with its optimiser and RNG states.
    after_step(done): called after each step (and its checkpoint) with the number of steps
        done, the networks in train mode, e.g. to paint snapshots; it must not change them.

    A checkpoint of another model or profile raises ValueError; a non-finite loss term raises
    NonFiniteLossError and leaves the last checkpoint written intact.

    Under `torchrun` (see `training.distributed`) every process runs this with the same
    arguments: each trains on its share of every batch through `DistributedDataParallel`
    replicas of `models` (gradients averaged during the backward pass), rank 0 alone writes
    checkpoints and shows progress, and the logged losses are the means over processes.
    """
    here = start_distributed()
    profile_name = profile if isinstance(profile, str) else profile.name
    path = checkpoint_path(folder, model_name)
    drop_step = steps // 2 if lr_drop_step is None else lr_drop_step
    settings = {**(settings or {}), "steps": steps, "lr": lr, "lr_drop_step": drop_step,
                "lr_drop": lr_drop, "seed": seed}
    stepped = list(optimizers) if stepped is None else list(stepped)

    state = None if retrain else _matching_checkpoint(path, model_name, profile_name, settings)
    if state is not None:
        load_weights(state, models, optimizers)
        if state["finished"]:
            if here.main:
                print(f"reusing the finished checkpoint {path} ({state['step']} steps); "
                      "pass retrain=True to train again")
            return Run(path, state["step"], True, True, state["history"], settings)
        restore_rng(state["rng"])
        if here.main:
            print(f"resuming {path} at step {state['step']} of {steps}")
    start = 0 if state is None else state["step"]
    end = steps if stop_at is None else max(start, min(stop_at, steps))
    history: dict[str, list[float]] = {} if state is None else state["history"]
    saved = "" if state is None else f"The checkpoint {path} (step {start}) is intact."

    batches = make_batches()
    device = next(next(iter(models.values())).parameters()).device
    for model in models.values():
        model.train()
    networks = replicate(models, device)  # under torchrun: rank 0's weights on every process
    bar = progress_bar(range(start, end), initial=start, total=steps, desc=model_name,
                       disable=not progress or not here.main)
    for step in bar:
        for optimizer in optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, lr, drop_step, lr_drop)
        try:
            batch = batches(step)
            if step == start and here.size > 1 and here.main:
                share = len(next(v for v in batch.values() if isinstance(v, torch.Tensor)))
                print(f"{model_name}: {here.size} processes x {share} samples = effective "
                      f"batch size {here.size * share}", flush=True)
            terms = step_fn(networks, to_device(batch, device), step)
            if "total" not in terms:
                raise ValueError(f"step_fn must return a 'total' loss term, got {list(terms)}")
            values = _finite_values(terms, step)
            descend([optimizers[name] for name in stepped], terms["total"], "total", step)
        except NonFiniteLossError as error:
            raise NonFiniteLossError(error.term, error.step, error.value,
                                     saved or "No checkpoint was written yet.") from None
        for name, value in values.items():
            history.setdefault(name, []).append(value)
        bar.set_postfix({name: f"{value:.4g}" for name, value in values.items()}, refresh=False)
        done = step + 1
        if done == end or (checkpoint_every and done % checkpoint_every == 0):
            if here.main:
                save_checkpoint(path, make_checkpoint(model_name, profile_name, done,
                                                      done == steps, settings, models,
                                                      optimizers, history))
            wait_for_all()
            saved = f"The checkpoint {path} (step {done}) is intact."
        if after_step is not None:
            after_step(done)
    bar.close()
    # DistributedDataParallel hands rank 0's BatchNorm statistics to the others before each
    # forward pass; after the last one, each process still holds its own.
    buffers_from_rank0(models)
    return Run(path, end, end == steps, False, history, settings)


def _matching_checkpoint(path: Path, model_name: str, profile_name: str,
                         settings: dict) -> dict | None:
    """The checkpoint at `path` if there is one made with `settings`; None (with a note) when
    it was made with others. Another model's or profile's checkpoint raises ValueError."""
    if not path.exists():
        return None
    state = load_checkpoint(path, model_name, profile_name)
    if state["settings"] != settings:
        changed = sorted(key for key in settings.keys() | state["settings"].keys()
                         if settings.get(key) != state["settings"].get(key))
        print(f"{path} was made with other settings ({', '.join(changed)} differ): "
              "training afresh")
        return None
    return state


def _finite_values(terms: Mapping[str, torch.Tensor], step: int) -> dict[str, float]:
    """The terms as floats, averaged over processes (one device sync for all), or
    NonFiniteLossError naming a term that is not finite: one of the others before "total",
    which is only their sum."""
    names = sorted(terms, key=lambda name: name == "total")
    values = mean_across(torch.stack([terms[name].detach().float().reshape(())
                                      for name in names])).tolist()
    for name, value in zip(names, values, strict=True):
        if not math.isfinite(value):
            raise NonFiniteLossError(name, step, value)
    return dict(zip(names, values, strict=True))


def load_or_train(load: Callable[[], T], train: Callable[[], object]) -> T:
    """`load()`, or, when it finds no finished checkpoint (FileNotFoundError, ValueError),
    `train()` with a note saying so and then `load()`: how an entry point (a notebook, the
    command line, `make demo`) produces what its run folder lacks."""
    try:
        return load()
    except (FileNotFoundError, ValueError) as missing:
        if world().main:  # under torchrun every process gets here; one note is enough
            print(f"note: {missing}; training it first")
        train()
        return load()
