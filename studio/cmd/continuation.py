"""``studio continue``, ``studio train continuation`` and ``studio eval continuation``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..core.errors import StudioError
from . import command_line, take_paths


def parse_density(text: str | None, n_tracks: int):
    """``--density``: one level for every track (sparser, as-before, denser) or ``1=denser,3=sparser``
    (1-based tracks; the others as before)."""
    from ..ml.continuation.texture import density_factor

    if not text:
        return None
    if "=" not in text:
        levels = [text] * n_tracks
    else:
        levels = _per_track_density(text, n_tracks)
    for level in levels:
        try:
            density_factor(level)
        except ValueError as exc:
            raise StudioError(f"--density: {exc}") from None
    return levels


def _per_track_density(text: str, n_tracks: int) -> list[str]:
    levels = ["as before"] * n_tracks
    for item in text.split(","):
        track, _, level = item.partition("=")
        try:
            i = int(track) - 1
        except ValueError:
            raise StudioError(f"--density: {item!r} is not TRACK=LEVEL") from None
        if not 0 <= i < n_tracks:
            raise StudioError(f"--density: track {track} does not exist (the song has {n_tracks})")
        levels[i] = level
    return levels


def continue_(args) -> int:
    """Write ``--bars`` more bars after IN (or from ``--from-bar``) into OUT (OUT-1, OUT-2... for takes)."""
    from .. import io
    from ..ml import continuation
    from ..ml.worker.protocol import ContinueRequest

    song = io.load(args.input)
    io.check_output(args.output)
    if args.from_bar is not None:
        from ..core.timing import bars

        n = len(bars(song))
        if args.from_bar > n + 1:  # new bars start inside the song or right after its end
            raise StudioError(f"--from-bar {args.from_bar}: {Path(args.input).name} has {n} bar{'s' if n != 1 else ''}; "
                              f"continue from bar 1 to {n + 1}")
    out_dir = Path(args.output).parent
    if str(out_dir) and not out_dir.exists():
        raise StudioError(f"{args.output}: the folder {out_dir} does not exist")
    request = ContinueRequest(0, song, seed=args.seed, device=args.device, bars=args.bars, from_bar=args.from_bar,
                              temperature=args.temperature, top_p=args.top_p, takes=args.takes,
                              key_strength=args.key_strength,
                              density=tuple(parse_density(args.density, len(song.tracks)) or ()),
                              keep_range=args.keep_range, cadence=args.cadence,
                              smooth_lines=getattr(args, "smooth_lines", False),
                              follow_density=False if getattr(args, "free_density", False) else None)
    takes = continuation.generate(song, request)  # as the assistant asks for them
    paths = take_paths(args.output, len(takes))
    for take, path in zip(takes, paths):
        io.save(take, path)
    added = [t.note_count - song.note_count for t in takes]
    print(f"continued {Path(args.input).name} by {args.bars} bar(s): "
          + ", ".join(f"{p.name} ({a:+d} notes)" for p, a in zip(paths, added)))
    return 0


MIN_CACHED = 100  # training pieces the corpus cache must hold before training uses it as it is


def train(args) -> int:
    """Tokenize the corpus (once) and train for ``--minutes``; weights go to ``--out``."""
    import os

    from ..ml import checkpoint
    from ..ml.continuation import train as ct
    from ..ml.training import fit, run_from_args

    if args.data and not Path(args.data).is_dir():
        raise StudioError(f"{args.data}: not a folder")
    run = run_from_args(args, checkpoint.model_dir("continuation"), command_line())
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    path = ct.default_dataset_path()
    if args.data:
        path = path.with_name(path.stem + "_with_user.npz")
    # tokenize what the corpus cache holds (a minute or two; it may have grown); parse the corpus
    # first only when the cache is (nearly) empty, as for the variation model
    from ..ml import corpus

    data = ct.build_dataset(path, args.data, build_corpus=corpus.cached_pieces("train") < MIN_CACHED, log=log)
    main = int(os.environ.get("RANK", "0")) == 0
    if main:
        log(json.dumps(ct.summary(data)))
    batch = 64 if checkpoint.pick_device(args.device).type == "cuda" else 8
    r = fit(ct.task(data, batch=batch, log=log), run)
    if main:
        print(f"continuation: step {r['step']}, {r['tokens']:,} tokens, best held-out NLL {r['best']:.4f} nats/token "
              f"-> {run.out}")
    return 0


def evaluate(args) -> int:
    """Held-out NLL, continuation metrics, speed; printed as JSON and written into card.json."""
    from ..ml import checkpoint
    from ..ml.continuation import eval as ce

    folder = Path(args.weights) if args.weights else checkpoint.model_dir("continuation")
    if not (folder / "model.safetensors").exists():
        raise StudioError(f"no trained weights in {folder} (run `studio train continuation` first)")
    report = ce.evaluate(folder, device=args.device, limit=args.limit or 60,
                         log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.update_card:
        ce.write_card(folder, report)
    else:
        from .harmonizer import CARD_NOTE

        print(CARD_NOTE, file=sys.stderr)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "continuation_eval.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0
