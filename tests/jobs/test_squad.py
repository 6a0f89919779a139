"""run_squad end to end on the tiny checkpoint and the shipped SQuAD v1.1 sample; a v2.0 file with a null answer."""
import json
import os

from bert_tf.jobs import squad
from bert_tf.training import metrics
from tests.conftest import DATA

SAMPLE = os.path.join(DATA, "squad", "sample.json")


def argv(tiny_checkpoint, output_dir, **extra):
    flags = {"init_checkpoint": tiny_checkpoint, "output_dir": output_dir, "max_seq_length": 64,
             "doc_stride": 32, "max_query_length": 24, "train_batch_size": 8, "eval_batch_size": 16,
             "num_train_steps": 6, "learning_rate": 1e-3, "warmup_proportion": 0.0, "log_steps": 3, "seed": 5}
    flags.update(extra)
    return [f"--{k}={v}" for k, v in flags.items()]


def read(path):
    with open(path) as f:
        return json.load(f)


def test_train_and_evaluate_on_the_sample(tmp_path, tiny_checkpoint, flag_values):
    out = str(tmp_path / "run")
    # --predict_file is google-research/bert's name for the evaluation file.
    # n_best_size covers every position, so even this barely trained model has a valid span to give.
    fv = flag_values(squad.define_flags, argv(tiny_checkpoint, out, train_file=SAMPLE, predict_file=SAMPLE,
                                              n_best_size=64) + ["--do_train", "--do_eval"])
    results = squad.run(fv)
    assert results["train"]["num_examples"] == 5 and results["train"]["skipped_mismatched_answers"] == 0
    # 64-piece windows over ~150-piece paragraphs: several windows per question.
    assert results["train"]["num_windows"] > 10
    evaluation = read(os.path.join(out, "eval_results.json"))
    assert evaluation == results["eval"] and evaluation["num_examples"] == 5
    predictions = read(os.path.join(out, "predictions.json"))
    nbest = read(os.path.join(out, "nbest_predictions.json"))
    data = read(SAMPLE)["data"][0]["paragraphs"]
    gold = {qa["id"]: [a["text"] for a in qa["answers"]] for p in data for qa in p["qas"]}
    contexts = {qa["id"]: p["context"] for p in data for qa in p["qas"]}
    assert set(predictions) == set(gold) == set(nbest)
    for qas_id, text in predictions.items():
        assert text and text in contexts[qas_id]
        assert nbest[qas_id][0]["text"] == text
        assert set(nbest[qas_id][0]) == {"text", "probability", "start_logit", "end_logit"}
        assert 1 <= len(nbest[qas_id]) <= 64
    recomputed = metrics.squad_metrics(gold, predictions)
    assert (evaluation["exact_match"], evaluation["f1"]) == (recomputed["exact_match"], recomputed["f1"])
    meta = read(os.path.join(out, "model", "bert_tf.json"))
    assert meta == {"task": "squad", "max_seq_length": 64, "doc_stride": 32, "max_query_length": 24,
                    "max_answer_length": 30, "version_2_with_negative": False}


def test_version_2_predicts_with_null_answers(tmp_path, tiny_checkpoint, flag_values):
    context = "The tower was built in 1889 by Gustave Eiffel for the world fair in Paris."
    v2 = tmp_path / "v2.json"
    v2.write_text(json.dumps({"version": "v2.0", "data": [{"title": "x", "paragraphs": [{"context": context, "qas": [
        {"id": "a", "question": "When was the tower built?", "is_impossible": False,
         "answers": [{"text": "1889", "answer_start": 23}]},
        {"id": "b", "question": "Who painted the tower?", "is_impossible": True, "answers": []}]}]}]}))
    out = str(tmp_path / "v2run")
    # A very negative threshold makes the null answer win everywhere (decode() tests cover the rest).
    fv = flag_values(squad.define_flags, argv(tiny_checkpoint, out, test_file=str(v2), num_train_steps=1,
                                              null_score_diff_threshold=-1e9)
                     + ["--do_predict", "--version_2_with_negative"])
    results = squad.run(fv)["test"]
    assert read(os.path.join(out, "test_predictions.json")) == {"a": "", "b": ""}
    assert set(read(os.path.join(out, "test_null_odds.json"))) == {"a", "b"}
    # The null answer is always among the n-best, ranked by its own score.
    assert all("" in [e["text"] for e in entries]
               for entries in read(os.path.join(out, "test_nbest_predictions.json")).values())
    assert results == read(os.path.join(out, "test_results.json"))
    assert (results["exact_match"], results["HasAns_exact"], results["NoAns_exact"]) == (50.0, 0.0, 100.0)
    assert (results["HasAns_total"], results["NoAns_total"], results["num_examples"]) == (1, 1, 2)
