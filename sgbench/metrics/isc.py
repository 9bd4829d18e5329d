"""Inception Score as ADM's evaluator computes it, in one pass or as a stream
(torch-fidelity calls the metric `isc`).

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


def _split_score(neg_entropy, p_sum, n):
    """exp(mean_i KL(p_i || pbar)) from sum_i sum_k p log p, sum_i p_i and n (arrays: per replicate)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # a replicate may weight a split 0: nan
        pbar = p_sum / n[..., None] if np.ndim(n) else p_sum / n
        cross = np.where(pbar > 0, pbar * np.log(pbar), 0.0).sum(axis=-1)
        return np.exp(neg_entropy / n - cross)


class InceptionScoreStream:
    """Streaming IS with ADM's split boundaries.

    Per split it keeps sum_i sum_k p_ik log p_ik and sum_i p_i (float64); then
    mean_i KL(p_i || pbar) = (sum_i sum_k p log p) / n - sum_k pbar_k log pbar_k.
    With `replicates` B > 0 it keeps the same sums weighted by each sample's bootstrap weights
    (`update(logits, weights)`, weights uint8 [B, n]) for the standard error (`replicate_scores`).
    """

    def __init__(self, num_classes: int, split_size: int = ADM_SPLIT_SIZE, replicates: int = 0):
        self.split_size = int(split_size)
        self.num_classes = int(num_classes)
        self.replicates = int(replicates)
        self.scores: list[float] = []
        self.replicate_splits: list[np.ndarray] = []  # per closed split: [B] scores
        self._reset()

    def _reset(self):
        self._n = 0
        self._neg_entropy = 0.0
        self._p_sum = np.zeros(self.num_classes, dtype=np.float64)
        b = self.replicates
        self._w_n = np.zeros(b, dtype=np.float64)
        self._w_neg_entropy = np.zeros(b, dtype=np.float64)
        self._w_p_sum = np.zeros((b, self.num_classes), dtype=np.float64)

    def _open_scores(self):
        score = float(_split_score(self._neg_entropy, self._p_sum, self._n))
        reps = _split_score(self._w_neg_entropy, self._w_p_sum, self._w_n) if self.replicates else None
        return score, reps

    def _close_split(self):
        score, reps = self._open_scores()
        self.scores.append(score)
        if reps is not None:
            self.replicate_splits.append(reps)
        self._reset()

    def update(self, logits, weights=None) -> None:
        logits = np.asarray(logits)
        if self.replicates and (weights is None or np.shape(weights) != (self.replicates, len(logits))):
            raise ValueError(f"expected bootstrap weights [{self.replicates}, {len(logits)}]")
        while len(logits):
            take = min(self.split_size - self._n, len(logits))
            part, logits = logits[:take], logits[take:]
            p, logp = _softmax64(part), _log_softmax64(part)
            h = (p * logp).sum(axis=1)
            self._neg_entropy += float(h.sum())
            self._p_sum += p.sum(axis=0)
            self._n += take
            if self.replicates:
                w, weights = np.asarray(weights[:, :take], dtype=np.float64), weights[:, take:]
                self._w_n += w.sum(axis=1)
                self._w_neg_entropy += w @ h
                self._w_p_sum += w @ p
            if self._n == self.split_size:
                self._close_split()

    @property
    def count(self) -> int:
        return len(self.scores) * self.split_size + self._n

    def compute(self) -> float:
        scores = list(self.scores)
        if self._n:
            scores.append(self._open_scores()[0])
        if not scores:
            raise ValueError("no logits accumulated")
        return float(np.mean(scores))

    def replicate_scores(self) -> np.ndarray:
        """[B] bootstrap replicates of the score (each split resampled within itself)."""
        splits = list(self.replicate_splits)
        if self._n and self.replicates:
            splits.append(self._open_scores()[1])
        if not splits:
            return np.zeros(0)
        return np.mean(splits, axis=0)
