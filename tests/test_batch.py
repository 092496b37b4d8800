"""The batch tagger other engines call (Spark, Ray Data, Dask): it pickles small, loads its run once per
process on first use, and gives each text predict's record."""
import pickle

import pandas as pd

from test_spark import TEXTS, predict_records


def test_it_pickles_without_its_model_and_loads_it_once_per_process(trained_run):
    from nerctl.inference import batch
    from nerctl.inference.batch import BatchTagger

    tagger = BatchTagger(str(trained_run), words=True)
    assert len(pickle.dumps(tagger)) < 500 and tagger not in batch._LOADED  # settings, no model
    copy = pickle.loads(pickle.dumps(tagger))
    records = copy.tag(TEXTS + [None])
    assert records[:-1] == [{k: r[k] for k in ("text", "uncertainty", "entities", "words")}
                            for r in predict_records(trained_run, TEXTS)]
    assert records[-1] == {"text": "", "uncertainty": 0.0, "entities": [], "words": []}
    assert copy.tagger() is tagger.tagger()  # equal settings share the process's one tagger


def test_dask_map_partitions_tags_a_frame_as_predict_does(trained_run):
    import dask.dataframe as dd

    from nerctl.inference.batch import BatchTagger

    frame = pd.DataFrame({"id": range(len(TEXTS)), "text": TEXTS})
    tagger = BatchTagger(str(trained_run))
    meta = tagger.tag_frame(frame.head(1))
    tagged = dd.from_pandas(frame, npartitions=3).map_partitions(tagger, meta=meta).compute(scheduler="threads")
    expected = [r["entities"] for r in predict_records(trained_run, TEXTS)]
    assert tagged.sort_values("id")["entities"].tolist() == expected and any(expected)
