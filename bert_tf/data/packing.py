"""Sequence packing: a training batch of short examples laid out several to a row.

Random batches of short texts are padded to their longest example, so most of a step's tokens
can be padding. Packing places the batch's examples into rows of ``row_length`` (first fit, longest
first) and marks each token with its example (``packed_segments``: 1 + the example's index in the
batch, 0 on padding) and its position within the example (``position_ids``), from which the model
builds a block-diagonal attention mask: each example sees only itself and starts at position 0,
so its outputs are those of the unpacked example. ``example_positions`` holds each example's
(row, first token) for the model to read its [CLS] vector. The batch still holds the same examples
in the same order, so labels, losses and the data position are untouched.
"""
import tensorflow as tf

PACKABLE_SEQUENCE_KEYS = ("input_ids", "attention_mask", "token_type_ids")
# Row counts for compiled steps (XLA, TPUs) are rounded up to a multiple of this: those compile once
# per shape, and a few spare rows of padding cost less than compiling for every row count. An
# uncompiled step's graph takes any row count, so there the multiple is 1.
ROW_MULTIPLE = 4


def _first_fit(lengths, row_length):
    """(row, offset) of each example, placing the longest first into the first row with room."""
    count = tf.shape(lengths)[0]
    order = tf.argsort(lengths, direction="DESCENDING", stable=True)

    def place(i, fills, rows, offsets):
        example, length = order[i], lengths[order[i]]
        # Every example fits an empty row (lengths never exceed row_length), and there are as many
        # rows as examples, so a row with room always exists.
        row = tf.argmax(tf.cast(fills + length <= row_length, tf.int32), output_type=tf.int32)
        rows = tf.tensor_scatter_nd_update(rows, [[example]], [row])
        offsets = tf.tensor_scatter_nd_update(offsets, [[example]], [fills[row]])
        return i + 1, tf.tensor_scatter_nd_add(fills, [[row]], [length]), rows, offsets

    empty = tf.zeros([count], tf.int32)
    _, _, rows, offsets = tf.while_loop(lambda i, *_: i < count, place, (0, empty, empty, empty))
    return rows, offsets


def pack_batch(features, row_length, row_multiple=1):
    """One batch (``input_ids``/``attention_mask``/``token_type_ids`` of [batch, length <= row_length],
    tokens first, padding after) -> the packed batch: those keys as [rows, row_length] plus
    ``packed_segments``, ``position_ids`` and ``example_positions``; every other feature is one per
    example (labels) and passed through as it is."""
    mask = features["attention_mask"]
    lengths = tf.reduce_sum(mask, axis=-1)
    rows, offsets = _first_fit(lengths, row_length)
    used = tf.reduce_max(rows) + 1
    row_count = (used + row_multiple - 1) // row_multiple * row_multiple
    positions = tf.broadcast_to(tf.range(tf.shape(mask)[1])[None, :], tf.shape(mask))
    is_token = positions < lengths[:, None]
    targets = tf.stack([tf.broadcast_to(rows[:, None], tf.shape(mask)), offsets[:, None] + positions], axis=-1)
    targets = tf.boolean_mask(targets, is_token)

    def scatter(values):
        return tf.scatter_nd(targets, tf.boolean_mask(values, is_token), [row_count, row_length])

    example_ids = tf.broadcast_to(tf.range(1, tf.shape(mask)[0] + 1)[:, None], tf.shape(mask))
    packed = {k: v for k, v in features.items() if k not in PACKABLE_SEQUENCE_KEYS}
    packed.update({"input_ids": scatter(features["input_ids"]), "attention_mask": scatter(mask),
                   "token_type_ids": scatter(features["token_type_ids"]), "packed_segments": scatter(example_ids),
                   "position_ids": scatter(positions), "example_positions": tf.stack([rows, offsets], axis=-1)})
    return packed


def packed_attention_bias(segments, dtype):
    """The additive attention mask of packed rows, [rows, 1, length, length]: 0 where query and key
    belong to the same example, -10000 elsewhere (Hugging Face BERT's value for masked keys)."""
    same_example = tf.logical_and(segments[:, :, None] == segments[:, None, :], segments[:, None, :] > 0)
    return (1.0 - tf.cast(same_example, dtype))[:, None] * tf.constant(-10000.0, dtype)
