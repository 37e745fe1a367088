"""``studio vary``, ``studio train variation`` and ``studio eval variation``."""

from __future__ import annotations

import os
import sys
import time

from ..core.errors import StudioError
from . import command_line, take_paths


def _threads() -> int:
    """Half the cores (at least one): leaves room for the rest of the machine, avoids oversubscription."""
    return max(1, (os.cpu_count() or 2) // 2)


# ---- studio vary ----------------------------------------------------------------------
def parse_bars(text: str | None, song) -> tuple[int | None, int | None]:
    """``"A:B"`` (1-based, inclusive) -> (start_tick, end_tick); None -> the whole song."""
    from ..core.timing import bars

    if text is None:
        return None, None
    parts = text.split(":")
    try:
        if len(parts) == 1:
            a = b = int(parts[0])
        elif len(parts) == 2:
            a, b = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise StudioError(f"--bars {text!r}: expected A:B, e.g. 3:6 (1-based, inclusive)") from None
    bs = bars(song)
    if a < 1 or b < a:
        raise StudioError(f"--bars {text}: bars count from 1 and A must not exceed B")
    if b > len(bs):
        raise StudioError(f"--bars {text}: the song has only {len(bs)} bars")
    return bs[a - 1].start, bs[b - 1].end


def parse_tracks(text: str | None, song) -> list[int] | None:
    if text is None:
        return None
    try:
        nums = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise StudioError(f"--tracks {text!r}: expected 1-based track numbers such as 1,2") from None
    if not nums:
        raise StudioError("--tracks: no track given")
    n = len(song.tracks)
    for t in nums:
        if not 1 <= t <= n:
            raise StudioError(f"--tracks {text}: no track {t} (the song has {n})")
    return [t - 1 for t in nums]


def vary(args) -> int:
    from .. import io

    if not 0.0 <= args.strength <= 1.0:
        raise StudioError(f"--strength {args.strength}: must be between 0 and 1")
    if args.takes < 1 or args.takes > 16:
        raise StudioError(f"--takes {args.takes}: must be between 1 and 16")
    io.check_output(args.output)
    song = io.load(args.input)
    if not song.note_count:
        raise StudioError(f"{os.path.basename(args.input)}: has no notes to vary")
    start, end = parse_bars(args.bars, song)
    tracks = parse_tracks(args.tracks, song)
    import torch

    torch.set_num_threads(_threads())
    from ..ml import variation
    from ..ml.worker.protocol import VaryRequest

    request = VaryRequest(0, song, seed=args.seed, device=args.device, strength=args.strength, start_tick=start,
                          end_tick=end, tracks=None if tracks is None else tuple(tracks), takes=args.takes,
                          mode=getattr(args, "mode", "free"))
    t0 = time.perf_counter()
    songs = variation.generate(song, request)  # as the assistant asks for them
    dt = time.perf_counter() - t0
    for s, path in zip(songs, take_paths(args.output, args.takes)):
        io.save(s, path)
        print(path)
    print(f"varied in {dt:.2f} s", file=sys.stderr)
    return 0


# ---- studio train variation -----------------------------------------------------------
def train(args) -> int:
    from ..ml import checkpoint
    from ..ml.training import fit, run_from_args
    from ..ml.variation import train as vt

    run = run_from_args(args, checkpoint.model_dir("variation"), command_line())
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    # use what the corpus cache holds; parse the corpus only when the cache is (nearly) empty
    watcher = vt.CacheWatcher("train")
    train_p = watcher()
    if len(train_p) < 100:
        train_p = vt.load_pieces("train", build=True)
    valid_p = vt.load_pieces("valid", build=False)
    extra = vt.pieces_from_folder(args.data) if args.data else []
    if not train_p or not valid_p:
        raise StudioError("no training data: the corpus cache is empty and music21's corpus could not be read")

    def refresh():  # the cache may still be filling while the model trains
        return watcher() + extra

    r = fit(vt.task(train_p + extra, valid_p, refresh=refresh, log=log), run)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"variation: step {r['step']}, best held-out loss {r['best']:.4f} nats/cell -> {run.out}")
    return 0


# ---- studio eval variation ------------------------------------------------------------
def evaluate(args) -> int:
    import json

    import torch

    from ..ml import cards
    from ..ml.variation.eval import run_eval
    from .harmonizer import CARD_NOTE

    torch.set_num_threads(_threads())
    figures = args.out
    if figures is None and not args.update_card:  # the figures go beside the weights only when asked
        import tempfile

        figures = tempfile.mkdtemp(prefix="studio-eval-variation-")
        print(f"studio: figures in {figures} (--out DIR to choose)", file=sys.stderr)
    with cards.card_context(args.update_card):
        out = run_eval(weights=args.weights, out=figures, device=args.device, limit=args.limit,
                       log=lambda m: print(m, file=sys.stderr, flush=True))
    if not args.update_card:
        print(CARD_NOTE, file=sys.stderr)
    print(json.dumps(out, indent=2))
    return 0
