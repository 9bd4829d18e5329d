"""Frozen text encoders for the T2I DiT: prompts -> TextCondition (embeddings + padding mask).

Two kinds, one registry (`TEXT_ENCODERS`), built from a `TextEncoderSpec`:
- "hf": a local Hugging Face model directory (transformers AutoTokenizer/AutoModel, no hub
  access); the last hidden state (or `hidden_layer`) is the text embedding. The paper uses
  InternVL3-2B with a prompt prefix; any local encoder or decoder model works.
- "tiny": a built-in encoder for tests and CPU demos: a deterministic hashing word tokenizer,
  an embedding table and one transformer layer whose weights are drawn from `seed`, so the
  encoder needs no file and is reproduced exactly from its spec.

The trainable 2-layer adapter of the paper (`TextAdapter`) lives in the DiT
(sgbench.models.t2i_dit) because it is trained and saved with it; it is re-exported here.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn as nn

from sgbench.errors import UserError
from sgbench.models.t2i_dit import LlamaLayer, TextAdapter, TextCondition, dataclass_from_dict  # noqa: F401

# The paper's prompt prefix (appendix A.1).
PAPER_PROMPT_PREFIX = (
    "Describe the image by detailing the color, shape, size, texture, quantity, text, and spatial "
    "relationships of the objects."
)


@dataclass
class TextEncoderSpec:
    kind: str = "tiny"  # "tiny" | "hf"
    path: Optional[str] = None  # hf: local model directory
    prefix: str = ""  # prepended to every prompt (the empty prompt too)
    max_length: int = 64
    hidden_layer: int = -1  # hf: which hidden state (-1 = last)
    dtype: str = "float32"  # hf: weights dtype
    trust_remote_code: bool = False  # hf: some VLM checkpoints ship their own modelling code
    submodule: str = ""  # hf: dotted attribute of the loaded model that reads the prompt (a VLM's 'language_model')
    dim: int = 32  # tiny: embedding width
    vocab_size: int = 4096  # tiny: hash buckets
    seed: int = 0  # tiny: weights are drawn from this seed

    def __post_init__(self):
        if self.kind not in TEXT_ENCODERS:
            raise UserError(f"unknown text encoder kind {self.kind!r}; known: {', '.join(TEXT_ENCODERS)}")
        if self.kind == "hf" and not self.path:
            raise UserError("text encoder kind 'hf' needs `path` (a local Hugging Face model directory)")
        if self.max_length < 1:
            raise UserError(f"text encoder max_length must be >= 1, got {self.max_length}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TextEncoderSpec":
        return dataclass_from_dict(cls, d, "text encoder")


class TextEncoder:
    """Interface: `dim` (width of the embeddings) and `encode(prompts) -> TextCondition`."""

    dim: int
    spec: TextEncoderSpec

    def _with_prefix(self, prompts: Sequence[str]) -> list[str]:
        if isinstance(prompts, str):
            raise TypeError("encode() takes a list of prompts")
        p = self.spec.prefix
        return [f"{p} {q}".strip() if p else q for q in prompts]

    def encode(self, prompts: Sequence[str]) -> TextCondition:
        raise NotImplementedError


# ----------------------------------------------------------------------------- tiny


_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
PAD_ID, BOS_ID = 0, 1


def hash_tokenize(text: str, vocab_size: int, max_length: int) -> list[int]:
    """BOS + one id per lower-cased word/punctuation mark (crc32 into vocab_size - 2 buckets)."""
    ids = [BOS_ID] + [2 + zlib.crc32(w.encode()) % (vocab_size - 2) for w in _WORD.findall(text.lower())]
    return ids[:max_length]


def _sinusoid(length: int, dim: int) -> torch.Tensor:
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    inv = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    out = torch.zeros(length, dim, dtype=torch.float64)
    out[:, 0::2] = torch.sin(pos * inv)
    out[:, 1::2] = torch.cos(pos * inv)[:, : dim // 2]
    return out.float()


class TinyTextEncoder(TextEncoder, nn.Module):
    """Hashing tokenizer + random (seeded, frozen) embedding + sinusoidal positions + 1 layer."""

    def __init__(self, spec: TextEncoderSpec):
        nn.Module.__init__(self)
        if spec.dim % 8 or spec.dim < 8:
            raise UserError(f"tiny text encoder dim must be a positive multiple of 8, got {spec.dim}")
        self.spec, self.dim = spec, spec.dim
        g = torch.Generator().manual_seed(spec.seed)
        self.embed = nn.Embedding(spec.vocab_size, spec.dim)
        self.layer = LlamaLayer(spec.dim, num_heads=max(1, spec.dim // 16), ffn_hidden=2 * spec.dim, eps=1e-6)
        with torch.no_grad():  # weights drawn from our own generator: independent of global RNG state
            for name, p in sorted(self.named_parameters()):
                if name.endswith("norm1.weight") or name.endswith("norm2.weight"):
                    p.fill_(1.0)
                else:
                    p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))
        self.register_buffer("pos", _sinusoid(spec.max_length, spec.dim), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def tokenize(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [hash_tokenize(p, self.spec.vocab_size, self.spec.max_length) for p in self._with_prefix(prompts)]
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), PAD_ID, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        return ids, ids != PAD_ID

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> TextCondition:
        ids, mask = self.tokenize(prompts)
        ids, mask = ids.to(self.pos.device), mask.to(self.pos.device)
        h = self.embed(ids) * math.sqrt(self.dim) / 4 + self.pos[: ids.shape[1]]
        h = self.layer(h, mask) * mask[..., None]
        return TextCondition(h, mask, tuple(prompts))


# ----------------------------------------------------------------------------- hugging face


def _hidden_size(config) -> Optional[int]:
    for c in (config, getattr(config, "text_config", None), getattr(config, "llm_config", None)):
        if c is None:
            continue
        for key in ("hidden_size", "d_model", "n_embd"):
            if getattr(c, key, None):
                return int(getattr(c, key))
    return None


class HFTextEncoder(TextEncoder):
    """A local transformers model directory; embeddings = hidden state `hidden_layer`."""

    def __init__(self, spec: TextEncoderSpec, device="cpu"):
        try:
            import transformers
        except ImportError:  # pragma: no cover - transformers is a core dependency
            raise UserError("text encoder kind 'hf' needs the `transformers` package") from None
        path = Path(spec.path).expanduser()
        if not path.is_dir() or not (path / "config.json").is_file():
            raise UserError(f"text encoder directory not found or without config.json: {path} (set text_encoder.path)")
        self.spec, self.device = spec, torch.device(device)
        dtype = getattr(torch, spec.dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise UserError(f"unknown text encoder dtype {spec.dtype!r}")
        kw = dict(local_files_only=True, trust_remote_code=spec.trust_remote_code)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), **kw)
            config = transformers.AutoConfig.from_pretrained(str(path), **kw)
            model = transformers.AutoModel.from_pretrained(str(path), dtype=dtype, **kw)
        except (OSError, ValueError) as e:
            raise UserError(f"cannot load the text encoder from {path}: {str(e).splitlines()[0]}") from None
        if spec.submodule:
            for name in spec.submodule.split("."):
                if not hasattr(model, name):
                    raise UserError(f"text encoder in {path} has no submodule {spec.submodule!r} (text_encoder.submodule)")
                model = getattr(model, name)
        elif getattr(config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
            model = model.get_encoder()  # T5-style: only the encoder reads the prompt
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        self.model = model.to(self.device).eval().requires_grad_(False)
        dim = _hidden_size(config)
        if dim is None:
            raise UserError(f"cannot tell the hidden size of the text encoder in {path}")
        self.dim = dim

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> TextCondition:
        batch = self.tokenizer(
            self._with_prefix(prompts), padding=True, truncation=True, max_length=self.spec.max_length,
            return_tensors="pt",
        ).to(self.device)
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         output_hidden_states=True, return_dict=True)
        h = out.hidden_states[self.spec.hidden_layer] if out.hidden_states is not None else out.last_hidden_state
        mask = batch["attention_mask"].bool()
        return TextCondition(h.float() * mask[..., None], mask, tuple(prompts))


TEXT_ENCODERS = {"tiny": TinyTextEncoder, "hf": HFTextEncoder}


def build_text_encoder(spec: TextEncoderSpec | dict, device="cpu") -> TextEncoder:
    if isinstance(spec, dict):
        spec = TextEncoderSpec.from_dict(spec)
    if spec.kind == "hf":
        return HFTextEncoder(spec, device=device)
    return TinyTextEncoder(spec).to(device)


def t2i_denoiser(backbone, encoder: TextEncoder, random_prompts: Optional[Sequence[str]] = None):
    """T2IDenoiser whose null condition is `encoder`'s empty prompt (prefix included)."""
    from sgbench.models.t2i_dit import T2IDenoiser

    if encoder.dim != backbone.config.text_dim:
        raise UserError(f"text encoder width {encoder.dim} does not match the DiT's text_dim {backbone.config.text_dim}")
    den = T2IDenoiser(backbone, encoder.encode([""]))
    den.text_encoder = encoder
    den.use_prompt_pool(random_prompts or ())
    return den
