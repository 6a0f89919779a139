"""Tiny fine-tuning workloads shared by the distribution, crash-safety and bad-input tests."""
import json
import os
import signal
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
SENTIMENT_TRAIN = os.path.join(REPO, "data", "sentiment", "train.tsv")


def small_tsv(path, num_rows=64, offset=0):
    """The first ``num_rows`` rows (after ``offset``) of the shipped sentiment training set."""
    with open(SENTIMENT_TRAIN, encoding="utf-8") as f:
        lines = f.read().splitlines()
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join([lines[0]] + lines[1 + offset:1 + offset + num_rows]) + "\n")
    return str(path)


def deterministic_config(checkpoint_dir, path):
    """The checkpoint's config with dropout off, so runs differ only by how they are distributed."""
    with open(os.path.join(checkpoint_dir, "config.json")) as f:
        config = json.load(f)
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    with open(path, "w") as f:
        json.dump(config, f)
    return str(path)


def classifier_argv(checkpoint_dir, train_file, output_dir, num_train_steps=4, batch_size=8, **extra):
    """Flags of a short run_classifier fine-tuning run; ``extra`` adds or overrides flags."""
    flags = {"init_checkpoint": checkpoint_dir, "train_file": train_file, "output_dir": output_dir,
             "do_train": True, "num_train_steps": num_train_steps, "train_batch_size": batch_size,
             "max_seq_length": 32, "length_buckets": "", "learning_rate": 1e-3, "warmup_proportion": 0.0,
             "log_steps": 1, "save_checkpoints_steps": 1000, "seed": 7}
    flags.update(extra)
    return to_argv(flags)


def to_argv(flags):
    """{name: value} -> absl argv: True/False as --name/--noname, None left out."""
    argv = []
    for name, value in flags.items():
        if value is True:
            argv.append(f"--{name}")
        elif value is False:
            argv.append(f"--no{name}")
        elif value is not None:
            argv.append(f"--{name}={value}")
    return argv


def tool_env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def run_tool(script, argv, timeout=240, env=None, **kwargs):
    """Runs tools/<script> to completion (killed on timeout); returns the CompletedProcess."""
    command = [PYTHON, os.path.join(REPO, "tools", script)] + list(argv)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env or tool_env(), start_new_session=True, **kwargs)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise AssertionError(f"{script} timed out after {timeout}s:\n{err[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def classifier_weights(model_dir, strict_heads=False):
    """{variable name below the model's own scope: numpy value} of a 2-label SequenceClassifier
    loaded from ``model_dir``, so a starting checkpoint and a trained one compare name by name."""
    from bert_tf.modeling import checkpoints
    from bert_tf.modeling.tasks import SequenceClassifier

    model = SequenceClassifier(checkpoints.load_checkpoint_config(model_dir), num_labels=2)
    checkpoints.load_weights(model, model_dir, strict_heads=strict_heads)
    return {v.name.split("/", 1)[1]: v.numpy() for v in model.weights}
