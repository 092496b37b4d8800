"""Posterior word and span probabilities against brute-force enumeration of every valid tag sequence."""
import itertools

import numpy as np
import pytest

from nerctl.data.tags import entity_spans
from nerctl.inference.decode import chain_scores
from nerctl.inference.posterior import independent_chain, posteriors
from nerctl.modeling.crf import Transitions

LABELS = ("O", "B-A", "B-B", "I-A", "I-B")


def random_case(rng, n: int, learned: bool):
    """Random word log-probabilities, a random CRF head's scores (or none), and the chain they make."""
    emit = np.log(rng.dirichlet(np.ones(len(LABELS)), size=n))
    k = len(LABELS)
    scores = Transitions(LABELS, rng.normal(size=k), rng.normal(size=(k, k)), rng.normal(size=k)) if learned else None
    return emit, scores, chain_scores(LABELS, scores)


def enumerate_paths(emit, transition, start, final):
    """Every tag sequence with its probability (forbidden ones have none)."""
    paths, weights = [], []
    for path in itertools.product(range(len(LABELS)), repeat=len(emit)):
        score = start[path[0]] + final[path[-1]] + sum(emit[i, t] for i, t in enumerate(path))
        score += sum(transition[a, b] for a, b in zip(path, path[1:]))
        if np.isfinite(score):
            paths.append(path)
            weights.append(score)
    weights = np.exp(np.array(weights) - np.max(weights))
    return paths, weights / weights.sum()


@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("learned", [False, True])
def test_marginals_and_span_probabilities_equal_brute_force(n, learned):
    rng = np.random.default_rng(n * 10 + learned)
    emit, _, (transition, start, final) = random_case(rng, n, learned)
    (posterior,) = posteriors([emit], transition, start, final)
    paths, probs = enumerate_paths(emit, transition, start, final)
    expected = np.zeros((n, len(LABELS)))
    for path, p in zip(paths, probs):
        expected[np.arange(n), path] += p
    assert np.allclose(posterior.marginals, expected, atol=1e-9)
    assert np.allclose(posterior.marginals.sum(axis=1), 1.0)
    for kind in ("A", "B"):
        begin, inside = LABELS.index("B-" + kind), LABELS.index("I-" + kind)
        for first in range(n):
            for end in range(first + 1, n + 1):
                truth = sum(p for path, p in zip(paths, probs)
                            if (kind, first, end) in entity_spans([LABELS[t] for t in path]))
                got = posterior.span_probability(begin, inside, first, end, transition, final)
                assert got == pytest.approx(truth, abs=1e-9), (kind, first, end)


def test_sentences_of_different_lengths_together_equal_each_alone():
    rng = np.random.default_rng(7)
    cases = [random_case(rng, n, True)[0] for n in (4, 1, 3, 4, 2)]
    _, _, (transition, start, final) = random_case(rng, 1, True)
    together = posteriors(cases + [np.zeros((0, len(LABELS)))], transition, start, final, group=2)
    assert together[-1] is None
    for emit, posterior in zip(cases, together):
        (alone,) = posteriors([emit], transition, start, final)
        assert np.allclose(posterior.marginals, alone.marginals) and posterior.log_z == pytest.approx(alone.log_z)


def test_the_decoded_spans_have_probabilities_in_0_1():
    from nerctl.inference.decode import viterbi_iob2

    rng = np.random.default_rng(3)
    for n in (2, 6, 9):
        emit, scores, (transition, start, final) = random_case(rng, n, True)
        (path,) = viterbi_iob2([emit], LABELS, learned=scores)
        (posterior,) = posteriors([emit], transition, start, final)
        for kind, a, b in entity_spans([LABELS[t] for t in path]):
            p = posterior.span_probability(LABELS.index("B-" + kind), LABELS.index("I-" + kind), a, b,
                                           transition, final)
            assert 0 < p <= 1


def test_the_independent_chain_gives_each_words_softmax_and_spans_of_words_tagged_alone():
    """A softmax head's scores: marginals are the word probabilities; a span's is B, then I..., then not I."""
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(len(LABELS)), size=3)
    (posterior,) = posteriors([np.log(probs)], *independent_chain(len(LABELS)))
    assert np.allclose(posterior.marginals, probs)
    truth = sum(np.prod([probs[i, t] for i, t in enumerate(path)])
                for path in itertools.product(range(len(LABELS)), repeat=3)
                if ("A", 0, 2) in entity_spans([LABELS[t] for t in path]) and LABELS[path[0]] == "B-A")
    transition, _, final = independent_chain(len(LABELS))
    assert posterior.span_probability(1, 3, 0, 2, transition, final) == pytest.approx(truth)


@pytest.mark.parametrize("learned", [False, True])
def test_a_whole_sequences_probability_equals_brute_force(learned):
    rng = np.random.default_rng(3 + learned)
    emit, _, chain = random_case(rng, 4, learned)
    (posterior,) = posteriors([emit], *chain)
    paths, probs = enumerate_paths(emit, *chain)
    for path, p in list(zip(paths, probs))[:: max(1, len(paths) // 40)]:
        assert posterior.path_probability(path, *chain) == pytest.approx(p, abs=1e-12)
    assert sum(posterior.path_probability(path, *chain) for path in paths) == pytest.approx(1.0)


def test_a_runs_tagger_scores_words_and_spans_by_their_posteriors(trained_run, bio_files):
    """The Tagger's word scores are the marginals of the tags Viterbi chose, its span scores their probabilities."""
    from nerctl.artifacts.rundir import RunDir
    from nerctl.data.formats.bio import read_bio
    from nerctl.inference.decode import viterbi_iob2
    from nerctl.inference.tagger import Tagger

    tagger = Tagger.from_run(RunDir(trained_run))
    assert tagger.transitions is not None  # the smoke config trains the CRF head
    words = [s.words for s in read_bio(bio_files["test"])][:12]
    probs = tagger.word_probabilities(words)
    emit = [np.log(np.maximum(p, 1e-12)) for p in probs]
    labels = tagger.label_map.labels
    transition, start, final = chain_scores(labels, tagger.transitions)
    scaled = [e / tagger.temperature for e in emit]  # the run's fitted temperature: the scores' only
    for d, path, posterior in zip(tagger.decode(probs), viterbi_iob2(emit, labels, learned=tagger.transitions),
                                  posteriors(scaled, transition, start, final)):
        assert d.tags == [labels[i] for i in path]
        assert d.scores == pytest.approx([posterior.marginals[w, i] for w, i in enumerate(path)])
        assert len(d.span_scores) == len(entity_spans(d.tags)) and all(0 < p <= 1 for p in d.span_scores)
    doc = tagger(" ".join(words[0]))
    assert [e.score for e in doc.entities] == pytest.approx(tagger.decode(probs[:1])[0].span_scores)


def test_the_temperature_fit_finds_the_softening_that_lowers_held_out_nll():
    """Gold sequences drawn with emissions at half strength (T = 2): the fit lands near 2 and its NLL is lower."""
    from nerctl.evaluation.calibration import fit_temperature, sequence_nll

    rng = np.random.default_rng(11)
    emit, gold = [], []
    _, _, (transition, start, final) = random_case(rng, 1, True)
    for _ in range(400):
        e = 3 * random_case(rng, 3, False)[0]  # sharp emissions
        paths, probs = enumerate_paths(e / 2, transition, start, final)
        emit.append(e)
        gold.append(list(paths[rng.choice(len(paths), p=probs)]))
    fitted = fit_temperature(emit, gold, transition, start, final)
    assert 1.5 < fitted < 2.7, fitted
    assert sequence_nll(emit, gold, transition, start, final, fitted) < sequence_nll(emit, gold, transition, start,
                                                                                        final, 1.0)


def test_reliability_bins_and_ece():
    from nerctl.evaluation.calibration import reliability

    rows, ece = reliability([0.95, 0.95, 0.15, 0.55], [True, False, False, True])
    assert [(r["bin"], r["spans"], r["precision"]) for r in rows] == [([0.1, 0.2], 1, 0.0), ([0.5, 0.6], 1, 1.0),
                                                                     ([0.9, 1.0], 2, 0.5)]
    assert ece == pytest.approx((0.15 + 0.45 + 2 * 0.45) / 4)


def test_sentences_of_different_lengths_decoded_together_equal_each_alone():
    """The group's Viterbi backtrack, path and span probabilities: one array step for all, each row its own."""
    from nerctl.inference.decode import stack, viterbi_iob2, viterbi_paths
    from nerctl.inference.posterior import Posteriors

    rng = np.random.default_rng(11)
    _, scores, chain = random_case(rng, 1, True)
    cases = [random_case(rng, n, True)[0] for n in (5, 1, 3, 5, 2, 4)]
    together = viterbi_iob2(cases, LABELS, learned=scores, group=4)
    assert together == [viterbi_iob2([emit], LABELS, learned=scores)[0] for emit in cases]
    group = Posteriors.of(*stack(cases), *chain)
    paths = viterbi_paths(group.emit, group.lengths, *chain)
    probabilities = group.path_probabilities(paths, *chain)
    for row, emit in enumerate(cases):
        (alone,) = posteriors([emit], *chain)
        assert probabilities[row] == pytest.approx(alone.path_probability(together[row], *chain), rel=1e-9)
        spans = entity_spans([LABELS[t] for t in together[row]])
        for kind, a, b in spans:
            ids = [np.array([v]) for v in (row, a, b, LABELS.index("B-" + kind), LABELS.index("I-" + kind))]
            assert group.span_probabilities(*ids, chain[0], chain[2])[0] == pytest.approx(
                alone.span_probability(LABELS.index("B-" + kind), LABELS.index("I-" + kind), a, b, chain[0], chain[2]),
                rel=1e-9)
