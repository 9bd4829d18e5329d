"""`sgbench run SUITE --rehearse`: the whole suite on the CPU in minutes, before any GPU hour.

A rehearsal runs every baseline, the first search points and one pruning rung of a suite at
tiny sizes (`plan`), on the user's files where they exist and on format-faithful stand-ins
made here for those that do not (one module per file kind), in a run directory of its own
that is marked as a rehearsal (`marker`) so it is never resumed as, or gated against, a real
run. `session.Rehearsal` ties these together for `sgbench.run.main.run_suite`.

Layer: beside `sgbench.run` (the session uses `run.rundir`; `run.main` calls it). `marker` is a
leaf module (it imports only `sgbench.errors`), so the run directory code, the report and the
`check` command can use it.

Stand-in builders (each writes a file that the project's own loader accepts):
    checkpoints    class-conditional checkpoints in each codebase's layout; T2I safetensors
    vae            a tiny diffusers AutoencoderKL directory with SD-VAE's layout
    inception      torch-fidelity's InceptionV3 with random weights, as its weights file
    reference      ADM reference batches (.npz with mu, sigma, mu_s, sigma_s, arr_0)
    classifier     a random sgbench ShapeClassifier (the `classifier` extractor's weights)
    text_encoder   a tiny Hugging Face text encoder directory (model + tokenizer)
    geneval        GenEval prompts, Mask2Former (mmdet's config, random weights), a tiny CLIP
    hpsv3          HPDv3 prompts, a tiny Qwen2-VL base model + HPSv3 checkpoint (hpsv3 env)
"""
