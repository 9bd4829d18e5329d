"""FD_DINOv2 features: sgbench's DINOv2 against facebookresearch/dinov2's own ViT-L/14, as edm2 runs it.

    git clone https://github.com/facebookresearch/dinov2 /path/to/dinov2   # any machine with internet
    .venv/bin/python benchmarks/dinov2_parity.py --dinov2-src /path/to/dinov2

Builds the hub model `dinov2.hub.backbones.dinov2_vitl14(pretrained=False)` from that checkout
(no download; seeded random weights, every tensor perturbed so no LayerScale or bias is trivial),
writes its state dict as torch-hub's `dinov2_vitl14_pretrain.pth` layout and as timm's layout
(`.safetensors`, no mask_token), loads both through `get_extractor("dinov2", ...)`, and compares
their features with edm2's `DINOv2Detector` recipe (calculate_metrics.py: float32 -> bicubic
antialiased resize to 224 -> / 255 -> ImageNet mean/std -> the hub model) on random 256 px
images. Prints the largest absolute difference and the seconds per image of each (one thread).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy/torch load
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sgbench.metrics import dinov2 as D  # noqa: E402
from sgbench.metrics.extractors import get_extractor  # noqa: E402


def edm2_features(hub_model, images: torch.Tensor) -> torch.Tensor:
    """edm2's DINOv2Detector.__call__ (resize_mode='torch'), step by step."""
    x = torch.nn.functional.interpolate(images.to(torch.float32), size=(224, 224), mode="bicubic", antialias=True)
    x = x.to(torch.float32) / 255
    x = x - torch.tensor([0.485, 0.456, 0.406]).reshape(1, -1, 1, 1)
    x = x / torch.tensor([0.229, 0.224, 0.225]).reshape(1, -1, 1, 1)
    return hub_model(x)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dinov2-src", required=True, help="a checkout of facebookresearch/dinov2 (its dinov2/ package)")
    ap.add_argument("--n", type=int, default=2, help="images")
    args = ap.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(args.dinov2_src).expanduser().resolve()))
    warnings.filterwarnings("ignore", "xFormers is")
    from dinov2.hub.backbones import dinov2_vitl14

    torch.manual_seed(0)
    hub = dinov2_vitl14(pretrained=False).eval()
    with torch.no_grad():
        for p in hub.parameters():  # the hub's init leaves biases at 0 and LayerScale at 1
            p.add_(torch.randn_like(p) * 0.02)
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, size=(args.n, 3, 256, 256), dtype=np.uint8))
    with torch.no_grad():
        t = time.perf_counter()
        want = edm2_features(hub, images)
        t_hub = (time.perf_counter() - t) / args.n
    print(f"hub model: {len(hub.state_dict())} tensors, pos_embed {tuple(hub.pos_embed.shape)}, features {tuple(want.shape)}")
    with tempfile.TemporaryDirectory() as tmp:
        hub_file = Path(tmp) / D.WEIGHTS_FILE
        torch.save(hub.state_dict(), hub_file)
        state = {k: v for k, v in hub.state_dict().items() if k != "mask_token"}
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(Path(tmp) / "model.safetensors"))
        for path in (hub_file, Path(tmp) / "model.safetensors"):
            ext = get_extractor("dinov2", weights_path=str(path), batch_size=args.n)
            t = time.perf_counter()
            got = ext(images)["pool"]
            t_ours = (time.perf_counter() - t) / args.n
            diff = (got - want).abs().max().item()
            print(f"{ext.layout:9s} file: max |sgbench - edm2/hub| = {diff:.3g} (features up to "
                  f"{want.abs().max().item():.3g}); s/image: sgbench {t_ours:.2f}, hub {t_hub:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
