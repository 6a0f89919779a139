"""End to end on a learnable toy task: a keyword decides the label."""
import json
import os
import random
import shutil

import numpy as np
import pytest

from bert_tf.data import packing
from bert_tf.errors import UserError
from bert_tf.jobs import classifier
from tests import workloads

FILLER = ["the", "state", "of", "is", "a", "political", "philosophy", "people", "in", "and", "was", "has"]


def toy_file(path, n, seed):
    rng = random.Random(seed)
    lines = ["sentence\tlabel"]
    for i in range(n):
        label = ["negative", "positive"][i % 2]
        words = rng.sample(FILLER, 6)
        words.insert(rng.randrange(7), "alabama" if label == "positive" else "autism")
        lines.append(" ".join(words) + "\t" + label)
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory, tiny_checkpoint):
    from absl import flags

    root = tmp_path_factory.mktemp("cls")
    train = toy_file(root / "train.tsv", 256, 1)
    dev = toy_file(root / "dev.tsv", 64, 2)
    argv = [f"--init_checkpoint={tiny_checkpoint}", f"--train_file={train}", f"--dev_file={dev}",
            f"--test_file={dev}", "--do_train", "--do_eval", "--do_predict", f"--output_dir={root / 'out'}",
            "--max_seq_length=16", "--train_batch_size=16", "--num_train_steps=48", "--learning_rate=5e-3", "--warmup_proportion=0",
            "--log_steps=8", "--save_checkpoints_steps=24", "--length_buckets=8,16", "--seed=4",
            "--recipe=bert"]  # a toy at a high rate: the job mechanics under the paper recipe, clipping on
    fv = flags.FlagValues()
    classifier.define_flags(fv)
    fv(["test"] + argv)
    return root, fv, classifier.run(fv)


def test_loss_falls_and_the_keyword_is_learned(toy_run):
    root, _, results = toy_run
    logged = [json.loads(line) for line in open(root / "out" / "train_metrics.jsonl")]
    history = [h for h in logged if "loss" in h]
    assert [h["step"] for h in history] == [8, 16, 24, 32, 40, 48]
    # The end-of-training evaluation is logged with its step, and is the --do_eval result (not repeated).
    evaluations = [e for e in logged if "eval_accuracy" in e]
    assert [e["step"] for e in evaluations] == [48]
    assert evaluations[0]["eval_accuracy"] == results["eval"]["accuracy"]
    assert history[0]["loss"] > 0.5 and history[-1]["loss"] < 0.1
    assert {"loss", "accuracy", "learning_rate", "examples_per_second"} <= set(history[0])
    assert results["eval"]["accuracy"] == 1.0 and results["eval"]["num_examples"] == 64
    assert results["eval"]["confusion_matrix"] == [[32, 0], [0, 32]]


def test_result_files_follow_the_contract(toy_run):
    root, _, _ = toy_run
    out = root / "out"
    evaluation = json.loads((out / "eval_results.json").read_text())
    assert {"accuracy", "f1_macro", "precision_macro", "recall_macro", "mcc", "num_examples"} <= set(evaluation)
    assert evaluation["mcc"] == pytest.approx(1.0, abs=1e-12)
    rows = (out / "test_predictions.tsv").read_text().splitlines()
    assert rows[0] == "text\tgold\tpredicted\tprobability" and len(rows) == 65
    text, gold, predicted, probability = rows[1].split("\t")
    assert gold == predicted and 0.5 < float(probability) <= 1.0
    assert (out / "eval_confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert "positive" in (out / "eval_classification_report.txt").read_text()
    meta = json.loads((out / "model" / "bert_tf.json").read_text())
    assert meta["labels"] == ["negative", "positive"] and meta["task"] == "classification"


def test_saved_model_loads_in_hugging_face_with_equal_outputs(toy_run, vocab_file):
    import tf_keras  # noqa: F401
    from transformers import TFBertForSequenceClassification

    from bert_tf.export.exporter import load_task_model
    from bert_tf.tokenization import HostTokenizer

    root, _, _ = toy_run
    ours, _, _ = load_task_model(str(root / "out"))
    theirs = TFBertForSequenceClassification.from_pretrained(str(root / "out" / "model"))
    features, _ = HostTokenizer(vocab_file).encode(["people of alabama", "autism is"], None, 16)
    inputs = {"input_ids": features["input_ids"], "attention_mask": features["input_mask"],
              "token_type_ids": features["segment_ids"]}
    np.testing.assert_allclose(ours(inputs)["logits"].numpy(), theirs(inputs).logits.numpy(), atol=1e-5)


def test_rerun_resumes_at_the_final_step_instead_of_retraining(toy_run):
    root, fv, _ = toy_run
    before = os.path.getmtime(root / "out" / "train_metrics.jsonl")
    fv.do_eval = fv.do_predict = False
    results = classifier.run(fv)
    assert results["train"]["global_step"] == 48
    assert os.path.getmtime(root / "out" / "train_metrics.jsonl") == before


def test_eval_only_reuses_the_saved_label_set_and_rejects_a_different_one(toy_run, tmp_path):
    from absl import flags

    root, _, first = toy_run
    argv = [f"--init_checkpoint={root / 'out'}", f"--dev_file={root / 'dev.tsv'}", "--do_eval",
            f"--output_dir={tmp_path / 'eval'}", "--max_seq_length=16"]
    fv = flags.FlagValues()
    classifier.define_flags(fv)
    fv(["test"] + argv)
    assert classifier.run(fv)["eval"]["accuracy"] == first["eval"]["accuracy"]
    fv = flags.FlagValues()
    classifier.define_flags(fv)
    fv(["test"] + argv + ["--labels=a,b,c"])
    with pytest.raises(UserError, match=r"fine-tuned for classification with labels \['negative', 'positive'\]"):
        classifier.run(fv)


def test_nothing_to_do_is_a_user_error(flag_values, tiny_checkpoint, tmp_path):
    fv = flag_values(classifier.define_flags, [f"--init_checkpoint={tiny_checkpoint}", f"--output_dir={tmp_path}"])
    with pytest.raises(UserError, match="nothing to do"):
        classifier.run(fv)


def test_layerwise_lr_decay_scales_each_layers_first_step(tmp_path, tiny_checkpoint, flag_values):
    """One AdamW step with no weight decay moves a weight by lr * factor * |g| / (|g| + eps): within
    a few percent of lr * factor at a variable's largest gradient (clipping off: it would shrink g;
    64 examples, so the step's 16 are a sample whose gradient stands well above eps). The tiny
    model has 2 layers: with decay 0.5 the embeddings move 1/8, layer 0 1/4, layer 1 1/2, pooler
    and head the full rate."""
    train = toy_file(tmp_path / "train.tsv", 64, 1)
    out = str(tmp_path / "out")
    fv = flag_values(classifier.define_flags, [
        f"--init_checkpoint={tiny_checkpoint}", f"--train_file={train}", f"--output_dir={out}", "--do_train",
        "--max_seq_length=16", "--train_batch_size=16", "--num_train_steps=1", "--learning_rate=1e-2",
        "--warmup_proportion=0", "--weight_decay=0", "--clip_norm=0", "--layerwise_lr_decay=0.5",
        "--save_checkpoints_steps=10"])
    classifier.run(fv)
    before = workloads.classifier_weights(tiny_checkpoint)
    after = workloads.classifier_weights(os.path.join(out, "model"), strict_heads=True)
    factors = {name: float(np.abs(value - before[name]).max()) / 1e-2
               for name, value in after.items() if name.startswith("bert/")}
    groups = {"bert/embeddings/": 0.125, "bert/encoder/layer_._0/": 0.25, "bert/encoder/layer_._1/": 0.5,
              "bert/pooler/": 1.0}
    for prefix, expected in groups.items():
        observed = [factor for name, factor in factors.items() if name.startswith(prefix)]
        assert observed and max(observed) == pytest.approx(expected, rel=0.03), prefix


def test_the_job_reports_its_data_first(toy_run):
    root, _, _ = toy_run
    report = json.loads((root / "out" / "data_report.json").read_text())
    assert report["splits"]["train"]["label_counts"] == {"negative": 128, "positive": 128}
    assert [report["splits"][s]["rows"] for s in ("train", "dev", "test")] == [256, 64, 64]
    assert (root / "out" / "data_report.png").read_bytes()[:4] == b"\x89PNG"


def test_packed_training_follows_the_unpacked_run(tmp_path, tiny_checkpoint, flag_values, monkeypatch):
    """With dropout off, --pack_sequences changes only the layout: three packed steps (toy sentences
    of about 9 wordpieces, three to a row of 32) log the unpacked run's losses and end on its weights."""
    checkpoint = str(tmp_path / "no_dropout")
    shutil.copytree(tiny_checkpoint, checkpoint)
    config_path = os.path.join(checkpoint, "config.json")
    config = json.load(open(config_path))
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    json.dump(config, open(config_path, "w"))
    train = toy_file(tmp_path / "train.tsv", 48, 1)
    row_lengths = []

    def spy(features, row_length, row_multiple=1):
        row_lengths.append(row_length)
        return pack_batch(features, row_length, row_multiple)

    pack_batch = packing.pack_batch
    monkeypatch.setattr(packing, "pack_batch", spy)
    runs = {}
    for name, extra in (("unpacked", []), ("packed", ["--pack_sequences"])):
        out = tmp_path / name
        classifier.run(flag_values(classifier.define_flags, [
            f"--init_checkpoint={checkpoint}", f"--train_file={train}", f"--output_dir={out}", "--do_train",
            "--max_seq_length=32", "--train_batch_size=16", "--num_train_steps=3", "--learning_rate=1e-3",
            "--warmup_proportion=0", "--log_steps=1", "--save_checkpoints_steps=10", "--seed=3", *extra]))
        losses = [json.loads(line)["loss"] for line in open(out / "train_metrics.jsonl") if '"loss"' in line]
        runs[name] = losses, workloads.classifier_weights(str(out / "model"), strict_heads=True)
    (unpacked_losses, unpacked), (packed_losses, packed) = runs["unpacked"], runs["packed"]
    assert row_lengths and set(row_lengths) == {32}  # only the packed run packed, into rows of --max_seq_length
    assert len(packed_losses) == 3
    np.testing.assert_allclose(packed_losses, unpacked_losses, rtol=1e-4)
    start = workloads.classifier_weights(checkpoint)
    moved = max(float(np.abs(unpacked[k] - start[k]).max()) for k in start if k.startswith("bert/"))
    differ = max(float(np.abs(packed[k] - unpacked[k]).max()) for k in unpacked)
    assert moved > 1e-3 and differ < 0.01 * moved
