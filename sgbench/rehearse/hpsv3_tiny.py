"""Build a tiny HPSv3 reward model: a random Qwen2-VL base model directory and the HPSv3
checkpoint that the real `hpsv3` package builds from it. Runs in the HPSv3 environment, not
sgbench's (it imports only that environment's packages), as a script:

    <hps-env>/bin/python sgbench/rehearse/hpsv3_tiny.py OUT_DIR

prints one JSON line {"base_model", "checkpoint", "config", "n_params", "n_keys"}.

1. a tiny random Qwen2-VL (hidden 64, 2 layers, vision depth 2) with a byte-level BPE tokenizer
   trained offline on HPSv3's own instruction text (every byte is in its alphabet), Qwen2-VL's
   special tokens and chat template, saved with its processor;
2. hpsv3's own `create_model_and_processor` builds the reward model from it (adds `<|Reward|>`,
   resizes the embeddings, ranknet head) and its `state_dict()` is saved as
   `HPSv3_tiny.safetensors`, the format `HPSv3RewardInferencer` loads with `strict=True`.
`sgbench run --rehearse` (sgbench.rehearse.hpsv3) and benchmarks/hpsv3_tiny_check.py use it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# Run as a script, this file's folder is sys.path[0]; keep it from shadowing installed packages.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

# Qwen2-VL-7B-Instruct's chat template (what its processor applies to HPSv3's messages).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
            "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
            "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]

EXTRA_CORPUS = ["a red fox sitting in the snow, watercolor", "a glass skyscraper at dusk",
                "a bowl of ramen with a soft boiled egg", "a misty lake surrounded by pine trees"]


def build_tiny(out: Path) -> dict:
    """Tiny random Qwen2-VL + processor in out/qwen2vl_tiny, matching HPSv3 checkpoint and YAML."""
    import torch
    import yaml
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (Qwen2TokenizerFast, Qwen2VLConfig, Qwen2VLForConditionalGeneration,
                              Qwen2VLImageProcessor, Qwen2VLProcessor)

    import hpsv3
    from hpsv3.dataset.data_collator_qwen import INSTRUCTION, prompt_with_special_token
    from hpsv3.train import create_model_and_processor
    from hpsv3.utils.parser import DataConfig, ModelConfig, PEFTLoraConfig, TrainingConfig, parse_args_with_yaml

    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    base = out / "qwen2vl_tiny"

    # tokenizer: byte-level BPE trained offline on HPSv3's own instruction text and the prompts
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = [INSTRUCTION, prompt_with_special_token, "You are a helpful assistant. user assistant system"]
    corpus += EXTRA_CORPUS * 4
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=600, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = Qwen2TokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                             unk_token=None, bos_token=None, errors="replace")
    tok.chat_template = CHAT_TEMPLATE
    processor = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(), tokenizer=tok, chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(base)

    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    config = Qwen2VLConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},  # sums to head_dim / 2 = 8
        tie_word_embeddings=False, torch_dtype="float32",
        vision_config={"depth": 2, "embed_dim": 32, "num_heads": 2, "mlp_ratio": 2, "hidden_size": 64,
                       "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_chans": 3},
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        vision_token_id=ids["<|vision_pad|>"],
    )
    Qwen2VLForConditionalGeneration(config).save_pretrained(base, safe_serialization=True)

    # HPSv3's YAML pointing at the tiny model (fp32: the bf16 path fails on CPU)
    with open(Path(hpsv3.__file__).parent / "config" / "HPSv3_7B.yaml") as f:
        cfg = yaml.safe_load(f)
    cfg.update(model_name_or_path=str(base), torch_dtype="float32", bf16=False)
    yaml_path = out / "HPSv3_tiny.yaml"
    yaml_path.write_text(yaml.safe_dump(cfg))

    # the checkpoint: the reward model hpsv3 itself builds from that YAML, state_dict as safetensors
    (_, training_args, model_config, peft_lora_config), _ = parse_args_with_yaml(
        (DataConfig, TrainingConfig, ModelConfig, PEFTLoraConfig), str(yaml_path), is_train=False)
    model, _, _ = create_model_and_processor(model_config=model_config, peft_lora_config=peft_lora_config,
                                             training_args=training_args)
    import safetensors.torch

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    ckpt = out / "HPSv3_tiny.safetensors"
    safetensors.torch.save_file(state, str(ckpt))
    return {"base_model": str(base), "checkpoint": str(ckpt), "config": str(yaml_path),
            "n_params": sum(v.numel() for v in state.values()), "n_keys": len(state)}


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: hpsv3_tiny.py OUT_DIR", file=sys.stderr)
        return 2
    proto, sys.stdout = sys.stdout, sys.stderr  # library prints go to stderr; JSON on the last line
    built = build_tiny(Path(args[0]))
    proto.write(json.dumps(built) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
