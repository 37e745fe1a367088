"""The options every ``studio train MODEL`` run shares (torch-free: the command line reads them
before any model is imported)."""

from __future__ import annotations

from pathlib import Path

from .. import argtypes
from ..core.errors import StudioError

STATE = "state.pt"  # what a resumable run leaves in its folder (studio.ml.training writes it)


def add_train_arguments(ap, minutes=argtypes.minutes, seed=argtypes.seed, count=argtypes.count) -> None:
    """The run options of ``studio train MODEL`` and ``python -m studio.ml.MODEL.train``; ``minutes``,
    ``seed`` and ``count`` are the argparse types of those values (the command line passes its
    checked ones)."""
    ap.add_argument("--out", default=None, metavar="DIR", help="where weights, state.pt and log.jsonl go")
    ap.add_argument("--minutes", type=minutes, default=30.0, metavar="M", help="wall-clock minutes of this run")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--seed", type=seed, default=0)
    ap.add_argument("--resume", action="store_true", help="continue the run in --out (weights, optimizer, step, RNG)")
    ap.add_argument("--init", default=None, metavar="DIR", help="start from the weights in this model folder")
    ap.add_argument("--checkpoint-minutes", type=argtypes.real(0.0, open_lo=True), default=3.0, metavar="M", help="evaluate and save this often")
    ap.add_argument("--max-steps", type=count, default=None, metavar="N", help="stop after N steps of this run")
    ap.add_argument("--threads", type=count, default=None, metavar="N", help="CPU threads (default: 1)")


def check_train_arguments(args, default_out: Path) -> Path:
    """Check the shared options; return the run folder."""
    if not args.minutes > 0:
        raise StudioError("--minutes must be positive")
    if args.max_steps is not None and args.max_steps < 1:
        raise StudioError("--max-steps must be at least 1")
    if not args.checkpoint_minutes > 0:
        raise StudioError("--checkpoint-minutes must be positive")
    if args.threads is not None and args.threads < 1:
        raise StudioError("--threads must be at least 1")
    if args.resume and args.init:
        raise StudioError("--resume continues a run and --init starts one: give one of them")
    out = Path(args.out) if args.out else Path(default_out)
    if args.resume and not (out / STATE).exists():
        raise StudioError(f"--resume: nothing to resume in {out} (no {STATE})")
    if args.init and not (Path(args.init) / "model.safetensors").exists():
        raise StudioError(f"--init {args.init}: no trained weights there")
    return out
