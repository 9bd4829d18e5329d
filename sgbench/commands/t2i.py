"""`sgbench t2i`: text-to-image scoring tools (GenEval, HPSv3, the CPU shapes world).
T2I suites (generate + score + search + report) run with `sgbench run suites/t2i_*.yaml`.

    sgbench t2i geneval IMAGEDIR [...]              score a GenEval image folder
    sgbench t2i geneval-summary results.jsonl       GenEval's summary_scores.py
    sgbench t2i hpsv3 MANIFEST.jsonl [...]          HPSv3 through a worker in the hpsv3 env
    sgbench t2i shapes-prompts --out meta.jsonl     GenEval-format prompts of the shapes world
"""

from __future__ import annotations

import json
from pathlib import Path


def register(subparsers):
    from sgbench.config import limits as L

    p = subparsers.add_parser("t2i", help="text-to-image benchmarks: GenEval, HPSv3, shapes world",
                              description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="t2i_command", metavar="SUBCOMMAND")

    g = sub.add_parser("geneval", help="score images in GenEval's folder layout")
    g.add_argument("imagedir", help="<dir>/<00000>/metadata.jsonl + samples/<0000>.png")
    g.add_argument("--detector", choices=["mask2former", "shapes"], default="mask2former",
                   help="mask2former (mmdet 3.x, needs config + checkpoint + CLIP) or the shapes world's analytic one")
    g.add_argument("--detector-config", help="mmdet config (mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco.py)")
    g.add_argument("--detector-checkpoint", help="Mask2Former Swin-S COCO checkpoint (.pth)")
    g.add_argument("--clip-weights", help="OpenAI ViT-L/14 weights file for open_clip")
    g.add_argument("--clip-arch", default="ViT-L-14-quickgelu",
                   help="open_clip model name of --clip-weights (default ViT-L-14-quickgelu, GenEval's)")
    g.add_argument("--device", default="cpu", metavar="DEVICE", help="torch device, e.g. cpu, cuda, cuda:1 (default cpu)")
    g.add_argument("--options", nargs="*", default=[], metavar="KEY=VALUE",
                   help="GenEval options: threshold, counting_threshold, max_objects, max_overlap, "
                        "position_threshold, bgcolor, crop")
    g.add_argument("--outfile", default=None, help="results .jsonl (default: <imagedir>/results.jsonl)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar (drawn only when stderr is a terminal)")

    s = sub.add_parser("geneval-summary", help="per-tag and overall GenEval scores of a results .jsonl")
    s.add_argument("results", help="results .jsonl written by `sgbench t2i geneval`")
    s.add_argument("--json", action="store_true", help="print JSON instead of text")

    h = sub.add_parser("hpsv3", help="score images with HPSv3 (per category + overall, Table 4)")
    h.add_argument("manifest", help=".jsonl with {image, prompt, category} per line")
    h.add_argument("--hps-python", required=True, help="python of an environment with `pip install hpsv3`")
    h.add_argument("--hps-base-model", required=True, help="Qwen2-VL-7B-Instruct directory")
    h.add_argument("--hps-checkpoint", required=True, help="HPSv3.safetensors")
    h.add_argument("--hps-config", default=None, help="HPSv3 YAML (default: the package's)")
    h.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="torch device of the HPSv3 worker, e.g. cpu, cuda, cuda:1 (default cpu)")
    h.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                   help="HPSv3 model precision (default auto: bfloat16 on CUDA, float32 on CPU)")
    h.add_argument("--batch-size", type=L.count_arg(1, L.MAX_BATCH), default=4, help="images per HPSv3 call (default 4)")
    h.add_argument("--out", default=None, help="per-image scores .jsonl (default: next to the manifest)")
    h.add_argument("--no-progress", action="store_true", help="no progress bar (drawn only when stderr is a terminal)")

    q = sub.add_parser("shapes-prompts", help="write shapes-world prompts as GenEval evaluation_metadata.jsonl")
    q.add_argument("--n-per-tag", type=L.count_arg(1, 100_000), default=20,
                   help="prompts per GenEval tag (single_object, two_object, counting, ...; default 20)")
    q.add_argument("--seed", type=int, default=43, help="prompt sampling seed (default 43)")
    q.add_argument("--out", required=True, help="output evaluation_metadata .jsonl")
    p.set_defaults(_t2i_parser=p)
    return p


def main(args) -> int:
    cmd = getattr(args, "t2i_command", None)
    if cmd is None:
        args._t2i_parser.print_help()
        return 2
    return {"geneval": _geneval, "geneval-summary": _summary, "hpsv3": _hpsv3,
            "shapes-prompts": _shapes_prompts}[cmd](args)


def _geneval(args) -> int:
    from sgbench.errors import UserError
    from sgbench.t2i import geneval as ge

    options = ge.GenEvalOptions.parse(args.options)
    items = list(ge.iter_geneval_folder(args.imagedir))
    if args.detector == "shapes":
        import numpy as np
        from PIL import Image

        from sgbench.t2i.shapes_world import score_images

        results = score_images((np.asarray(Image.open(p)) for p, _ in items), [m for _, m in items], options,
                               [p for p, _ in items], progress=not args.no_progress)
    else:
        for opt, val in (("--detector-config", args.detector_config),
                         ("--detector-checkpoint", args.detector_checkpoint), ("--clip-weights", args.clip_weights)):
            if not val:
                raise UserError(f"GenEval with Mask2Former needs {opt} (or --detector shapes for the shapes world)")
        from sgbench.t2i.geneval_backends import MMDetDetector, load_clip_color_classifier

        clip = load_clip_color_classifier(args.clip_weights, args.clip_arch, args.device, options)
        detector = MMDetDetector(args.detector_config, args.detector_checkpoint, args.device)
        results = ge.evaluate_images(items, detector, clip, options, progress=not args.no_progress)
    out = Path(args.outfile) if args.outfile else Path(args.imagedir) / "results.jsonl"
    ge.write_results_jsonl(results, out)
    print(ge.format_summary(ge.summarize(results)))
    print(f"\nwrote {out}")
    return 0


def _summary(args) -> int:
    from sgbench.t2i import geneval as ge

    summary = ge.summarize(ge.read_results_jsonl(args.results))
    print(json.dumps(summary, indent=2) if args.json else ge.format_summary(summary))
    return 0


def _hpsv3(args) -> int:
    from sgbench.t2i.hpsv3_client import (
        HPSv3Client,
        HPSv3WorkerConfig,
        aggregate,
        format_table,
        read_image_manifest,
    )

    items = read_image_manifest(args.manifest)
    cfg = HPSv3WorkerConfig(python=args.hps_python, base_model=args.hps_base_model, checkpoint=args.hps_checkpoint,
                            config=args.hps_config, device=args.device, dtype=args.dtype, batch_size=args.batch_size)
    with HPSv3Client(cfg) as client:
        mu = client.score([it["image"] for it in items], [it["prompt"] for it in items], progress=not args.no_progress)
    out = Path(args.out) if args.out else Path(args.manifest).with_suffix(".hpsv3.jsonl")
    with open(out, "w") as f:
        for it, m in zip(items, mu):
            f.write(json.dumps({**it, "hpsv3": float(m)}) + "\n")
    summary = aggregate(mu, [it["category"] for it in items])
    print(format_table({Path(args.manifest).stem: summary}))
    print(f"\nmean over images: {summary['overall_images']:.4f}; wrote {out}")
    return 0


def _shapes_prompts(args) -> int:
    from sgbench.errors import UserError
    from sgbench.t2i.shapes_world import evaluation_metadata

    if args.n_per_tag < 1:
        raise UserError("--n-per-tag must be >= 1")
    meta = evaluation_metadata(args.n_per_tag, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(m) + "\n" for m in meta))
    print(f"wrote {len(meta)} prompts to {out}")
    return 0
