"""Sequence packing: where each example lands, what each packed row holds, and that a packed batch
gives every example the outputs it has unpacked."""
import numpy as np
import tensorflow as tf
from transformers import BertConfig

from bert_tf.data import packing
from bert_tf.modeling import tasks

LENGTHS = [5, 3, 8, 2, 6, 4]  # [CLS] ... [SEP] included
PADDED = 8


def batch(lengths=LENGTHS, padded=PADDED, seed=0):
    rng = np.random.default_rng(seed)
    positions = np.arange(padded)[None, :]
    mask = (positions < np.array(lengths)[:, None]).astype(np.int32)
    ids = rng.integers(5, 50, (len(lengths), padded)).astype(np.int32) * mask
    types = ((positions >= 2) * mask).astype(np.int32)  # a second segment from the third token on
    return {"input_ids": tf.constant(ids), "attention_mask": tf.constant(mask), "token_type_ids": tf.constant(types),
            "label_ids": tf.constant(np.arange(len(lengths))[:, None], tf.int32)}


def test_first_fit_longest_first():
    packed = packing.pack_batch(batch(), row_length=10)
    # Longest first: 8 -> row 0; 6 -> row 1; 5 -> row 2; 4 -> row 1 (6+4); 3 -> row 2 (5+3); 2 -> row 0 (8+2).
    assert packed["example_positions"].numpy().tolist() == [[2, 0], [2, 5], [0, 0], [0, 8], [1, 0], [1, 6]]
    assert packed["input_ids"].shape == (3, 10)
    assert packed["attention_mask"].numpy().sum() == sum(LENGTHS)
    assert packed["label_ids"].numpy().ravel().tolist() == list(range(6))


def test_rows_hold_each_example_with_its_own_positions_and_segments():
    features = batch()
    packed = {k: v.numpy() for k, v in packing.pack_batch(features, row_length=10).items()}
    for example, (row, start) in enumerate(packed["example_positions"]):
        length = LENGTHS[example]
        span = slice(start, start + length)
        assert packed["input_ids"][row, span].tolist() == features["input_ids"].numpy()[example, :length].tolist()
        types = features["token_type_ids"].numpy()[example, :length]
        assert packed["token_type_ids"][row, span].tolist() == types.tolist()
        assert packed["position_ids"][row, span].tolist() == list(range(length))
        assert packed["packed_segments"][row, span].tolist() == [example + 1] * length
    assert packed["packed_segments"][1, 6 + 4:].tolist() == []  # row 1 is full: 6 + 4 = 10
    assert packed["packed_segments"][2, 8:].tolist() == [0, 0]


def test_row_count_rounds_up_to_the_multiple():
    assert packing.pack_batch(batch(), row_length=10, row_multiple=4)["input_ids"].shape == (4, 10)
    # Every example in a row of its own when none fit together.
    assert packing.pack_batch(batch([8, 8, 8]), row_length=8)["input_ids"].shape == (3, 8)


def test_attention_bias_is_block_diagonal():
    bias = packing.packed_attention_bias(tf.constant([[1, 1, 2, 0]]), tf.float32).numpy()
    assert bias.shape == (1, 1, 4, 4)
    allowed = (bias[0, 0] == 0).astype(int).tolist()
    assert allowed == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert set(np.unique(bias).tolist()) == {0.0, -10000.0}


def test_packed_batch_gives_each_example_its_unpacked_outputs():
    tf.random.set_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    model = tasks.SequenceClassifier(config, num_labels=3).build_with_dummies()
    features = batch()
    unpacked = model(features, training=False)["logits"].numpy()
    packed = model(packing.pack_batch(features, row_length=12), training=False)["logits"].numpy()
    assert packed.shape == (6, 3)
    np.testing.assert_allclose(packed, unpacked, atol=1e-5)


def test_packs_inside_tf_data():
    dataset = tf.data.Dataset.from_tensors(batch()).map(lambda f: packing.pack_batch(f, row_length=10, row_multiple=4))
    packed = next(iter(dataset))
    assert packed["input_ids"].shape == (4, 10)
    assert packed["example_positions"].shape == (6, 2)
