"""The vectorized Example writer parses to exactly the messages tf.train.Example builds."""
import bert_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.data import record_codec, records


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
