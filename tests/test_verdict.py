"""Verdicts from hand-made rows: each condition of a cell, taken away one at a time, demotes it."""
import numpy as np
import pytest

from interpret.scan.verdict import add_verdicts, control_best, feature_support, strength, verdict

QUOTE = dict(feature="in_quote", feature_kind="binary", metric="auroc", score=0.96, q=1e-30, beyond_char=0.95,
             saturated=0.1, n_pos=5000, n_runs=300)
CONTROL = {"in_quote": 0.575, "position_in_line": 0.15}  # the control's best score: strength 0.15 in each metric
LINE = dict(feature="position_in_line", feature_kind="ordinal", metric="spearman_rho", score=0.98, q=1e-50,
            beyond_char=0.97, saturated=0.2, n_distinct=73)


@pytest.mark.parametrize("row", [QUOTE, LINE])
def test_a_strong_specific_supported_unit_beating_the_control_is_a_cell(row):
    assert verdict(row, CONTROL[row["feature"]]) == "cell"


@pytest.mark.parametrize("change, expected", [
    (dict(q=0.02), "weak"),                      # significant, not strongly
    (dict(q=0.2), "none"),
    (dict(score=0.75), "weak"),                  # AUROC 0.75: strength 0.5 < 0.6
    (dict(score=0.55), "none"),                  # strength 0.1
    (dict(beyond_char=0.6), "weak"),             # the current character explains most of it
    (dict(beyond_char=None), "weak"),            # undefined: the feature is a function of it
    (dict(saturated=0.99), "weak"),              # a stuck unit
])
def test_each_missing_condition_demotes_the_quote_cell(change, expected):
    assert verdict(dict(QUOTE, **change), 0.575) == expected


def test_control_margin_support_and_no_control():
    assert verdict(QUOTE, 0.925) == "weak"                     # strength 0.92 is not 0.2 above 0.85
    assert verdict(QUOTE, 0.975) == "none"                     # below the untrained network (0.95)
    assert verdict(QUOTE, None) == "weak"                      # no control: at most weak
    assert verdict(dict(QUOTE, n_pos=28, n_runs=3), 0.55) == "weak"  # 28 positives (in_parens on Sherlock)
    assert verdict(dict(QUOTE, n_runs=4), 0.55) == "weak"       # many positives, but in 4 runs
    assert verdict(dict(LINE, n_distinct=3), 0.1) == "weak"
    assert verdict(dict(QUOTE, score=None), 0.55) == "none"


def test_add_verdicts_takes_the_controls_best_unit_per_feature():
    rows = [dict(QUOTE, unit=0), dict(LINE, unit=0), dict(LINE, unit=1, score=0.3, beyond_char=0.3)]
    control = [dict(QUOTE, score=0.6), dict(QUOTE, score=0.7), dict(LINE, score=0.9)]
    assert control_best(control) == {"in_quote": 0.7, "position_in_line": 0.9}
    add_verdicts(rows, control)
    # quote: 0.92 vs the control's best 0.4; line: 0.98 vs 0.9 is not a cell, 0.3 is below it
    assert [r["verdict"] for r in rows] == ["cell", "weak", "none"]
    assert [r["verdict"] for r in add_verdicts([dict(QUOTE)], None)] == ["weak"]


def test_strength_and_support_by_hand():
    assert strength("auroc", 0.8) == pytest.approx(0.6) and strength("spearman_rho", 0.7) == 0.7
    f = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 1])
    assert feature_support("binary", f) == {"n_runs": 3}
    assert feature_support("binary", np.ones(4)) == {"n_runs": 1}
    assert feature_support("ordinal", np.array([0, 1, 2, 2, 0, 7])) == {"n_distinct": 4}


def test_support_is_the_same_read_in_chunks(monkeypatch):
    from interpret.scan import verdict as V
    rng = np.random.default_rng(0)
    f = (rng.random(1000) < 0.3).astype(np.uint8)
    d = rng.integers(0, 40, 1000).astype(np.float64)
    whole = V.feature_support("binary", f), V.feature_support("ordinal", d)
    monkeypatch.setattr(V, "CHUNK", 7)  # runs across chunk seams
    assert (V.feature_support("binary", f), V.feature_support("ordinal", d)) == whole
    assert whole[0]["n_runs"] == int(f[0]) + int(((f[1:] == 1) & (f[:-1] == 0)).sum())
    assert whole[1]["n_distinct"] == len(set(d.tolist()))


def test_planted_cells_are_found_and_noise_is_not_a_cell():
    """Through the real scan: a planted quote unit and a planted (curved) line unit are cells against an
    untrained-like control of pure noise; the noise units never are."""
    from scipy.signal import lfilter
    from interpret.scan.run import add_support
    from interpret.scan.common import FeatureValues
    from interpret.scan.memory import scan_in_memory
    from interpret.scan.rows import add_qvalues
    rng = np.random.default_rng(5)
    n, units = 6000, 12
    noise = lambda: lfilter([1.0], [1.0, -0.95], rng.standard_normal((n, units)) * 0.31, axis=0)  # noqa: E731
    lengths = rng.integers(30, 300, n // 30)  # alternating runs out/in of irregular lengths (no period)
    quote = np.repeat(np.arange(len(lengths)) % 2, lengths)[:n].astype(float)
    col = np.concatenate([np.arange(k) for k in rng.integers(40, 80, n // 40)])[:n].astype(float)
    feats = [FeatureValues("in_quote", "binary", quote), FeatureValues("position_in_line", "ordinal", col)]
    char_ix = rng.integers(0, 30, n)
    acts = noise()
    acts[:, 2] += 3 * quote - 1.5
    acts[:, 7] = np.tanh(np.exp(col / 25.0) / 10) + 0.05 * rng.standard_normal(n)  # monotone, curved
    rows = scan_in_memory(acts, feats, char_ix, n_shifts=50)
    control = scan_in_memory(noise(), feats, char_ix, n_shifts=50)
    add_qvalues(rows)
    add_support(rows, feats)
    add_verdicts(rows, control)
    cells = {(r["feature"], r["unit"]) for r in rows if r["verdict"] == "cell"}
    assert cells == {("in_quote", 2), ("position_in_line", 7)}
