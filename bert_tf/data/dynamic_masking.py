"""Dynamic (RoBERTa-style) masking: new masked-LM predictions drawn in the tf.data pipeline every epoch.

Records written with ``--dynamic_masking`` hold unmasked sequences (no ``masked_lm_*`` features);
``mask_batch`` masks each batch as it is read.
"""
import tensorflow as tf


def mask_batch(features, seed, vocab_size, mask_id, cls_id, sep_id, max_predictions_per_seq, masked_lm_prob=0.15):
    """Dynamic masking in graph for a batch of unmasked records (model-side names).

    ``seed`` is an int64 [2] tensor (one per batch from ``tf.data.Dataset.random``), so every epoch
    draws new masks while a rerun with the same seed replays the same stream. Token-level (not
    whole-word) masking with the same rules as ``pretraining_masking.mask_instances``.
    """
    ids = features["input_ids"]
    attention = features["attention_mask"]
    shape = tf.shape(ids)
    limit = max_predictions_per_seq
    seeds = tf.random.experimental.stateless_split(seed, 4)
    candidate = (attention > 0) & tf.not_equal(ids, cls_id) & tf.not_equal(ids, sep_id)
    lengths = tf.reduce_sum(attention, axis=1)
    target = tf.minimum(limit, tf.maximum(1, tf.cast(tf.round(tf.cast(lengths, tf.float64) * masked_lm_prob),
                                                       tf.int32)))
    keys = tf.random.stateless_uniform(shape, seeds[0])
    keys = tf.where(candidate, keys, 2.0)
    # The `limit` candidates with the smallest keys, of which the first `target` are used.
    neg_keys, picked = tf.math.top_k(-keys, k=limit)
    rank = tf.range(limit)[None, :]
    valid = (rank < target[:, None]) & (neg_keys > -2.0)
    picked = tf.where(valid, picked, shape[1])
    picked = tf.sort(picked, axis=1)
    valid = picked < shape[1]
    positions = tf.where(valid, picked, 0)
    originals = tf.where(valid, tf.gather(ids, positions, batch_dims=1), 0)
    draw = tf.random.stateless_uniform(tf.shape(positions), seeds[1])
    random_ids = tf.random.stateless_uniform(tf.shape(positions), seeds[2], minval=0, maxval=vocab_size,
                                             dtype=tf.int32)
    replaced = tf.where(draw < 0.8, tf.cast(mask_id, ids.dtype),
                        tf.where(draw < 0.9, originals, tf.cast(random_ids, ids.dtype)))
    batch_index = tf.broadcast_to(tf.range(shape[0])[:, None], tf.shape(positions))
    indices = tf.stack([tf.boolean_mask(batch_index, valid), tf.boolean_mask(positions, valid)], axis=1)
    masked = tf.tensor_scatter_nd_update(ids, indices, tf.boolean_mask(replaced, valid))
    result = dict(features)
    result.update(input_ids=masked, masked_lm_positions=positions, masked_lm_ids=originals,
                  masked_lm_weights=tf.cast(valid, tf.float32))
    return result

