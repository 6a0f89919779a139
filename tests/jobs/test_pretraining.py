"""run_pretraining end to end: learning, logs, HF output, fine-tuning init, kill-and-rerun resume."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import bert_tf  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.data import pretraining as data
from bert_tf.errors import UserError
from bert_tf.jobs import common
from bert_tf.jobs import pretraining as job
from bert_tf.tokenization import HostTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEQ, PRED = 64, 10


@pytest.fixture(scope="module")
def model_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.json"
    # vocab_size is left to the --vocab_file.
    path.write_text(json.dumps({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                                "intermediate_size": 128, "max_position_embeddings": 128}))
    return str(path)


def _records(directory, corpus_file, vocab_file, dynamic=False, dupe_factor=5):
    path = os.path.join(directory, "dynamic.tfrecord" if dynamic else "train.tfrecord")
    if not os.path.exists(path):
        settings = data.Settings(max_seq_length=SEQ, max_predictions_per_seq=PRED, dupe_factor=dupe_factor,
                                 dynamic_masking=dynamic)
        data.create_pretraining_data(corpus_file, path, HostTokenizer(vocab_file), settings, verbose=False)
    return path


@pytest.fixture(scope="module")
def train_records(tmp_path_factory, corpus_file, vocab_file):
    return _records(str(tmp_path_factory.mktemp("records")), corpus_file, vocab_file)


def _argv(records_path, vocab_file, model_config, output_dir, steps, **extra):
    argv = [f"--input_file={records_path}", f"--vocab_file={vocab_file}", f"--bert_config_file={model_config}",
            f"--output_dir={output_dir}", f"--max_seq_length={SEQ}", f"--max_predictions_per_seq={PRED}",
            "--train_batch_size=32", f"--num_train_steps={steps}", "--num_warmup_steps=20",
            "--learning_rate=3e-3", "--log_steps=50", f"--save_checkpoints_steps={steps}",
            "--steps_per_execution=50"]
    return argv + [f"--{k}={v}" for k, v in extra.items()]


def _metrics(output_dir):
    """The training lines of train_metrics.jsonl (evaluations are logged there too, as eval_<metric>)."""
    with open(os.path.join(output_dir, "train_metrics.jsonl")) as f:
        return [entry for entry in map(json.loads, f) if "loss" in entry]


def test_mlm_loss_falls_and_output_loads_everywhere(tmp_path, flag_values, train_records, vocab_file, model_config):
    output_dir = str(tmp_path / "pretrain")
    flags = flag_values(job.define_flags, _argv(train_records, vocab_file, model_config, output_dir, 300,
                                                eval_input_file=train_records, max_eval_steps=3))
    results = job.run(flags)
    assert results["train"]["global_step"] == 300
    logs = _metrics(output_dir)
    assert [entry["step"] for entry in logs] == [50, 100, 150, 200, 250, 300]
    for key in ("step", "loss", "mlm_loss", "nsp_loss", "mlm_accuracy", "nsp_accuracy", "learning_rate",
                "examples_per_second"):
        assert all(key in entry for entry in logs), key
    ln_vocab = math.log(HostTokenizer(vocab_file).vocab_size)
    first, last = logs[0], logs[-1]
    # A tiny model memorising a small corpus: far below uniform guessing and still falling.
    assert last["mlm_loss"] < 0.65 * ln_vocab, (last["mlm_loss"], ln_vocab)
    assert last["mlm_loss"] < first["mlm_loss"] - 1.0 and last["mlm_accuracy"] > 0.12
    np.testing.assert_allclose(last["loss"], last["mlm_loss"] + last["nsp_loss"], rtol=0.05)
    assert results["eval"]["eval_batches"] == 3 and results["eval"]["mlm_loss"] < 0.7 * ln_vocab

    model_dir = os.path.join(output_dir, "model")
    assert {"config.json", "tf_model.h5", "vocab.txt", "bert_tf.json"} <= set(os.listdir(model_dir))
    from transformers import TFBertForPreTraining

    reference = TFBertForPreTraining.from_pretrained(model_dir)
    assert reference.config.vocab_size == HostTokenizer(vocab_file).vocab_size
    # Fine-tuning scripts take the pretraining output_dir as --init_checkpoint.
    from bert_tf.modeling import checkpoints
    from bert_tf.modeling.tasks import SequenceClassifier

    init = common.model_dir_of(output_dir)
    assert init == model_dir
    classifier = SequenceClassifier(checkpoints.load_checkpoint_config(init), num_labels=2)
    checkpoints.load_weights(classifier, init)
    trained = {v.name.split("/", 1)[1]: v.numpy() for v in reference.weights}
    word = [v for v in classifier.weights if "word_embeddings" in v.name][0]
    np.testing.assert_array_equal(word.numpy(), trained["bert/embeddings/word_embeddings/weight:0"])


def test_kill_and_rerun_resumes_at_saved_step(tmp_path, flag_values, train_records, vocab_file, model_config):
    output_dir = str(tmp_path / "resume")
    argv = _argv(train_records, vocab_file, model_config, output_dir, 2000)
    argv = [a for a in argv if not a.startswith(("--save_checkpoints_steps", "--log_steps", "--steps_per"))]
    argv += ["--save_checkpoints_steps=10", "--log_steps=10", "--steps_per_execution=10", "--train_batch_size=8"]
    env = dict(os.environ, PYTHONPATH=REPO)
    process = subprocess.Popen([sys.executable, os.path.join(REPO, "tools", "run_pretraining.py")] + argv,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint_dir = os.path.join(output_dir, "checkpoints")
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            latest = tf.train.latest_checkpoint(checkpoint_dir) if os.path.isdir(checkpoint_dir) else None
            if latest and int(latest.rsplit("-", 1)[1]) >= 20:
                break
            assert process.poll() is None, "training ended before it could be killed"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    saved = int(tf.train.latest_checkpoint(checkpoint_dir).rsplit("-", 1)[1])
    assert 20 <= saved < 2000
    # Rerun the same command, asking for a few more steps than were saved.
    argv = [a if not a.startswith("--num_train_steps") else f"--num_train_steps={saved + 20}" for a in argv]
    results = job.run(flag_values(job.define_flags, argv))
    history = results["train"]["train_history"]
    assert [entry["step"] for entry in history] == [saved + 10, saved + 20]
    assert results["train"]["global_step"] == saved + 20
    # The learning-rate schedule continued from the saved step, not from 0.
    assert history[0]["learning_rate"] < 3e-3 * (1 - (saved - 20) / (saved + 20 - 20)) + 1e-9


def test_dynamic_masking_lamb_and_accumulation(tmp_path, flag_values, corpus_file, vocab_file, model_config):
    records_path = _records(str(tmp_path), corpus_file, vocab_file, dynamic=True, dupe_factor=2)
    output_dir = str(tmp_path / "dynamic")
    argv = _argv(records_path, vocab_file, model_config, output_dir, 4, dynamic_masking=True, optimizer="lamb",
                 gradient_accumulation_steps=2)
    argv = [a for a in argv if not a.startswith(("--log_steps", "--steps_per"))] + ["--log_steps=2"]
    results = job.run(flag_values(job.define_flags, argv))
    history = results["train"]["train_history"]
    assert results["train"]["global_step"] == 4 and [h["step"] for h in history] == [2, 4]
    assert all(0 < h["mlm_loss"] < 10 and 0 <= h["mlm_accuracy"] <= 1 for h in history)
    # Two micro-batches of 32 per step.
    assert history[-1]["examples_per_second"] > 0
    with pytest.raises(UserError, match="pass --dynamic_masking"):
        job.run(flag_values(job.define_flags, [a for a in argv if not a.startswith("--dynamic_masking")]))


def test_records_that_do_not_fit_the_flags(tmp_path, flag_values, train_records, vocab_file, model_config):
    argv = _argv(train_records, vocab_file, model_config, str(tmp_path / "bad"), 2)
    with pytest.raises(UserError, match=f"--max_predictions_per_seq={PRED}"):
        job.run(flag_values(job.define_flags, argv + ["--max_predictions_per_seq=20"]))
    with pytest.raises(UserError, match="matches no file"):
        job.run(flag_values(job.define_flags, argv + [f"--input_file={tmp_path}/none*.tfrecord"]))
    # --model_config is an alias of --bert_config_file.
    alias = flag_values(job.define_flags, [a.replace("--bert_config_file", "--model_config") for a in argv])
    assert alias.bert_config_file == model_config
