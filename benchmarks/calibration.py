#!/usr/bin/env python3
"""Do span scores mean what they say? Reliability of a run's span scores on a tagged file.

    .venv/bin/python benchmarks/calibration.py --run RUN [--file engtest.bio]

Tags the file's words with the run's tagger (its default engine), takes every
predicted span with its score, and counts it right when the gold tags hold
exactly that span. Per score bin (10 equal-width bins): the spans, their mean
score and the share right; the expected calibration error (ECE: the bins'
|mean score - share right| weighted by their span counts); and the precision
of spans scored 0.9 or more against their mean score. Both at temperature 1
(the raw posteriors) and at the run's fitted temperature (calibration.json).
Writes benchmarks/results/<date>-<host>-calibration.json.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from _common import REPO, cpu_model, engtest, new_result, save_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a finished run directory")
    parser.add_argument("--file", help="a tagged file [default: MIT Movie engtest]")
    args = parser.parse_args()
    from nerctl.artifacts.rundir import RunDir
    from nerctl.data.formats import read_corpus
    from nerctl.evaluation.calibration import score_calibration
    from nerctl.inference.tagger import Tagger

    path = Path(args.file) if args.file else engtest()
    sentences = read_corpus(path, warn=lambda message: None)
    run = RunDir(Path(args.run).resolve())
    tagger = Tagger.from_run(run)
    probs = tagger.word_probabilities([s.words for s in sentences])
    result = new_result(cpu=cpu_model(), run=args.run, file=str(path), engine=tagger.engine.to_dict(),
                        fitted=run.read_calibration())
    for name, temperature in (("raw", 1.0), ("calibrated", tagger.temperature)):
        decoded = tagger.with_scoring(temperature=temperature).decode(probs)
        scores = score_calibration([s.tags for s in sentences], decoded)
        high = [b for b in scores["bins"] if b["bin"][0] >= 0.9]
        result[name] = {"temperature": temperature, **scores, "high": high[0] if high else None}
        print(f"{name} (T {temperature:g}): {scores['spans']} spans, ECE {scores['ece']:.4f}; "
              f"score >= 0.9: {result[name]['high']}")
        for row in scores["bins"]:
            print(f"  {row['bin'][0]:.1f}-{row['bin'][1]:.1f}  {row['spans']:5d} spans  mean score "
                  f"{row['mean_score']:.3f}  precision {row['precision']:.3f}")
    print(save_result(result, REPO / "benchmarks" / "results", "-calibration"))


if __name__ == "__main__":
    main()
