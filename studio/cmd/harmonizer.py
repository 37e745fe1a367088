"""``studio harmonize``, ``studio train harmonizer`` and ``studio eval harmonizer``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..core.errors import StudioError
from . import command_line


CARD_NOTE = "studio: the model's card.json was left as it is (--update-card writes these figures into it)"


def _forward_bach_dir(out: Path) -> Path:
    return out.parent / "forward_bach" if out.name == "harmonizer" else out.with_name(out.name + "_forward_bach")


def train(args) -> int:
    """Train the harmonizer for ``--minutes`` (then the ForwardBach baseline for a tenth of that)."""
    import dataclasses
    import os

    from ..ml import checkpoint
    from ..ml.harmonizer import data as chorales
    from ..ml.harmonizer import train as ht
    from ..ml.options import STATE
    from ..ml.training import fit, run_from_args

    if args.data:
        raise StudioError("the harmonizer trains on Bach's chorales only; --data is not used for it")
    run = run_from_args(args, checkpoint.model_dir("harmonizer"), command_line())
    data = chorales.load_chorales(log=lambda m: print(m, file=sys.stderr))
    r = fit(ht.harmonizer_task(data), run)
    main = int(os.environ.get("RANK", "0")) == 0
    if main:
        print(f"harmonizer: step {r['step']}, best held-out NLL {r['best']:.4f} nats/cell -> {run.out}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return 0  # under torchrun: the baseline trains in a run of its own (python -m studio.ml.harmonizer.train --baseline)
    fb_out = _forward_bach_dir(run.out)
    fb_run = dataclasses.replace(run, out=fb_out, minutes=max(0.5, args.minutes / 10), init=None,
                                 resume=run.resume and (fb_out / STATE).exists())
    r = fit(ht.forward_bach_task(data), fb_run)
    print(f"forward_bach: step {r['step']}, best held-out NLL {r['best']:.4f} nats/cell -> {fb_out}")
    return 0


def harmonize(args) -> int:
    """``studio harmonize IN -o OUT``: four voices under the melody, written to OUT."""
    from .. import io

    io.check_output(args.output)
    song = io.load(args.input)
    if args.candidates is not None and not 1 <= args.candidates <= 64:
        raise StudioError("--candidates must be between 1 and 64")
    if args.temperature is not None and not 0.0 <= args.temperature <= 5.0:
        raise StudioError("--temperature must be between 0 and 5")
    keep = tuple(k for k in args.keep.split(",") if k.strip())
    melody = None if args.melody_track is None else args.melody_track - 1
    if args.melody_track is not None and args.melody_track < 1:
        raise StudioError(f"--melody-track counts from 1 (got {args.melody_track})")
    from ..ml import harmonizer
    from ..ml.harmonizer.api import pick_melody_track
    from ..ml.worker.protocol import HarmonizeRequest

    name = Path(args.input).name
    request = HarmonizeRequest(0, song, seed=args.seed, device=args.device, melody_track=melody, keep=keep,
                               temperature=args.temperature, candidates=args.candidates)
    try:
        out, = harmonizer.generate(song, request)  # as the assistant asks; its notes come as StudioWarning
    except StudioError as exc:
        raise StudioError(f"{name}: {exc}") from None
    io.save(out, args.output)
    given = sorted(song.tracks[pick_melody_track(song, melody)].notes)
    print(f"wrote {args.output}: " + ", ".join(f"{t.name} {len(t.notes)} notes" + (" (the melody)" if t.notes == given else "")
                                               for t in out.tracks))
    return 0


def evaluate(args) -> int:
    """``studio eval harmonizer``: held-out figures as a table and JSON (into card.json with --update-card)."""
    import json

    from ..ml import cards
    from ..ml.harmonizer import eval as he

    with cards.card_context(args.update_card):
        report = he.evaluate(weights=args.weights, limit=args.limit, device=args.device, out=args.out)
    if not args.update_card:
        print(CARD_NOTE, file=sys.stderr)
    print(he.table(report))
    print(json.dumps(report, indent=2))
    return 0
