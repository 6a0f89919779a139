"""Reliability guarantees of the one Trainer: numerical faults, corrupt data, locks, full or read-only disks."""
import json
import os
import resource
import signal
import subprocess

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from transformers import BertConfig

from bert_tf.data import classification, records
from bert_tf.errors import UserError
from bert_tf.modeling.tasks import SequenceClassifier
from bert_tf.tokenization import HostTokenizer
from bert_tf.training import optimization
from bert_tf.training.precision import set_precision
from bert_tf.training.trainer import Trainer
from tests import workloads

BATCH, LENGTH, VOCAB = 4, 8, 64


@pytest.fixture(autouse=True)
def _float32_policy():
    yield
    set_precision("no")


def _config():
    return BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=32, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0)


def _trainer(output_dir, regression=False, learning_rate=1e-3, library_terms=False, **kwargs):
    """A trainer worded as a script's (``flag_names``), so the messages below are what the scripts print;
    with ``library_terms`` as the Python API's."""
    tf_keras.utils.set_random_seed(0)

    def model_fn():
        model = SequenceClassifier(_config(), num_labels=1 if regression else 2, regression=regression)
        return model.build_with_dummies()

    kwargs.setdefault("log_steps", 100)
    return Trainer(tf.distribute.OneDeviceStrategy("/cpu:0"), model_fn,
                   lambda: optimization.create_optimizer(learning_rate, 100, 0), str(output_dir),
                   BATCH, flag_names=None if library_terms else {"skip_corrupt": "skip_corrupt_records"}, **kwargs)


def _batches(num_batches, labels=None, regression=False):
    """A fixed sequence of batches; ``labels`` ({batch index: value}) poisons chosen batches."""
    rng = np.random.default_rng(0)
    ids = rng.integers(5, VOCAB, (num_batches, BATCH, LENGTH)).astype(np.int32)
    features = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    if regression:
        values = rng.random((num_batches, BATCH, 1)).astype(np.float32)
        for index, value in (labels or {}).items():
            values[index, 0, 0] = value
        features["label_values"] = values
    else:
        features["label_ids"] = rng.integers(0, 2, (num_batches, BATCH, 1)).astype(np.int32)
    return lambda context: tf.data.Dataset.from_tensor_slices(features)


def _checkpoint_is_finite(path):
    reader = tf.train.load_checkpoint(path)
    for name, _ in reader.get_variable_to_shape_map().items():
        value = reader.get_tensor(name)
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            assert np.all(np.isfinite(value)), name


# ---- numerical faults -----------------------------------------------------------------------

def test_nan_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = _trainer(tmp_path, regression=True, save_checkpoints_steps=2)
    with pytest.raises(UserError) as error:
        trainer.train(_batches(12, {5: np.nan}, regression=True), num_train_steps=10, verbose=False)
    checkpoint = str(tmp_path / "checkpoints" / "ckpt-4")
    assert str(error.value) == (f"loss became nan at step 6 (--nan_policy=stop): the last good checkpoint "
                                f"{checkpoint} is kept; lower --learning_rate, check the data, or pass "
                                "--nan_policy=skip_batch")
    assert tf.train.latest_checkpoint(tmp_path / "checkpoints") == checkpoint
    _checkpoint_is_finite(checkpoint)
    assert not (tmp_path / ".lock").exists()


def test_huge_learning_rate_is_stopped_too(tmp_path):
    trainer = _trainer(tmp_path, learning_rate=1e30, save_checkpoints_steps=1000)
    with pytest.raises(UserError, match=r"^loss became nan at step \d+ \(--nan_policy=stop\): no checkpoint was "
                                        r"saved yet"):
        trainer.train(_batches(20), num_train_steps=20, verbose=False)
    # The Python API words it with the parameters' names.
    trainer = _trainer(tmp_path / "api", learning_rate=1e30, save_checkpoints_steps=1000, library_terms=True)
    with pytest.raises(UserError, match=r"^loss became nan at step \d+ \(nan_policy=stop\): no checkpoint was saved "
                                        r"yet; lower learning_rate, check the data, or pass nan_policy=skip_batch$"):
        trainer.train(_batches(20), num_train_steps=20, verbose=False)


def test_skip_batch_skips_and_counts_poisoned_batches(tmp_path):
    trainer = _trainer(tmp_path, regression=True, nan_policy="skip_batch", log_steps=4)
    before = {w.name: w.numpy() for w in trainer.model.trainable_weights}
    summary = trainer.train(_batches(8, {2: np.inf, 5: np.nan}, regression=True), num_train_steps=8,
                            verbose=False)
    assert summary["global_step"] == 8
    assert summary["skipped_batches"] == 2
    assert [h["skipped_batches"] for h in summary["train_history"]] == [1, 2]
    # The logged loss averages the good batches only.
    assert all(np.isfinite(h["loss"]) for h in summary["train_history"])
    for weight in trainer.model.trainable_weights:
        assert np.all(np.isfinite(weight.numpy())), weight.name
    assert sum(not np.array_equal(before[w.name], w.numpy()) for w in trainer.model.trainable_weights) > 10
    _checkpoint_is_finite(tf.train.latest_checkpoint(tmp_path / "checkpoints"))


def test_fp16_loss_scale_underflow_is_reported(tmp_path):
    # Labels of 1e18 overflow every fp16 gradient: each step is skipped and the scale halves
    # from 2**15 down to its floor of 1 at step 15.
    trainer = _trainer(tmp_path, regression=True, mixed_precision="fp16")
    labels = {i: 1e18 for i in range(24)}
    dataset_fn = _batches(24, labels, regression=True)

    def all_huge(context):
        return dataset_fn(context).map(lambda f: dict(f, label_values=tf.fill(tf.shape(f["label_values"]), 1e18)))

    with pytest.raises(UserError, match=r"^fp16 loss scale fell to its floor of 1 at step 15: steps kept "
                                        r"overflowing and were skipped, small gradients underflow; no checkpoint "
                                        r"was saved yet; use --mixed_precision=bf16 or no"):
        trainer.train(all_huge, num_train_steps=24, verbose=False)


# ---- mixed precision --------------------------------------------------------------------------

@pytest.mark.parametrize("precision, compute_dtype", [("bf16", "bfloat16"), ("fp16", "float16")])
def test_mixed_precision_trains_a_few_steps(tmp_path, precision, compute_dtype):
    trainer = _trainer(tmp_path, mixed_precision=precision, log_steps=3, learning_rate=1e-2)
    assert trainer.model.classifier.compute_dtype == compute_dtype
    # Weights stay float32 (the optimizer updates master copies).
    assert all(w.dtype == tf.float32 for w in trainer.model.trainable_weights)
    before = {w.name: w.numpy() for w in trainer.model.trainable_weights}
    summary = trainer.train(_batches(6), num_train_steps=6, verbose=False)
    losses = [h["loss"] for h in summary["train_history"]]
    assert summary["global_step"] == 6 and len(losses) == 2 and all(np.isfinite(losses))
    assert sum(not np.array_equal(before[w.name], w.numpy()) for w in trainer.model.trainable_weights) > 10
    if precision == "fp16":
        # Dynamic loss scaling is on and logged: 2**15 at start, unchanged while nothing overflows.
        assert [h["loss_scale"] for h in summary["train_history"]] == [32768.0, 32768.0]
    else:
        assert "loss_scale" not in summary["train_history"][0]


# ---- corrupt records ---------------------------------------------------------------------------

def _record_spans(path):
    """[(start, end)] byte spans of a TFRecord file's records, walking its framing independently."""
    with open(path, "rb") as f:
        data = f.read()
    spans, position = [], 0
    while position < len(data):
        end = position + 8 + 4 + int.from_bytes(data[position:position + 8], "little") + 4
        spans.append((position, end))
        position = end
    return spans


def _write_shards(tmp_path):
    rng = np.random.default_rng(1)
    examples = []
    for _ in range(40):
        ids = rng.integers(5, VOCAB, LENGTH)
        examples.append(records.to_example({"input_ids": ids, "input_mask": np.ones(LENGTH, np.int64),
                                            "segment_ids": np.zeros(LENGTH, np.int64),
                                            "label_ids": [int(rng.integers(0, 2))]}))
    base = str(tmp_path / "data" / "train.tfrecord")
    records.write_records(base, examples, num_shards=2)
    return records.shard_paths(base, 2)


def _records_dataset_fn(paths, skip_corrupt=False):
    spec = classification.feature_spec(LENGTH)
    return lambda context: records.make_dataset(paths, spec, BATCH, is_training=True, seed=3,
                                                input_context=context, skip_corrupt=skip_corrupt)


@pytest.mark.parametrize("damage", ["bit_flip", "truncate"])
def test_corrupt_shard_is_named_with_its_record_then_skipped_on_request(tmp_path, damage, monkeypatch):
    paths = _write_shards(tmp_path)
    with open(paths[1], "rb") as f:
        data = bytearray(f.read())
    expected = 12
    start, end = _record_spans(paths[1])[expected]
    middle = (start + 12 + end - 4) // 2  # inside the record's payload
    if damage == "bit_flip":
        data[middle] ^= 0x10
    else:
        data = data[:middle]
    with open(paths[1], "wb") as f:
        f.write(data)
    with pytest.raises(UserError) as error:
        _trainer(tmp_path / "strict").train(_records_dataset_fn(paths), num_train_steps=30, verbose=False)
    message = str(error.value)
    assert message.startswith(f"TFRecord file {paths[1]} is corrupt at record {expected} (")
    assert message.endswith("regenerate it, or pass --skip_corrupt_records to train on the records before the "
                            "damage")
    summary = _trainer(tmp_path / "skipping").train(_records_dataset_fn(paths, skip_corrupt=True),
                                                    num_train_steps=30, verbose=False)
    assert summary["global_step"] == 30
    assert summary["corrupt_files_skipped"] == {paths[1]: expected}


def test_file_cut_inside_a_record_header_is_reported(tmp_path):
    """TensorFlow reads such a file as a clean, shorter one; the scan does not."""
    paths = _write_shards(tmp_path)
    start, _ = _record_spans(paths[0])[7]
    with open(paths[0], "rb") as f:
        data = f.read()
    with open(paths[0], "wb") as f:
        f.write(data[:start + 3])  # 3 of the 8 length bytes of record 7
    assert sum(1 for _ in tf.data.TFRecordDataset(paths[0])) == 7  # silently short
    with pytest.raises(UserError) as error:
        records.count_records(paths[0])
    assert str(error.value) == f"TFRecord file {paths[0]} is corrupt at record 7: regenerate it"
    assert records.count_records(paths[1]) == 20


# ---- caches, locks, disks ----------------------------------------------------------------------

def test_data_cache_never_reuses_stale_records(tmp_path, vocab_file):
    train = workloads.small_tsv(tmp_path / "train.tsv", 10)
    tokenizer = HostTokenizer(vocab_file, do_lower_case=True)
    cache = str(tmp_path / "cache")

    def convert(max_seq_length=32, lower_tokenizer=tokenizer, labels=("0", "1")):
        examples, _ = classification.read_examples(train)
        return classification.cached_records(examples, [train], cache, "train", lower_tokenizer, max_seq_length,
                                             list(labels), False)[0]

    first = convert()
    assert convert() == first  # same file, same settings: reused
    changed_settings = {convert(max_seq_length=16), convert(labels=("1", "0")),
                        convert(lower_tokenizer=HostTokenizer(vocab_file, do_lower_case=False))}
    assert first not in changed_settings and len(changed_settings) == 3
    with open(train, "a", encoding="utf-8") as f:
        f.write("a late extra row\t1\n")
    edited = convert()
    assert edited != first
    assert records.count_records(edited) == 11 and records.count_records(first) == 10


def test_second_run_on_a_busy_output_dir_is_refused_unless_overwrite(tmp_path):
    holder = subprocess.Popen(["sleep", "60"])
    try:
        import socket

        (tmp_path / ".lock").write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname()}))
        trainer = _trainer(tmp_path)
        with pytest.raises(UserError) as error:
            trainer.train(_batches(4), num_train_steps=2, verbose=False)
        assert str(error.value) == (f"{tmp_path} is in use by process {holder.pid} on {socket.gethostname()}: "
                                    "wait for it, choose another --output_dir, or pass --overwrite_output_dir")
        assert not (tmp_path / "checkpoints").exists()
        summary = trainer.train(_batches(4), num_train_steps=2, verbose=False, overwrite_output_dir=True)
        assert summary["global_step"] == 2
        assert not (tmp_path / ".lock").exists()
    finally:
        holder.kill()
        holder.wait()


def _limit_file_size(limit):
    def apply():
        # Ignore SIGXFSZ so an oversized write fails with EFBIG, as a full disk fails with ENOSPC.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_checkpoint):
    """A finished 2-step run whose output_dir holds good checkpoints; returns (argv maker, output_dir).

    Shared: the tests using it must leave it as they found it (which is what they assert).
    """
    tmp_path = tmp_path_factory.mktemp("trained_run")
    train = workloads.small_tsv(tmp_path / "train.tsv", 32)
    output_dir = tmp_path / "run"

    def argv(steps, **extra):
        return workloads.classifier_argv(tiny_checkpoint, train, str(output_dir), num_train_steps=steps,
                                         save_checkpoints_steps=2, **extra)

    done = workloads.run_tool("run_classifier.py", argv(2))
    assert done.returncode == 0, done.stderr[-3000:]
    return argv, output_dir


def _checkpoint_files(output_dir):
    directory = output_dir / "checkpoints"
    return {name: (directory / name).read_bytes() for name in os.listdir(directory) if name.startswith("ckpt-2")}


def test_disk_full_fails_clearly_and_keeps_earlier_checkpoints(trained_run):
    argv, output_dir = trained_run
    before = _checkpoint_files(output_dir)
    largest = max(len(b) for b in before.values())
    # Room for logs and small files, not for the next checkpoint's data file.
    done = workloads.run_tool("run_classifier.py", argv(4), preexec_fn=_limit_file_size(largest // 2))
    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot write ") and "(File too large): free disk space" in last
    assert "Traceback" not in done.stderr
    assert _checkpoint_files(output_dir) == before
    assert tf.train.latest_checkpoint(output_dir / "checkpoints").endswith("ckpt-2")
    _checkpoint_is_finite(tf.train.latest_checkpoint(output_dir / "checkpoints"))


def test_read_only_output_dir_fails_clearly_and_changes_nothing(trained_run):
    argv, output_dir = trained_run
    before = {path: path.read_bytes() for path in output_dir.rglob("*") if path.is_file()}
    command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
               "--inh-caps=-dac_override,-dac_read_search", workloads.PYTHON,
               os.path.join(workloads.REPO, "tools", "run_classifier.py")] + argv(4)
    if os.geteuid() != 0:
        command = command[3:]  # a normal user is refused by the mode bits alone
    elif subprocess.run(["setpriv", "--version"], capture_output=True).returncode != 0:
        pytest.skip("root without setpriv cannot be refused a write")
    directories = [output_dir] + [p for p in output_dir.rglob("*") if p.is_dir()]
    for directory in directories:
        directory.chmod(0o555)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=workloads.tool_env())
    finally:
        for directory in directories:
            directory.chmod(0o755)
    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot write {output_dir}") and "(Permission denied)" in last
    assert "Traceback" not in done.stderr
    assert {path: path.read_bytes() for path in output_dir.rglob("*") if path.is_file()} == before


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_flag_through_the_classifier_job(tmp_path, tiny_checkpoint, flag_values, precision):
    from bert_tf.jobs import classifier

    train = workloads.small_tsv(tmp_path / "train.tsv", 16)
    argv = workloads.classifier_argv(tiny_checkpoint, train, str(tmp_path / "out"), num_train_steps=2,
                                     mixed_precision=precision, strategy="cpu")
    result = classifier.run(flag_values(classifier.define_flags, argv))
    assert result["train"]["global_step"] == 2
    with open(tmp_path / "out" / "train_metrics.jsonl") as f:
        logged = [json.loads(line) for line in f]
    assert [m["step"] for m in logged] == [1, 2] and all(np.isfinite(m["loss"]) for m in logged)
    assert ("loss_scale" in logged[0]) == (precision == "fp16")
    # The saved model is float32 whatever the training precision.
    import h5py

    dtypes = set()
    with h5py.File(tmp_path / "out" / "model" / "tf_model.h5", "r") as f:
        f.visititems(lambda name, item: dtypes.add(str(item.dtype)) if isinstance(item, h5py.Dataset) else None)
    assert dtypes == {"float32"}
