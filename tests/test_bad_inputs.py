"""Every row of docs/bad_inputs.md: the exact one-line message, and nothing written or overwritten.

Most cases call the job in-process (a TensorFlow import per subprocess would cost ~8 s each);
``test_scripts_print_one_line_and_exit_2`` runs a handful through the real scripts for the
output contract: ``error: <message>`` on one line, no traceback, exit code 2; and an unexpected
error keeps its traceback.
"""
import json
import os
import re
import subprocess
import sys

import pytest
from absl import flags as absl_flags

from bert_tf import distribute
from bert_tf import flag_ranges
from bert_tf import flags as flag_groups
from bert_tf.errors import UserError
from bert_tf.jobs import classifier, pretraining
from tests import workloads

DOC = os.path.join(workloads.REPO, "docs", "bad_inputs.md")
# An earlier run's record: it marks out/ as bert_tf's, so only the case's own mistake is refused.
SENTINEL = "run_metadata.json"


def _write(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode, **({} if isinstance(data, bytes) else {"encoding": "utf-8", "newline": ""})) as f:
        f.write(data)
    return str(path)


def _tsv(d, text, name="train.tsv"):
    return _write(os.path.join(d, name), text)


def _vocab_with(d, tiny_checkpoint, extra_lines=(), drop=()):
    with open(os.path.join(tiny_checkpoint, "vocab.txt"), encoding="utf-8") as f:
        tokens = [t for t in f.read().splitlines() if t not in drop]
    return _write(os.path.join(d, "vocab.txt"), "\n".join(tokens + list(extra_lines)) + "\n")


def _config_with(d, tiny_checkpoint, **changes):
    with open(os.path.join(tiny_checkpoint, "config.json")) as f:
        config = json.load(f)
    config.update(changes)
    return _write(os.path.join(d, "config.json"), json.dumps(config))


class FakeStrategy:
    """Only what per_replica_batch_size reads: the replica count of an 8-core TPU."""
    num_replicas_in_sync = 8


# (id, what is wrong, flags or setup -> argv, expected message with {d} = the case's directory,
#  {ckpt} = the tiny checkpoint). Each runs classifier.run unless the argv is a callable's result
#  marked by a leading "!call".
GOOD_TSV = "sentence\tlabel\na fine film .\t1\na dull film .\t0\n"
CASES = [
    # ---- data files ----
    ("non_utf8", "training file with Latin-1 bytes",
     lambda d, c: {"train_file": _tsv(d, "sentence\tlabel\ncaf\xe9 ok\t1\n".encode("latin-1"))},
     "{d}/train.tsv line 2 is not UTF-8 (byte 0xe9): re-save the file as UTF-8, or pass --encoding=<its encoding> "
     "(e.g. latin-1, big5)"),
    ("empty_file", "training file of zero bytes",
     lambda d, c: {"train_file": _tsv(d, "")},
     "{d}/train.tsv is empty: it needs a header line and at least one row"),
    ("whitespace_file", "training file of blank lines only",
     lambda d, c: {"train_file": _tsv(d, "\n\n  \n")},
     "{d}/train.tsv is empty: it needs a header line and at least one row"),
    ("header_only", "header line, no rows",
     lambda d, c: {"train_file": _tsv(d, "sentence\tlabel\n")},
     "{d}/train.tsv has a header but no rows: add data"),
    ("duplicate_columns", "header repeats a column name",
     lambda d, c: {"train_file": _tsv(d, "sentence\tlabel\tlabel\nok\t1\t0\n")},
     "{d}/train.tsv header repeats column(s) ['label']: give every column a unique name"),
    ("missing_column", "no column named by --text_column",
     lambda d, c: {"train_file": _tsv(d, "text\tlabel\nok\t1\n")},
     "{d}/train.tsv has no column 'sentence' (columns: ['text', 'label']): set "
     "--text_column/--text_pair_column/--label_column"),
    ("ragged_row", "a row with an extra field",
     lambda d, c: {"train_file": _tsv(d, "sentence\tlabel\nok\t1\nbad\t0\textra\n")},
     "{d}/train.tsv line 3 has 3 fields but the header has 2: fix the row (fields are tab-separated)"),
    ("empty_label", "a row without a label",
     lambda d, c: {"train_file": _tsv(d, "sentence\tlabel\nok\t1\nno label\t \n")},
     "{d}/train.tsv line 3 has an empty 'label': label every row"),
    ("all_texts_empty", "every text is empty",
     lambda d, c: {"train_file": _tsv(d, "sentence\tlabel\n \t1\n\t0\n")},
     "{d}/train.tsv has no usable rows (all 2 texts are empty)"),
    ("one_label", "classification data with a single label",
     lambda d, c: {"train_file": _tsv(d, "sentence\tlabel\na\t1\nb\t1\n")},
     "the training data has one label (['1']): classification needs two or more"),
    ("label_not_in_labels", "--labels lacks a training label",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "labels": "0,2"},
     "training labels ['1'] are not in --labels ['0', '2']: add them"),
    ("regression_text_label", "--task_type=regression with a word as label",
     lambda d, c: {"train_file": _tsv(d, "sentence\tlabel\na\t0.5\nb\thigh\n"), "task_type": "regression"},
     "line 3: regression label 'high' is not a number: fix the row or use --task_type=classification"),
    ("jsonl_bad_line", "a JSONL line that is not JSON",
     lambda d, c: {"train_file": _tsv(d, '{"sentence": "a", "label": "1"}\n{"sentence": \n', "train.jsonl")},
     "{d}/train.jsonl line 2 is not valid JSON (Expecting value): one object per line"),
    ("jsonl_not_object", "a JSONL line holding a list",
     lambda d, c: {"train_file": _tsv(d, '["a", "1"]\n', "train.jsonl")},
     "{d}/train.jsonl line 1 is not a JSON object: one object per line"),
    ("missing_train_file", "--train_file does not exist",
     lambda d, c: {"train_file": os.path.join(d, "nope.tsv")},
     "data file {d}/nope.tsv does not exist: check --train_file/--dev_file/--test_file"),
    ("no_dev_file", "--do_eval without --dev_file",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "do_eval": True},
     "--dev_file is required with --do_eval"),
    ("no_test_file", "--do_predict without --test_file",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "do_predict": True},
     "--test_file is required with --do_predict"),
    # ---- flags ----
    ("nothing_to_do", "no --do_train/--do_eval/--do_predict",
     lambda d, c: {"do_train": False},
     "nothing to do: pass at least one of --do_train, --do_eval, --do_predict"),
    ("no_output_dir", "--output_dir missing",
     lambda d, c: {"output_dir": None},
     "--output_dir is required"),
    ("output_dir_is_file", "--output_dir names an existing file",
     lambda d, c: {"output_dir": _write(os.path.join(d, "a_file"), "keep")},
     "{d}/a_file is a file, not a directory: choose another output directory"),
    ("batch_size_zero", "--train_batch_size=0",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "train_batch_size": 0},
     "--train_batch_size=0 must be positive"),
    ("batch_size_negative", "--train_batch_size=-8",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "train_batch_size": -8},
     "--train_batch_size=-8 must be positive"),
    ("steps_zero", "--num_train_steps=0",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "num_train_steps": 0},
     "--num_train_steps=0 must be positive"),
    ("steps_negative", "--num_train_steps=-5",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "num_train_steps": -5},
     "--num_train_steps=-5 must be positive"),
    ("epochs_zero", "--num_train_epochs=0 (no --num_train_steps)",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "num_train_steps": None, "num_train_epochs": 0},
     "--num_train_epochs=0.0 must be positive"),
    ("eval_batch_size_zero", "--eval_batch_size=0",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "eval_batch_size": 0},
     "--eval_batch_size=0 must be positive"),
    ("learning_rate_zero", "--learning_rate=0",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "learning_rate": 0},
     "--learning_rate=0.0 must be positive"),
    ("lr_end_above_peak", "--lr_end at or above --learning_rate",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "lr_schedule": "linear", "lr_end": 1e-3},
     "--lr_end=0.001 must be at least 0 and below --learning_rate=5e-05"),
    ("lr_end_under_constant_recipe", "--lr_end without --lr_schedule under the default --recipe=fast",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "lr_end": 1e-6},
     "--lr_end shapes a decaying schedule, but --recipe=fast keeps the learning rate constant: add "
     "--lr_schedule=linear (or another decaying schedule), or --recipe=bert"),
    ("lr_power_not_polynomial", "--lr_power with --lr_schedule=cosine",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "lr_schedule": "cosine", "lr_power": 2.0},
     "--lr_power applies only to --lr_schedule=polynomial, not cosine: drop it or change --lr_schedule"),
    ("save_steps_zero", "--save_checkpoints_steps=0",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "save_checkpoints_steps": 0},
     "--save_checkpoints_steps=0 must be positive"),
    ("log_steps_negative", "--log_steps=-1",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "log_steps": -1},
     "--log_steps=-1 must be positive"),
    ("steps_per_execution_zero", "--steps_per_execution=0",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "steps_per_execution": 0},
     "--steps_per_execution=0 must be positive"),
    ("seq_length_above_positions", "--max_seq_length above max_position_embeddings",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "max_seq_length": 256},
     "--max_seq_length=256 exceeds the model's max_position_embeddings=128: lower --max_seq_length"),
    ("seq_length_tiny", "--max_seq_length=4",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "max_seq_length": 4},
     "--max_seq_length=4 is too small: use at least 8"),
    # ---- strategies ----
    ("tpu_absent", "--strategy=tpu where no TPU exists",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "strategy": "tpu"},
     "no TPU found at --tpu=local ("),
    ("tpu_remote_local_paths", "a remote --tpu with a local --output_dir",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "strategy": "tpu", "tpu": "grpc://10.0.0.2:8470"},
     "--output_dir={d}/out is a local path but --tpu=grpc://10.0.0.2:8470 is a remote TPU: TPUs read from GCS: "
     "use gs:// for --input_file and --output_dir (or run on a TPU VM with --tpu=local)"),
    ("gpu_absent", "--strategy=gpu on a machine without GPUs",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "strategy": "gpu"},
     "--strategy=gpu but no GPU is visible: install the [gpu] extra or use --strategy=cpu"),
    ("too_many_gpus", "--num_gpus larger than present",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "num_gpus": 4},
     "--num_gpus=4 but 0 GPU(s) are visible: lower --num_gpus or check CUDA"),
    ("tf_config_missing", "--strategy=multi_worker without TF_CONFIG",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "strategy": "multi_worker", "!env": None},
     "--strategy=multi_worker needs TF_CONFIG set on every worker: see README, 'Multi-worker'"),
    ("tf_config_not_json", "TF_CONFIG that is not JSON",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "strategy": "multi_worker", "!env": "{cluster: oops"},
     "TF_CONFIG is malformed (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)): "
     'expected {{"cluster": {{"worker": ["host:port", ...]}}, "task": {{"type": "worker", "index": 0}}}}'),
    ("tf_config_no_task", "TF_CONFIG without its task",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "strategy": "multi_worker",
                   "!env": '{"cluster": {"worker": ["localhost:1"]}}'},
     "TF_CONFIG is malformed ('task'): expected "
     '{{"cluster": {{"worker": ["host:port", ...]}}, "task": {{"type": "worker", "index": 0}}}}'),
    # ---- vocab ----
    ("vocab_duplicate", "vocab.txt lists a token twice",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "vocab_file": _vocab_with(d, c, ["[CLS]"])},
     "vocab file {d}/vocab.txt lists '[CLS]' twice (lines 3 and 2001): remove the duplicate"),
    ("vocab_missing_special", "vocab.txt without [MASK]",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "vocab_file": _vocab_with(d, c, drop=("[MASK]",))},
     "vocab file {d}/vocab.txt lacks [MASK]: use a BERT vocab or build one with tools/build_vocab.py"),
    ("vocab_not_utf8", "vocab.txt with a Latin-1 byte",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "vocab_file": _write(os.path.join(d, "vocab.txt"),
                                                                          b"[PAD]\ncaf\xe9\n")},
     "vocab file {d}/vocab.txt is not UTF-8 (byte 9): re-save it as UTF-8"),
    ("vocab_size_mismatch", "vocab with one token more than the model's vocab_size",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "vocab_file": _vocab_with(d, c, ["zzextra"])},
     "the vocab file has 2001 tokens but the model config says vocab_size=2000: use the vocab that came with "
     "the checkpoint"),
    ("vocab_missing", "--vocab_file does not exist",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "vocab_file": os.path.join(d, "none.txt")},
     "--vocab_file {d}/none.txt does not exist: point it at a vocab.txt (one WordPiece token per line)"),
    # ---- configs ----
    ("config_unknown_key", "config JSON with a misspelt key",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "bert_config_file": _config_with(d, c, hiden_size=64)},
     "model config {d}/config.json has unknown keys ['hiden_size']: remove them or fix their spelling"),
    ("config_not_json", "config file that is not JSON",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "bert_config_file": _write(os.path.join(d, "config.json"),
                                                                                "hidden_size: 64")},
     "model config {d}/config.json is not valid JSON (Expecting value: line 1 column 1 (char 0)): fix or "
     "regenerate the file"),
    ("config_heads", "hidden_size not a multiple of num_attention_heads",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "bert_config_file": _config_with(d, c, num_attention_heads=3)},
     "model config {d}/config.json: hidden_size must be a multiple of num_attention_heads"),
    ("config_unknown_preset", "--bert_config_file names no preset or file",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "bert_config_file": "huge"},
     "unknown model config 'huge': use a preset (base, large, medium, mini, small, tiny) or a path to a JSON file"),
    # ---- checkpoints ----
    ("checkpoint_other_size", "--bert_config_file of another size than --init_checkpoint",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "bert_config_file": _config_with(d, c, hidden_size=128,
                                                                                     intermediate_size=256)},
     "--bert_config_file does not describe the --init_checkpoint model (hidden_size=128 vs 64, "
     "intermediate_size=256 vs 128): leave --bert_config_file out to use the checkpoint's own config"),
    ("checkpoint_pickle_only", "model directory with only pytorch_model.bin",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "init_checkpoint": _pickle_dir(d)},
     "{d}/torch_model holds only pytorch_model.bin, which would need unpickling: convert it to model.safetensors "
     "(or tf_model.h5) first"),
    ("checkpoint_empty_dir", "--init_checkpoint directory without weights",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "init_checkpoint": _empty_dir(d)},
     "{d}/empty_model holds no tf_model.h5, model.safetensors, keras-hub preset or TF checkpoint: point "
     "--init_checkpoint at a model directory"),
    ("checkpoint_missing", "--init_checkpoint path that does not exist",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "init_checkpoint": os.path.join(d, "gone", "model")},
     "--init_checkpoint {d}/gone/model does not exist: check the path (only hub:<id> downloads from a model hub)"),
    ("no_model_source", "neither --init_checkpoint nor --bert_config_file",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "init_checkpoint": None,
                   "vocab_file": os.path.join(c, "vocab.txt")},
     "pass --init_checkpoint (pretrained weights) or --bert_config_file (train from scratch)"),
    # ---- flag ranges (absl validators: refused while parsing) ----
    ("eval_every_negative", "--eval_every_steps=-5",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "eval_every_steps": -5},
     "--eval_every_steps=-5 must be positive"),
    ("max_train_examples_negative", "--max_train_examples=-90",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "max_train_examples": -90},
     "--max_train_examples=-90 must be positive"),
    ("labels_repeated", "--labels=0,1,1",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "labels": "0,1,1"},
     "--labels lists '1' twice: give each entry once"),
    ("epochs_nan", "--num_train_epochs=nan",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "num_train_steps": None, "num_train_epochs": "nan"},
     "--num_train_epochs=nan must be positive (a finite number)"),
    ("warmup_above_one", "--warmup_proportion=1.5",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "warmup_proportion": 1.5},
     "--warmup_proportion=1.5 must be between 0 and 1"),
    # ---- outputs apart from inputs ----
    ("output_dir_holds_train_file", "--train_file inside --output_dir",
     lambda d, c: {"train_file": _tsv(os.path.join(d, "out"), GOOD_TSV)},
     "--output_dir {d}/out contains --train_file {d}/out/train.tsv: writing it would destroy the input; choose "
     "another --output_dir"),
    ("output_dir_is_init_checkpoint", "--output_dir equal to --init_checkpoint",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "init_checkpoint": _model_copy(d, c),
                   "output_dir": os.path.join(d, "model")},
     "--output_dir {d}/model is --init_checkpoint {d}/model: writing it would destroy the input; choose another "
     "--output_dir"),
    ("output_dir_foreign", "--output_dir a non-empty folder bert_tf did not write",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "output_dir": os.path.dirname(_write_in(d, "thesis/ch1.tex"))},
     "--output_dir {d}/thesis is a non-empty directory bert_tf did not write (no run_identity.json): choose an "
     "empty or new --output_dir, or pass --overwrite_output_dir to write into it anyway"),
    ("output_dir_under_file", "--output_dir below a regular file",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "output_dir": os.path.join(_write_in(d, "a_file"), "run")},
     "cannot create directory {d}/a_file/run: {d}/a_file is a file: choose a path in a directory"),
    ("rerun_other_data", "a rerun into --output_dir with another --train_file",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "!earlier": _tsv(d, "sentence\tlabel\nx\tpos\ny\tneg\n", "old.tsv")},
     "--output_dir {d}/out holds an earlier training run that this one would resume, but the --train_file content "
     "differs: choose a new --output_dir, or pass --overwrite_output_dir to start over there"),
    # ---- model config fields ----
    ("config_heads_zero", "num_attention_heads=0",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "bert_config_file": _config_with(d, c, num_attention_heads=0)},
     "model config {d}/config.json: num_attention_heads=0 must be a number at least 1: fix the value in the file"),
    ("config_hidden_string", "hidden_size as a string",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "bert_config_file": _config_with(d, c, hidden_size="64")},
     "model config {d}/config.json: hidden_size='64' must be a whole number: fix the value in the file"),
    ("config_unknown_activation", "hidden_act unknown",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "bert_config_file": _config_with(d, c, hidden_act="gelu2")},
     "model config {d}/config.json: hidden_act='gelu2' is not an activation the encoder knows: use one of gelu, "
     "gelu_10, gelu_fast, gelu_new, mish, quick_gelu, relu, sigmoid, silu, swish, tanh"),
    # ---- files of the wrong kind or malformed ----
    ("train_file_is_directory", "--train_file names a directory",
     lambda d, c: {"train_file": os.path.dirname(_write_in(d, "train_dir/part1.tsv"))},
     "data file {d}/train_dir is a directory, not a file: check --train_file/--dev_file/--test_file"),
    ("vocab_is_directory", "--vocab_file names a directory",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "vocab_file": os.path.dirname(_write_in(d, "v/x"))},
     "--vocab_file {d}/v is a directory, not a file: point it at a vocab.txt (one WordPiece token per line)"),
    ("tokenizer_config_malformed", "tokenizer_config.json that is not JSON",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV),
                   "init_checkpoint": _model_copy(d, c, {"tokenizer_config.json": "{do_lower_case: true"})},
     "tokenizer config {d}/model/tokenizer_config.json is not valid JSON (Expecting property name enclosed in "
     "double quotes: line 1 column 2 (char 1)): fix the file or delete it (casing is then read from the vocab)"),
    ("label_map_malformed", "bert_tf.json whose labels are not a list",
     lambda d, c: {"do_train": False, "do_eval": True, "dev_file": _tsv(d, GOOD_TSV, "dev.tsv"),
                   "init_checkpoint": _model_copy(d, c, {"bert_tf.json": '{"task": "classification", "labels": "0,1"}'})},
     "model metadata {d}/model/bert_tf.json: 'labels' is '0,1', not list or null: restore it from the training "
     "run's output_dir/model"),
    ("safetensors_truncated", "model.safetensors cut short",
     lambda d, c: {"train_file": _tsv(d, GOOD_TSV), "init_checkpoint": _safetensors_dir(d, c)},
     "{d}/st/model.safetensors is not a complete safetensors file (14 bytes; truncated or another format): "
     "download or convert it again"),
]


def _write_in(d, relative, text="x"):
    path = os.path.join(d, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return _write(path, text)


def _model_copy(d, tiny_checkpoint, replace=None):
    """A copy of the tiny checkpoint at d/model, with files of ``replace`` ({name: text}) written over."""
    import shutil

    path = os.path.join(d, "model")
    shutil.copytree(tiny_checkpoint, path)
    for name, text in (replace or {}).items():
        _write(os.path.join(path, name), text)
    return path


def _safetensors_dir(d, tiny_checkpoint):
    path = os.path.join(d, "st")
    os.makedirs(path)
    for name in ("config.json", "vocab.txt"):
        _write(os.path.join(path, name), open(os.path.join(tiny_checkpoint, name), "rb").read())
    _write(os.path.join(path, "model.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":\n")
    return path


def _pickle_dir(d):
    path = os.path.join(d, "torch_model")
    os.makedirs(path)
    _write(os.path.join(path, "pytorch_model.bin"), b"\x80\x04not really a pickle")
    _write(os.path.join(path, "config.json"), "{}")
    return path


def _empty_dir(d):
    path = os.path.join(d, "empty_model")
    os.makedirs(path)
    _write(os.path.join(path, "config.json"), "{}")
    return path


def _refusal(call):
    """The one line a script would print after ``error: `` for ``call``'s refusal: a UserError's message,
    or a flag value rejected at parsing (absl's prefix dropped as cli.run drops it)."""
    with pytest.raises((UserError, absl_flags.IllegalFlagValueError)) as error:
        call()
    if isinstance(error.value, UserError):
        return str(error.value)
    return flag_ranges.flag_error_line(error.value)


def _snapshot(directory):
    """{relative path: bytes} of every file under ``directory``."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, directory)] = f.read()
    return found


@pytest.mark.parametrize("case_id, what, make_flags, expected", CASES, ids=[c[0] for c in CASES])
def test_classifier_bad_input(case_id, what, make_flags, expected, tmp_path, tiny_checkpoint, flag_values,
                              monkeypatch):
    d = str(tmp_path)
    out = os.path.join(d, "out")
    os.makedirs(out)
    _write(os.path.join(out, SENTINEL), '{"accuracy": 0.9}\n')
    flags = {"init_checkpoint": tiny_checkpoint, "train_file": os.path.join(d, "unset.tsv"), "output_dir": out,
             "do_train": True, "num_train_steps": 1, "train_batch_size": 2, "max_seq_length": 32,
             "strategy": "cpu"}
    flags.update(make_flags(d, tiny_checkpoint))
    if "!earlier" in flags:
        # An earlier training run into out/, recorded as it starts, with other training data.
        from bert_tf.jobs import common

        earlier = dict(flags, train_file=flags.pop("!earlier"))
        common.record_identity(flag_values(classifier.define_flags, workloads.to_argv(earlier)))
    if "!env" in flags:
        env = flags.pop("!env")
        if env is None:
            monkeypatch.delenv("TF_CONFIG", raising=False)
        else:
            monkeypatch.setenv("TF_CONFIG", env)
    before = _snapshot(d)
    message = _refusal(lambda: classifier.run(flag_values(classifier.define_flags, workloads.to_argv(flags))))
    wanted = expected.format(d=d)
    if wanted.endswith("("):
        assert message.startswith(wanted) and message.endswith(
            "on Colab pick a TPU runtime; on a TPU VM use --tpu=local; otherwise pass the TPU name or grpc:// "
            "address, or use --strategy=auto")
    else:
        assert message == wanted
    assert "\n" not in message
    # Nothing written or overwritten: the earlier run's results and every input are as they were.
    assert _snapshot(d) == before


def test_batch_not_divisible_by_replicas():
    with pytest.raises(UserError) as error:
        distribute.per_replica_batch_size(FakeStrategy(), 12)
    assert str(error.value) == "--train_batch_size=12 is not divisible by the 8 replicas: use a multiple of 8"


def test_benign_oddities_are_read_as_meant(tmp_path):
    """BOM, CRLF line ends, labels with trailing spaces and numeric labels need no fixing."""
    from bert_tf.data import classification

    path = _write(tmp_path / "odd.tsv", "\ufeffsentence\tlabel\r\nfine film\t10 \r\nbad film\t2\r\nok\t10\r\n")
    examples, skipped = classification.read_examples(path)
    assert [(e.text, e.label) for e in examples] == [("fine film", "10"), ("bad film", "2"), ("ok", "10")]
    assert skipped == 0
    # Numeric labels keep numeric order (2 before 10), as strings they would not.
    assert classification.label_list_from(examples) == ["2", "10"]


def test_ten_megabyte_line_is_truncated_not_fatal(tmp_path, vocab_file):
    from bert_tf.data import classification
    from bert_tf.tokenization import HostTokenizer

    words = ("a long review of a film " * (10 * 1024 * 1024 // 24 + 1))[: 10 * 1024 * 1024]
    path = _write(tmp_path / "big.tsv", f"sentence\tlabel\n{words}\t1\nshort\t0\n")
    examples, _ = classification.read_examples(path)
    assert len(examples[0].text) >= 10 * 1024 * 1024 - 1
    records_path, stats = classification.cached_records(examples, [path], str(tmp_path / "cache"), "train",
                                                        HostTokenizer(vocab_file), 32, ["0", "1"], False)
    assert stats["num_examples"] == 2 and stats["truncated"] == 1


def test_pretraining_input_glob_matching_nothing(tmp_path, flag_values, tiny_checkpoint):
    out = tmp_path / "out"
    fv = flag_values(pretraining.define_flags, [f"--input_file={tmp_path}/records-*.tfrecord",
                                                f"--output_dir={out}", f"--init_checkpoint={tiny_checkpoint}",
                                                "--max_seq_length=32", "--num_train_steps=1"])
    with pytest.raises(UserError) as error:
        pretraining.run(fv)
    assert str(error.value) == f"--input_file {tmp_path}/records-*.tfrecord matches no file: check the path or glob"
    assert not out.exists()


def test_no_implicit_hub_access(tmp_path, flag_values):
    """A missing local path is never taken for a hub id: nothing is fetched and the error names the path."""
    from bert_tf.modeling import checkpoints

    with pytest.raises(UserError, match="does not exist"):
        checkpoints.source_kind(str(tmp_path / "bert-base-uncased"))
    # Only the explicit hub: form is a hub id; a relative path that happens to look like one is not.
    with pytest.raises(UserError) as error:
        checkpoints.source_kind("runs/my_model")
    assert str(error.value) == ("--init_checkpoint runs/my_model does not exist: check the path; to download it from "
                                "the Hugging Face hub, pass --init_checkpoint=hub:runs/my_model")
    assert checkpoints.source_kind("hub:google-bert/bert-base-uncased") == "hub"
    with pytest.raises(UserError, match="is not a Hugging Face hub id"):
        checkpoints.source_kind("hub:../escape")


def test_vacuous_evaluation_is_refused(tmp_path, tiny_checkpoint, flag_values):
    """A dev set none of whose labels the model predicts would score 0.0 over 0 examples: refused, no results."""
    d = str(tmp_path)
    model = _model_copy(d, tiny_checkpoint, {"bert_tf.json": json.dumps(
        {"task": "classification", "labels": ["0", "1"], "max_seq_length": 16})})
    dev = _tsv(d, "sentence\tlabel\na fine film .\tpos\na dull film .\tneg\n", "dev.tsv")
    fv = flag_values(classifier.define_flags, [f"--init_checkpoint={model}", f"--dev_file={dev}", "--do_eval",
                                               f"--output_dir={d}/out", "--max_seq_length=16", "--strategy=cpu"])
    assert _refusal(lambda: classifier.run(fv)) == (
        f"no label of --dev_file {dev} is one the model predicts (its labels include ['pos', 'neg']; the model's: "
        "['0', '1']): evaluate on data with the trained labels, or train with these")
    assert not os.path.exists(os.path.join(d, "out", "eval_results.json"))


def test_rerun_of_the_same_run_resumes_and_overwrite_starts_over(tmp_path, tiny_checkpoint, flag_values):
    from bert_tf.jobs import common

    d = str(tmp_path)
    argv = [f"--init_checkpoint={tiny_checkpoint}", f"--train_file={_tsv(d, GOOD_TSV)}", f"--output_dir={d}/out",
            "--do_train", "--max_seq_length=16"]
    first = flag_values(classifier.define_flags, argv)
    common.prepare_output_dir(first, training=True)
    common.record_identity(first)
    _write_in(d, "out/checkpoints/ckpt-3.index")
    _write_in(d, "out/train_metrics.jsonl", '{"step": 3}\n')
    # The same run (a longer --num_train_steps does not change what it trains) resumes.
    common.prepare_output_dir(flag_values(classifier.define_flags, argv + ["--num_train_steps=9"]), training=True)
    other = flag_values(classifier.define_flags, argv + ["--labels=1,0"])
    assert _refusal(lambda: common.prepare_output_dir(other, training=True)) == (
        f"--output_dir {d}/out holds an earlier training run that this one would resume, but --labels was None, now "
        "['1', '0']: choose a new --output_dir, or pass --overwrite_output_dir to start over there")
    # --overwrite_output_dir removes the earlier run's training state (ours) and nothing else.
    _write_in(d, "out/notes.txt", "kept")
    again = flag_values(classifier.define_flags, argv + ["--labels=1,0", "--overwrite_output_dir"])
    common.prepare_output_dir(again, training=True)
    common.record_identity(again)
    assert sorted(os.listdir(os.path.join(d, "out"))) == ["notes.txt", "run_identity.json"]
    assert json.load(open(os.path.join(d, "out", "run_identity.json")))["flags"]["labels"] == ["1", "0"]


def test_resumed_metrics_log_keeps_one_row_per_step(tmp_path):
    from bert_tf.training import trainer

    path = _write(tmp_path / "train_metrics.jsonl", "".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n"
                                                           for s in (8, 16, 16, 24)) + '{"step": 3')
    trainer._drop_rows_after(str(path), 16)  # a run killed after step 24 resumes from its checkpoint at 16
    assert [json.loads(line)["step"] for line in open(path)] == [8, 16, 16]
    trainer._drop_rows_after(str(path), 16)  # nothing past the step: the file stays as it is
    assert len(open(path).read().splitlines()) == 3


def test_corpus_is_never_the_output(tmp_path, flag_values, vocab_file):
    from bert_tf.jobs import create_pretraining_data as pretraining_data

    corpus = _write(tmp_path / "corpus.txt", "one sentence here .\n\nanother document .\n")
    fv = flag_values(pretraining_data.define_flags, [f"--input_file={tmp_path}/*.txt", f"--output_file={corpus}",
                                                     f"--vocab_file={vocab_file}"])
    assert _refusal(lambda: pretraining_data.run(fv)) == (
        f"--output_file {corpus} is --input_file {corpus}: writing it would destroy the input; choose another "
        "--output_file")
    assert open(corpus).read() == "one sentence here .\n\nanother document .\n"


def test_dynamic_masking_with_more_predictions_than_tokens(tmp_path, flag_values, vocab_file, tiny_checkpoint,
                                                           corpus_file):
    from bert_tf.jobs import create_pretraining_data as pretraining_data

    records = str(tmp_path / "unmasked.tfrecord")
    pretraining_data.run(flag_values(pretraining_data.define_flags, [
        f"--input_file={corpus_file}", f"--output_file={records}", f"--vocab_file={vocab_file}", "--dynamic_masking",
        "--max_seq_length=32", "--dupe_factor=1", "--num_workers=1"]), verbose=False)
    fv = flag_values(pretraining.define_flags, [f"--input_file={records}", f"--output_dir={tmp_path}/out",
                                                f"--init_checkpoint={tiny_checkpoint}", "--dynamic_masking",
                                                "--max_seq_length=32", "--max_predictions_per_seq=40"])
    assert _refusal(lambda: pretraining.run(fv)) == (
        "--max_predictions_per_seq=40 exceeds --max_seq_length=32: a sequence has no more tokens to mask; lower "
        "--max_predictions_per_seq")
    assert not os.path.exists(tmp_path / "out" / "checkpoints")


def test_confusion_matrix_draws_labels_matplotlib_would_read_as_math(tmp_path):
    import numpy as np

    from bert_tf.training import metrics

    path = tmp_path / "cm.png"
    metrics.save_confusion_matrix_png(np.array([[2, 1], [0, 3]]), ["$x_{$", "a_b^c"], str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trust_remote_code_is_never_set():
    for root, _, files in os.walk(os.path.join(workloads.REPO, "bert_tf")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    assert "trust_remote_code=True" not in f.read(), name


# ---- the script contract, through real subprocesses ----------------------------------------------

SCRIPT_CASES = [
    ("run_classifier.py", lambda d: ["--do_train", f"--output_dir={d}/out", f"--train_file={_tsv(d, '')}",
                                     "--bert_config_file=tiny", "--vocab_file=" + os.path.join(d, "v.txt")],
     "error: --vocab_file {d}/v.txt does not exist: point it at a vocab.txt (one WordPiece token per line)"),
    ("export_savedmodel.py", lambda d: [f"--model_dir={d}"],
     "error: --model_dir and --export_dir are required"),
    ("build_vocab.py", lambda d: [f"--input_file={d}/none*.txt", f"--output_file={d}/vocab.txt"],
     "error: --input_file {d}/none*.txt matches no file: check the path or glob"),
    ("run_classifier.py", lambda d: ["--do_train", "--eval_every_steps=-5"],
     "error: --eval_every_steps=-5 must be positive"),
    ("build_vocab.py", lambda d: [f"--input_file={_tsv(d, 'a b', 'c.txt')}", f"--output_file={d}/c.txt"],
     "error: --output_file {d}/c.txt is --input_file {d}/c.txt: writing it would destroy the input; choose another "
     "--output_file"),
    ("export_savedmodel.py", lambda d: [f"--model_dir={d}", f"--export_dir={d}_export", "--quantize=dynamic"],
     "error: --quantize=dynamic does not apply to --format=saved_model: use one of none, float16"),
    ("serving_client.py", lambda d: [f"--local_saved_model={d}", "--text=x"],
     "error: {d} holds no saved_model.pb, model.tflite or fine-tuned model (bert_tf.json): pass a fine-tuning "
     "--output_dir, an export version directory such as export_dir/1, or a TFLite export directory"),
    ("serving_client.py", lambda d: [f"--local_saved_model={d}", "--text=caf\udce9"],  # the bytes caf\xe9
     "error: --text b'caf\\xe9' is not UTF-8: pass the text in UTF-8 (re-encode it, e.g. with iconv)"),
    ("run_classifier.py", lambda d: ["stray_positional"], None),
]


def test_scripts_print_one_line_and_exit_2(tmp_path):
    d = str(tmp_path)
    for script, make_argv, expected in SCRIPT_CASES:
        done = workloads.run_tool(script, make_argv(d), timeout=120)
        if expected is None:  # absl usage errors: exit 1 with the usage line, still no traceback
            assert done.returncode == 1 and "Traceback" not in done.stderr
            assert "unexpected positional arguments ['stray_positional']" in done.stderr
            continue
        assert done.returncode == 2, (script, done.stderr[-2000:])
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines()[-1] == expected.format(d=d)
        assert not os.path.exists(os.path.join(d, "out", "checkpoints"))


def test_unexpected_errors_keep_their_traceback():
    code = ("import bert_tf\nfrom bert_tf import cli\n"
            "def main(_):\n    raise KeyError('a bug')\ncli.run(main)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=workloads.tool_env())
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr and "KeyError: 'a bug'" in done.stderr


def test_doc_table_lists_every_case_with_its_message():
    with open(DOC, encoding="utf-8") as f:
        doc = f.read()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z0-9_]+)` \|.*$", doc, re.M)}
    for case_id, _, _, expected in CASES:
        assert case_id in rows, case_id
        shown = expected.format(d="<dir>").rstrip("(")
        assert shown.replace("|", "\\|") in rows[case_id], case_id
    assert len(rows) >= 40
