"""Resume without replay: a resumed run's input starts exactly where the uninterrupted run's was, unread."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from transformers import BertConfig

from bert_tf.data import records
from bert_tf.modeling.tasks import SequenceClassifier
from bert_tf.training import optimization
from bert_tf.training.settings import TrainerSettings
from bert_tf.training.trainer import Trainer

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


def _batches(paths, buckets, pipelines, pipeline, replicas, start, count, group_by_length=True):
    position = records.InputPosition(tf.distribute.InputContext(pipelines, pipeline, replicas), start)
    dataset = records.make_dataset(paths, records.fixed_int_spec(["input_ids", "input_mask", "segment_ids"], LENGTH),
                                   4, True, seed=3, input_context=position, length_buckets=buckets,
                                   sequence_keys=KEYS, shuffle_buffer=50, group_by_length=group_by_length)
    assert position.placed
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset.take(count)]


@pytest.mark.parametrize("buckets, pipelines, replicas, group_by_length", [
    (None, 1, 1, True), (None, 2, 2, True), ([8, 16, 32], 1, 2, True), ([8, 16, 32], 2, 2, True),
    ([8, 16, 32], 2, 2, False)])
def test_placed_input_equals_the_uninterrupted_stream(record_files, buckets, pipelines, replicas, group_by_length):
    """Resumes inside and across shuffle windows (50 records) and at and past a bucketing window
    (64 global batches), several epochs in; with 2 pipelines, the second one's stream; random
    batches cut to their bucket (``group_by_length`` False) as well as grouped ones."""
    per_step = replicas // pipelines  # elements a pipeline yields per global step
    pipeline = pipelines - 1
    uninterrupted = _batches(record_files, buckets, pipelines, pipeline, replicas, 0, 75 * per_step, group_by_length)
    names = [int(i) for batch in uninterrupted for i in batch["input_ids"][:, 0]]
    assert len(set(names)) >= 38 and len(names) > 2 * 115 // pipelines  # epochs of shuffled examples
    for start in (13, 64, 70):
        resumed = _batches(record_files, buckets, pipelines, pipeline, replicas, start, 5 * per_step,
                           group_by_length)
        expected = uninterrupted[start * per_step:(start + 5) * per_step]
        assert len(resumed) == len(expected) == 5 * per_step
        for got, want in zip(resumed, expected):
            assert sorted(got) == sorted(want)
            for key in got:
                np.testing.assert_array_equal(got[key], want[key], err_msg=f"{key} at step {start}")
    if buckets and group_by_length:
        assert {b["input_ids"].shape[1] for b in uninterrupted} == {8, 16, 32}


def test_resumed_trainer_with_dropout_equals_an_uninterrupted_one(tmp_path):
    """Dropout on: the checkpoint carries the dropout generators, so steps 4-6 after a resume draw the
    masks of an uninterrupted run. The resumed Trainer hands InputPosition(3) to ``dataset_fn``; this
    plain dataset does not place itself, so the Trainer replays it with skip()."""
    config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=16, hidden_dropout_prob=0.3,
                        attention_probs_dropout_prob=0.3)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 64, (10, 4, 8)).astype(np.int32)
    batches = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids),
               "label_ids": rng.integers(0, 2, (10, 4, 1)).astype(np.int32)}
    seen = []

    def dataset_fn(context):
        seen.append((type(context).__name__, context.global_batches))
        return tf.data.Dataset.from_tensor_slices(batches)

    def trainer(name):
        tf_keras.utils.set_random_seed(0)
        return Trainer(tf.distribute.OneDeviceStrategy("/cpu:0"),
                       lambda: SequenceClassifier(config, num_labels=2).build_with_dummies(),
                       lambda: optimization.create_optimizer(1e-2, 100, 0), str(tmp_path / name),
                       TrainerSettings(4, log_steps=100, save_checkpoints_steps=3))

    uninterrupted = trainer("uninterrupted")
    uninterrupted.train(dataset_fn, 6, verbose=False)
    # The same run killed after step 3: its output_dir as it was when ckpt-3 was the latest.
    killed = tmp_path / "killed" / "checkpoints"
    killed.mkdir(parents=True)
    for path in (tmp_path / "uninterrupted" / "checkpoints").glob("ckpt-3.*"):
        (killed / path.name).write_bytes(path.read_bytes())
    (killed / "checkpoint").write_text('model_checkpoint_path: "ckpt-3"\n')
    resumed = trainer("killed")
    resumed.train(dataset_fn, 6, verbose=False)
    assert seen == [("InputPosition", 0), ("InputPosition", 3)]
    assert len(uninterrupted.model.weights) > 20
    for a, b in zip(resumed.model.weights, uninterrupted.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
