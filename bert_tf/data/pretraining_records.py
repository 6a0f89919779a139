"""The schema of pretraining records and the checks that a record file matches the training flags."""
import tensorflow as tf

from bert_tf.data import records
from bert_tf.errors import UserError

SEQUENCE_FEATURES = ("input_ids", "input_mask", "segment_ids")


def feature_spec(max_seq_length, max_predictions_per_seq, dynamic_masking=False):
    """Parsing spec of our (and google-research/bert's) pretraining records."""
    spec = records.fixed_int_spec(SEQUENCE_FEATURES, max_seq_length)
    spec["next_sentence_labels"] = tf.io.FixedLenFeature([1], tf.int64)
    if not dynamic_masking:
        spec.update(records.fixed_int_spec(("masked_lm_positions", "masked_lm_ids"), max_predictions_per_seq))
        spec["masked_lm_weights"] = tf.io.FixedLenFeature([max_predictions_per_seq], tf.float32)
    return spec


def inspect_records(path, compression=None):
    """Feature names and lengths of the first record of ``path`` (to check S, P and masking up front)."""
    try:
        for raw in tf.data.TFRecordDataset(path, compression_type=compression or "").take(1):
            example = tf.train.Example.FromString(raw.numpy())
            lengths = {}
            for name, feature in example.features.feature.items():
                kind = feature.WhichOneof("kind")
                lengths[name] = len(getattr(feature, kind).value)
            return lengths
    except tf.errors.DataLossError:
        raise UserError(f"TFRecord file {path} is corrupt at record 0 (or compressed: pass --gzip "
                        "to match how it was written)") from None
    raise UserError(f"TFRecord file {path} holds no records: regenerate it with tools/create_pretraining_data.py")


def check_records(path, max_seq_length, max_predictions_per_seq, dynamic_masking, compression=None):
    """Fails early, naming the file and the fix, when records do not match the flags."""
    lengths = inspect_records(path, compression)
    missing = [name for name in SEQUENCE_FEATURES + ("next_sentence_labels",) if name not in lengths]
    if missing:
        raise UserError(f"{path} lacks features {missing}: it is not a pretraining record file")
    has_masks = "masked_lm_positions" in lengths
    if dynamic_masking and has_masks:
        raise UserError(f"{path} holds masked records but --dynamic_masking is set: regenerate with "
                        "tools/create_pretraining_data.py --dynamic_masking, or drop the flag")
    if not dynamic_masking and not has_masks:
        raise UserError(f"{path} holds unmasked records (written with --dynamic_masking): pass --dynamic_masking")
    if dynamic_masking and max_predictions_per_seq > max_seq_length:
        raise UserError(f"--max_predictions_per_seq={max_predictions_per_seq} exceeds --max_seq_length="
                        f"{max_seq_length}: a sequence has no more tokens to mask; lower --max_predictions_per_seq")
    if lengths["input_ids"] != max_seq_length:
        raise UserError(f"{path} has sequences of length {lengths['input_ids']} but --max_seq_length="
                        f"{max_seq_length}: pass --max_seq_length={lengths['input_ids']}")
    if has_masks and lengths["masked_lm_positions"] != max_predictions_per_seq:
        raise UserError(f"{path} has {lengths['masked_lm_positions']} predictions per sequence but "
                        f"--max_predictions_per_seq={max_predictions_per_seq}: pass "
                        f"--max_predictions_per_seq={lengths['masked_lm_positions']}")
    return lengths

