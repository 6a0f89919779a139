"""A wheel built from the checkout works installed, from a directory outside it.

The wheel is built from a copy of the files git would clone (tracked and untracked-but-not-ignored
setup.py, bert_tf/, tools/ and benchmarks/, the last of which must stay out of the wheel), installed
with --no-deps into a fresh venv whose only other path is .venv's site-packages (for TensorFlow and
the rest; .pth files there, bert_tf's editable finder among them, are not run from such a path), and
its console commands run from a temporary directory. So nothing reaches the checkout: not the
presets, not tools/.
"""
import json
import os
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from tests import workloads

REPO = workloads.REPO


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    for name in ("PYTHONPATH", "PYTHONHOME", "TF_CONFIG"):
        env.pop(name, None)
    return env


def _start(command, cwd):
    return subprocess.Popen(command, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(command, cwd, timeout=300):
    result = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command[0]} exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel path, venv bin directory, a working directory outside the checkout)."""
    root = tmp_path_factory.mktemp("packaging")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z", "--", "setup.py", "bert_tf", "tools",
                             "benchmarks"], cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    source = root / "source"
    for path in filter(None, listed):
        if os.path.isfile(os.path.join(REPO, path)):  # listed but deleted in the working tree: not cloned
            (source / path).parent.mkdir(parents=True, exist_ok=True)
            (source / path).write_bytes(open(os.path.join(REPO, path), "rb").read())
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", ".", "-w", str(root / "dist")],
         cwd=source)
    (wheel,) = (root / "dist").iterdir()
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root)
    python = str(venv / "bin" / "python")
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).stdout.strip()
    with open(os.path.join(purelib, "dependencies.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", str(wheel)],
         cwd=root)
    work = root / "work"
    work.mkdir()
    return str(wheel), str(venv / "bin"), str(work)


def test_wheel_holds_the_presets_and_the_commands(installed):
    wheel, _, _ = installed
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    presets = {os.path.basename(n) for n in names if n.startswith("bert_tf/configs/models/")}
    assert presets == {"tiny.json", "mini.json", "small.json", "medium.json", "base.json", "large.json"}
    assert {"bert_tf_tools/__init__.py", "bert_tf_tools/run_classifier.py", "bert_tf_tools/run_pretraining.py"} <= names
    assert not any(n.startswith(("tests/", "tools/", "data/")) for n in names)
    # The benchmarks run from the checkout against peers installed only for development.
    assert not any(n.startswith(("benchmarks/", "bert_tf/benchmarks/")) for n in names), sorted(names)
    from tools import COMMANDS  # the checkout's tools/ (conftest puts the repository on sys.path)

    assert len(COMMANDS) == 11
    for command in COMMANDS:
        assert f"\n{command} = bert_tf_tools:{command.replace('-', '_')}\n" in entry_points


def test_installed_copy_is_the_one_imported(installed):
    _, bin_dir, work = installed
    probe = ("import sys, bert_tf, bert_tf_tools\n"
             "print(bert_tf.__file__); print(bert_tf_tools.__file__)\n"
             "try:\n    import tools\nexcept ImportError:\n    print('no tools')\n"
             "try:\n    import benchmarks\nexcept ImportError:\n    print('no benchmarks')\n")
    out = _run([os.path.join(bin_dir, "python"), "-c", probe], cwd=work).stdout.splitlines()
    venv = os.path.dirname(bin_dir)
    assert out[0].startswith(venv + os.sep) and out[1].startswith(venv + os.sep), out
    assert out[2] == "no tools"
    assert out[3] == "no benchmarks"


def test_console_command_help_and_tiny_finetune(installed, tmp_path, vocab_file):
    _, bin_dir, work = installed
    train = workloads.small_tsv(tmp_path / "train.tsv", num_rows=16)
    output_dir = tmp_path / "run"
    # Both start at once: on 2 cores the --help run's start-up overlaps the fine-tuning's.
    help_run = _start([os.path.join(bin_dir, "bert-tf-classifier"), "--help"], cwd=work)
    _run([os.path.join(bin_dir, "bert-tf-classifier"), "--bert_config_file=tiny", f"--vocab_file={vocab_file}",
          f"--train_file={train}", "--do_train", f"--output_dir={output_dir}", "--num_train_steps=2",
          "--train_batch_size=8", "--max_seq_length=32", "--length_buckets=", "--save_checkpoints_steps=1000",
          "--seed=1"], cwd=work)
    out, err = help_run.communicate(timeout=300)
    assert help_run.returncode == 0, err[-3000:]
    # The script's docstring (__main__'s, under the launcher) and its own flags.
    assert out.startswith("Fine-tune BERT for sentence(-pair) classification or regression")
    assert "data flags:" in out and "  --[no]do_train (default: false)\n" in out
    with open(output_dir / "model" / "config.json") as f:
        assert json.load(f)["hidden_size"] == 128  # the tiny preset, read from the installed package
    history = [json.loads(line) for line in (output_dir / "train_metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in history][-1] == 2


@pytest.mark.slow
def test_tiny_pretraining_then_finetuning_through_the_commands(installed, tmp_path, corpus_file):
    _, bin_dir, work = installed
    vocab = tmp_path / "vocab.txt"
    _run([os.path.join(bin_dir, "bert-tf-build-vocab"), f"--input_file={corpus_file}", f"--output_file={vocab}",
          "--vocab_size=2000"], cwd=work)
    records = tmp_path / "records" / "sample.tfrecord"
    stats = _run([os.path.join(bin_dir, "bert-tf-create-pretraining-data"), f"--input_file={corpus_file}",
                  f"--vocab_file={vocab}", f"--output_file={records}", "--max_seq_length=64",
                  "--max_predictions_per_seq=10", "--dupe_factor=1", "--random_seed=3"], cwd=work).stdout
    stats = json.loads(stats)
    assert stats["documents"] == 5 and stats["instances"] > 0
    pretrain = tmp_path / "pretrain"
    out = _run([os.path.join(bin_dir, "bert-tf-pretraining"), f"--input_file={records}", f"--vocab_file={vocab}",
                "--bert_config_file=tiny", f"--output_dir={pretrain}", "--max_seq_length=64",
                "--max_predictions_per_seq=10", "--train_batch_size=8", "--num_train_steps=3",
                "--num_warmup_steps=1", "--save_checkpoints_steps=3"], cwd=work).stdout
    assert '"step": 3' in out
    train = workloads.small_tsv(tmp_path / "train.tsv", num_rows=16)
    _run([os.path.join(bin_dir, "bert-tf-classifier"), f"--init_checkpoint={pretrain}", f"--train_file={train}",
          "--do_train", f"--output_dir={tmp_path / 'finetune'}", "--num_train_steps=2", "--train_batch_size=8",
          "--max_seq_length=32", "--length_buckets=", "--seed=1"], cwd=work)
    assert (tmp_path / "finetune" / "model" / "config.json").exists()
