"""One code path across strategies: mirrored and multi-worker runs equal a single-device run."""
import json
import os
import subprocess

import numpy as np
import pytest

from tests import workloads

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "strategy_runner.py")


def _run_runner(tmp_path, runs, cpus=2, timeout=300):
    report = str(tmp_path / "report.json")
    command = [workloads.PYTHON, RUNNER, f"--cpus={cpus}", f"--report={report}"]
    for argv in runs:
        command += ["--"] + argv
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=workloads.tool_env())
    except subprocess.TimeoutExpired as error:
        raise AssertionError(f"strategy runner timed out after {timeout}s") from error
    assert done.returncode == 0, done.stderr[-4000:]
    with open(report) as f:
        results = json.load(f)
    for result in results:
        with np.load(result["weights"]) as arrays:
            result["arrays"] = {k.replace("|", "/"): arrays[k] for k in arrays.files}
    return results


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
    single_loss = [m["loss"] for m in single["train_metrics"]]
    mirrored_loss = [m["loss"] for m in mirrored["train_metrics"]]
    assert len(single_loss) == 4
    np.testing.assert_allclose(mirrored_loss, single_loss, rtol=1e-5)
    np.testing.assert_allclose([m["accuracy"] for m in mirrored["train_metrics"]],
                               [m["accuracy"] for m in single["train_metrics"]], atol=1e-6)
    # The loss moved, so the comparison covers real updates rather than four identical no-ops.
    assert abs(single_loss[-1] - single_loss[0]) > 1e-3
    _assert_same_weights(single["arrays"], mirrored["arrays"], atol=2e-5)
