import json

import pytest

from vistag.documents import mustache


def test_variables_are_json_escaped():
    out = mustache.render('{"q":"{{query}}"}', {"query": 'red "shirt"\n\\'})
    assert json.loads(out) == {"q": 'red "shirt"\n\\'}


def test_sections_lists_and_defaults():
    tpl = '[{{#tags}}{"t":"{{tag}}","w":{{weight}}},{{/tags}}0] {{size}}{{^size}}10{{/size}}'
    out = mustache.render(tpl, {"tags": [{"tag": "a", "weight": 1.5}, {"tag": "b", "weight": 2}]})
    assert out == '[{"t":"a","w":1.5},{"t":"b","w":2},0] 10'


def test_string_section_and_parent_lookup():
    assert mustache.render("{{#c}}[{{c}}]{{/c}}", {"c": "Apparel"}) == "[Apparel]"
    assert mustache.render("{{#c}}[{{c}}]{{/c}}", {}) == ""


def test_to_json():
    assert mustache.render("{{#toJson}}v{{/toJson}}", {"v": [0.5, 1.0]}) == "[0.5,1.0]"


def test_unbalanced_sections_raise():
    with pytest.raises(ValueError):
        mustache.render("{{#a}}x", {})
    with pytest.raises(ValueError):
        mustache.render("{{#a}}x{{/b}}", {})
