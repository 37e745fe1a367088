"""Weights on disk: fp16 safetensors plus a JSON config, and the choice of device.

A model folder holds ``model.safetensors`` (tensors, stored fp16) and ``config.json``
(the model's Config dataclass as a dict, plus anything the loader needs).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .paths import REPO_ROOT, model_dir  # noqa: F401  (re-exported)


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` means CUDA if there is a GPU, then Apple's MPS, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from ..core.errors import StudioError

        raise StudioError("the models were asked to run on a CUDA GPU, but torch sees none")
    return torch.device(name)


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    return device.type.upper()


def save(model: torch.nn.Module, config, folder: str | Path, extra: dict | None = None) -> None:
    """Write fp16 weights and the config atomically into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {
        k: (v.detach().to("cpu").half() if v.is_floating_point() else v.detach().to("cpu")).contiguous()
        for k, v in model.state_dict().items()
    }
    cfg = asdict(config) if is_dataclass(config) else dict(config)
    meta = {"config": cfg, **(extra or {})}
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    os.close(fd)
    save_file(tensors, tmp)
    os.replace(tmp, folder / "model.safetensors")
    tmpj = folder / "config.json.tmp"
    tmpj.write_text(json.dumps(meta, indent=2))
    os.replace(tmpj, folder / "config.json")


def load(folder: str | Path, build, device: torch.device | str = "cpu"):
    """Load ``(model, meta)`` from ``folder``; ``build(config_dict) -> nn.Module`` makes the module.

    Weights are cast back to float32 on the CPU (fp16 matmuls are slow there) and kept
    fp32 on CUDA too unless the caller casts them.
    """
    folder = Path(folder)
    if not (folder / "model.safetensors").exists():
        from ..core.errors import StudioError

        raise StudioError(f"no trained weights in {folder} (run `studio train ...` first)")
    meta = json.loads((folder / "config.json").read_text())
    model = build(meta["config"])
    state = load_file(str(folder / "model.safetensors"))
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    model.load_state_dict(state)
    model.to(device).eval()
    return model, meta
