"""run_metadata.json in the model directory and the export; --log_file mirroring the console."""
import datetime
import hashlib
import json
import os
import subprocess

import pytest

from bert_tf import run_metadata

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _flags(define, argv):
    from absl import flags

    fv = flags.FlagValues()
    define(fv)
    fv(["test"] + argv)
    return fv


def _toy_tsv(path, first, n):
    rows = ["sentence\tlabel"] + [f"{'good fine' if i % 2 else 'bad poor'} film number {i}\t"
                                  f"{'positive' if i % 2 else 'negative'}" for i in range(first, first + n)]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_checkpoint):
    from bert_tf.jobs import classifier

    root = tmp_path_factory.mktemp("meta")
    train, dev = _toy_tsv(root / "train.tsv", 0, 32), _toy_tsv(root / "dev.tsv", 100, 16)
    fv = _flags(classifier.define_flags, [
        f"--init_checkpoint={tiny_checkpoint}", f"--train_file={train}", f"--dev_file={dev}", "--do_train",
        "--do_eval", f"--output_dir={root / 'out'}", "--max_seq_length=16", "--train_batch_size=8",
        "--num_train_steps=4", "--lr_schedule=cosine", "--lr_end=1e-6", "--save_checkpoints_steps=4",
        "--log_steps=2", "--seed=5"])
    return root, classifier.run(fv)


@pytest.fixture(scope="module")
def exported(trained):
    from bert_tf.export import exporter

    root, _ = trained
    return exporter.export_saved_model(str(root / "out"), str(root / "serving"))


def test_model_dir_holds_what_produced_it(trained):
    root, results = trained
    out = root / "out"
    meta = json.loads((out / "model" / "run_metadata.json").read_text())
    assert json.loads((out / "run_metadata.json").read_text()) == meta
    assert [(f["flag"], f["name"], f["bytes"], f["sha256"]) for f in meta["input_files"]] == [
        (flag, name, os.path.getsize(root / name), hashlib.sha256((root / name).read_bytes()).hexdigest())
        for flag, name in (("train_file", "train.tsv"), ("dev_file", "dev.tsv"))]
    assert meta["labels"] == {"0": "negative", "1": "positive"}
    assert meta["flags"]["lr_schedule"] == "cosine" and meta["flags"]["num_train_steps"] == 4
    assert "learning_rate" not in meta["flags"]  # only what differs from the defaults
    assert meta["lr_schedule"] == {"lr_schedule": "cosine", "lr_end": 1e-6, "lr_power": 1.0, "num_cycles": 1}
    evaluation = json.loads((out / "eval_results.json").read_text())
    assert meta["metrics"]["eval"]["accuracy"] == evaluation["accuracy"] == results["eval"]["accuracy"]
    assert meta["metrics"]["train"]["global_step"] == 4 and meta["metrics"]["train"]["num_examples"] == 32
    import tensorflow as tf
    import tf_keras
    import transformers

    assert meta["packages"]["tensorflow"] == tf.__version__ and meta["packages"]["transformers"] == \
        transformers.__version__ and meta["packages"]["tf-keras"] == tf_keras.__version__
    assert meta["packages"]["bert_tf"] and meta["packages"]["python"].count(".") == 2
    head = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert meta["git"]["commit"] == head and isinstance(meta["git"]["dirty"], bool)
    started, finished = (datetime.datetime.fromisoformat(meta[k]) for k in ("started", "finished"))
    assert datetime.timedelta(0) <= finished - started < datetime.timedelta(minutes=10)
    assert (out / "lr_schedule.png").read_bytes()[:4] == b"\x89PNG"


def test_export_carries_the_metadata_without_local_paths(trained, exported):
    root, _ = trained
    exported = json.loads(open(os.path.join(exported, "assets.extra", "run_metadata.json")).read())
    trained_meta = json.loads((root / "out" / "model" / "run_metadata.json").read_text())
    assert "command" not in exported and str(root) not in json.dumps(exported)
    assert exported["flags"]["train_file"] == "train.tsv" and exported["flags"]["lr_schedule"] == "cosine"
    assert exported["input_files"] == [{k: v for k, v in f.items() if k != "path"} for f in trained_meta["input_files"]]
    assert exported["metrics"] == trained_meta["metrics"] and exported["labels"] == trained_meta["labels"]


def test_an_evaluation_only_run_keeps_the_trained_models_metadata(trained):
    from bert_tf.jobs import classifier

    root, _ = trained
    before = (root / "out" / "model" / "run_metadata.json").read_text()
    fv = _flags(classifier.define_flags, [
        f"--init_checkpoint={root / 'out'}", f"--dev_file={root / 'dev.tsv'}", "--do_eval",
        f"--output_dir={root / 'eval_only'}", "--max_seq_length=16"])
    classifier.run(fv)
    meta = json.loads((root / "eval_only" / "run_metadata.json").read_text())
    assert [f["flag"] for f in meta["input_files"]] == ["dev_file"] and "train" not in meta["metrics"]
    assert "lr_schedule" not in meta and meta["metrics"]["eval"]["num_examples"] == 16
    assert (root / "out" / "model" / "run_metadata.json").read_text() == before


def test_git_commit_is_none_without_git(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert run_metadata.git_commit() is None


def test_log_file_mirrors_the_console_with_progress_as_plain_lines(tmp_path, monkeypatch):
    """Through cli.run, as every script: prints, progress lines, a redrawn line, a warning with
    colour codes, absl logging, output without a final newline and the one-line error."""
    import sys

    from absl import flags
    from absl import logging as absl_logging

    from bert_tf import cli
    from bert_tf.errors import UserError
    from bert_tf.training import progress

    def main(_):
        print("first line")
        bar = progress.Bar(3, unit="step")
        for step in (1, 2, 3):
            bar.update(step)
        bar.close()
        for state in ("\rconvert 1/3", "\rconvert 2/3", "\rconvert 3/3", "\n"):
            sys.stderr.write(state)
        sys.stderr.write("\x1b[31mred\x1b[0m warning\n")
        absl_logging.warning("absl says %d", 7)
        print("no newline at the end", end="")
        raise UserError("--train_file x.tsv does not exist : check the path")

    import io

    path = tmp_path / "logs" / "run.log"
    monkeypatch.setattr(sys, "argv", ["prog", f"--log_file={path}"])
    # The console, as a script has it: absl's handler keeps the stderr it found at import.
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    absl_logging.use_absl_handler()
    monkeypatch.setattr(absl_logging.get_absl_handler().python_handler, "stream", err)
    was_parsed = flags.FLAGS.is_parsed()
    try:
        with pytest.raises(SystemExit) as stopped:
            cli.run(main)
    finally:
        flags.FLAGS["log_file"].value = None
        if not was_parsed:
            flags.FLAGS.unparse_flags()
    assert stopped.value.code == 2
    lines = path.read_text().splitlines()
    assert lines[0] == "first line" and lines[1].startswith("step: 3/3 steps (100%), ")
    # The redrawn line: its first complete state, then its last (PROGRESS_EVERY_S apart otherwise).
    assert lines[2:5] == ["convert 1/3", "convert 3/3", "red warning"]
    assert lines[5].startswith("W") and lines[5].endswith("] absl says 7")
    assert lines[6:] == ["error: --train_file x.tsv does not exist : check the path", "no newline at the end"]
    assert out.getvalue() == "first line\nno newline at the end"
    assert "\x1b[31mred\x1b[0m warning\n" in err.getvalue() and "\rconvert 2/3" in err.getvalue()
    assert err.getvalue().count("absl says 7") == 1
    assert err.getvalue().endswith("error: --train_file x.tsv does not exist : check the path\n")
    assert sys.stdout is out and sys.stderr is err and absl_logging.get_absl_handler().python_handler.stream is err
