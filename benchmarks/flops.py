"""Model FLOPs of BERT training steps and the share of this machine's matmul peak they reach.

One count for every training benchmark: a multiply-add is 2 FLOPs; per encoder layer and sequence
of S tokens (hidden H, intermediate I) the four H x H projections cost 8*S*H^2, the attention
scores and the weighted sum of values 4*S^2*H (the sequence-squared terms), the feed-forward
block 4*S*H*I. Embedding lookups, LayerNorm, softmax, GELU and dropout are left out: they are
not matmuls, and the figure is compared with a matmul peak. Training is counted as 3x the
forward pass (the backward pass computes two matmuls per forward one). Lengths are the padded
lengths a step actually computes: the bucket bound with length buckets, max_seq_length without.
"""
import time

import numpy as np

HEADS = ("encoder", "classification", "tagging", "pretraining")


def forward_flops(config, seq_length, head="classification", num_labels=2, predictions=0):
    """Forward FLOPs for ONE sequence padded to ``seq_length`` through the encoder and ``head``.

    ``head``: ``classification`` (pooler + dense to ``num_labels``; 1 for regression), ``tagging``
    (dense to ``num_labels`` at every position), ``pretraining`` (``predictions`` masked positions
    through the transform and the vocabulary projection, plus pooler and next-sentence dense) or
    ``encoder`` (none).
    """
    if head not in HEADS:
        raise ValueError(f"head {head!r} is not one of {HEADS}")
    h, i, s = config.hidden_size, config.intermediate_size, int(seq_length)
    per_layer = 8 * s * h * h + 4 * s * s * h + 4 * s * h * i
    total = config.num_hidden_layers * per_layer
    if head == "classification":
        total += 2 * h * h + 2 * h * num_labels
    elif head == "tagging":
        total += 2 * s * h * num_labels
    elif head == "pretraining":
        total += predictions * (2 * h * h + 2 * h * config.vocab_size) + 2 * h * h + 2 * h * 2
    return total


def training_flops(config, seq_lengths, head="classification", num_labels=2, predictions=0):
    """Forward + backward FLOPs (3x forward) of training once on sequences padded to ``seq_lengths``
    (one entry per sequence)."""
    lengths, counts = np.unique(np.asarray(seq_lengths, np.int64), return_counts=True)
    return 3 * sum(int(n) * forward_flops(config, s, head, num_labels, predictions) for s, n in zip(lengths, counts))


def padded_lengths(lengths, bounds):
    """Each length rounded up to the smallest bound that holds it (``bounds`` sorted, the last the
    maximum length); ``bounds`` None or one entry: every sequence padded to that maximum."""
    bounds = np.asarray(sorted(bounds), np.int64)
    lengths = np.minimum(np.asarray(lengths, np.int64), bounds[-1])
    return bounds[np.searchsorted(bounds, lengths)]


def matmul_peak(dtype="float32", size=2048, repeats=5):
    """FLOP/s of this machine's best timed ``tf.matmul`` of two ``size`` x ``size`` matrices in ``dtype``
    (a traced function, one untimed call first; the fastest of ``repeats``)."""
    import tensorflow as tf

    a = tf.random.stateless_normal([size, size], seed=[1, 2], dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    product = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    product(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        product(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * size ** 3 / best


def utilisation(flops, seconds, peak):
    """(achieved FLOP/s, share of ``peak``)."""
    achieved = flops / seconds
    return achieved, achieved / peak


def describe(flops, seconds, peak, dtype="float32"):
    """'model X GFLOP/s = Y% of the Z GFLOP/s dtype matmul peak' for the benchmarks' output lines."""
    achieved, share = utilisation(flops, seconds, peak)
    return (f"model {achieved / 1e9:.1f} GFLOP/s = {100 * share:.1f}% of the {peak / 1e9:.1f} GFLOP/s {dtype} "
            "matmul peak")
