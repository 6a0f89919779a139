import numpy as np
import pytest
import tensorflow as tf

from bert_tf.data import records
from bert_tf.errors import ParameterError, UserError


def _examples(n, length=16):
    for i in range(n):
        valid = 3 + (i * 5) % (length - 3)
        ids = np.zeros(length, np.int64)
        ids[:valid] = np.arange(1, valid + 1)
        mask = (ids > 0).astype(np.int64)
        yield records.to_example({"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros(length, np.int64),
                                  "label_ids": np.array([i], np.int64)})


def test_shards_appear_together_and_hold_every_record(tmp_path):
    out = str(tmp_path / "data.tfrecord")
    assert records.write_records(out, _examples(10), num_shards=3) == 10
    shards = records.shard_paths(out, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(s.split("/")[-1] for s in shards)
    assert [records.count_records(s) for s in shards] == [4, 3, 3]


def test_failed_write_leaves_nothing(tmp_path):
    def broken():
        yield from _examples(2)
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        records.write_records(str(tmp_path / "x.tfrecord"), broken(), num_shards=2)
    assert list(tmp_path.iterdir()) == []


def test_no_shards_is_refused_in_the_parameters_terms(tmp_path):
    with pytest.raises(ParameterError, match=r"^num_shards=0 must be at least 1$") as error:
        records.write_records(str(tmp_path / "x.tfrecord"), _examples(1), num_shards=0)
    assert str(error.value.as_flags({"num_shards": "num_output_shards"})) == "--num_output_shards=0 must be at least 1"
    assert list(tmp_path.iterdir()) == []


def test_reader_notes_what_a_training_pipeline_reads(tmp_path):
    out = str(tmp_path / "d.tfrecord")
    records.write_records(out, _examples(4))
    spec = records.fixed_int_spec(("input_ids", "input_mask", "segment_ids", "label_ids"), 16)
    position = records.InputPosition(None, 0)
    records.make_dataset(out, spec, batch_size=2, is_training=True, seed=1, input_context=position)
    assert position.files == {(out, None)} and position.skipped_corrupt == {} and position.placed


def test_reader_renames_casts_and_batches_in_order(tmp_path):
    out = str(tmp_path / "d.tfrecord")
    records.write_records(out, _examples(5))
    spec = records.fixed_int_spec(("input_ids", "input_mask", "segment_ids", "label_ids"), 16)
    spec["label_ids"] = tf.io.FixedLenFeature([1], tf.int64)
    batches = list(records.make_dataset(out, spec, batch_size=2, is_training=False))
    assert [b["label_ids"].numpy().ravel().tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    assert set(batches[0]) == {"input_ids", "attention_mask", "token_type_ids", "label_ids"}
    assert batches[0]["input_ids"].dtype == tf.int32


def test_length_buckets_cut_batches_to_the_smallest_bound_that_fits(tmp_path):
    out = str(tmp_path / "d.tfrecord")
    records.write_records(out, _examples(64))
    spec = records.fixed_int_spec(("input_ids", "input_mask", "segment_ids"), 16)
    dataset = records.make_dataset(out, spec, batch_size=4, is_training=True, seed=1, length_buckets=[8, 16],
                                   sequence_keys=("input_ids", "attention_mask", "token_type_ids"))
    for batch in dataset.take(20):
        width = batch["input_ids"].shape[1]
        longest = int(batch["attention_mask"].numpy().sum(axis=1).max())
        assert batch["input_ids"].shape[0] == 4
        assert width == (8 if longest <= 8 else 16)
        # Every example in a batch comes from the same bucket.
        lengths = batch["attention_mask"].numpy().sum(axis=1)
        assert (lengths <= 8).all() or (lengths > 8).all()


def test_without_grouping_training_batches_mix_lengths_and_are_cut_to_their_longest(tmp_path):
    out = str(tmp_path / "d.tfrecord")
    records.write_records(out, _examples(64))
    spec = records.fixed_int_spec(("input_ids", "input_mask", "segment_ids"), 16)
    dataset = records.make_dataset(out, spec, batch_size=4, is_training=True, seed=1, length_buckets=[8, 16],
                                   sequence_keys=("input_ids", "attention_mask", "token_type_ids"),
                                   group_by_length=False)
    mixed = 0
    for batch in dataset.take(20):
        lengths = batch["attention_mask"].numpy().sum(axis=1)
        assert batch["input_ids"].shape[1] == (8 if lengths.max() <= 8 else 16)
        mixed += int((lengths <= 8).any() and (lengths > 8).any())
    # _examples' lengths cycle through 3..15: random batches of 4 straddle the bound most of the time.
    assert mixed >= 10


def test_evaluation_batches_keep_order_and_are_cut_to_their_longest_example(tmp_path):
    out = str(tmp_path / "d.tfrecord")
    records.write_records(out, _examples(6))
    spec = records.fixed_int_spec(("input_ids", "input_mask", "segment_ids", "label_ids"), 16)
    spec["label_ids"] = tf.io.FixedLenFeature([1], tf.int64)
    batches = list(records.make_dataset(out, spec, batch_size=2, is_training=False, length_buckets=[4, 8, 16],
                                        sequence_keys=("input_ids", "attention_mask", "token_type_ids")))
    # Lengths 3, 8, 13, 5, 10, 15 (see _examples): pairs (3, 8) -> 8, (13, 5) -> 16, (10, 15) -> 16.
    assert [b["label_ids"].numpy().ravel().tolist() for b in batches] == [[0, 1], [2, 3], [4, 5]]
    assert [b["input_ids"].shape[1] for b in batches] == [8, 16, 16]
    assert batches[0]["input_ids"].numpy()[0].tolist() == [1, 2, 3, 0, 0, 0, 0, 0]


def test_corrupt_file_names_the_record(tmp_path):
    out = tmp_path / "d.tfrecord"
    records.write_records(str(out), _examples(4))
    raw = bytearray(out.read_bytes())
    raw[-10] ^= 0xFF
    out.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="is corrupt at record 3"):
        records.count_records(str(out))


def test_a_shuffle_window_of_one_epoch_shows_every_example_once_per_epoch(tmp_path):
    """What fine-tuning asks for when its data fits the window: each epoch is a permutation of the
    data; the default window over a small file mixes epochs, showing some examples twice."""
    out = str(tmp_path / "d.tfrecord")
    records.write_records(out, _examples(12))
    spec = records.fixed_int_spec(("input_ids", "input_mask", "segment_ids", "label_ids"), 16)
    spec["label_ids"] = tf.io.FixedLenFeature([1], tf.int64)

    def first_epochs(**kwargs):
        batches = records.make_dataset(out, spec, batch_size=4, is_training=True, seed=3, **kwargs).take(6)
        return [b["label_ids"].numpy().ravel().tolist() for b in batches]

    labels = sum(first_epochs(shuffle_buffer=12), [])
    assert sorted(labels[:12]) == sorted(labels[12:]) == list(range(12)) and labels[:12] != labels[12:]
    mixed = sum(first_epochs(), [])
    assert sorted(mixed[:12]) != list(range(12))


def test_random_length_cut_batches_keep_epochs_apart(tmp_path):
    """Random batches cut to their bucket come straight from the shuffled stream: with a one-epoch
    shuffle window, the first epoch's batches hold each example once, though 12 is not a multiple of
    the 5 a batch holds (a reordered bucketing window would mix the second epoch in)."""
    out = str(tmp_path / "d.tfrecord")
    records.write_records(out, _examples(12))
    spec = records.fixed_int_spec(("input_ids", "input_mask", "segment_ids", "label_ids"), 16)
    spec["label_ids"] = tf.io.FixedLenFeature([1], tf.int64)
    batches = records.make_dataset(out, spec, batch_size=5, is_training=True, seed=3, shuffle_buffer=12,
                                   length_buckets=[8, 16], group_by_length=False,
                                   sequence_keys=("input_ids", "attention_mask", "token_type_ids")).take(5)
    labels = sum((b["label_ids"].numpy().ravel().tolist() for b in batches), [])
    assert sorted(labels[:12]) == sorted(labels[12:24]) == list(range(12))
    assert labels[:12] != labels[12:24]
