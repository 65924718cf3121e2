"""benchmark's recommendation when faithfulness cannot rank the methods, or when every
method near the best fails the randomisation check (seen on Tomita parity and length
languages, where deleting any token flips the decision)."""

from captum_rnn.metrics._benchmark import _recommend


def row(method, seconds, randomization, reference=False, **metrics):
    return {
        "method": method,
        "seconds": seconds,
        "ms_per_sequence": seconds,
        "reference": reference,
        "randomization": randomization,
        **metrics,
    }


def test_uninformative_primary_falls_back_to_the_next_faithfulness_metric():
    rows = [
        row("fast", 1.0, 0.1, faithfulness=0.01, comprehensiveness=0.45),
        row("good", 5.0, 0.1, faithfulness=0.02, comprehensiveness=0.52),
        row("random", 0.0, 1.0, reference=True, faithfulness=0.06, comprehensiveness=0.40),
    ]
    choice, reason = _recommend(rows, "faithfulness", 0.1, 0.5, ["comprehensiveness"])
    assert choice == "good"
    assert "no method beats a random attribution on faithfulness" in reason
    assert "comprehensiveness ranks the methods" in reason
    # Without a fallback, or when no fallback separates either, there is none.
    assert _recommend(rows, "faithfulness", 0.1, 0.5)[0] is None
    flat = [dict(r, comprehensiveness=0.4) for r in rows]
    assert _recommend(flat, "faithfulness", 0.1, 0.5, ["comprehensiveness"])[0] is None


def test_when_the_best_fail_the_sanity_check_the_best_sane_method_is_recommended():
    rows = [
        row("insane", 1.0, 0.9, faithfulness=0.30),
        row("sane_slow", 9.0, 0.2, faithfulness=0.20),
        row("sane_weak", 1.0, 0.1, faithfulness=0.15),
        row("random", 0.0, 1.0, reference=True, faithfulness=0.05),
    ]
    choice, reason = _recommend(rows, "faithfulness", 0.1, 0.5)
    assert choice == "sane_slow"
    assert "fail the parameter-randomisation check (insane)" in reason
    assert "most faithful method that passes it" in reason
    # A sane method no better than random is never recommended.
    weak = [dict(r, faithfulness=0.01) if r["method"].startswith("sane") else r for r in rows]
    assert _recommend(weak, "faithfulness", 0.1, 0.5)[0] is None
