"""The record_codec benchmark compares like with like: its protobuf encoder writes the codec's messages."""
import bert_tf  # noqa: F401
import numpy as np
import tensorflow as tf

from benchmarks import record_codec as benchmark
from bert_tf.data import record_codec


def test_protobuf_encoder_writes_the_codecs_messages():
    rng = np.random.RandomState(0)
    features = {"input_ids": rng.randint(0, 30522, (4, 16)), "masked_lm_weights": rng.rand(4, 3).astype(np.float32),
                "next_sentence_labels": rng.randint(0, 2, (4, 1))}
    ours, theirs = record_codec.serialize_examples(features), benchmark.serialize_with_protobuf(features)
    assert len(ours) == len(theirs) == 4
    assert [tf.train.Example.FromString(raw) for raw in ours] == [tf.train.Example.FromString(raw) for raw in theirs]
