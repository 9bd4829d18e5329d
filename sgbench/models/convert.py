"""`sgbench convert`: a foreign checkpoint (CompVis/tread, willisma/SiT, facebookresearch/DiT,
Anima-Lab/MaskDiT) once, as an sgbench safetensors file that records what it is.

The output carries the backbone family and config (architecture, routes) and the
parametrization, so a suite names only its path. Whatever the source records wins; where it
records nothing (tread files, plain state dicts) the parametrization must be given, exactly as
when loading the source directly (`sgbench.models.loading.resolve_parametrization`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sgbench.errors import UserError


def _sha256(path: Path, chunk: int = 1 << 24) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_output(out, source, force: bool = False) -> Path:
    """The output path, refused (before anything is read) when it would replace a file without
    `force`, replace the source, or is not a .safetensors name."""
    out = Path(out).expanduser()
    if out.suffix != ".safetensors":
        raise UserError(f"output must be a .safetensors file, got {out}")
    if source is not None and out.exists() and out.resolve() == Path(source).expanduser().resolve():
        raise UserError(f"output {out} is the source checkpoint itself; choose another name")
    if out.exists() and not force:
        raise UserError(f"{out} exists; pass --force to replace it")
    if out.exists() and not out.is_file():
        raise UserError(f"{out} exists and is not a file")
    return out


def convert_checkpoint(spec, out, force: bool = False) -> tuple[Path, dict]:
    """Load `spec` (a ModelSpec with a checkpoint) and write it to `out` with sgbench metadata.

    Returns (path, metadata). The metadata adds `converted_from` {file, format, entry, sha256}."""
    from sgbench.models.loading import check_model_spec, load_backbone, read_sgbench_metadata, save_sgbench_safetensors

    if spec.checkpoint is None:
        raise UserError("convert needs a source checkpoint")
    out = check_output(out, spec.checkpoint, force)
    param = check_model_spec(spec)  # cheap: a missing parametrization fails before the model is built
    model, ck, family = load_backbone(spec)
    src = Path(spec.checkpoint).expanduser()
    source = {"file": src.name, "format": ck.fmt, "entry": ck.entry, "sha256": _sha256(src)}
    if ck.meta:
        source["metadata"] = {k: v for k, v in ck.meta.items() if k not in ("family", "config", "parametrization")}
    extra = {"converted_from": source}
    if ck.step is not None:  # the source's training iteration (checkpoint sweeps read it)
        extra["train_steps"] = ck.step
    save_sgbench_safetensors(out, model, param, extra)
    return out, read_sgbench_metadata(out)
