"""run_tagger end to end on the tiny checkpoint: learns a word->tag pattern, writes result files, reloads."""
import json
import os
import random

import pytest

from bert_tf.errors import UserError
from bert_tf.jobs import tagger
from bert_tf.tasks.tagging import TaggingTask
from tests import workloads

# Every word has one tag, so a model that learns the words scores near 1 on the training sentences.
LEXICON = {"the": "O", "in": "O", "of": "O", "and": "O", "was": "O", "alabama": "B-LOC", "state": "I-LOC",
           "autism": "B-DIS", "anarchism": "B-IDEA", "movement": "I-IDEA"}


def conll_file(path, num_sentences=24, seed=0):
    rng = random.Random(seed)
    words = list(LEXICON)
    blocks = []
    for _ in range(num_sentences):
        sentence = [rng.choice(words) for _ in range(rng.randint(3, 8))]
        blocks.append("\n".join(f"{w}\t{LEXICON[w]}" for w in sentence))
    path.write_text("-DOCSTART-\tO\n\n" + "\n\n".join(blocks) + "\n")
    return str(path)


def argv(tiny_checkpoint, data, output_dir, **extra):
    flags = {"init_checkpoint": tiny_checkpoint, "train_file": data, "dev_file": data, "test_file": data,
             "output_dir": output_dir, "max_seq_length": 24, "train_batch_size": 8, "eval_batch_size": 16,
             "num_train_steps": 40, "learning_rate": 3e-3, "warmup_proportion": 0.0, "log_steps": 20, "seed": 3}
    flags.update(extra)
    return [f"--{k}={v}" for k, v in flags.items()]


def test_train_eval_predict_then_reload(tmp_path, tiny_checkpoint, flag_values):
    data = conll_file(tmp_path / "train.conll")
    out = str(tmp_path / "run")
    fv = flag_values(tagger.define_flags, argv(tiny_checkpoint, data, out) + ["--do_train", "--do_eval",
                                                                              "--do_predict"])
    results = tagger.run(fv)
    with open(os.path.join(out, "eval_results.json")) as f:
        evaluation = json.load(f)
    assert evaluation == results["eval"]
    assert evaluation["num_examples"] == 24 and evaluation["tag_scheme"] == "BIO"
    assert evaluation["token_accuracy"] >= 0.9 and evaluation["f1"] >= 0.8
    assert {"precision", "recall", "f1", "token_accuracy", "num_examples"} <= set(evaluation)
    with open(os.path.join(out, "test_results.json")) as f:
        assert json.load(f)["token_accuracy"] == evaluation["token_accuracy"]
    with open(os.path.join(out, "model", "bert_tf.json")) as f:
        meta = json.load(f)
    assert meta == {"task": "tagging", "labels": sorted(set(LEXICON.values())), "max_seq_length": 24}
    with open(os.path.join(out, "model", "config.json")) as f:
        assert json.load(f)["id2label"] == {str(i): tag for i, tag in enumerate(meta["labels"])}

    lines = open(os.path.join(out, tagger.PREDICTIONS_FILE)).read().split("\n")
    rows = [line.split("\t") for line in lines if line]
    gold_rows = [line.split("\t") for line in open(data).read().split("\n")[2:] if line]
    assert [r[:2] for r in rows] == gold_rows
    correct = sum(r[1] == r[2] for r in rows) / len(rows)
    assert correct == pytest.approx(evaluation["token_accuracy"])

    # The saved model alone (tags from its metadata) evaluates to the same figures, and tags a file
    # of bare tokens.
    untagged = tmp_path / "words.conll"
    untagged.write_text("the\nalabama\nstate\n\nanarchism\n")
    again = flag_values(tagger.define_flags, [f"--init_checkpoint={out}", f"--dev_file={data}",
                                              f"--test_file={untagged}", f"--output_dir={tmp_path / 'eval'}",
                                              "--max_seq_length=24", "--do_eval", "--do_predict"])
    reloaded = tagger.run(again)
    assert reloaded["eval"]["token_accuracy"] == pytest.approx(evaluation["token_accuracy"])
    assert "test" not in reloaded and not (tmp_path / "eval" / "test_results.json").exists()
    rows = [line.split("\t") for line in (tmp_path / "eval" / tagger.PREDICTIONS_FILE).read_text().splitlines()]
    assert [r[0] for r in rows] == ["the", "alabama", "state", "", "anarchism", ""]  # a blank line ends each sentence
    assert all(len(r) == 2 and r[1] in meta["labels"] for r in rows if r[0])


def test_bad_conll_line_is_one_line_error(tmp_path, tiny_checkpoint):
    data = tmp_path / "bad.conll"
    data.write_text("the\tO\nstate\tI-LOC\textra\n")
    result = workloads.run_tool("run_tagger.py", argv(tiny_checkpoint, str(data), str(tmp_path / "out"))
                                + ["--do_train"], timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {data} line 2 has 3 fields but earlier lines have 2: fix the line (token<TAB>tag, a blank line "
        "between sentences)")


def _check_head(init_meta, labels):
    task = TaggingTask()
    task.labels = labels
    task.check_head(init_meta)


def test_a_fine_tuned_head_only_fits_its_own_tag_set():
    meta = {"task": "tagging", "labels": ["B-LOC", "I-LOC", "O"]}
    _check_head(meta, ["B-LOC", "I-LOC", "O"])
    # Other tasks' checkpoints are left to the loader, which compares variable shapes.
    _check_head({"task": "classification", "labels": ["0", "1"]}, ["B-LOC", "O"])
    with pytest.raises(UserError, match=r"fine-tuned for tags \['B-LOC', 'I-LOC', 'O'\], but this run has "
                                        r"\['B-PER', 'I-PER', 'O'\]"):
        _check_head(meta, ["B-PER", "I-PER", "O"])
