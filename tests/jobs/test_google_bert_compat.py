"""google-research/bert's README commands, run as written (only paths changed, plus tiny-model overrides
appended), on small files in the layouts those commands read; checks the outputs that README documents."""
import json
import os
import shlex
import shutil

import numpy as np
import pytest
from absl import flags

from bert_tf.data import glue
from bert_tf.errors import UserError
from tests.jobs.test_convert import tf1_checkpoint  # noqa: F401  (a google-style checkpoint directory)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GLUE_DIR = os.path.join(REPO, "tests", "fixtures", "glue")

# From google-research/bert's README.md (commit eedf571), verbatim.
README_MRPC_TRAIN = r"""
python run_classifier.py \
  --task_name=MRPC \
  --do_train=true \
  --do_eval=true \
  --data_dir=$GLUE_DIR/MRPC \
  --vocab_file=$BERT_BASE_DIR/vocab.txt \
  --bert_config_file=$BERT_BASE_DIR/bert_config.json \
  --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt \
  --max_seq_length=128 \
  --train_batch_size=32 \
  --learning_rate=2e-5 \
  --num_train_epochs=3.0 \
  --output_dir=/tmp/mrpc_output/
"""
README_MRPC_PREDICT = r"""
python run_classifier.py \
  --task_name=MRPC \
  --do_predict=true \
  --data_dir=$GLUE_DIR/MRPC \
  --vocab_file=$BERT_BASE_DIR/vocab.txt \
  --bert_config_file=$BERT_BASE_DIR/bert_config.json \
  --init_checkpoint=$TRAINED_CLASSIFIER \
  --max_seq_length=128 \
  --output_dir=/tmp/mrpc_output/
"""
README_SQUAD = r"""
python run_squad.py \
  --vocab_file=$BERT_BASE_DIR/vocab.txt \
  --bert_config_file=$BERT_BASE_DIR/bert_config.json \
  --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt \
  --do_train=True \
  --train_file=$SQUAD_DIR/train-v1.1.json \
  --do_predict=True \
  --predict_file=$SQUAD_DIR/dev-v1.1.json \
  --train_batch_size=12 \
  --learning_rate=3e-5 \
  --num_train_epochs=2.0 \
  --max_seq_length=384 \
  --doc_stride=128 \
  --output_dir=/tmp/squad_base/
"""
README_SQUAD_TPU = r"""
python run_squad.py \
  --vocab_file=$BERT_LARGE_DIR/vocab.txt \
  --bert_config_file=$BERT_LARGE_DIR/bert_config.json \
  --init_checkpoint=$BERT_LARGE_DIR/bert_model.ckpt \
  --do_train=True \
  --train_file=$SQUAD_DIR/train-v2.0.json \
  --do_predict=True \
  --predict_file=$SQUAD_DIR/dev-v2.0.json \
  --train_batch_size=24 \
  --learning_rate=3e-5 \
  --num_train_epochs=2.0 \
  --max_seq_length=384 \
  --doc_stride=128 \
  --output_dir=gs://some_bucket/squad_large/ \
  --use_tpu=True \
  --tpu_name=$TPU_NAME \
  --version_2_with_negative=True
"""
README_CREATE_PRETRAINING_DATA = r"""
python create_pretraining_data.py \
  --input_file=./sample_text.txt \
  --output_file=/tmp/tf_examples.tfrecord \
  --vocab_file=$BERT_BASE_DIR/vocab.txt \
  --do_lower_case=True \
  --max_seq_length=128 \
  --max_predictions_per_seq=20 \
  --masked_lm_prob=0.15 \
  --random_seed=12345 \
  --dupe_factor=5
"""
README_RUN_PRETRAINING = r"""
python run_pretraining.py \
  --input_file=/tmp/tf_examples.tfrecord \
  --output_dir=/tmp/pretraining_output \
  --do_train=True \
  --do_eval=True \
  --bert_config_file=$BERT_BASE_DIR/bert_config.json \
  --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt \
  --train_batch_size=32 \
  --max_seq_length=128 \
  --max_predictions_per_seq=20 \
  --num_train_steps=20 \
  --num_warmup_steps=10 \
  --learning_rate=2e-5
"""
# The test checkpoint has 64 positions: sequences are cut to 64 (the only change beyond paths).
TINY = ["--max_seq_length=64"]


def _job(script):
    from bert_tf.jobs import create_pretraining_data as pretraining_data
    from bert_tf.jobs import classifier, pretraining, squad

    return {"run_classifier.py": classifier, "run_squad.py": squad, "run_pretraining.py": pretraining,
            "create_pretraining_data.py": pretraining_data}[script]


def run_readme_command(command, paths, extra=()):
    """Runs one README command in-process: its script's flags, with ``paths`` {old: new} substituted."""
    for old, new in paths.items():
        command = command.replace(old, new)
    words = shlex.split(command.replace("\\\n", " "))
    assert words[0] == "python"
    job = _job(words[1])
    fv = flags.FlagValues()
    job.define_flags(fv)
    fv([words[1]] + words[2:] + list(extra))
    return job.run(fv)


def _key_values(path):
    with open(path) as f:
        pairs = [line.rstrip("\n").split(" = ") for line in f]
    return {key: float(value) for key, value in pairs}


@pytest.fixture(scope="module")
def base_dir(tf1_checkpoint):  # noqa: F811
    return os.path.dirname(tf1_checkpoint[0])


def test_mrpc_train_eval_then_predict(tmp_path, base_dir, capfd):
    output = str(tmp_path / "mrpc_output") + "/"
    paths = {"$GLUE_DIR": GLUE_DIR, "$BERT_BASE_DIR": base_dir, "/tmp/mrpc_output/": output}
    results = run_readme_command(README_MRPC_TRAIN, paths, TINY)
    assert "default strategy: 1 replica (CPU:0), precision float32, batch 32 global = 32 per replica" in \
        capfd.readouterr().err
    # --do_train --do_eval evaluates the dev set once: training's last evaluation is the result.
    with open(os.path.join(output, "train_metrics.jsonl")) as f:
        evaluations = [line for line in map(json.loads, f) if "eval_accuracy" in line]
    assert len(evaluations) == 1 and evaluations[0]["step"] == 1
    assert evaluations[0]["eval_accuracy"] == results["eval"]["accuracy"]
    # 8 training pairs x 3 epochs in batches of 32: one step (google-research/bert's int() would make it 0).
    assert results["train"]["global_step"] == 1
    printed = _key_values(os.path.join(output, "eval_results.txt"))
    assert sorted(printed) == ["eval_accuracy", "eval_f1_macro", "eval_loss", "eval_mcc", "eval_num_examples",
                               "eval_precision_macro", "eval_recall_macro", "eval_skipped_empty", "eval_truncated",
                               "eval_unseen_labels", "global_step", "loss"]
    assert printed["global_step"] == 1 and printed["eval_num_examples"] == 4
    assert printed["eval_accuracy"] == pytest.approx(results["eval"]["accuracy"], abs=1e-6)
    assert printed["eval_accuracy"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    # Two labels, a near-uniform tiny model: the cross-entropy is close to ln 2.
    assert printed["loss"] == printed["eval_loss"] and abs(printed["eval_loss"] - np.log(2)) < 0.1

    # The README's /path/to/fine/tuned/classifier: here a copy of the model the first command saved.
    trained = str(tmp_path / "fine_tuned_classifier")
    shutil.copytree(os.path.join(output, "model"), trained)
    paths["$TRAINED_CLASSIFIER"] = trained
    results = run_readme_command(README_MRPC_PREDICT, paths, TINY)
    with open(os.path.join(output, "test_results.tsv")) as f:
        rows = [[float(v) for v in line.split("\t")] for line in f.read().splitlines()]
    assert len(rows) == 4 and all(len(row) == 2 and abs(sum(row) - 1) < 1e-5 for row in rows)


def test_squad_train_predict_writes_predictions_json(tmp_path, base_dir):
    output = str(tmp_path / "squad_base") + "/"
    sample = os.path.join(REPO, "data", "squad", "sample.json")
    paths = {"$BERT_BASE_DIR": base_dir, "$SQUAD_DIR/train-v1.1.json": sample, "$SQUAD_DIR/dev-v1.1.json": sample,
             "/tmp/squad_base/": output}
    results = run_readme_command(README_SQUAD, paths, TINY + ["--doc_stride=24"])
    with open(os.path.join(output, "predictions.json")) as f:
        predictions = json.load(f)
    assert len(predictions) == 5 and all(isinstance(v, str) for v in predictions.values())
    assert os.path.exists(os.path.join(output, "nbest_predictions.json"))
    assert 0 <= results["test"]["f1"] <= 100 and results["test"]["num_examples"] == 5


def test_squad_tpu_command_stops_with_one_line_on_a_local_output_dir(tmp_path, base_dir):
    sample = os.path.join(REPO, "data", "squad", "sample.json")
    paths = {"$BERT_LARGE_DIR": base_dir, "$SQUAD_DIR/train-v2.0.json": sample, "$SQUAD_DIR/dev-v2.0.json": sample,
             "gs://some_bucket/squad_large/": str(tmp_path / "squad_large"), "$TPU_NAME": "my-tpu"}
    with pytest.raises(UserError, match="is a local path but --tpu=my-tpu is a remote TPU"):
        run_readme_command(README_SQUAD_TPU, paths, TINY)


def test_use_tpu_without_a_tpu_stops(tmp_path, base_dir):
    from bert_tf.jobs import common

    fv = flags.FlagValues()
    _job("run_classifier.py").define_flags(fv)
    fv(["x", "--use_tpu=true", "--strategy=cpu"])
    with pytest.raises(UserError, match="--use_tpu asks for a TPU but --strategy=cpu"):
        common.strategy_from(fv)
    fv(["x", "--nouse_tpu", "--strategy=auto", "--master=grpc://10.0.0.2:8470"])
    with pytest.raises(UserError, match="--master names a TPU worker and only applies with --use_tpu"):
        common.strategy_from(fv)


def test_pretraining_data_then_pretraining_with_eval(tmp_path, base_dir):
    records = str(tmp_path / "tf_examples.tfrecord")
    output = str(tmp_path / "pretraining_output")
    paths = {"$BERT_BASE_DIR": base_dir, "./sample_text.txt": os.path.join(REPO, "data", "corpus", "sample.txt"),
             "/tmp/tf_examples.tfrecord": records, "/tmp/pretraining_output": output}
    stats = run_readme_command(README_CREATE_PRETRAINING_DATA, paths, TINY)
    assert stats["instances"] > 32
    results = run_readme_command(README_RUN_PRETRAINING, paths, TINY)
    assert results["train"]["global_step"] == 20
    printed = _key_values(os.path.join(output, "eval_results.txt"))
    assert sorted(printed) == ["global_step", "loss", "masked_lm_accuracy", "masked_lm_loss",
                               "next_sentence_accuracy", "next_sentence_loss"]
    assert printed["global_step"] == 20
    assert printed["loss"] == pytest.approx(printed["masked_lm_loss"] + printed["next_sentence_loss"], rel=1e-5)
    # Evaluated once, at the last step, on --input_file (google-research/bert's choice without an eval file).
    assert [e["step"] for e in results["train"]["eval_history"]] == [20]
    with open(os.path.join(output, "train_metrics.jsonl")) as f:
        evaluations = [line for line in map(json.loads, f) if "eval_mlm_accuracy" in line]
    assert [e["step"] for e in evaluations] == [20]
    assert evaluations[0]["eval_mlm_accuracy"] == pytest.approx(printed["masked_lm_accuracy"], rel=1e-5)
    assert 0 <= printed["masked_lm_accuracy"] <= 1 and 0 <= printed["next_sentence_accuracy"] <= 1
    # --do_train=false --do_eval=true evaluates the latest checkpoint: the same figures, the same step.
    again = run_readme_command(README_RUN_PRETRAINING, paths, TINY + ["--do_train=false"])
    assert again["train"]["global_step"] == 20 and again["train"]["train_history"] == []
    assert _key_values(os.path.join(output, "eval_results.txt")) == pytest.approx(printed, rel=1e-6)


@pytest.mark.parametrize("name,rows,labels,pair", [
    ("cola", (8, 4, 4), ("0", "1"), False), ("mnli", (8, 4, 4), ("contradiction", "entailment", "neutral"), True),
    ("mrpc", (8, 4, 4), ("0", "1"), True), ("sst-2", (8, 4, 4), ("0", "1"), False),
    ("sts-b", (8, 4, 4), (), True), ("qqp", (8, 4, 4), ("0", "1"), True),
    ("qnli", (6, 4, 4), ("entailment", "not_entailment"), True), ("rte", (8, 4, 4), ("entailment", "not_entailment"), True),
    ("wnli", (6, 2, 2), ("0", "1"), True)])
def test_glue_layouts(name, rows, labels, pair):
    data_dir = os.path.join(GLUE_DIR, {"sst-2": "SST-2", "sts-b": "STS-B"}.get(name, name.upper()).replace("COLA", "CoLA"))
    task = glue.get_task(name)
    assert task.labels == labels and task.pairs == pair
    for split, count in zip(("train", "dev", "test"), rows):
        examples, skipped = glue.read_examples(name.upper(), data_dir, split)
        assert (len(examples), skipped) == (count, 0)
        assert all(bool(e.text_pair) == pair for e in examples)
        if split == "test":
            assert all(e.label is None for e in examples)
        elif labels:
            assert {e.label for e in examples} <= set(labels)
        else:
            assert all(0 <= float(e.label) <= 5 for e in examples)


def test_glue_exact_fields(tmp_path):
    mrpc, _ = glue.read_examples("MRPC", os.path.join(GLUE_DIR, "MRPC"), "train")
    assert (mrpc[0].text, mrpc[0].text_pair, mrpc[0].label) == (
        "The company said its quarterly profit rose 12 percent.",
        "Quarterly profit at the company rose 12 percent, it said.", "1")
    cola, _ = glue.read_examples("cola", os.path.join(GLUE_DIR, "CoLA"), "dev")  # no header: row 1 is data
    assert (cola[0].text, cola[0].label) == ("The dog barked at the mailman.", "1")
    xnli, _ = glue.read_examples("XNLI", os.path.join(GLUE_DIR, "XNLI"), "train")
    assert [e.label for e in xnli] == ["entailment", "contradiction", "neutral"] * 2  # "contradictory" renamed
    dev, _ = glue.read_examples("XNLI", os.path.join(GLUE_DIR, "XNLI"), "dev")
    assert len(dev) == 4 and all(e.text.endswith("。") for e in dev)  # the English row is left out
    stsb, _ = glue.read_examples("sts-b", os.path.join(GLUE_DIR, "STS-B"), "train")
    assert stsb[0].label == "4.600"
    with pytest.raises(UserError, match="--task_name=XNLI has no test split"):
        glue.read_examples("XNLI", os.path.join(GLUE_DIR, "XNLI"), "test")
    with pytest.raises(UserError, match="--task_name=boolq is unknown"):
        glue.get_task("boolq")
    (tmp_path / "train.tsv").write_bytes(b"sentence\tlabel\n\xff\xfe not utf-8\t1\n")
    with pytest.raises(UserError, match=r"train.tsv is not UTF-8 \(byte 15\)"):
        glue.read_examples("sst-2", str(tmp_path), "train")
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\na row with one field\n")
    with pytest.raises(UserError, match=r"dev.tsv:2 has 1 tab-separated fields, too few for the sst-2 layout"):
        glue.read_examples("sst-2", str(tmp_path), "dev")
