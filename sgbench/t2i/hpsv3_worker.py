"""HPSv3 scoring worker: runs in the environment where `hpsv3` is installed (not sgbench's).

hpsv3 pins transformers==4.45.2 and can replace torch, so sgbench never imports it: it starts
this file with that environment's python and talks line-delimited JSON over stdin/stdout.
The file imports only the standard library at module level, so it runs without sgbench.

    <hps-env>/bin/python hpsv3_worker.py --base-model DIR --checkpoint HPSv3.safetensors [--device cpu]

Protocol (one JSON object per line; stdout carries nothing else, logs go to stderr):
    worker -> {"ready": true, "protocol": 1, "device": "cpu", "dtype": "float32"}
    client -> {"id": 7, "images": ["/abs/a.png", ...], "prompts": ["...", ...]}
    worker -> {"id": 7, "mu": [...], "sigma": [...]}        or {"id": 7, "error": "one line"}
    client -> {"cmd": "quit"}  (or closes stdin)
A failure before "ready" is reported as {"fatal": "one line"} and exit code 3.

`--scorer fake` replaces HPSv3 by a deterministic stand-in (mu = 10 * mean pixel / 255,
sigma = len(prompt) / 100) so the protocol can be tested without the 7B model; it is not a
metric.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

PROTOCOL = 1

# Run as a script, this file's folder (sgbench/t2i) is sys.path[0]; keep it from shadowing
# installed packages (hpsv3 must come from the environment, not from sgbench's modules).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]


def _one_line(e: BaseException) -> str:
    text = " ".join(f"{type(e).__name__}: {e}".split())
    return text[:500]


class FakeScorer:
    device, dtype = "cpu", "float32"

    def __call__(self, images, prompts):
        from PIL import Image

        out = []
        for path, prompt in zip(images, prompts):
            img = Image.open(path).convert("RGB")
            data = img.tobytes()
            mean = sum(data) / max(len(data), 1)
            out.append((10.0 * mean / 255.0, len(prompt) / 100.0))
        return out


class HPSv3Scorer:
    """HPSv3RewardInferencer with the user's base model directory; fp32 on CPU (its bf16 path
    fails there), bf16 on GPU as the released config says, unless --dtype overrides."""

    def __init__(self, base_model, checkpoint, device="cpu", config=None, dtype="auto"):
        import yaml
        from hpsv3 import HPSv3RewardInferencer

        if config is None:
            import hpsv3

            config = os.path.join(os.path.dirname(hpsv3.__file__), "config", "HPSv3_7B.yaml")
        with open(config) as f:
            cfg = yaml.safe_load(f)
        if dtype == "auto":
            dtype = "float32" if device == "cpu" else "bfloat16"
        cfg["model_name_or_path"] = base_model
        cfg["torch_dtype"] = dtype
        cfg["bf16"] = dtype == "bfloat16"
        self._tmp = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        yaml.safe_dump(cfg, self._tmp)
        self._tmp.close()
        self.device, self.dtype = device, dtype
        self.inferencer = HPSv3RewardInferencer(config_path=self._tmp.name, checkpoint_path=checkpoint, device=device)
        import inspect

        self._params = set(inspect.signature(self.inferencer.reward).parameters)

    def __call__(self, images, prompts):
        import torch

        # hpsv3 1.0.0's reward() runs without no_grad (its output requires grad): without this the
        # autograd graph of the whole 7B forward is kept per batch.
        # hpsv3 releases disagree on the argument order of reward(); pass by name when possible
        with torch.no_grad():
            if {"prompts", "image_paths"} <= self._params:
                rewards = self.inferencer.reward(prompts=list(prompts), image_paths=list(images))
            else:
                rewards = self.inferencer.reward(list(images), list(prompts))
        return [(float(r[0]), float(r[1])) for r in rewards.float().cpu().tolist()]  # [B, 2] = (mu, sigma)


def serve(scorer, inp, out) -> None:
    def send(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    send({"ready": True, "protocol": PROTOCOL, "device": scorer.device, "dtype": scorer.dtype})
    for line in inp:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
        except json.JSONDecodeError as e:
            send({"id": None, "error": f"bad request: {e.msg}"})
            continue
        if req.get("cmd") == "quit":
            break
        rid = req.get("id")
        try:
            images, prompts = req["images"], req["prompts"]
            if len(images) != len(prompts):
                raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
            missing = [p for p in images if not os.path.isfile(p)]
            if missing:
                raise FileNotFoundError(f"image not found: {missing[0]}")
            scores = scorer(images, prompts) if images else []
            send({"id": rid, "mu": [s[0] for s in scores], "sigma": [s[1] for s in scores]})
        except Exception as e:  # report and keep serving: one bad batch must not kill the run
            send({"id": rid, "error": _one_line(e)})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-model", help="Qwen2-VL-7B-Instruct directory (the config's model_name_or_path)")
    p.add_argument("--checkpoint", help="HPSv3 checkpoint (HPSv3.safetensors)")
    p.add_argument("--config", default=None, help="HPSv3 YAML (default: the one inside the hpsv3 package)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    p.add_argument("--scorer", default="hpsv3", choices=["hpsv3", "fake"])
    args = p.parse_args(argv)
    proto_out = sys.stdout
    sys.stdout = sys.stderr  # library prints must not corrupt the protocol stream
    try:
        if args.scorer == "fake":
            scorer = FakeScorer()
        else:
            if not args.base_model or not args.checkpoint:
                raise ValueError("--base-model and --checkpoint are required")
            scorer = HPSv3Scorer(args.base_model, args.checkpoint, args.device, args.config, args.dtype)
    except Exception as e:
        proto_out.write(json.dumps({"fatal": _one_line(e)}) + "\n")
        proto_out.flush()
        return 3
    serve(scorer, sys.stdin, proto_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
