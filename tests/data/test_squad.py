"""SQuAD reading, doc-stride windows and n-best span decoding, on a hand-made vocab so every id is known."""
import json

import numpy as np
import pytest

from bert_tf.data import squad
from bert_tf.errors import UserError
from bert_tf.tokenization import HostTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "e", "f", "g", "h", "where", "?",
         "born", "(", ")", "1869", "when"]
ID = {token: i for i, token in enumerate(VOCAB)}
CLS, SEP, PAD = ID["[CLS]"], ID["[SEP]"], ID["[PAD]"]
CONTEXT = "a b c d e f g h"  # piece i starts at character 2 * i


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n")
    return HostTokenizer(str(path), do_lower_case=True)


def squad_file(tmp_path, qas, context=CONTEXT):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}))
    return str(path)


def example(answer_start=6, text="d e", question="where ?"):
    return squad.SquadExample("q1", question, CONTEXT, [text], answer_start, text)


def test_read_skips_answers_not_at_answer_start(tmp_path):
    path = squad_file(tmp_path, [
        {"id": "ok", "question": "where ?", "answers": [{"text": "d e", "answer_start": 6}, {"text": "d", "answer_start": 6}]},
        {"id": "bad", "question": "where ?", "answers": [{"text": "d e", "answer_start": 5}]}])
    examples, skipped = squad.read_squad(path, is_training=True)
    assert skipped == 1
    assert [(e.qas_id, e.answers, e.answer_start, e.answer_text) for e in examples] == [("ok", ["d e", "d"], 6, "d e")]
    # Evaluation keeps every question and all its gold answers.
    examples, skipped = squad.read_squad(path, is_training=False)
    assert [(e.qas_id, e.answers) for e in examples] == [("ok", ["d e", "d"]), ("bad", ["d e"])] and skipped == 0


def test_unanswerable_questions_need_version_2(tmp_path):
    path = squad_file(tmp_path, [{"id": "none", "question": "where ?", "answers": [], "is_impossible": True}])
    with pytest.raises(UserError, match="--version_2_with_negative"):
        squad.read_squad(path, is_training=True)
    [only], _ = squad.read_squad(path, is_training=True, version_2_with_negative=True)
    assert only.is_impossible and only.answers == []


def test_doc_spans_stride_and_last_window_reaches_the_end():
    assert squad.doc_spans(8, 4, 2) == [(0, 4), (2, 4), (4, 4)]
    assert squad.doc_spans(8, 4, 3) == [(0, 4), (3, 4), (6, 2)]
    assert squad.doc_spans(3, 4, 2) == [(0, 3)]


def test_windows_answer_crossing_a_boundary_points_at_cls(tokenizer):
    # 9 positions - [CLS] where ? [SEP] ... [SEP] leaves 4 context pieces per window; stride 2.
    windows, stats = squad.convert_examples([example()], tokenizer, 9, doc_stride=2, max_query_length=64,
                                            is_training=True)
    assert stats == {"num_examples": 1, "num_windows": 3, "truncated_questions": 0, "answers_outside_windows": 0}
    head = [CLS, ID["where"], ID["?"], SEP]
    assert [w.input_ids.tolist() for w in windows] == [
        head + [ID["a"], ID["b"], ID["c"], ID["d"], SEP],
        head + [ID["c"], ID["d"], ID["e"], ID["f"], SEP],
        head + [ID["e"], ID["f"], ID["g"], ID["h"], SEP]]
    assert windows[0].segment_ids.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    # "d e" is cut by the first and last windows: they learn "no answer here"; the middle one the span.
    assert [(w.start_position, w.end_position) for w in windows] == [(0, 0), (5, 6), (0, 0)]
    assert [w.context_start for w in windows] == [4, 4, 4]
    assert [w.max_context for w in windows] == [[True, True, True, False], [False, True, True, False],
                                                [False, True, True, True]]
    assert windows[1].piece_offsets == [(4, 5), (6, 7), (8, 9), (10, 11)]


def test_questions_are_cut_and_padding_follows(tokenizer):
    windows, stats = squad.convert_examples([example(question="where where where ?")], tokenizer, 12,
                                            doc_stride=8, max_query_length=2, is_training=True)
    assert stats["truncated_questions"] == 1 and len(windows) == 2
    assert windows[0].input_ids.tolist() == [CLS, ID["where"], ID["where"], SEP] + [ID[c] for c in "abcdefg"] + [SEP]
    assert windows[1].input_ids.tolist() == [CLS, ID["where"], ID["where"], SEP, ID["h"], SEP] + [PAD] * 6
    assert windows[1].input_mask.tolist() == [1] * 6 + [0] * 6
    assert [(w.start_position, w.end_position) for w in windows] == [(7, 8), (0, 0)]


def logits_for(windows, spans, null=0.0):
    """Per-window start/end logits: -5 everywhere, ``null`` at [CLS], and the given {(window, position): value}."""
    starts = np.full((len(windows), 9), -5.0)
    ends = np.full((len(windows), 9), -5.0)
    starts[:, 0] = ends[:, 0] = null
    for (kind, row, position), value in spans.items():
        (starts if kind == "start" else ends)[row, position] = value
    return starts, ends


def test_decode_uses_max_context_windows_and_maps_back_to_text(tokenizer):
    windows, _ = squad.convert_examples([example()], tokenizer, 9, 2, 64, is_training=False)
    starts, ends = logits_for(windows, {
        ("start", 0, 7): 9.0,  # "d" in window 0 has more context in window 1: ignored there
        ("end", 0, 7): 9.0,
        ("start", 1, 5): 4.0, ("end", 1, 6): 3.0,  # "d e"
        ("start", 2, 5): 2.0, ("end", 2, 6): 2.5,  # "f g" (window 2 holds e f g h)
    })
    predictions, nbest, null_odds = squad.decode([example()], windows, starts, ends, n_best_size=3,
                                                 max_answer_length=30)
    assert predictions == {"q1": "d e"} and null_odds == {}
    texts = [entry["text"] for entry in nbest["q1"]]
    # Only the top 3 starts and ends of each window are tried: the -5 ones fall on [CLS] and the question.
    assert texts == ["d e", "f g"]
    top = nbest["q1"][0]
    assert (top["start_logit"], top["end_logit"]) == (4.0, 3.0)
    assert sum(entry["probability"] for entry in nbest["q1"]) == pytest.approx(1.0)
    # A span longer than max_answer_length is never chosen.
    long_span = logits_for(windows, {("start", 1, 5): 9.0, ("end", 1, 7): 9.0, ("end", 1, 5): 1.0})
    assert squad.decode([example()], windows, *long_span, n_best_size=3, max_answer_length=3)[0] == {"q1": "d e f"}
    assert squad.decode([example()], windows, *long_span, n_best_size=3, max_answer_length=2)[0] == {"q1": "d"}


def test_decode_null_answer_for_version_2(tokenizer):
    windows, _ = squad.convert_examples([example()], tokenizer, 9, 2, 64, is_training=False)
    spans = {("start", 1, 5): 2.0, ("end", 1, 6): 1.0}  # best span "d e" scores 3
    predictions, nbest, null_odds = squad.decode([example()], windows, *logits_for(windows, spans, null=2.0),
                                                 n_best_size=2, version_2_with_negative=True)
    # Null score 4 beats the span by 1 > threshold 0.
    assert predictions == {"q1": ""} and null_odds == {"q1": pytest.approx(1.0)}
    assert [e["text"] for e in nbest["q1"]][0] == ""
    predictions, _, _ = squad.decode([example()], windows, *logits_for(windows, spans, null=2.0), n_best_size=2,
                                     version_2_with_negative=True, null_score_diff_threshold=1.5)
    assert predictions == {"q1": "d e"}


def test_decoded_text_is_the_original_substring(tokenizer):
    context = "Born (1869) in"
    item = squad.SquadExample("q", "when ?", context, ["1869"], 6, "1869")
    windows, _ = squad.convert_examples([item], tokenizer, 16, 128, 64, is_training=True)
    [window] = windows
    # [CLS] when ? [SEP] born ( 1869 ) in [SEP]: the answer is the piece at position 6, not the whole word.
    assert (window.start_position, window.end_position) == (6, 6)
    starts, ends = np.full((1, 16), -5.0), np.full((1, 16), -5.0)
    starts[0, 4], ends[0, 7] = 3.0, 3.0
    predictions, _, _ = squad.decode([item], windows, starts, ends)
    assert predictions == {"q": "Born (1869)"}


def _qa(qas_id="q1", start=6, text="d e"):
    return {"id": qas_id, "question": "where ?", "answers": [{"text": text, "answer_start": start}]}


@pytest.mark.parametrize("document, message", [
    ({"data": {"paragraphs": []}}, "'data' must be a list of articles"),
    ({"data": [{"paragraphs": [{"qas": [_qa()]}]}]}, "KeyError: 'context'"),
    ({"data": [{"paragraphs": [{"context": CONTEXT, "qas": [{"question": "where ?", "answers": []}]}]}]},
     "KeyError: 'id'"),
    ({"data": [{"paragraphs": [{"context": CONTEXT, "qas": [_qa(start="six")]}]}]},
     "question q1: answer_start must be an integer"),
    ({"data": [{"paragraphs": [{"context": 7, "qas": [_qa()]}]}]}, "'context' must be a string"),
])
def test_malformed_squad_json_is_one_line_naming_the_problem(tmp_path, document, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(UserError) as error:
        squad.read_squad(str(path), is_training=True)
    assert message in str(error.value) and str(path) in str(error.value) and "\n" not in str(error.value)


def test_duplicate_question_ids_are_refused(tmp_path):
    path = squad_file(tmp_path, [_qa("q1"), _qa("q2"), _qa("q1", start=0, text="a")])
    with pytest.raises(UserError, match=r"repeats question ids \['q1'\]"):
        squad.read_squad(path, is_training=False)
