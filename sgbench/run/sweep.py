"""Checkpoint sweeps: which networks each trial of a run samples with.

A suite names one main checkpoint (`model.checkpoint`) or a `model.sweep` of checkpoints of one
training run, and for autoguidance one weak checkpoint or a `model.weak_sweep` of auxiliary
checkpoints. A *cell* is one (main, weak) pair; each (cell, setting) is a trial. Every cell has
its own baseline and search studies (so a search finds each checkpoint's best setting, and grid
pruning ranks a checkpoint's points among themselves); methods without a weak network run once
per main checkpoint, in the cell of its first weak checkpoint.

Training iterations: what the file records wins (sgbench safetensors: `train.steps`; sgbench
train and CompVis/tread `.pt` files: `step`); a suite's `step` that contradicts it is an error,
and a swept file that records none needs one. Nothing is read from file names. Cells run in
order of step; in trials.csv a sweep run's rows carry `step`, `checkpoint` and, for methods with
a weak network, `weak_step` and `weak_checkpoint`; its trial ids end in `@<cell tag>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sgbench.config.loader import ROOT, LoadedSuite
from sgbench.errors import UserError
from sgbench.guidance.vocabulary import GuidanceConfig
from sgbench.search.store import SWEEP  # the columns of a sweep run's rows: step, checkpoint, weak_step, weak_checkpoint



@dataclass(frozen=True)
class CheckpointRef:
    key: str  # suite key path of the file, e.g. suite.model.sweep[2].checkpoint
    given: str  # the path as the suite writes it (trials.csv `checkpoint`)
    path: Path
    step: Optional[int]  # training iteration (None: unknown, only for a network that is not swept)


@dataclass(frozen=True)
class Cell:
    """One (main, weak) pair of networks of a run."""

    main: CheckpointRef
    weak: Optional[CheckpointRef]
    main_work: bool = True  # runs the methods without a weak network (the first weak checkpoint's cell)
    swept: tuple[bool, bool] = (False, False)  # (main, weak) come from a sweep

    @property
    def sweep(self) -> bool:
        return any(self.swept)

    def tag(self, needs_weak_network: bool = True) -> str:
        """'' outside sweeps; else 'step<N>', 'weak<M>' or 'step<N>-weak<M>': what is swept (the
        weak part only for work that runs the weak network)."""
        parts = []
        if self.swept[0]:
            parts.append(f"step{self.main.step}")
        if self.swept[1] and needs_weak_network:
            parts.append(f"weak{self.weak.step}")
        return "-".join(parts)

    def runs(self, needs_weak_network: bool) -> bool:
        """Whether work of a method with (or without) a weak network belongs to this cell."""
        return needs_weak_network or self.main_work

    def trial_id(self, base: str, needs_weak_network: bool = True) -> str:
        tag = self.tag(needs_weak_network)
        return f"{base}@{tag}" if tag else base

    def study_name(self, base: str) -> str:
        return f"{base}@{self.tag()}" if self.tag() else base

    def columns(self, setting: GuidanceConfig) -> dict:
        """The sweep columns of a trials.csv row ({} outside sweeps)."""
        if not self.sweep:
            return {}
        weak = self.weak if setting.needs_weak_network else None
        values = (self.main.step, self.main.given, None if weak is None else weak.step,
                  None if weak is None else weak.given)
        return dict(zip(SWEEP, values))

    def describe(self) -> str:
        parts = []
        if self.swept[0]:
            parts.append(f"main step {self.main.step} ({self.main.given})")
        if self.swept[1]:
            parts.append(f"weak step {self.weak.step} ({self.weak.given})")
        return ", ".join(parts) or self.main.given


SWEPT = ("sweep", "weak_sweep")  # the model sections a run may extend on --resume


def without_sweep_entries(snapshot: dict) -> dict:
    """A suite snapshot with each sweep's entries replaced by `true`: a run keeps its identity when
    checkpoints are added to its sweeps (`kept_entries` checks that none is removed or changed)."""
    model = snapshot.get("model")
    if not isinstance(model, dict) or not any(model.get(k) for k in SWEPT):
        return snapshot
    return {**snapshot, "model": {k: (bool(v) if k in SWEPT else v) for k, v in model.items()}}


def kept_entries(old: dict, new: dict) -> Optional[str]:
    """The first checkpoint of `old`'s sweeps that `new` lacks (removed, or its path or step changed),
    as 'suite.model.sweep[i] (PATH)'; None when `new` keeps them all (it may add more)."""
    for section in SWEPT:
        before = ((old.get("model") or {}).get(section)) or []
        after = ((new.get("model") or {}).get(section)) or []
        for i, entry in enumerate(before):
            if entry not in after:
                what = entry.get("checkpoint") if isinstance(entry, dict) else entry
                return f"{ROOT}.model.{section}[{i}] ({what}) is gone; a sweep's run may only gain checkpoints"
    return None


def resolve_cells(loaded: LoadedSuite, facts=None) -> list[Cell]:
    """The run's cells in order of (main step, weak step). Outside sweeps one cell and no file is
    read; in a sweep every file is read lazily (`facts(spec)` -> its Checkpoint description,
    default `sgbench.models.loading.checkpoint_facts`) for its step, its parametrization and its
    architecture (one per sweep). Raises UserError before anything is created."""
    m, files = loaded.suite.model, loaded.files
    if not m.is_sweep:
        main = CheckpointRef(f"{ROOT}.model.checkpoint", m.checkpoint, files.checkpoint, None)
        weak = (None if files.weak_checkpoint is None else
                CheckpointRef(f"{ROOT}.model.weak_checkpoint", m.weak_checkpoint, files.weak_checkpoint, None))
        return [Cell(main, weak)]
    if facts is None:
        from sgbench.models.loading import checkpoint_facts as facts
    if m.sweep:
        mains = _swept(loaded, "sweep", m.sweep, files.sweep, facts)
    else:
        mains = [_single(loaded, "checkpoint", m.checkpoint, files.checkpoint, facts)]
    if m.weak_sweep:
        weaks = _swept(loaded, "weak_sweep", m.weak_sweep, files.weak_sweep, facts)
    elif files.weak_checkpoint is not None:
        weaks = [_single(loaded, "weak_checkpoint", m.weak_checkpoint, files.weak_checkpoint, facts)]
    else:
        weaks = [None]
    swept = (bool(m.sweep), bool(m.weak_sweep))
    return [Cell(main, weak, j == 0, swept) for main in mains for j, weak in enumerate(weaks)]


def _spec(loaded: LoadedSuite, path: Path):
    from sgbench.run.stages import model_spec

    return model_spec(loaded, path)


def _single(loaded: LoadedSuite, name: str, given: str, path: Path, facts) -> CheckpointRef:
    """The network that is not swept: its step if the file records one (a column, never required)."""
    return CheckpointRef(f"{ROOT}.model.{name}", given, path, facts(_spec(loaded, path)).step)


def _swept(loaded: LoadedSuite, section: str, entries, paths: tuple[Path, ...], facts) -> list[CheckpointRef]:
    refs, first = [], None
    for i, (entry, path) in enumerate(zip(entries, paths)):
        key = f"{ROOT}.model.{section}[{i}].checkpoint"
        ck = facts(_spec(loaded, path))
        where = f"{ROOT}.model.{section}[{i}]"
        if ck.step is not None and entry.step is not None and ck.step != entry.step:
            raise UserError(f"{where}.step: {entry.step} is given, but {path} records step {ck.step}: remove "
                            f"step (or set it to {ck.step})")
        step = ck.step if ck.step is not None else entry.step
        if step is None:
            raise UserError(f"{where}.step: {path} does not record its training iteration: give it "
                            f"({{checkpoint: {entry.checkpoint}, step: N}})")
        if first is None:
            first = (i, ck)
        else:
            _same_architecture(first, (i, ck), section, path)
        refs.append(CheckpointRef(key, entry.checkpoint, path, step))
    steps = [r.step for r in refs]
    for i, s in enumerate(steps):
        if steps.index(s) != i:
            raise UserError(f"{ROOT}.model.{section}[{i}]: step {s} repeats {section}[{steps.index(s)}] "
                            f"({refs[steps.index(s)].path}); each training iteration once")
    return sorted(refs, key=lambda r: r.step)


def _same_architecture(first, other, section: str, path: Path) -> None:
    """A sweep follows one training run: every file has the first one's tensors and model config."""
    (i0, a), (i, b) = first, other
    where = f"{ROOT}.model.{section}[{i}].checkpoint"
    config_a, config_b = (a.meta or {}).get("config"), (b.meta or {}).get("config")
    if config_a is not None and config_b is not None and config_a != config_b:
        key = next(k for k in {**config_a, **config_b} if config_a.get(k) != config_b.get(k))
        raise UserError(f"{where}: {path} records another model than {section}[{i0}] ({key}: "
                        f"{config_b.get(key)!r} vs {config_a.get(key)!r}); a sweep follows one training run")
    shapes_a = {k: tuple(v.shape) for k, v in a.state_dict.items()}
    shapes_b = {k: tuple(v.shape) for k, v in b.state_dict.items()}
    if shapes_a != shapes_b:
        key = next(k for k in {**shapes_a, **shapes_b} if shapes_a.get(k) != shapes_b.get(k))
        raise UserError(f"{where}: {path} holds another architecture than {section}[{i0}] ({key}: "
                        f"{shapes_b.get(key)} vs {shapes_a.get(key)}); a sweep follows one training run")
