"""A loaded suite -> its rehearsal: the same suite (models, methods, search, metrics, report)
at tiny sizes, and a note of what shrank.

Sizes (each the least that still runs every code path of a real run):
- 2 sampler steps (schedules see a start and an end), batch 2 (a stream has a warm-up batch
  and a timed one, so throughput follows the real rule);
- samples per trial and seed: class-conditional 4 (precision/recall's k = 3 neighbours need 4
  points); T2I one prompt's images and one more (two prompts, two tags or categories); with
  pruning, one rung at that count and 2 more samples after it;
- search: the first 2 points (grid order, or 2 sampler trials), pruning kept with
  `startup_trials` <= 1 where the pruner has one, so the second point meets a real pruning
  decision;
- at most 2 seeds, extractor batch <= 8, HPSv3 batch <= 2, sample grids of 4 images;
- checkpoint sweeps (`model.sweep`, `model.weak_sweep`): the first and the last entry of each
  (the suite's order), so every cell kind, the sweep figures and `check --previous-checkpoint`
  of a real run have two checkpoints; and, since a sweep runs every method at every checkpoint
  (a trial of a real-size SiT-XL/2 takes 1-2 minutes on a CPU core), of methods that take the same
  code path (`code_path`: method, omega 1 or not, interval, schedules, dense or sparse branches)
  the first; LPIPS limited to fewer samples than a trial stays limited (to one batch);
- device cpu; `dtype: auto`/`bf16` sample in bf16 autocast (what the GPU run uses) where the
  CPU computes bf16 natively, else in fp32;
- a shared search storage and a fixed report directory are replaced by the rehearsal's own
  (a rehearsal never writes into a real study or report).
"""

from __future__ import annotations

from pathlib import Path

from sgbench.config.schema import Suite

STEPS = 2
BATCH = 2
PR_SAMPLES = 4  # precision/recall: more than k = 3 points
SEARCH_POINTS = 2
SWEEP_ENTRIES = 2  # the first and the last checkpoint of a sweep
MAX_SEEDS = 2
EXTRACTOR_BATCH = 8
GRID_IMAGES = 4


def cpu_has_bf16() -> bool:
    """Native bf16 arithmetic (AVX512-BF16 or AMX): bf16 autocast is then ~3x faster than fp32."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in text for f in (" avx512_bf16", " amx_bf16"))


def sample_counts(suite: Suite) -> tuple[list[int], int]:
    """(pruning fidelities, samples per trial and seed) of the rehearsal."""
    from sgbench.metrics.registry import image_columns

    t2i = suite.benchmark is not None
    needs_pr = not t2i and bool(set(image_columns(suite.metrics.extractor).pr) & set(suite.metrics.metric_keys))
    if t2i:  # a prompt's images come together: one more image reaches a second prompt (and tag)
        low = max(BATCH, suite.sampler.images_per_prompt + 1)
    else:
        low = max(BATCH, PR_SAMPLES) if needs_pr else BATCH
    pruning = suite.search is not None and suite.search.pruning is not None and suite.search.pruning.fidelities
    if pruning:
        return [low], low + BATCH
    return [], low if t2i else max(low, 2 * BATCH)


def rehearsal_suite(suite: Suite, bf16_cpu: bool) -> tuple[Suite, list[str]]:
    """The suite at rehearsal sizes (derived and checked again) and one line per group of changes."""
    from sgbench.config.loader import derive_suite

    changes, notes = rehearsal_changes(suite, bf16_cpu)
    return derive_suite(suite, changes), notes


def rehearsal_changes(suite: Suite, bf16_cpu: bool) -> tuple[dict, list[str]]:
    """What makes `suite` its rehearsal (suite key path -> value, for `LoadedSuite.derive`) and one
    line per group of changes."""
    from sgbench.search.space import grid_points

    s, sp, mt = suite, suite.sampler, suite.metrics
    notes = []
    steps, batch = min(sp.steps, STEPS), min(sp.batch_size, BATCH)
    dtype = ("bf16" if bf16_cpu else "fp32") if sp.dtype in ("auto", "bf16") else sp.dtype
    seeds = list(s.seeds[:MAX_SEEDS])
    fidelities, n_samples = sample_counts(s)
    changes = {"suite.sampler.steps": steps, "suite.sampler.batch_size": batch, "suite.sampler.dtype": dtype,
               "suite.device": "cpu", "suite.seeds": seeds, "suite.metrics.n_samples": n_samples,
               "suite.metrics.batch_size": min(mt.batch_size, EXTRACTOR_BATCH),
               "suite.report.sample_grid": min(s.report.sample_grid, GRID_IMAGES)}
    lpips_n = None
    if mt.lpips is not None and mt.lpips.n_samples is not None:  # limited below a trial: limited here too
        lpips_n = BATCH if mt.lpips.n_samples < (mt.n_samples or 0) else None
        changes["suite.metrics.lpips.n_samples"] = lpips_n
    how = {"bf16": "bf16 autocast", "fp32": "fp32"}[dtype]
    notes.append(f"sizes: {steps} {sp.solver} steps (suite: {sp.steps}), batch {batch} (suite: {sp.batch_size}), "
                 f"{n_samples} samples per trial and seed (suite: {mt.n_samples or 'every prompt'}), "
                 f"seeds {seeds} (suite: {list(s.seeds)}), {how} on the CPU (suite: {sp.dtype})")
    if mt.lpips is not None:
        notes[-1] += f", LPIPS on {lpips_n or 'every'} sample{'s' * (lpips_n != 1)} of a trial"
        if mt.lpips.n_samples:
            notes[-1] += f" (suite: {mt.lpips.n_samples})"
    sweeps = _kept_sweeps(s, changes)
    if sweeps:
        methods = _kept_methods(s, changes)
        notes.append(f"sweeps: {sweeps}" + (f"; methods: {methods}" if methods else ""))
    if s.benchmark is not None:
        changes["suite.benchmark.hps_batch_size"] = min(s.benchmark.hps_batch_size, BATCH)
    search = s.search
    if search is not None:
        if search.sampler == "grid":
            total = len(grid_points(search.space))
            budget = min(search.budget or total, SEARCH_POINTS)
            what = f"the first {budget} of {total} grid points"
        else:
            budget = min(search.budget, SEARCH_POINTS)
            what = f"{budget} {search.sampler} trials"
        changes["suite.search.budget"] = budget
        pruning = search.pruning
        if pruning is not None:
            changes["suite.search.pruning.fidelities"] = fidelities
            startup = pruning.startup_trials  # None: a grid prunes rung-synchronously
            if startup is not None or search.sampler != "grid":
                changes["suite.search.pruning.startup_trials"] = 1 if startup is None else min(startup, 1)
            what += f", pruning rung {fidelities} (suite: {list(pruning.fidelities)}, {pruning.pruner})"
        if search.storage is not None:
            what += f"; the suite's storage {search.storage!r} is not touched (the rehearsal's own study.db)"
            changes.update({"suite.search.storage": None, "suite.search.study_name": None})
        notes.append(f"search: {what}")
    if s.report.out is not None and "{run}" not in s.report.out:
        notes.append(f"report: <run>/report/ instead of the suite's {s.report.out} (kept for real runs)")
        changes["suite.report.out"] = None
    return changes, notes


def _kept_sweeps(s: Suite, changes: dict) -> str:
    """Keep the first and the last checkpoint of each sweep (in the suite's order); '' without sweeps."""
    from sgbench.config.typed import to_dict

    what = []
    for section in ("sweep", "weak_sweep"):
        entries = getattr(s.model, section)
        if not entries:
            continue
        kept = entries if len(entries) <= SWEEP_ENTRIES else (entries[0], entries[-1])
        changes[f"suite.model.{section}"] = to_dict(kept)
        which = ", the first and the last" if len(kept) < len(entries) else ""
        what.append(f"model.{section}: {len(kept)} checkpoint{'s' * (len(kept) != 1)}{which} (suite: {len(entries)})")
    return "; ".join(what)


def code_path(g) -> tuple:
    """What decides which sampling code a guidance setting runs (not the values of omega and gamma):
    its method, whether omega is 1 (the weak branch is skipped), an interval, schedules, and which
    branch is dense (gamma 0) or sparse."""
    def branch(gamma):
        return "schedule" if isinstance(gamma, str) else (None if gamma is None else gamma == 0)

    return g.method, g.omega == 1, g.interval is not None, g.schedule, branch(g.gamma_strong), branch(g.gamma_weak)


def _kept_methods(s: Suite, changes: dict) -> str:
    """Keep the first method of each code path (suite order); '' when none is dropped."""
    from sgbench.config.typed import to_dict

    first: dict[tuple, object] = {}
    for g in s.methods:
        first.setdefault(code_path(g), g)
    kept = [g for g in s.methods if first[code_path(g)] is g]
    if len(kept) == len(s.methods):
        return ""
    dropped = [g.name for g in s.methods if first[code_path(g)] is not g]
    changes["suite.methods"] = to_dict(kept)
    return (f"{len(kept)} (suite: {len(kept) + len(dropped)}): {', '.join(g.name for g in kept)}, the first of "
            f"each code path ({', '.join(dropped)} take{'s' * (len(dropped) == 1)} the same)")
