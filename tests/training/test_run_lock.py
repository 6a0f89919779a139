"""One writing run per --output_dir: the lock is created exclusively and held by every kind of run."""
import json
import os
import socket
import subprocess

import pytest
import tensorflow as tf

from bert_tf.errors import UserError
from bert_tf.training import run_lock


@pytest.fixture
def live_process():
    process = subprocess.Popen(["sleep", "60"])
    yield process.pid
    process.kill()
    process.wait()


def _write_holder(output_dir, pid, host=None):
    tf.io.gfile.makedirs(output_dir)
    with tf.io.gfile.GFile(os.path.join(output_dir, ".lock"), "w") as f:
        f.write(json.dumps({"pid": pid, "host": host or socket.gethostname(), "token": "theirs"}))


@pytest.mark.parametrize("scheme", ["local", "ram"])
def test_a_live_holder_refuses_a_second_run_until_it_is_gone(tmp_path, live_process, scheme):
    output_dir = str(tmp_path / "run") if scheme == "local" else f"ram://{tmp_path.name}/run"
    _write_holder(output_dir, live_process)
    with pytest.raises(UserError) as error:
        with run_lock.hold(output_dir):
            pass
    assert str(error.value) == (f"{output_dir} is in use by process {live_process} on {socket.gethostname()}: "
                                "wait for it, choose another --output_dir, or pass --overwrite_output_dir")
    with run_lock.hold(output_dir, overwrite=True):
        with tf.io.gfile.GFile(os.path.join(output_dir, ".lock")) as f:
            assert json.load(f)["pid"] == os.getpid()
    assert not tf.io.gfile.exists(os.path.join(output_dir, ".lock"))
    _write_holder(output_dir, 2 ** 22 + 12345)  # a pid beyond pid_max: its process is gone
    with run_lock.hold(output_dir):
        with tf.io.gfile.GFile(os.path.join(output_dir, ".lock")) as f:
            assert json.load(f)["pid"] == os.getpid()


def test_nested_holds_share_one_lock_and_an_unused_directory_is_not_left(tmp_path):
    output_dir = tmp_path / "new"
    lock = output_dir / ".lock"
    with run_lock.hold(str(output_dir)):
        with run_lock.hold(str(output_dir)):  # the Trainer inside a job that already holds it
            assert lock.exists()
        assert lock.exists()
    assert not output_dir.exists()  # created only for the lock, left empty: removed
    with run_lock.hold(str(output_dir)):
        (output_dir / "results.json").write_text("{}")
    assert sorted(os.listdir(output_dir)) == ["results.json"]


def test_a_job_holds_the_lock_before_its_first_write_whatever_it_does(tmp_path, live_process, monkeypatch):
    """Eval- or predict-only jobs too: the decorator locks before run() starts; non-chief workers do not."""
    calls = []

    @run_lock.holding_output_dir
    def run(flags):
        calls.append(os.path.exists(os.path.join(flags.output_dir, ".lock")))
        return "done"

    class Flags:
        output_dir = str(tmp_path / "eval_only")
        overwrite_output_dir = False
        do_train = False

    assert run(Flags()) == "done" and calls == [True]
    _write_holder(Flags.output_dir, live_process)
    with pytest.raises(UserError, match="is in use by process"):
        run(Flags())
    assert calls == [True]  # refused before the job wrote anything
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]},
                                                "task": {"type": "worker", "index": 1}}))
    assert run(Flags()) == "done" and calls == [True, True]  # the chief's lock, not this worker's
