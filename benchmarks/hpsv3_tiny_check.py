"""sgbench's HPSv3 client and worker against the REAL `hpsv3` package, with a tiny random
Qwen2-VL on CPU (no download, no 7B model; the scores mean nothing, the plumbing is real).

    SGBENCH_HPSV3_PYTHON=/tmp/hpsv3-env/bin/python .venv/bin/python benchmarks/hpsv3_tiny_check.py

1. With the hpsv3 environment's python (`--build DIR`, a subprocess; this file then imports
   only that environment's packages): a tiny random Qwen2-VL directory (hidden 64, 2 layers,
   vision depth 2) with an offline-trained byte-level BPE tokenizer, Qwen2-VL's special tokens
   and chat template, saved with its processor; then hpsv3's own `create_model_and_processor`
   builds the reward model from it (adds `<|Reward|>`, resizes the embeddings, ranknet head) and
   its `state_dict()` is saved as `HPSv3_tiny.safetensors`, the format
   `HPSv3RewardInferencer` loads with `strict=True`.
2. With sgbench's python: `HPSv3Client` starts the real `hpsv3_worker.py` with that python,
   scores generated PNGs (different sizes and prompt lengths) twice in batches of 2, and the
   scores are checked (finite, one per image, identical across the two calls, equal to one
   padded batch of all images) and aggregated per category.

`tests/test_t2i_hpsv3_real.py` (marked slow) runs the same check.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ENV_VAR = "SGBENCH_HPSV3_PYTHON"

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

PROMPTS = [
    ("a red fox sitting in the snow, watercolor", "Animals"),
    ("a glass skyscraper at dusk", "Architecture"),
    ("a bowl of ramen with a soft boiled egg", "Food"),
    ("a misty lake surrounded by pine trees", "Natural Scenery"),
    ("an old steam locomotive crossing a bridge", "Transportation"),
]


# ----------------------------------------------------------------------------- hpsv3 environment side


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
    corpus += [p for p, _ in PROMPTS] * 4
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


# ----------------------------------------------------------------------------- sgbench side


def _pngs(out: Path, n: int) -> list[str]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = out / f"img_{i}.png"
        Image.fromarray(rng.integers(0, 256, (64 + 16 * i, 96, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def run_check(hps_python: str, work: Path, batch_size: int = 2) -> dict:
    """Build (in the hpsv3 env), then score with sgbench's client + real worker; raises on failure."""
    import numpy as np

    from sgbench.t2i.hpsv3_client import HPSv3Client, HPSv3WorkerConfig, aggregate

    work = Path(work)
    t0 = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run([hps_python, str(Path(__file__).resolve()), "--build", str(work)], capture_output=True,
                       text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"building the tiny HPSv3 failed:\n{r.stderr[-3000:]}")
    built = json.loads(r.stdout.strip().splitlines()[-1])
    t_build = time.perf_counter() - t0

    images = _pngs(work, len(PROMPTS))
    prompts = [p for p, _ in PROMPTS]
    cats = [c for _, c in PROMPTS]
    # config=None on purpose: the worker rewrites the package's own HPSv3_7B.yaml, as for the 7B model
    cfg = HPSv3WorkerConfig(python=hps_python, base_model=built["base_model"], checkpoint=built["checkpoint"],
                            device="cpu", batch_size=batch_size, startup_timeout=600)
    t0 = time.perf_counter()
    with HPSv3Client(cfg) as client:
        t_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        first = client.score(images, prompts)
        t_score = time.perf_counter() - t0
        second = client.score(images, prompts)
        mu, sigma = client.score_batch(images, prompts)  # one padded batch of all images
        info = client.info
    assert client.proc.returncode == 0, client.proc.returncode
    assert first.shape == (len(images),) and np.isfinite(first).all(), first
    assert np.array_equal(first, second), (first, second)
    # padding a batch (prompts and images of different lengths) must not change a score
    assert np.isfinite(sigma).all() and np.allclose(mu, first, rtol=1e-4, atol=1e-6), (mu, first)
    summary = aggregate(first, cats)
    assert summary["counts"] == {c: 1 for c in cats}
    assert summary["categories"] == {c: float(s) for c, s in zip(cats, first)}
    assert np.isclose(summary["overall"], float(np.mean(first)))
    return {"worker": info, "scores": first.tolist(), "sigma_first": float(sigma[0]), "summary": summary,
            "build": built, "seconds": {"build": round(t_build, 2), "worker_start": round(t_start, 2),
                                        f"score_{len(images)}_images": round(t_score, 2)}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", metavar="DIR", help="(inside the hpsv3 env) build the tiny model into DIR")
    p.add_argument("--python", default=os.environ.get(ENV_VAR), help=f"the hpsv3 env's python (default ${ENV_VAR})")
    p.add_argument("--work", default=None, help="folder for the tiny model and images (default: a temp dir)")
    args = p.parse_args(argv)
    if args.build:
        sys.stdout, proto = sys.stderr, sys.stdout  # library prints go to stderr; JSON on the last line
        built = build_tiny(Path(args.build))
        proto.write(json.dumps(built) + "\n")
        return 0
    if not args.python:
        p.error(f"set ${ENV_VAR} or --python to the python of an environment with hpsv3 installed")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        res = run_check(args.python, Path(args.work or tmp))
    print(json.dumps(res, indent=1))
    print("OK: real hpsv3 worker scored", len(res["scores"]), "images;", res["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
