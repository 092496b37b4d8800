"""Label Studio as a live partner: its labeling configs, and the ML backend nerctl serves it."""
import pytest

from nerctl.core.errors import InputError
from nerctl.data.formats.labelstudio import parse_labeling_config, parse_labelstudio

CONFIG = ('<View><Header value="Tag the query"/><Labels name="ner_tags" toName="doc">'
          '<Label value="ACTOR" background="red"/><Label value="TITLE"/></Labels>'
          '<Text name="doc" value="$utterance"/></View>')


def test_a_labeling_config_gives_the_names_the_text_field_and_the_types():
    config = parse_labeling_config(CONFIG)
    assert (config.from_name, config.to_name, config.text_key, config.labels) == (
        "ner_tags", "doc", "utterance", ("ACTOR", "TITLE"))
    config.check_types(["TITLE", "ACTOR"])


@pytest.mark.parametrize("xml, message", [
    ("<View>", "not valid XML"),
    ('<View><Text name="t" value="$text"/></View>', "no <Labels> control over a <Text> object"),
    ('<View><Labels name="l" toName="other"><Label value="A"/></Labels><Text name="t" value="$text"/></View>',
     "no <Labels> control over a <Text> object"),
    ('<View><Labels name="a" toName="t"><Label value="A"/></Labels><Labels name="b" toName="t"><Label value="B"/>'
     '</Labels><Text name="t" value="$text"/></View>', "2 <Labels> controls"),
    ('<View><Labels name="l" toName="t"><Label value="A B"/></Labels><Text name="t" value="$text"/></View>',
     "label(s) A B are not entity types"),
    ('<View><Labels name="l" toName="t"></Labels><Text name="t" value="$text"/></View>', "no <Label value=...>"),
    ('<View><Labels name="l" toName="t"><Label value="A"/></Labels><Text name="t" value="text"/></View>',
     'value="text" is not a task field'),
])
def test_a_config_nerctl_cannot_serve_says_why(xml, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("$", r"\$")):
        parse_labeling_config(xml)


def test_types_must_match_both_ways_and_the_error_names_them():
    config = parse_labeling_config(CONFIG)
    with pytest.raises(InputError) as err:
        config.check_types(["ACTOR", "YEAR"])
    assert "the model predicts YEAR" in str(err.value) and "label(s) TITLE the model was never trained on" in str(err.value)


def test_an_export_is_read_from_the_configs_text_field():
    export = ('[{"id": 7, "data": {"utterance": "have you seen jaws"}, "annotations": [{"result": [{"from_name": '
              '"ner_tags", "to_name": "doc", "type": "labels", "value": {"start": 14, "end": 18, "labels": ["TITLE"]}}]}]}]')
    (sentence,) = parse_labelstudio(export, "export.json", text_key="utterance")
    assert list(sentence.words) == ["have", "you", "seen", "jaws"] and list(sentence.tags) == ["O", "O", "O", "B-TITLE"]
    with pytest.raises(InputError, match='task 7: no "text" field'):
        parse_labelstudio(export, "export.json")
