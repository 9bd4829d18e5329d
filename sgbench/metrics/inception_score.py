"""Inception Score as ADM's evaluator computes it, in one pass or as a stream.

ADM: softmax of the *unbiased* logits (pool_3 @ W, no bias; torch-fidelity's
'logits_unbiased'), consecutive splits of `split_size` = 5000 in sample order (no shuffle),
score = mean over splits of exp(mean_i KL(p_i || mean_split p)). The last split is whatever
remains (N = 12000 -> splits of 5000, 5000, 2000); N < 5000 gives one split of all samples.
"""

from __future__ import annotations

import numpy as np

ADM_SPLIT_SIZE = 5000


def _softmax64(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _log_softmax64(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def inception_score(logits, split_size: int = ADM_SPLIT_SIZE) -> float:
    """IS from class logits [N, K] (ADM: splits of 5000 in order, mean of per-split scores)."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise ValueError(f"expected logits of shape [N, K] with N > 0, got {logits.shape}")
    scores = []
    for i in range(0, len(logits), split_size):
        part = logits[i : i + split_size]
        p, logp = _softmax64(part), _log_softmax64(part)
        kl = p * (logp - np.log(p.mean(axis=0, keepdims=True)))
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores))


class InceptionScoreStream:
    """Streaming IS with ADM's split boundaries.

    Per split it keeps sum_i sum_k p_ik log p_ik and sum_i p_i (float64); then
    mean_i KL(p_i || pbar) = (sum_i sum_k p log p) / n - sum_k pbar_k log pbar_k.
    """

    def __init__(self, num_classes: int, split_size: int = ADM_SPLIT_SIZE):
        self.split_size = int(split_size)
        self.num_classes = int(num_classes)
        self.scores: list[float] = []
        self._reset()

    def _reset(self):
        self._n = 0
        self._neg_entropy = 0.0
        self._p_sum = np.zeros(self.num_classes, dtype=np.float64)

    def _close_split(self):
        pbar = self._p_sum / self._n
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = np.where(pbar > 0, pbar * np.log(pbar), 0.0).sum()
        self.scores.append(float(np.exp(self._neg_entropy / self._n - cross)))
        self._reset()

    def update(self, logits) -> None:
        logits = np.asarray(logits)
        while len(logits):
            take = min(self.split_size - self._n, len(logits))
            part, logits = logits[:take], logits[take:]
            p, logp = _softmax64(part), _log_softmax64(part)
            self._neg_entropy += float((p * logp).sum())
            self._p_sum += p.sum(axis=0)
            self._n += take
            if self._n == self.split_size:
                self._close_split()

    @property
    def count(self) -> int:
        return len(self.scores) * self.split_size + self._n

    def compute(self) -> float:
        scores = list(self.scores)
        if self._n:
            pbar = self._p_sum / self._n
            with np.errstate(divide="ignore", invalid="ignore"):
                cross = np.where(pbar > 0, pbar * np.log(pbar), 0.0).sum()
            scores.append(float(np.exp(self._neg_entropy / self._n - cross)))
        if not scores:
            raise ValueError("no logits accumulated")
        return float(np.mean(scores))
