"""Resume without replay: a resumed run's input starts exactly where the uninterrupted run's was, unread."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from bert_tf.data import records
from bert_tf.training.trainer import Trainer
from tests.training.test_gradient_accumulation import TinyRegressor

LENGTH = 32
KEYS = ("input_ids", "attention_mask", "token_type_ids")


@pytest.fixture(scope="module")
def record_files(tmp_path_factory):
    """Three files of 37-39 examples of random lengths; input_ids[0] names each example."""
    directory = tmp_path_factory.mktemp("position")
    rng = np.random.default_rng(0)
    paths = []
    for file_index in range(3):
        examples = []
        for index in range(37 + file_index):
            mask = np.zeros(LENGTH, np.int64)
            mask[:int(rng.integers(2, LENGTH + 1))] = 1
            ids = mask * 5
            ids[0] = 1000 * file_index + index
            examples.append(records.to_example({"input_ids": ids, "input_mask": mask,
                                                "segment_ids": np.zeros(LENGTH, np.int64)}))
        paths.append(str(directory / f"train-{file_index}.tfrecord"))
        records.write_records(paths[-1], examples)
    return paths


def _batches(paths, buckets, pipelines, pipeline, replicas, start, count):
    position = records.InputPosition(tf.distribute.InputContext(pipelines, pipeline, replicas), start)
    dataset = records.make_dataset(paths, records.fixed_int_spec(["input_ids", "input_mask", "segment_ids"], LENGTH),
                                   4, True, seed=3, input_context=position, length_buckets=buckets,
                                   sequence_keys=KEYS, shuffle_buffer=50)
    assert position.placed
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset.take(count)]


@pytest.mark.parametrize("buckets, pipelines, replicas", [
    (None, 1, 1), (None, 2, 2), ([8, 16, 32], 1, 2), ([8, 16, 32], 2, 2)])
def test_placed_input_equals_the_uninterrupted_stream(record_files, buckets, pipelines, replicas):
    """Resumes inside and across shuffle windows (50 records) and at and past a bucketing window
    (64 global batches), several epochs in; with 2 pipelines, the second one's stream."""
    per_step = replicas // pipelines  # elements a pipeline yields per global step
    pipeline = pipelines - 1
    uninterrupted = _batches(record_files, buckets, pipelines, pipeline, replicas, 0, 75 * per_step)
    names = [int(i) for batch in uninterrupted for i in batch["input_ids"][:, 0]]
    assert len(set(names)) >= 38 and len(names) > 2 * 115 // pipelines  # epochs of shuffled examples
    for start in (13, 64, 70):
        resumed = _batches(record_files, buckets, pipelines, pipeline, replicas, start, 5 * per_step)
        expected = uninterrupted[start * per_step:(start + 5) * per_step]
        assert len(resumed) == len(expected) == 5 * per_step
        for got, want in zip(resumed, expected):
            assert sorted(got) == sorted(want)
            for key in got:
                np.testing.assert_array_equal(got[key], want[key], err_msg=f"{key} at step {start}")
    if buckets:
        assert {b["input_ids"].shape[1] for b in uninterrupted} == {8, 16, 32}


def test_trainer_hands_the_position_over_and_replays_only_what_cannot_place_itself(tmp_path):
    """A resumed Trainer passes InputPosition(steps x accumulation); a dataset that does not place
    itself is replayed with skip(), so resuming it still equals an uninterrupted run."""
    rng = np.random.RandomState(0)
    x = rng.randn(40, 5).astype(np.float32)
    features = {"x": x, "target": (x @ rng.randn(5)).astype(np.float32)}
    seen = []

    def plain(context):
        seen.append((type(context).__name__, context.global_batches, context.local_batches))
        return tf.data.Dataset.from_tensor_slices(features).batch(4).repeat()

    def make_trainer(output_dir):
        def model_fn():
            tf_keras.utils.set_random_seed(3)
            model = TinyRegressor()
            model({"x": tf.zeros((1, 5))})
            return model

        return Trainer(tf.distribute.get_strategy(), model_fn, lambda: tf_keras.optimizers.SGD(0.05),
                       str(tmp_path / output_dir), global_batch_size=4, log_steps=1, save_checkpoints_steps=3,
                       gradient_accumulation_steps=2)

    make_trainer("resumed").train(plain, 3, verbose=False)
    resumed = make_trainer("resumed")
    resumed.train(plain, 5, verbose=False)
    reference = make_trainer("reference")
    reference.train(plain, 5, verbose=False)
    assert seen == [("InputPosition", 0, 0), ("InputPosition", 6, 6), ("InputPosition", 0, 0)]
    assert len(reference.model.weights) == 4
    for a, b in zip(resumed.model.weights, reference.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
