"""Load a trained T2I DiT (sgbench safetensors with metadata) as a T2IDenoiser + its text encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from sgbench.errors import UserError


def load_t2i(path, device="cpu", text_encoder: Optional[dict] = None,
             random_prompts: Optional[Sequence[str]] = None):
    """-> (T2IDenoiser, TextEncoder, metadata), loaded through the backbone registry like every model
    (`sgbench.models.load_denoiser`). `text_encoder` overrides fields of the stored encoder spec
    (e.g. {'path': '/models/InternVL3-2B'} where the checkpoint came from elsewhere)."""
    from sgbench.models.loading import ModelSpec, load_denoiser, read_sgbench_metadata

    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"T2I checkpoint not found: {p} (set --checkpoint / model.checkpoint)")
    denoiser = load_denoiser(ModelSpec(checkpoint=str(p), family="t2i", text_encoder=dict(text_encoder or {})), device)
    if random_prompts:
        denoiser.use_prompt_pool(random_prompts)
    return denoiser, denoiser.text_encoder, read_sgbench_metadata(p)

