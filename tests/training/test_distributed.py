"""One code path across strategies: mirrored and multi-worker runs equal a single-device run."""
import json
import os
import signal
import socket
import subprocess
import time

import numpy as np
import pytest

from tests import workloads

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "strategy_runner.py")


def _runner_command(report, runs, cpus, job="classifier"):
    command = [workloads.PYTHON, RUNNER, f"--cpus={cpus}", f"--report={report}", f"--job={job}"]
    for argv in runs:
        command += ["--"] + argv
    return command


def _read_report(report):
    with open(report) as f:
        results = json.load(f)
    for result in results:
        with np.load(result["weights"]) as arrays:
            result["arrays"] = {k.replace("|", "/"): arrays[k] for k in arrays.files}
    return results


def _run_runner(tmp_path, runs, cpus=2, timeout=300, job="classifier"):
    report = str(tmp_path / "report.json")
    try:
        done = subprocess.run(_runner_command(report, runs, cpus, job), capture_output=True, text=True, timeout=timeout,
                              env=workloads.tool_env())
    except subprocess.TimeoutExpired as error:
        raise AssertionError(f"strategy runner timed out after {timeout}s") from error
    assert done.returncode == 0, done.stderr[-4000:]
    return _read_report(report)


def _assert_same_weights(a, b, atol):
    assert sorted(a) == sorted(b)
    model_names = [n for n in a if n.startswith("model/")]
    assert len(model_names) > 20  # the whole encoder and head, not just a step counter
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=atol, rtol=0, err_msg=name)


def test_mirrored_two_replicas_equal_one_device(tmp_path, tiny_checkpoint):
    """2 logical CPUs under MirroredStrategy vs one device, same global batch of 8 for 4 steps.

    Equal losses and weights prove the per-replica batch (4 each), the loss scaled by the global
    batch, the gradient all-reduce and the metric aggregation.
    """
    train = workloads.small_tsv(tmp_path / "train.tsv", 64)
    config = workloads.deterministic_config(tiny_checkpoint, tmp_path / "config.json")
    common = dict(bert_config_file=config, num_train_steps=4, batch_size=8)
    single, mirrored = _run_runner(tmp_path, [
        workloads.classifier_argv(tiny_checkpoint, train, str(tmp_path / "single"), strategy="cpu", **common),
        workloads.classifier_argv(tiny_checkpoint, train, str(tmp_path / "mirrored"), strategy="mirrored",
                                  **common),
    ])
    assert single["global_step"] == mirrored["global_step"] == 4
    single_loss = [m["loss"] for m in single["train_history"]]
    mirrored_loss = [m["loss"] for m in mirrored["train_history"]]
    assert len(single_loss) == 4
    np.testing.assert_allclose(mirrored_loss, single_loss, rtol=1e-5)
    np.testing.assert_allclose([m["accuracy"] for m in mirrored["train_history"]],
                               [m["accuracy"] for m in single["train_history"]], atol=1e-6)
    # The loss moved, so the comparison covers real updates rather than four identical no-ops.
    assert abs(single_loss[-1] - single_loss[0]) > 1e-3
    _assert_same_weights(single["arrays"], mirrored["arrays"], atol=2e-5)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _run_workers(tmp_path, argv_for, job="classifier", count=2, timeout=300):
    """Runs ``count`` worker processes on 127.0.0.1 (free ports, TF_CONFIG each); returns their reports.

    All are killed if any is still running at the deadline, so a hung collective cannot hang CI.
    """
    workers = [f"127.0.0.1:{port}" for port in _free_ports(count)]
    processes, reports = [], []
    for index in range(count):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        reports.append(str(tmp_path / f"worker{index}.json"))
        processes.append(subprocess.Popen(_runner_command(reports[-1], [argv_for(index)], cpus=1, job=job),
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          start_new_session=True, env=workloads.tool_env(TF_CONFIG=tf_config)))
    deadline = time.time() + timeout
    try:
        errors = []
        for process in processes:
            _, err = process.communicate(timeout=max(1, deadline - time.time()))
            if process.returncode != 0:
                errors.append(err[-3000:])
        assert not errors, errors
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return [_read_report(report)[0] for report in reports]


def _model_arrays(result):
    return {k: v for k, v in result["arrays"].items() if k.startswith("model/bert_classification/")}


def test_multi_worker_two_processes_agree_and_only_the_chief_writes(tmp_path, tiny_checkpoint):
    """2 worker processes on 127.0.0.1 under MultiWorkerMirroredStrategy (TF_CONFIG, free ports)."""
    train = workloads.small_tsv(tmp_path / "train.tsv", 64)
    dev = workloads.small_tsv(tmp_path / "dev.tsv", 24, offset=100)
    chief, worker = _run_workers(tmp_path, lambda index: workloads.classifier_argv(
        tiny_checkpoint, train, str(tmp_path / f"out{index}"), strategy="multi_worker", num_train_steps=3,
        batch_size=8, dev_file=dev, do_eval=True))
    assert chief["is_chief"] and not worker["is_chief"]
    assert chief["global_step"] == worker["global_step"] == 3
    np.testing.assert_allclose([h["loss"] for h in worker["train_history"]],
                               [h["loss"] for h in chief["train_history"]], rtol=1e-6)
    chief_weights, worker_weights = _model_arrays(chief), _model_arrays(worker)
    assert len(chief_weights) > 20
    _assert_same_weights(chief_weights, worker_weights, atol=0)
    # Both evaluated the whole dev set, not their shard of it.
    assert chief["eval"] == worker["eval"]
    assert sum(map(sum, chief["eval"]["confusion_matrix"])) == 24
    chief_files = sorted(os.listdir(tmp_path / "out0"))
    assert {"checkpoints", "model", "eval_results.json", "train_metrics.jsonl"} <= set(chief_files)
    assert ".lock" not in chief_files
    # The non-chief wrote only its data cache: no checkpoints, temp dirs, results or model.
    assert sorted(os.listdir(tmp_path / "out1")) == ["cache"]


def test_xla_with_several_cpu_replicas_is_refused_before_work_starts(tmp_path, tiny_checkpoint):
    """TF 2.21 cannot run a jit-compiled step mirrored over CPU devices; say so instead of crashing."""
    train = workloads.small_tsv(tmp_path / "train.tsv", 16)
    report = str(tmp_path / "report.json")
    argv = workloads.classifier_argv(tiny_checkpoint, train, str(tmp_path / "out"), strategy="mirrored",
                                     jit_compile=True)
    done = subprocess.run(_runner_command(report, [argv], cpus=2), capture_output=True, text=True, timeout=240,
                          env=workloads.tool_env())
    assert done.returncode != 0
    assert ("UserError: --jit_compile with 2 CPU replicas fails in TensorFlow (XLA cannot read a variable placed "
            "on another CPU device): drop --jit_compile") in done.stderr
    assert not os.path.exists(tmp_path / "out" / "checkpoints")


@pytest.fixture(scope="module")
def pretraining_workload(tmp_path_factory, corpus_file, vocab_file):
    """Tiny pretraining records and a dropout-free config; returns an argv maker."""
    from bert_tf.data import pretraining as pretraining_data
    from bert_tf.tokenization import HostTokenizer

    directory = tmp_path_factory.mktemp("pretraining")
    records = str(directory / "train.tfrecord")
    settings = pretraining_data.Settings(max_seq_length=32, max_predictions_per_seq=5, dupe_factor=1)
    pretraining_data.create_pretraining_data(corpus_file, records, HostTokenizer(vocab_file), settings,
                                             verbose=False)
    config = directory / "config.json"
    config.write_text(json.dumps({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                                  "intermediate_size": 128, "max_position_embeddings": 64,
                                  "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}))

    def argv(output_dir, **extra):
        flags = {"input_file": records, "vocab_file": vocab_file, "bert_config_file": str(config),
                 "output_dir": output_dir, "max_seq_length": 32, "max_predictions_per_seq": 5,
                 "train_batch_size": 8, "num_train_steps": 3, "num_warmup_steps": 0, "learning_rate": 1e-3,
                 "log_steps": 1, "save_checkpoints_steps": 1000, "seed": 5}
        flags.update(extra)
        return [f"--{k}={v}" for k, v in flags.items()]

    return argv


def test_mirrored_pretraining_equals_one_device(tmp_path, pretraining_workload):
    single, mirrored = _run_runner(tmp_path, [pretraining_workload(str(tmp_path / "single"), strategy="cpu"),
                                              pretraining_workload(str(tmp_path / "mirrored"), strategy="mirrored")],
                                   job="pretraining")
    assert single["global_step"] == mirrored["global_step"] == 3
    for name in ("loss", "mlm_loss", "nsp_loss", "mlm_accuracy", "nsp_accuracy"):
        np.testing.assert_allclose([h[name] for h in mirrored["train_history"]],
                                   [h[name] for h in single["train_history"]], rtol=1e-5, atol=1e-6, err_msg=name)
    _assert_same_weights(single["arrays"], mirrored["arrays"], atol=2e-5)


def test_multi_worker_pretraining_workers_agree(tmp_path, pretraining_workload):
    chief, worker = _run_workers(tmp_path, lambda index: pretraining_workload(
        str(tmp_path / f"out{index}"), strategy="multi_worker"), job="pretraining")
    assert chief["global_step"] == worker["global_step"] == 3
    np.testing.assert_allclose([h["loss"] for h in worker["train_history"]],
                               [h["loss"] for h in chief["train_history"]], rtol=1e-6)
    chief_weights = {k: v for k, v in chief["arrays"].items() if k.startswith("model/bert_pretraining/")}
    worker_weights = {k: v for k, v in worker["arrays"].items() if k.startswith("model/bert_pretraining/")}
    assert len(chief_weights) > 20
    _assert_same_weights(chief_weights, worker_weights, atol=0)
    assert {"checkpoints", "model", "train_metrics.jsonl"} <= set(os.listdir(tmp_path / "out0"))
    assert os.listdir(tmp_path / "out1") == []


@pytest.mark.parametrize("task_type, index, cluster, chief", [
    ("worker", 0, {"worker": ["a:1", "b:1"]}, True),
    ("worker", 1, {"worker": ["a:1", "b:1"]}, False),
    ("chief", 0, {"chief": ["c:1"], "worker": ["a:1", "b:1"]}, True),
    ("worker", 0, {"chief": ["c:1"], "worker": ["a:1", "b:1"]}, False),
])
def test_only_the_chief_task_is_chief(task_type, index, cluster, chief):
    import tensorflow as tf

    from bert_tf import distribute

    class Resolver:
        task_type, task_id = None, None

        def cluster_spec(self):
            return tf.train.ClusterSpec(cluster)

    class Strategy:
        cluster_resolver = Resolver()

    Strategy.cluster_resolver.task_type, Strategy.cluster_resolver.task_id = task_type, index
    assert distribute.is_chief(Strategy()) is chief


REPLICA_SHAPES_SCRIPT = """
import json, sys
import bert_tf
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from bert_tf.data import records
path, report = sys.argv[1:3]
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
spec = records.fixed_int_spec(["input_ids", "input_mask", "segment_ids"], 32)
keys = ("input_ids", "attention_mask", "token_type_ids")
dataset = strategy.distribute_datasets_from_function(lambda context: records.make_dataset(
    path, spec, context.get_per_replica_batch_size(8), True, seed=1, input_context=context,
    length_buckets=[8, 16, 32], sequence_keys=keys, shuffle_buffer=64))
steps = []
for features, _ in zip(dataset, range(40)):
    steps.append([[list(t.shape) for t in strategy.experimental_local_results(features[k])] for k in keys]
                 + [[int(t.numpy().sum(-1).max()) for t in strategy.experimental_local_results(features["attention_mask"])]])
json.dump(steps, open(report, "w"))
"""


def test_every_replica_of_a_step_gets_the_same_bucket(tmp_path):
    """Length buckets under 2 logical CPU replicas: one bound per global step, cut to fit its longest example."""
    from bert_tf.data import records

    rng = np.random.default_rng(0)
    examples = []
    for _ in range(200):
        length = int(rng.integers(3, 33))
        mask = np.zeros(32, np.int64)
        mask[:length] = 1
        examples.append(records.to_example({"input_ids": mask * 7, "input_mask": mask,
                                            "segment_ids": np.zeros(32, np.int64)}))
    path = str(tmp_path / "train.tfrecord")
    records.write_records(path, examples)
    report = tmp_path / "shapes.json"
    done = subprocess.run([workloads.PYTHON, "-c", REPLICA_SHAPES_SCRIPT, path, str(report)], capture_output=True,
                          text=True, timeout=240, env=workloads.tool_env())
    assert done.returncode == 0, done.stderr[-3000:]
    steps = json.loads(report.read_text())
    assert len(steps) == 40
    bounds = set()
    for *shapes, longest in steps:
        for per_key in shapes:
            assert len(per_key) == 2 and per_key[0] == per_key[1], steps  # both replicas, one shape
            assert per_key[0][0] == 4  # per-replica batch of a global 8
        bound = shapes[0][0][1]
        bounds.add(bound)
        # The smallest bucket that holds the longest example of the whole global batch.
        assert bound == min(b for b in (8, 16, 32) if b >= max(longest))
    assert bounds == {8, 16, 32}
