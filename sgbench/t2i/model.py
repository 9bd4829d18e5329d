"""Load a trained T2I DiT (sgbench safetensors with metadata) as a T2IDenoiser + its text encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from sgbench.errors import UserError


def load_t2i(path, device="cpu", text_encoder: Optional[dict] = None,
             random_prompts: Optional[Sequence[str]] = None):
    """-> (T2IDenoiser, TextEncoder, metadata). `text_encoder` overrides fields of the stored
    encoder spec (e.g. {'path': '/models/InternVL3-2B'} where the checkpoint came from elsewhere)."""
    from safetensors.torch import load_file

    from sgbench.models.loading import read_sgbench_metadata
    from sgbench.models.t2i_dit import T2IDiT, T2IDiTConfig
    from sgbench.models.text_encoders import TextEncoderSpec, build_text_encoder, t2i_denoiser

    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"T2I checkpoint not found: {p} (set --checkpoint / model.checkpoint)")
    meta = read_sgbench_metadata(p)  # UserError for unreadable files
    if meta is None:
        raise UserError(f"{p} has no sgbench metadata; T2I checkpoints are written by `sgbench train` (task t2i)")
    try:
        state = load_file(str(p))
    except Exception as e:  # safetensors raises its own error types
        raise UserError(f"cannot read {p}: {' '.join(str(e).split())[:200]}") from None
    if meta.get("family") not in ("t2i", "t2i_dit"):
        raise UserError(f"{p} holds a {meta.get('family')!r} model, not a T2I DiT")
    config = T2IDiTConfig.from_dict(meta["config"])
    model = T2IDiT(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise UserError(f"{p} does not fit its T2I DiT config: {str(e).splitlines()[0]}") from None
    spec = TextEncoderSpec.from_dict({**meta.get("text_encoder", {}), **(text_encoder or {})})
    encoder = build_text_encoder(spec, device=device)
    denoiser = t2i_denoiser(model.to(device).eval(), encoder, random_prompts)
    return denoiser, encoder, meta

