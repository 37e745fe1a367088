"""``studio harmonize``, ``studio train harmonizer`` and ``studio eval harmonizer``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ..core.errors import StudioError


def _forward_bach_dir(out: Path) -> Path:
    return out.parent / "forward_bach" if out.name == "harmonizer" else out.with_name(out.name + "_forward_bach")


def train(args) -> int:
    """Train the harmonizer for ``--minutes`` (then the ForwardBach baseline for a tenth of that)."""
    import torch

    from ..ml import checkpoint, chorales
    from ..ml import harmonizer_train as ht

    if args.minutes <= 0:
        raise StudioError("--minutes must be positive")
    if args.data:
        raise StudioError("the harmonizer trains on Bach's chorales only; --data is not used for it")
    device = checkpoint.pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)  # leave the other cores to the rest of the machine
    out = Path(args.out) if args.out else checkpoint.model_dir("harmonizer")
    command = "studio " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["train"] else ""
    data = chorales.load_chorales(log=lambda m: print(m, file=sys.stderr))
    fb_minutes = max(0.5, args.minutes / 10)
    r = ht.train_harmonizer(out, args.minutes, device, seed=args.seed, chorales=data, command=command)
    print(f"harmonizer: {r['steps']} steps, best held-out NLL {r['best_valid_given_soprano']:.4f} nats/cell -> {out}")
    if not getattr(args, "skip_baseline", False):
        fb_out = _forward_bach_dir(out)
        r = ht.train_forward_bach(fb_out, fb_minutes, device, seed=args.seed, chorales=data, command=command)
        print(f"forward_bach: {r['steps']} steps, best held-out NLL {r['best_valid_nll']:.4f} nats/cell -> {fb_out}")
    return 0
