"""SWAG-style multiple choice: reader checks and a run_multiple_choice run on a toy file."""
import csv
import json
import os

import pytest

from bert_tf.data import multiple_choice as data
from bert_tf.errors import UserError
from bert_tf.jobs import multiple_choice

ROWS = [
    {"sent1": "Anarchism is a political philosophy", "sent2": "It", "endings": [
        "rejects the state.", "is a kind of fruit.", "was built in the state of alabama."], "label": 0},
    {"sent1": "Autism is a disorder", "sent2": "It affects", "endings": [
        "the weather in the state.", "social interaction and communication.", "rivers of water."], "label": 1},
    {"sent1": "Alabama is a state", "sent2": "Its capital", "endings": [
        "is an albedo.", "is a philosophy.", "is Montgomery."], "label": 2},
]


def jsonl_file(path, rows=ROWS):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_reads_jsonl_lists_and_csv_ending_columns(tmp_path):
    examples = data.read_examples(jsonl_file(tmp_path / "toy.jsonl"))
    assert [(e.context, e.endings[0], e.label) for e in examples][:2] == [
        ("Anarchism is a political philosophy", "It rejects the state.", 0),
        ("Autism is a disorder", "It affects the weather in the state.", 1)]
    path = tmp_path / "swag.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video-id", "sent1", "sent2", "ending0", "ending1", "label"])
        writer.writerow(["v1", "He sat down", "Then he", "ate lunch.", "flew away.", "0"])
    [example] = data.read_examples(str(path))
    assert (example.context, example.endings, example.label, example.line) == (
        "He sat down", ["Then he ate lunch.", "Then he flew away."], 0, 2)


def test_bad_rows_name_the_line(tmp_path):
    rows = ROWS[:1] + [dict(ROWS[1], endings=ROWS[1]["endings"][:2])]
    with pytest.raises(UserError, match=r"line 2 has 2 endings but earlier rows have 3"):
        data.read_examples(jsonl_file(tmp_path / "uneven.jsonl", rows))
    with pytest.raises(UserError, match=r"line 1: label 3 is not in 0..2"):
        data.read_examples(jsonl_file(tmp_path / "label.jsonl", [dict(ROWS[0], label=3)]))


def test_train_eval_predict(tmp_path, tiny_checkpoint, flag_values):
    toy = jsonl_file(tmp_path / "toy.jsonl")
    out = str(tmp_path / "run")
    argv = [f"--init_checkpoint={tiny_checkpoint}", f"--train_file={toy}", f"--dev_file={toy}", f"--test_file={toy}",
            f"--output_dir={out}", "--max_seq_length=24", "--train_batch_size=3", "--num_train_steps=30",
            "--learning_rate=2e-3", "--warmup_proportion=0", "--log_steps=10", "--seed=1", "--do_train", "--do_eval",
            "--do_predict"]
    results = multiple_choice.run(flag_values(multiple_choice.define_flags, argv))
    with open(os.path.join(out, "eval_results.json")) as f:
        evaluation = json.load(f)
    assert evaluation == results["eval"] == {"accuracy": 1.0, "num_examples": 3, "truncated": 0}
    lines = open(os.path.join(out, multiple_choice.PREDICTIONS_FILE)).read().splitlines()
    assert lines[0] == "context\tgold\tpredicted\tprobability\tpredicted_ending"
    assert [line.split("\t")[1:3] for line in lines[1:]] == [["0", "0"], ["1", "1"], ["2", "2"]]
    with open(os.path.join(out, "model", "bert_tf.json")) as f:
        assert json.load(f) == {"task": "multiple_choice", "num_choices": 3, "max_seq_length": 24}
