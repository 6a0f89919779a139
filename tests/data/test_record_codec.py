"""The vectorized Example writer parses to exactly the messages tf.train.Example builds."""
import bert_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.data import record_codec, record_writer, records


def test_fast_serializer_matches_protobuf():
    rng = np.random.RandomState(0)
    features = {"input_ids": rng.randint(0, 2 ** 27, (5, 7)), "ids": rng.randint(0, 30522, (5, 9)),
                "small": rng.randint(0, 3, (5, 1)),
                "weights": rng.rand(5, 3).astype(np.float32)}
    for row, raw in enumerate(record_codec.serialize_examples(features)):
        expected = records.to_example({k: v[row] for k, v in features.items()})
        assert tf.train.Example.FromString(raw) == expected
    with pytest.raises(ValueError):
        record_codec.serialize_examples({"x": np.array([[-1]])})


def test_bert_range_values_take_the_vectorized_path_and_larger_ones_protobufs(monkeypatch):
    rng = np.random.RandomState(1)
    features = {"input_ids": rng.randint(0, record_codec.TABLE_LIMIT, (6, 9)), "segment_ids": rng.randint(0, 2, (6, 9)),
                "masked_lm_weights": rng.rand(6, 2).astype(np.float32)}
    features["input_ids"][0, :3] = [0, 127, record_codec.TABLE_LIMIT - 1]  # one-, one- and three-byte varints
    wide = dict(features, input_ids=features["input_ids"] + record_codec.TABLE_LIMIT)
    protobuf_rows = []
    to_example = record_writer.to_example
    monkeypatch.setattr(record_writer, "to_example", lambda row: protobuf_rows.append(row) or to_example(row))
    for batch, expected_protobuf_rows in ((features, 0), (wide, 6)):
        for row, raw in enumerate(record_codec.serialize_examples(batch)):
            expected = to_example({k: v[row] for k, v in batch.items()})
            assert tf.train.Example.FromString(raw) == expected
        assert len(protobuf_rows) == expected_protobuf_rows
