"""The fine-tuning benchmark's --full_epoch comparison: a smoke run of both whole processes on the
first rows of the regression set (figures bounded, not asserted: two training steps), and its
refusal of an unknown task."""
import json

import pytest

from benchmarks import finetune
from bert_tf.errors import UserError


def test_unknown_full_epoch_task_is_refused(flag_values):
    fv = flag_values(finetune.define_flags, ["--full_epoch", "--full_epoch_tasks=sentiment,ner"])
    with pytest.raises(UserError, match="unknown --full_epoch_tasks entry 'ner'"):
        finetune.run(fv)


def test_full_epoch_times_both_whole_processes(tmp_path, flag_values, capsys):
    fv = flag_values(finetune.define_flags, ["--contenders=", "--full_epoch", "--full_epoch_tasks=regression",
                                             "--full_epoch_examples=32", "--max_seq_length=32",
                                             "--train_batch_size=16", f"--output_dir={tmp_path}"])
    report = finetune.run(fv)
    result = report["full_epoch"]["regression"]
    assert result["metric"] == "pearson" and result["train_examples"] == 32
    assert result["bert_tf"]["flags"] == ["--task_type=regression", "--freeze_embeddings"]
    for side in ("bert_tf", "plain"):
        assert -1.0 <= result[side]["pearson"] <= 1.0
        # Whole processes: imports, data and prediction around the training steps.
        assert result[side]["seconds"] > result[side]["train_seconds"] > 0
    assert result["time_ratio"] == pytest.approx(result["bert_tf"]["seconds"] / result["plain"]["seconds"])
    assert 0.0 < result["bert_tf"]["flop_share"] < 1.0
    with open(tmp_path / "results.json") as f:
        assert json.load(f)["full_epoch"] == json.loads(json.dumps(report["full_epoch"]))
    printed = capsys.readouterr().out
    assert "regression: bert_tf " in printed and " s whole, plain recipe " in printed and " of its time" in printed
    assert "reproduce: python tools/benchmark.py finetune" in printed
