"""ADM's sample-batch layout, shared by the writers (sampling) and the readers (metrics).

openai/guided-diffusion's `image_sample.py` writes, and its `evaluator.py` reads, `arr_0` uint8
images [N, H, W, 3] and `arr_1` int64 class labels [N]. sgbench files before ADM's layout
stored labels as `labels`; they are still read.
"""

from __future__ import annotations

from typing import Optional

IMAGES, LABELS = "arr_0", "arr_1"  # ADM's member names
LEGACY_LABELS = "labels"  # sgbench sample files before ADM's layout


def labels_key(keys) -> Optional[str]:
    """The member of an .npz (given its array names) that holds class labels, or None."""
    return LABELS if LABELS in keys else LEGACY_LABELS if LEGACY_LABELS in keys else None
