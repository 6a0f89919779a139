"""The quality ablation: its bookkeeping on hand-made runs, the plain recipe's label alignment and
scoring by hand, and a --quick smoke run through both recipes (figures bounded, not asserted: a tiny
random encoder trained three steps)."""
import json

import numpy as np
import pytest

from benchmarks import quality
from benchmarks import quality_recipes as recipes
from benchmarks.quality_table import format_table, summarise
from bert_tf.errors import UserError


def _runs():
    runs = []
    for cell, values in (("plain", [0.80, 0.90]), ("bert_recipe", [0.70, 0.80]), ("no_clipping", [0.85, 0.95])):
        for seed, value in zip((1, 2), values):
            runs.append({"task": "classification", "cell": cell, "seed": seed, "metric": value,
                         "wall_seconds": 10.0 * seed, "train_seconds": 5.0, "flop_share": 0.1 * seed})
    return runs


def test_summary_gives_means_spreads_deltas_and_seeds():
    table = summarise(_runs(), ["plain", *recipes.CELLS])
    rows = table["classification"]
    assert list(rows) == ["plain", "bert_recipe", "no_clipping"]
    assert rows["bert_recipe"]["mean"] == pytest.approx(0.75) and rows["bert_recipe"]["std"] == pytest.approx(0.05)
    assert rows["bert_recipe"]["vs_plain"] == pytest.approx(-0.10) and rows["no_clipping"]["vs_bert"] == \
        pytest.approx(0.15)
    assert rows["plain"]["seeds"] == [1, 2] and rows["plain"]["wall_seconds"] == 15.0
    assert rows["plain"]["flop_share"] == pytest.approx(0.15)
    text = format_table(table)
    assert text.splitlines()[0] == "classification (accuracy):"
    assert "  bert_recipe       0.7500  0.0500   -0.1000     +0.0000    15.0    15.0  1,2" in text


def test_every_switch_is_one_real_flag_of_the_jobs():
    from absl import flags as absl_flags

    from bert_tf.jobs import classifier, tagger

    for job in (classifier, tagger):
        fv = absl_flags.FlagValues()
        job.define_flags(fv)
        for name, switch in recipes.SWITCHES.items():
            assert len(switch) == 1, name
            flag, value = switch[0][2:].split("=")
            fv[flag].parse(value)  # a typo'd flag name or a refused value fails here
    # Each ablation cell is the paper recipe with its one switch; all_plain has them all.
    assert recipes.CELLS["constant_rate"] == ["--recipe=bert", "--lr_schedule=constant"]
    assert recipes.CELLS["all_plain"] == ["--recipe=bert", *[s[0] for s in recipes.SWITCHES.values()]]


def test_plain_tags_sit_on_each_words_first_piece_and_truncated_words_get_the_fallback():
    words = [["Playing", "unaffable", "games", "."]]
    inputs, labels, firsts = recipes._plain_inputs("tagging", words, [["VERB", "ADJ", "NOUN", "."]],
                                                   [".", "ADJ", "NOUN", "VERB"], max_seq_length=16)
    pieces = recipes._tokenizer().convert_ids_to_tokens(inputs["input_ids"][0][inputs["attention_mask"][0] == 1])
    positions = sorted(firsts[0].values())
    assert [pieces[p] for p in positions] == ["playing", "una", "games", "."]
    assert [labels[0][p] for p in positions] == [3, 1, 2, 0]
    assert (np.delete(labels[0], positions) == -100).all()
    # A 4-word sentence cut to 2 words: the unseen words take the first tag (".").
    logits = np.zeros((1, 16, 4))
    logits[0, firsts[0][0], 3] = logits[0, firsts[0][1], 2] = 1.0
    gold = [["VERB", "ADJ", ".", "NOUN"]]
    assert recipes._plain_metric("tagging", logits, gold, [".", "ADJ", "NOUN", "VERB"],
                                 [{0: firsts[0][0], 1: firsts[0][1]}]) == 0.5


def test_plain_scores_classification_and_regression():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert recipes._plain_metric("classification", logits, ["0", "1", "0"], ["0", "1"], None) == pytest.approx(2 / 3)
    assert recipes._plain_metric("regression", np.array([[1.0], [2.0], [4.0]]), ["0.5", "1.0", "2.0"], None,
                                 None) == pytest.approx(1.0)


def test_unknown_cells_are_refused(flag_values):
    fv = flag_values(quality.define_flags, ["--cells=plain,no_dropout"])
    with pytest.raises(UserError, match="unknown cell 'no_dropout'"):
        quality.run(fv)


def test_packing_cell_is_refused_on_tagging(flag_values):
    fv = flag_values(quality.define_flags, ["--cells=fast_pack_sequences", "--tasks=classification,tagging"])
    with pytest.raises(UserError, match="add --tasks=classification,regression"):
        quality.run(fv)


def test_quick_run_goes_through_both_recipes(tmp_path, flag_values, capsys):
    fv = flag_values(quality.define_flags, ["--quick", "--tasks=tagging", "--cells=plain,all_plain",
                                            f"--output_dir={tmp_path}"])
    report = quality.run(fv)
    rows = report["table"]["tagging"]
    assert list(rows) == ["plain", "all_plain"] and rows["plain"]["seeds"] == [1]
    assert rows["plain"]["vs_plain"] == 0.0 and rows["all_plain"]["vs_bert"] is None
    for row in rows.values():
        assert 0.0 <= row["mean"] <= 1.0 and row["wall_seconds"] > 0 and 0.0 < row["flop_share"] < 1.0
    assert report["settings"]["max_train_examples"] == 48 and report["settings"]["max_seq_length"] == 32
    with open(tmp_path / "results.json") as f:
        assert json.load(f)["table"] == json.loads(json.dumps(report["table"]))
    assert (tmp_path / "quality.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "tagging (token_accuracy):" in printed and "tagging all_plain seed 1: token_accuracy" in printed
    assert "reproduce: python tools/benchmark.py quality" in printed
