"""Sharded, resumable writing of one ADM `.npz` from K workers.

Layout for `--out samples.npz`:
    samples.npz.shards/manifest.json          the settings the shards belong to
    samples.npz.shards/00000000-00000064.npz  one shard per batch: arr_0, arr_1, indices
    samples.npz                               the merged file, ADM's layout (arr_0 uint8 NHWC, arr_1 int64 labels)

Shard b holds samples [b*batch, (b+1)*batch): the same batches whatever the number of workers,
so the merged bytes do not depend on it. Workers take the missing shards round-robin; every
file is written atomically, so after a kill the directory holds only complete shards (plus
hidden temporaries, removed on resume). Rank 0 merges after a barrier, then removes the shards.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from sgbench.errors import UserError
from sgbench.progress import bar as progress_bar
from sgbench.progress import counted
from sgbench.sampling.distributed import DistEnv, barrier, broadcast_object
from sgbench.sampling.npz import IMAGES, LABELS, TMP_SUFFIX, Streamed, atomic_write, labels_key, tmp_name, write_npz

MANIFEST = "manifest.json"

# produce(indices) -> iterator of (indices, images uint8 NHWC, labels) covering exactly `indices`
Producer = Callable[[range], Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]]


def shard_dir(out: Path) -> Path:
    out = Path(out)
    return out.parent / f"{out.name}.shards"


def shard_ranges(num_samples: int, batch_size: int) -> list[tuple[int, int]]:
    return [(s, min(s + batch_size, num_samples)) for s in range(0, num_samples, batch_size)]


def shard_path(sdir: Path, start: int, end: int) -> Path:
    return Path(sdir) / f"{start:08d}-{end:08d}.npz"


def _remove_stale_temporaries(directory: Path, prefix: str = ".") -> int:
    """Delete hidden temporaries (`{prefix}*.tmp`) that a killed writer left; return how many."""
    stale = [p for p in Path(directory).glob(f"{prefix}*{TMP_SUFFIX}") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def _shard_ok(path: Path, start: int, end: int) -> bool:
    try:
        with np.load(path) as z:
            key = labels_key(z.files)  # shards of older versions hold 'labels'
            return key is not None and np.array_equal(z["indices"], np.arange(start, end)) and len(z[key]) == end - start
    except Exception:  # a final-named shard is complete by construction; be safe anyway
        return False


def check_manifest(sdir: Path, manifest: dict) -> None:
    """UserError if `sdir` holds shards of different settings (resuming them would mix runs)."""
    path = Path(sdir) / MANIFEST
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        raise UserError(f"unreadable {path}; delete {sdir} to start over") from None
    if old != json.loads(json.dumps(manifest)):
        diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
        raise UserError(
            f"{sdir} holds shards of a run with other settings ({', '.join(diff)} differ); "
            f"use the same options to resume, or delete that directory"
        )


def prepare_shards(out: Path, manifest: dict, ranges: list[tuple[int, int]], log=print) -> list[tuple[int, int]]:
    """(rank 0) Create the shard directory and manifest, drop stale temporaries; return finished ranges."""
    out = Path(out)
    sdir = shard_dir(out)
    sdir.mkdir(parents=True, exist_ok=True)
    check_manifest(sdir, manifest)
    if not (sdir / MANIFEST).is_file():
        atomic_write(sdir / MANIFEST, lambda f: f.write(json.dumps(manifest, indent=1, sort_keys=True).encode()))
    # unfinished shards, and an unfinished merge next to the output
    stale = _remove_stale_temporaries(sdir) + _remove_stale_temporaries(out.parent, tmp_name(out))
    if stale:
        log(f"removed {stale} unfinished temporary file(s) of an interrupted run")
    done = []
    for s, e in ranges:
        p = shard_path(sdir, s, e)
        if p.is_file():
            if _shard_ok(p, s, e):
                done.append((s, e))
            else:
                log(f"shard {p.name} is unreadable; regenerating it")
                p.unlink()
    return done


def write_shard(sdir: Path, indices: np.ndarray, images: np.ndarray, labels: np.ndarray) -> Path:
    s, e = int(indices[0]), int(indices[-1]) + 1
    return write_npz(
        shard_path(sdir, s, e),
        {IMAGES: images, LABELS: np.asarray(labels, np.int64), "indices": np.asarray(indices, np.int64)},
    )


def finished_images(sdir: Path, ranges: list[tuple[int, int]]) -> int:
    """Samples in the shards present in `sdir` (every worker's: shards are written atomically),
    read with one directory listing."""
    try:
        names = {e.name for e in os.scandir(sdir)}
    except OSError:
        return 0
    return sum(e - s for s, e in ranges if shard_path(sdir, s, e).name in names)


def merge_shards(sdir: Path, ranges: list[tuple[int, int]], out: Path, progress: bool = False) -> Path:
    """Stream all shards, in index order, into `out` (atomic); then delete the shard directory.
    progress: a bar of the images merged (on a terminal)."""
    paths = [shard_path(sdir, s, e) for s, e in ranges]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"cannot merge: {len(missing)} shard(s) missing in {sdir} (e.g. {missing[0]}); rerun to finish")
    labels = []
    for p in paths:
        with np.load(p) as z:
            labels.append(z[labels_key(z.files)])
    with np.load(paths[0]) as z:
        first = z[IMAGES]
        shape, dtype = first.shape[1:], first.dtype
    n = ranges[-1][1] if ranges else 0

    def chunks() -> Iterable[np.ndarray]:
        for p, (s, e) in zip(paths, ranges):
            with np.load(p) as z:
                arr = z[IMAGES]
            if arr.shape != (e - s, *shape) or arr.dtype != dtype:
                raise UserError(f"shard {p.name} has shape {arr.shape} {arr.dtype}, expected {(e - s, *shape)} {dtype}")
            yield arr

    merged = counted(chunks(), progress_bar(n, "merge", enabled=progress))
    arrays = {IMAGES: Streamed(dtype, (n, *shape), merged), LABELS: np.concatenate(labels).astype(np.int64)}
    write_npz(out, arrays)
    for p in paths:
        p.unlink()
    (Path(sdir) / MANIFEST).unlink(missing_ok=True)
    _remove_stale_temporaries(Path(sdir))
    try:
        Path(sdir).rmdir()
    except OSError:
        pass  # foreign files in the directory: leave them
    return Path(out)


def run_sharded(
    produce: Producer,
    out: Path,
    num_samples: int,
    batch_size: int,
    manifest: dict,
    env: DistEnv = DistEnv(),
    log=None,
    progress: bool = False,
) -> Path:
    """Generate the missing shards on this worker's share, then (rank 0) merge into `out`.

    progress: rank 0 draws a bar (on a terminal) of the samples in finished shards, every
    worker's and a resumed run's included, so its rate and ETA are the whole job's."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    out = Path(out)
    sdir = shard_dir(out)
    ranges = shard_ranges(int(num_samples), int(batch_size))
    check_manifest(sdir, manifest)  # every rank, before any collective: all fail alike
    done = prepare_shards(out, manifest, ranges, log) if env.is_main else None
    done = set(map(tuple, broadcast_object(env, done)))
    todo = [r for r in ranges if r not in done]
    if env.is_main and done:
        log(f"resuming: {len(done)} of {len(ranges)} shard(s) already present")
    total = ranges[-1][1] if ranges else 0
    bar = progress_bar(total, "sample", initial=total - sum(e - s for s, e in todo), enabled=progress and env.is_main)
    try:
        for s, e in todo[env.rank :: env.world_size]:
            parts = list(produce(range(s, e)))  # one batch when the producer's batch is the shard size
            write_shard(sdir, *(np.concatenate([p[i] for p in parts]) for i in range(3)))
            if not bar.disable:  # the other workers' shards too (a listing is cheap next to a batch)
                bar.update(max(0, finished_images(sdir, ranges) - bar.n))
        barrier(env)
        bar.update(total - bar.n)
    finally:
        bar.close()
    if env.is_main:  # no barrier after: a long merge must not run into a collective's timeout
        merge_shards(sdir, ranges, out, progress)
    return out
