"""Crash safety of a real run_classifier process: SIGTERM saves and resumes, SIGKILL anywhere loses nothing.

The kill loop SIGKILLs the same command at chosen moments (while it starts, while a checkpoint is
being written, between steps, while the final model is being saved) and reruns it each time.
The run must end at exactly ``num_train_steps`` with the weights of an uninterrupted run, and
nothing on disk under its final name may ever be unreadable.
"""
import json
import os
import random
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest
import tensorflow as tf

from tests import workloads

NUM_STEPS = 12


def _argv(tiny_checkpoint, train, config, output_dir, **extra):
    flags = dict(bert_config_file=config, num_train_steps=NUM_STEPS, save_checkpoints_steps=3, log_steps=1,
                 length_buckets="16,32")
    flags.update(extra)
    return workloads.classifier_argv(tiny_checkpoint, train, output_dir, **flags)


def _env():
    # Deterministic kernels, so equal inputs give bitwise-equal steps in every process.
    return workloads.tool_env(TF_DETERMINISTIC_OPS="1")


def _start(argv, script="run_classifier.py"):
    return subprocess.Popen([workloads.PYTHON, os.path.join(workloads.REPO, "tools", script)] + argv,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                            start_new_session=True)


def _final_weights(output_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(output_dir, "checkpoints")))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.startswith("model/")}


def _assert_everything_readable(output_dir):
    """Every checkpoint the state file lists and a final model/ directory, if present, load."""
    if not os.path.isdir(output_dir):
        return
    checkpoint_dir = os.path.join(output_dir, "checkpoints")
    state = tf.train.get_checkpoint_state(checkpoint_dir) if os.path.isdir(checkpoint_dir) else None
    for path in (state.all_model_checkpoint_paths if state else []):
        reader = tf.train.load_checkpoint(path)
        assert reader.get_variable_to_shape_map()
    model_dir = os.path.join(output_dir, "model")
    if os.path.exists(model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            json.load(f)
        with h5py.File(os.path.join(model_dir, "tf_model.h5"), "r") as f:
            assert len(f.keys()) > 0
        with open(os.path.join(model_dir, "bert_tf.json")) as f:
            assert json.load(f)["task"] == "classification"
    for name in os.listdir(output_dir):
        if name.endswith(".json"):
            with open(os.path.join(output_dir, name)) as f:
                json.load(f)


def _moment_reached(moment, output_dir, started):
    checkpoint_dir = os.path.join(output_dir, "checkpoints")
    if moment[0] == "after_seconds":
        return time.time() - started >= moment[1]
    if moment[0] == "checkpoint_write":
        return os.path.isdir(checkpoint_dir) and any("_temp" in n for n in os.listdir(checkpoint_dir))
    if moment[0] == "export":
        return os.path.isdir(output_dir) and any(n.startswith("model.partial-") for n in os.listdir(output_dir))
    if moment[0] == "saved_model_write":
        return os.path.isdir(output_dir) and any(".partial-" in n for n in os.listdir(output_dir))
    if moment[0] == "after_logged_steps":
        log = os.path.join(output_dir, "train_metrics.jsonl")
        return os.path.exists(log) and sum(1 for _ in open(log)) >= moment[1]
    raise ValueError(moment)


def _kill_at(argv, output_dir, moment, timeout=240, script="run_classifier.py"):
    """Starts the command and SIGKILLs it at ``moment``; returns whether it was killed (vs finished)."""
    process = _start(argv, script)
    started = time.time()
    try:
        while process.poll() is None:
            if _moment_reached(moment, output_dir, started):
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return True
            if time.time() - started > timeout:
                raise AssertionError(f"run did not reach {moment} within {timeout}s")
            time.sleep(0.002)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        _, err = process.communicate()
    assert process.returncode == 0, f"run failed before {moment}: {err[-2000:]}"
    return False


def _run(argv, timeout=240, script="run_classifier.py"):
    process = _start(argv, script)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    return process.returncode, out, err


@pytest.fixture
def workload(tmp_path, tiny_checkpoint):
    """Dropout on: a resumed run must draw the masks the uninterrupted run drew (its generators are
    checkpointed)."""
    train = workloads.small_tsv(tmp_path / "train.tsv", 200)
    with open(os.path.join(tiny_checkpoint, "config.json")) as f:
        settings = json.load(f)
    settings.update(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(settings))
    return lambda output_dir, **extra: _argv(tiny_checkpoint, train, config, str(output_dir), **extra)


def test_sigkill_anywhere_then_rerun_equals_an_uninterrupted_run(tmp_path, workload):
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    code, _, err = _run(workload(reference_dir))
    assert code == 0, err[-3000:]
    rng = random.Random(1234)
    moments = [("after_seconds", rng.uniform(1.0, 4.0)),  # while importing / converting data
               ("checkpoint_write",), ("after_logged_steps", rng.randint(4, 6)), ("checkpoint_write",),
               ("after_logged_steps", rng.randint(8, 11)), ("export",)]
    kills = []
    for moment in moments:
        if _kill_at(workload(killed_dir), killed_dir, moment):
            kills.append(moment[0])
            _assert_everything_readable(killed_dir)
    assert len(kills) >= 5, kills
    assert "checkpoint_write" in kills and "export" in kills
    code, out, err = _run(workload(killed_dir))
    assert code == 0, err[-3000:]
    _assert_everything_readable(killed_dir)
    state = tf.train.get_checkpoint_state(killed_dir / "checkpoints")
    assert state.model_checkpoint_path.endswith(f"ckpt-{NUM_STEPS}")
    reference, resumed = _final_weights(reference_dir), _final_weights(killed_dir)
    assert sorted(reference) == sorted(resumed) and len(reference) > 20
    for name in reference:
        np.testing.assert_allclose(resumed[name], reference[name], atol=1e-6, rtol=0, err_msg=name)
    with h5py.File(killed_dir / "model" / "tf_model.h5", "r") as killed_h5, \
            h5py.File(reference_dir / "model" / "tf_model.h5", "r") as reference_h5:
        assert sorted(killed_h5.keys()) == sorted(reference_h5.keys())

    # The serving export too: killed while the SavedModel is being written, then rerun.
    export_dir = tmp_path / "serving"
    export_argv = [f"--model_dir={killed_dir}", f"--export_dir={export_dir}"]
    assert _kill_at(export_argv, export_dir, ("saved_model_write",), script="export_savedmodel.py")
    assert not (export_dir / "1").exists()  # no half-written version under its final name
    code, _, err = _run(export_argv, script="export_savedmodel.py")
    assert code == 0, err[-3000:]
    import tensorflow_text  # noqa: F401  (the serving graph's tokenizer ops)

    loaded = tf.saved_model.load(str(export_dir / "1"))
    outputs = loaded.signatures["serving_default"](text=tf.constant(["a fine film", "a dull film"]))
    np.testing.assert_allclose(outputs["probabilities"].numpy().sum(-1), [1.0, 1.0], atol=1e-5)


def test_sigterm_saves_and_a_rerun_resumes(tmp_path, workload):
    output_dir = tmp_path / "run"
    argv = workload(output_dir, save_checkpoints_steps=1000)
    process = _start(argv)
    log = output_dir / "train_metrics.jsonl"
    deadline = time.time() + 240
    while not (log.exists() and sum(1 for _ in open(log)) >= 3):
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.time() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: stopped by signal 15 at step ")
    assert "Traceback" not in err
    stopped_at = int(lines[-1].split("at step ")[1].split(";")[0])
    assert 3 <= stopped_at < NUM_STEPS
    assert tf.train.latest_checkpoint(output_dir / "checkpoints").endswith(f"ckpt-{stopped_at}")
    assert not (output_dir / "model").exists()
    code, _, err = _run(argv)
    assert code == 0, err[-3000:]
    steps = [json.loads(line)["step"] for line in open(log)]
    # The rerun continued from the saved step, not from zero.
    assert steps[:stopped_at] == list(range(1, stopped_at + 1))
    assert steps[stopped_at:] == list(range(stopped_at + 1, NUM_STEPS + 1))
    assert tf.train.latest_checkpoint(output_dir / "checkpoints").endswith(f"ckpt-{NUM_STEPS}")


def test_sigterm_during_a_long_chunk_is_announced_at_once_and_stops_at_its_end(tmp_path, workload):
    """--steps_per_execution=40: SIGTERM inside a chunk is reported immediately, acted on at its end."""
    import threading

    output_dir = tmp_path / "run"
    chunk = 40
    # Batches of 64 make a chunk last well over a second, so "at once" and "at the chunk's end" differ.
    argv = workload(output_dir, steps_per_execution=chunk, log_steps=chunk, save_checkpoints_steps=1000,
                    num_train_steps=10 * chunk, train_batch_size=64)
    process = _start(argv)
    lines, seen = [], {}

    def read_stderr():
        for line in process.stderr:
            lines.append(line.rstrip("\n"))
            if line.startswith("SIGTERM received"):
                seen["announced"] = time.time()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    log = output_dir / "train_metrics.jsonl"
    deadline = time.time() + 240
    try:
        while not log.exists() or not log.read_text().strip():
            assert process.poll() is None, "\n".join(lines[-30:])
            assert time.time() < deadline
            time.sleep(0.01)
        first = json.loads(log.read_text().splitlines()[0])
        assert first["step"] == chunk
        process.send_signal(signal.SIGTERM)
        signalled = time.time()
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    ended = time.time()
    reader.join(timeout=10)
    assert process.returncode == 2, "\n".join(lines[-30:])
    announced = [line for line in lines if line.startswith("SIGTERM received")]
    assert len(announced) == 1, lines[-30:]
    stop = int(announced[0].split("after step ")[1].split(",")[0])
    assert announced[0] == f"SIGTERM received: stopping after step {stop}, saving checkpoint"
    assert stop % chunk == 0 and stop >= 2 * chunk  # the end of the chunk running when it came
    assert lines[-1] == (f"error: stopped by signal 15 at step {stop}; checkpoint saved in "
                         f"{output_dir / 'checkpoints'}: rerun the same command to resume")
    # The signal came as a chunk began; it was announced at once, not when that chunk ended. The
    # chunk's own length is in its log row (logged before the stop).
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(chunk, stop + 1, chunk))
    chunk_seconds = chunk * 64 / rows[-1]["examples_per_second"]
    assert seen["announced"] - signalled < 0.25 * chunk_seconds, (seen, signalled, ended, chunk_seconds)
    assert tf.train.latest_checkpoint(output_dir / "checkpoints").endswith(f"ckpt-{stop}")
    # Progress went to the log as plain lines: the compile apart, no carriage returns or escapes.
    assert any(line.startswith("train: first 1 step (tracing and compiling) took ") for line in lines)
    assert not any("\r" in line or "\x1b" in line for line in lines)
