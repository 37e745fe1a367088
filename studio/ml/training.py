"""One training loop for every model: ``fit(task, run)``.

A model's ``train.py`` describes its training as a :class:`Task` (the module, its config, a
stream of batches, the loss, the held-out evaluation); ``fit`` does the rest the same way for
all of them:

* a wall-clock budget (``run.minutes``) or a step budget, a learning rate with linear warm-up
  and a cosine decay over the run;
* ``run.resume``: continue from ``out/state.pt`` (weights, optimizer, step, elapsed time, best
  score and the random streams of torch, numpy, Python and the batch stream);
  ``run.init``: start from the weights of a model folder (a warm start, e.g. the shipped model);
* a checkpoint every ``run.checkpoint_minutes`` and at the end: the held-out evaluation, one
  row in ``out/log.jsonl``, the best weights (fp16 safetensors + config.json) in ``out``, the
  resumable state in ``out/state.pt``, the learning curve in ``out/learning_curve.png`` (when
  matplotlib is installed; training never needs it);
* mixed precision (bfloat16 autocast) on CUDA;
* DDP under ``torchrun`` (NCCL on GPUs, gloo on the CPU; see ``ddp.py``): every rank draws its
  own batches, rank 0 evaluates, saves and logs;
* a progress bar with the time left (tqdm) on a terminal, plain log lines otherwise.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..core.errors import StudioError
from . import checkpoint, ddp
from .options import STATE

LOG = "log.jsonl"
CURVE = "learning_curve.png"


@dataclass
class Task:
    """What ``fit`` needs to know about one model; its ``train.py`` builds it.

    ``batches(seed)`` returns a callable that draws the next training batch (tensors, or tuples,
    lists or dicts of them, on the CPU); when it has an ``rng`` attribute (a numpy Generator) its
    state is saved with the checkpoints. ``loss(net, batch)`` is the scalar to minimise (``net``
    may be the DDP wrapper: call it, not its attributes). ``evaluate(model, device)`` returns the
    held-out figures, ``score`` among them (lower is better; the best score's weights are kept).
    ``meta(info)`` may add model-specific entries to config.json (``info``: step, minutes,
    metrics, command, seed, init, tokens).
    """

    name: str
    model: torch.nn.Module
    config: Any
    batches: Callable[[int], Callable[[], Any]]
    loss: Callable[[torch.nn.Module, Any], torch.Tensor]
    evaluate: Callable[[torch.nn.Module, torch.device], dict]
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple = (0.9, 0.98)
    warmup: int = 100
    min_lr: float = 0.05  # the cosine ends at this fraction of ``lr``
    clip: float = 1.0
    tokens: Callable[[Any], int] | None = None  # items a batch trains on (logged as "tokens")
    meta: Callable[[dict], dict] | None = None
    refresh: Callable[[], Callable[[int], Callable[[], Any]] | None] | None = None  # a newer ``batches``
    refresh_every_s: float = 900.0
    # ``grow(model, weights, old_config)`` loads weights of a smaller configuration into ``model``
    # so that it computes the same function (a warm start for a larger network); None: no growing
    grow: Callable[[torch.nn.Module, dict, dict], None] | None = None


@dataclass
class Run:
    """How one training run goes (the same fields for every model)."""

    out: Path
    minutes: float = 30.0
    device: str = "auto"
    seed: int = 0
    resume: bool = False
    init: Path | None = None
    checkpoint_minutes: float = 3.0
    max_steps: int | None = None
    amp: bool = True
    command: str = ""
    threads: int | None = None
    progress: bool | None = None  # None: a bar when stderr is a terminal
    log: Callable[[str], None] = field(default=lambda m: print(m, file=sys.stderr, flush=True))


def fit(task: Task, run: Run) -> dict:
    """Train ``task`` as ``run`` says; returns the final state (step, best score, elapsed, ...)."""
    device = checkpoint.pick_device(run.device) if isinstance(run.device, str) else run.device
    if device.type == "cpu" and run.threads:
        torch.set_num_threads(run.threads)
    d, device = ddp.setup(device)
    out = Path(run.out)
    log = run.log if d.main else (lambda m: None)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
    model = task.model
    state = {"step": 0, "elapsed": 0.0, "best": math.inf, "tokens": 0, "runs": 0}
    saved = _load_state(out, task) if run.resume else None
    if run.resume and saved is None:
        raise StudioError(f"nothing to resume in {out}: it holds no {STATE} from an earlier run of this model")
    if saved is None and run.init is not None:
        _warm_start(model, task, Path(run.init))
        log(f"{task.name}: started from the weights in {run.init}")
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=task.lr, weight_decay=task.weight_decay, betas=task.betas)
    _seed_all(run.seed + 1000 * d.rank)
    stream = task.batches(run.seed + 1000 * d.rank)
    if saved is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        state.update(saved["state"])
        if d.main and saved.get("rng"):
            _set_rng(saved["rng"], stream)
        else:  # the other ranks: fresh streams, different from the first run's
            _seed_all(run.seed + 1000 * d.rank + state["step"])
            stream = task.batches(run.seed + 1000 * d.rank + state["step"])
        log(f"{task.name}: resumed at step {state['step']} ({state['elapsed'] / 60:.1f} min trained before)")
    state["runs"] += 1
    net = ddp.wrap(model, d, device)
    use_amp = run.amp and device.type == "cuda"
    n_params = sum(p.numel() for p in model.parameters())
    log(f"{task.name}: {n_params / 1e6:.2f} M parameters on {device}"
        + (f", {d.world} processes" if d.enabled else "") + f", {run.minutes:g} min from step {state['step']}")

    budget = run.minutes * 60.0
    plan = state["elapsed"] + budget  # the learning-rate schedule spans everything trained so far and this run
    t_start = time.time()
    prior = state["elapsed"]
    last_ckpt = last_refresh = t_start
    run_loss, run_n = 0.0, 0
    start_step = state["step"]
    bar = _bar(run, d.main, budget)
    try:
        while True:
            now = time.time()
            stop = now - t_start >= budget or (run.max_steps is not None and state["step"] - start_step >= run.max_steps)
            if ddp.any_true(stop, d, device):
                break
            state["elapsed"] = prior + (now - t_start)
            lr = _lr(task, state["step"], state["elapsed"] / plan)
            for g in opt.param_groups:
                g["lr"] = lr
            batch = _to(stream(), device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = task.loss(net, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if task.clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), task.clip)
            opt.step()
            state["step"] += 1
            if task.tokens is not None:
                state["tokens"] += int(task.tokens(batch)) * d.world
            run_loss += float(loss.detach())
            run_n += 1
            if bar is not None:
                bar.update(min(budget, time.time() - t_start) - bar.n)
                bar.set_postfix(step=state["step"], loss=f"{run_loss / run_n:.4f}", refresh=False)
            if task.refresh is not None and time.time() - last_refresh >= task.refresh_every_s:
                last_refresh = time.time()
                fresh = task.refresh()
                if fresh is not None:
                    stream = fresh(run.seed + 1000 * d.rank + state["step"])
                    log(f"{task.name}: training data refreshed")
            due = time.time() - last_ckpt >= run.checkpoint_minutes * 60
            if ddp.any_true(due, d, device):
                state["elapsed"] = prior + (time.time() - t_start)
                _checkpoint(task, run, model, opt, state, stream, device, d, run_loss / max(1, run_n), lr, log, bar)
                run_loss, run_n, last_ckpt = 0.0, 0, time.time()
        state["elapsed"] = prior + (time.time() - t_start)
        _checkpoint(task, run, model, opt, state, stream, device, d, run_loss / max(1, run_n),
                    opt.param_groups[0]["lr"], log, bar)
    finally:
        if bar is not None:
            bar.close()
        ddp.cleanup(d)
    return dict(state)


# ---- pieces ---------------------------------------------------------------------------------
def _lr(task: Task, step: int, frac: float) -> float:
    warm = min(1.0, (step + 1) / max(1, task.warmup))
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, frac))))
    return task.lr * warm * (task.min_lr + (1 - task.min_lr) * cos)


def _to(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(v, device) for v in batch)
    return batch


def _config_dict(config) -> dict:
    return asdict(config) if is_dataclass(config) else dict(config)


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _rng_state(stream) -> dict:
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    rng = getattr(stream, "rng", None)
    if isinstance(rng, np.random.Generator):
        st["stream"] = rng.bit_generator.state
    return st


def _set_rng(st: dict, stream) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available() and len(st["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(st["cuda"])
    rng = getattr(stream, "rng", None)
    if "stream" in st and isinstance(rng, np.random.Generator):
        rng.bit_generator.state = st["stream"]


def _load_state(out: Path, task: Task) -> dict | None:
    path = out / STATE
    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if saved.get("task") != task.name:
        raise StudioError(f"{out} holds a {saved.get('task')} run, not a {task.name} run")
    if saved.get("config") != _config_dict(task.config):
        raise StudioError(f"the run in {out} has another model configuration than this one; "
                          "resume it with the same settings or train into a new folder")
    return saved


def _warm_start(model: torch.nn.Module, task: Task, folder: Path) -> None:
    from safetensors.torch import load_file

    if not (folder / "model.safetensors").exists():
        raise StudioError(f"no trained weights in {folder} to start from")
    meta = json.loads((folder / "config.json").read_text())
    weights = {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(str(folder / "model.safetensors")).items()}
    if meta.get("config") == _config_dict(task.config):
        model.load_state_dict(weights)
        return
    if task.grow is None:
        raise StudioError(f"the weights in {folder} belong to another configuration of the {task.name} model")
    task.grow(model, weights, meta.get("config") or {})


def _checkpoint(task, run, model, opt, state, stream, device, d, train_loss, lr, log, bar) -> None:
    if not d.main:
        return
    out = Path(run.out)
    metrics = task.evaluate(model, device)
    model.train()
    score = float(metrics.get("score", math.nan))
    row = {"step": state["step"], "elapsed": round(state["elapsed"], 1), "lr": lr,
           "train_loss": round(train_loss, 5), **({"tokens": state["tokens"]} if state["tokens"] else {}),
           "valid": {k: (round(v, 5) if isinstance(v, float) else v) for k, v in metrics.items()}}
    with open(out / LOG, "a") as fh:
        fh.write(json.dumps(row) + "\n")
    msg = f"{task.name}: step {state['step']}, train loss {train_loss:.4f}, held-out score {score:.4f}"
    if bar is not None:
        bar.write(msg, file=sys.stderr)
    else:
        log(msg)
    info = {"step": state["step"], "minutes": round(state["elapsed"] / 60, 2), "metrics": metrics,
            "command": run.command, "seed": run.seed, "init": str(run.init) if run.init else None,
            "tokens": state["tokens"]}
    if not score > state["best"]:  # also when the score is nan (no held-out data)
        state["best"] = score if not math.isnan(score) else state["best"]
        extra = {"steps": state["step"], "minutes": info["minutes"], "metrics": metrics, "command": run.command,
                 "seed": run.seed, "init": info["init"], **(task.meta(info) if task.meta else {})}
        checkpoint.save(model, task.config, out, extra)
    tmp = out / (STATE + ".part")
    torch.save({"task": task.name, "config": _config_dict(task.config), "model": model.state_dict(),
                "opt": opt.state_dict(), "state": dict(state), "rng": _rng_state(stream)}, tmp)
    os.replace(tmp, out / STATE)
    try:
        plot_curve(out / LOG, out / CURVE, task.name)
    except ImportError:
        pass  # matplotlib is optional: the JSONL log holds the same figures
    except Exception as exc:  # a plotting problem never stops training
        log(f"learning curve not drawn: {exc}")


def plot_curve(log_path: Path, png: Path, title: str = "") -> None:
    """Train loss and held-out score against steps, from a ``log.jsonl`` (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot([r["step"] for r in rows], [r["train_loss"] for r in rows], label="train (mean since last point)")
    ax.plot([r["step"] for r in rows], [r["valid"].get("score", math.nan) for r in rows], "o-", label="held-out")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"{title}: learning curve" if title else "learning curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = png.with_suffix(".part.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, png)


def _bar(run: Run, main: bool, budget: float):
    show = run.progress if run.progress is not None else sys.stderr.isatty()
    if not (main and show):
        return None
    import shutil

    from tqdm import tqdm

    return tqdm(total=round(budget), unit="s", file=sys.stderr, ncols=shutil.get_terminal_size().columns,
                bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} s [{elapsed}<{remaining}{postfix}]")


def run_from_args(args, default_out: Path, command: str = "") -> Run:
    """A :class:`Run` from options parsed with :func:`studio.ml.options.add_train_arguments`."""
    from .options import check_train_arguments

    out = check_train_arguments(args, default_out)
    return Run(out=out, minutes=args.minutes, device=args.device, seed=args.seed, resume=args.resume,
               init=Path(args.init) if args.init else None, checkpoint_minutes=args.checkpoint_minutes,
               max_steps=args.max_steps, command=command, threads=args.threads or 1)
