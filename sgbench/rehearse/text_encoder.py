"""Text encoder stand-in: a tiny Hugging Face directory that `transformers.AutoTokenizer` /
`AutoModel` load offline (the `hf` text encoder kind): a random 2-layer Qwen2 (the language
model family of the paper's InternVL3-2B) of the width the T2I DiT reads, and a byte-level BPE
tokenizer trained here on a small corpus (every byte is in its alphabet, so any prompt encodes)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CORPUS = [
    "a photo of a red car next to a blue dog on the left of a green bench",
    "two cats and three birds below a yellow umbrella, right of a white clock",
    "Describe the image by detailing the color, shape, size, texture, quantity, text, and spatial "
    "relationships of the objects.",
    "a misty lake surrounded by pine trees at dusk, watercolor, highly detailed, 4k",
]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS * 4, trainers.BpeTrainer(
        vocab_size=512, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def write_text_encoder(directory, hidden_size: int = 64, seed: int = 0) -> Path:
    """Write the tiny encoder (model + tokenizer) into `directory`, replaced atomically."""
    import torch
    from transformers import Qwen2Config, Qwen2Model
    from transformers.utils import logging as hf_logging

    heads = next((h for h in (4, 2, 1) if hidden_size % h == 0 and (hidden_size // h) % 2 == 0), None)
    if heads is None:  # rotary embeddings rotate pairs of channels
        from sgbench.errors import UserError

        raise UserError(f"a stand-in text encoder needs an even width per head; the DiT reads width {hidden_size}")
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tok = tiny_tokenizer()
    config = Qwen2Config(vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=2, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                         max_position_embeddings=1024, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2Model(config)
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    hf_logging.disable_progress_bar()  # one announcement line per stand-in, not a progress bar
    model.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    os.replace(tmp, directory)
    return directory
