"""Tagging (token accuracy, strict entity P/R/F1) and SQuAD (official normalisation, EM/F1) metrics."""
import pytest

from bert_tf.training import metrics


def test_token_accuracy_counts_words_over_all_sentences():
    gold = [["DET", "NOUN"], ["VERB", ".", "ADJ"]]
    predicted = [["DET", "VERB"], ["VERB", ".", "ADJ"]]
    assert metrics.token_accuracy(gold, predicted) == 0.8


@pytest.mark.parametrize("tags, scheme", [
    (["O", "B-PER", "I-PER"], "BIO"),
    (["B-LOC", "E-LOC", "S-PER", "O"], "BIOES"),
    (["NOUN", "VERB"], None),
    (["O"], None),
    (["B-", "O"], None),
])
def test_tag_scheme(tags, scheme):
    assert metrics.tag_scheme(tags) == scheme


def test_bio_entities_are_strict():
    # The seqeval README example: one MISC span is predicted one token early.
    gold = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    predicted = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    scores = metrics.entity_scores(gold, predicted, "BIO")
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.5, 0.5, 0.5)
    assert scores["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    # An I- without its B-, or of another type, opens no entity in strict mode.
    assert metrics.entity_spans(["I-PER", "I-PER", "B-LOC", "I-PER", "B-ORG"], "BIO") == {("LOC", 2, 3),
                                                                                          ("ORG", 4, 5)}


def test_bioes_entities_need_their_end():
    assert metrics.entity_spans(["B-X", "I-X", "E-X", "S-Y", "B-Z", "I-Z", "O", "E-Z"], "BIOES") == {
        ("X", 0, 3), ("Y", 3, 4)}
    gold = [["B-X", "E-X", "S-Y", "O"]]
    predicted = [["B-X", "E-X", "B-Y", "O"]]
    scores = metrics.entity_scores(gold, predicted, "BIOES")
    assert (scores["precision"], scores["recall"]) == (1.0, 0.5)
    assert scores["f1"] == pytest.approx(2 / 3)


def test_tagging_metrics_leave_entity_scores_empty_for_plain_tags():
    result = metrics.tagging_metrics([["DET", "NOUN"]], [["DET", "DET"]])
    assert result == {"token_accuracy": 0.5, "precision": None, "recall": None, "f1": None, "tag_scheme": None,
                      "num_examples": 1, "num_tokens": 2}
    ner = metrics.tagging_metrics([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "O"]])
    assert (ner["token_accuracy"], ner["precision"], ner["recall"]) == (0.75, 1.0, 0.5)
    assert ner["f1"] == pytest.approx(2 / 3) and ner["tag_scheme"] == "BIO"


@pytest.mark.parametrize("text, normalised", [
    ("The Denver Broncos!", "denver broncos"),
    ("  an  apple, a pear and THE fig. ", "apple pear and fig"),
    ("theory of anarchy", "theory of anarchy"),  # articles only as whole words
    ("Saint-Bernard's", "saintbernards"),
    ("", ""),
])
def test_official_normalisation(text, normalised):
    assert metrics.normalize_answer(text) == normalised


def test_exact_and_f1():
    assert metrics.squad_exact("the Denver Broncos", "Denver Broncos.") == 1.0
    assert metrics.squad_f1("big cat", "a big black cat") == pytest.approx(0.8)  # P 2/3, R 1
    assert metrics.squad_f1("cat", "dog") == 0.0
    assert metrics.squad_f1("", "") == 1.0 and metrics.squad_f1("", "cat") == 0.0


def test_squad_metrics_take_the_best_gold_answer_and_split_v2():
    gold = {"a": ["Denver Broncos", "the Broncos"], "b": ["1869"], "c": []}
    predictions = {"a": "Broncos", "b": "in 1869", "c": ""}
    result = metrics.squad_metrics(gold, predictions)
    # a: EM 1 (matches "the Broncos"); b: EM 0, F1 2/3; c: unanswerable, predicted "", EM 1.
    assert result["exact_match"] == pytest.approx(200 / 3)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1) / 3)
    assert result["HasAns_total"] == 2 and result["NoAns_total"] == 1
    assert result["HasAns_exact"] == 50.0 and result["NoAns_exact"] == 100.0
    assert result["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    v1 = metrics.squad_metrics({"a": ["x y"]}, {"a": "x"})
    assert v1 == {"exact_match": 0.0, "f1": pytest.approx(100 * 2 / 3), "num_examples": 1}
