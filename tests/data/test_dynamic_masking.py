"""Dynamic masking: fresh masks per seed, replayed for the same seed, with the host masking's rules."""
import bert_tf  # noqa: F401
import numpy as np
import tensorflow as tf

from bert_tf.data import dynamic_masking, pretraining_records, records
from bert_tf.tokenization import HostTokenizer
from tests.data.pretraining_files import PRED, SEQ
from tests.data.pretraining_files import create as _create


def test_dynamic_masking_draws_fresh_masks(tmp_path, corpus_file, vocab_file):
    tokenizer = HostTokenizer(vocab_file)
    path, _ = _create(tmp_path, corpus_file, vocab_file, dynamic_masking=True, dupe_factor=4)
    assert set(pretraining_records.inspect_records(path)) == {"input_ids", "input_mask", "segment_ids",
                                                              "next_sentence_labels"}
    spec = pretraining_records.feature_spec(SEQ, PRED, dynamic_masking=True)
    dataset = records.make_dataset(path, spec, 256, False)
    batch = next(iter(dataset))

    def mask(seed):
        return dynamic_masking.mask_batch(batch, tf.constant(seed, tf.int64), tokenizer.vocab_size,
                                          tokenizer.mask_id, tokenizer.cls_id, tokenizer.sep_id, PRED)

    first, again, other = mask([1, 2]), mask([1, 2]), mask([3, 4])
    for name in ("input_ids", "masked_lm_positions", "masked_lm_ids"):
        np.testing.assert_array_equal(first[name], again[name])
    assert not np.array_equal(first["masked_lm_positions"], other["masked_lm_positions"])
    ids, original = batch["input_ids"].numpy(), first["masked_lm_ids"].numpy()
    weights, positions = first["masked_lm_weights"].numpy(), first["masked_lm_positions"].numpy()
    lengths = batch["attention_mask"].numpy().sum(1)
    np.testing.assert_array_equal(weights.sum(1), np.minimum(PRED, np.maximum(1, np.rint(lengths * 0.15))))
    valid = weights > 0
    np.testing.assert_array_equal(np.take_along_axis(ids, positions, 1)[valid], original[valid])
    assert not np.isin(ids[np.arange(len(ids))[:, None].repeat(PRED, 1)[valid], positions[valid]],
                       [tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id]).any()
    shown = np.take_along_axis(first["input_ids"].numpy(), positions, 1)[valid]
    assert abs(np.mean(shown == tokenizer.mask_id) - 0.8) < 0.04
    untouched = np.ones_like(ids, bool)
    untouched[np.nonzero(valid)[0], positions[valid]] = False
    np.testing.assert_array_equal(first["input_ids"].numpy()[untouched], ids[untouched])
