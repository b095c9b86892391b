"""WA / UA are not swapped, and absent classes do not drag UA down."""

import pytest

from utils.metrics import compute_metrics, format_table, summarize_folds


def test_wa_is_accuracy_and_ua_is_mean_recall():
    # 8 hap (all right), 2 sad (both wrong): accuracy 0.8, mean recall (1 + 0) / 2
    y_true = [0] * 8 + [3] * 2
    y_pred = [0] * 8 + [0] * 2
    m = compute_metrics(y_true, y_pred)
    assert m["wa"] == pytest.approx(0.8)
    assert m["ua"] == pytest.approx(0.5)
    assert m["recall"] == {"hap": 1.0, "sad": 0.0}
    assert m["confusion"][3][0] == 2 and m["n"] == 10
    assert m["macro_f1"] == pytest.approx((2 * 0.8 / 1.8 + 0) / 2)


def test_summary_and_table():
    folds = [compute_metrics([0, 1], [0, 1]), compute_metrics([0, 1], [0, 0])]
    s = summarize_folds(folds)
    assert s["wa"]["mean"] == pytest.approx(0.75) and s["wa"]["std"] == pytest.approx(0.25)
    assert "| 1 | 2 | 100.0 | 100.0 | 100.0 |" in format_table([("1", folds[0])])
