import numpy as np
import pytest

from bert_tf.training import metrics


def test_classification_metrics_on_a_hand_counted_case():
    # gold:      0 0 0 1 1 2
    # predicted: 0 0 1 1 2 2   -> confusion [[2,1,0],[0,1,1],[0,0,1]]
    gold, predicted = [0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2]
    result = metrics.classification_metrics(gold, predicted, 3)
    assert result["accuracy"] == pytest.approx(4 / 6)
    # precision per class: 2/2, 1/2, 1/2; recall: 2/3, 1/2, 1/1
    assert result["precision_macro"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert result["recall_macro"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 / 1.5]
    assert result["f1_macro"] == pytest.approx(sum(f1) / 3)
    assert result["num_examples"] == 6
    # Gorodkin's R_K: (c*s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2))
    expected_mcc = (4 * 6 - (2 * 3 + 2 * 2 + 2 * 1)) / np.sqrt((36 - 12) * (36 - 14))
    assert result["mcc"] == pytest.approx(expected_mcc)


def test_binary_mcc_equals_the_textbook_formula():
    gold = [1, 1, 1, 0, 0, 0, 0, 1]
    predicted = [1, 0, 1, 0, 0, 1, 0, 1]
    tp, tn, fp, fn = 3, 3, 1, 1
    expected = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert metrics.classification_metrics(gold, predicted, 2)["mcc"] == pytest.approx(expected)


def test_report_lists_each_class():
    report = metrics.classification_report(metrics.confusion_matrix([0, 1, 1], [0, 1, 0], 2), ["neg", "pos"])
    lines = report.splitlines()
    assert lines[1].split() == ["neg", "0.5000", "1.0000", "0.6667", "1"]
    assert lines[2].split() == ["pos", "1.0000", "0.5000", "0.6667", "2"]
    assert lines[3].split() == ["accuracy", "0.6667", "3"]


def test_regression_metrics_with_ties():
    gold = [1.0, 2.0, 3.0, 4.0]
    predicted = [1.0, 3.0, 3.0, 5.0]
    result = metrics.regression_metrics(gold, predicted)
    assert result["mse"] == pytest.approx((0 + 1 + 0 + 1) / 4)
    # ranks of predicted with a tie: 1, 2.5, 2.5, 4
    ranks_gold, ranks_pred = np.array([1, 2, 3, 4.0]), np.array([1, 2.5, 2.5, 4])
    assert result["spearman"] == pytest.approx(np.corrcoef(ranks_gold, ranks_pred)[0, 1])
    assert result["pearson"] == pytest.approx(np.corrcoef(gold, predicted)[0, 1])


def test_confusion_matrix_png_is_written(tmp_path):
    path = tmp_path / "cm.png"
    metrics.save_confusion_matrix_png(np.array([[3, 1], [0, 4]]), ["a", "b"], str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
