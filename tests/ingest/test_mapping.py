from __future__ import annotations

import pytest

from healthscore.exceptions import MappingError
from healthscore.ingest import ColumnSpec, CsvOptions, load_mapping, parse_mapping
from healthscore.ingest.mapping import snake_case


def test_load_mapping_full_example(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(
        """
format: csv
timezone: Europe/Berlin
csv: {delimiter: ";", encoding: latin-1, decimal: ","}
columns:
  account_id: customerID
  arr: {source: MonthlyCharges, type: number, multiply: 12}
  churned: {source: Churn, type: boolean}
  created_at: {source: signup, type: timestamp, formats: ["%d/%m/%Y %H:%M"]}
  segment: {value: Telco}
attributes: [gender, tenure]
""",
        encoding="utf-8",
    )
    mapping = load_mapping(path)
    assert mapping.format == "csv"
    assert mapping.timezone == "Europe/Berlin"
    assert mapping.csv == CsvOptions(delimiter=";", encoding="latin-1", decimal=",")
    assert mapping.columns["account_id"] == ColumnSpec(source="customerID")
    assert mapping.columns["arr"] == ColumnSpec(
        source="MonthlyCharges", kind="number", multiply=12.0
    )
    assert mapping.columns["created_at"].formats == ("%d/%m/%Y %H:%M",)
    assert mapping.columns["segment"] == ColumnSpec(value="Telco")
    assert mapping.attributes == ("gender", "tenure")
    assert mapping.path == path


def test_load_mapping_empty_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    mapping = load_mapping(path)
    assert mapping.columns == {}
    assert mapping.attributes == "all"


def test_load_mapping_missing_file(tmp_path):
    with pytest.raises(MappingError, match="cannot read the mapping file") as info:
        load_mapping(tmp_path / "nope.yaml")
    assert info.value.path == tmp_path / "nope.yaml"


def test_load_mapping_invalid_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("columns: {account_id: [\n", encoding="utf-8")
    with pytest.raises(MappingError, match="invalid YAML"):
        load_mapping(path)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        pytest.param({"colums": {}}, "colums", "unknown key 'colums'", id="top-key"),
        pytest.param(
            {"format": "xlsx"}, "format", "invalid format 'xlsx'", id="format"
        ),
        pytest.param(
            {"timezone": "Mars/Base"}, "timezone", "unknown timezone", id="timezone"
        ),
        pytest.param(
            {"csv": {"delimiter": ";;"}},
            "csv.delimiter",
            "invalid delimiter",
            id="delim",
        ),
        pytest.param(
            {"csv": {"encoding": "klingon"}},
            "csv.encoding",
            "unknown encoding 'klingon'",
            id="encoding",
        ),
        pytest.param(
            {"csv": {"decimal": ";"}}, "csv.decimal", "invalid value ';'", id="decimal"
        ),
        pytest.param(
            {"columns": {"arr": {"source": "a", "type": "money"}}},
            "columns.arr.type",
            "invalid type 'money'",
            id="type",
        ),
        pytest.param(
            {"columns": {"arr": {"source": "a", "value": 1}}},
            "columns.arr",
            "expected exactly one of 'source'",
            id="source-and-value",
        ),
        pytest.param(
            {"columns": {"arr": {"source": "a", "multiply": "12"}}},
            "columns.arr.multiply",
            "invalid multiply '12'",
            id="multiply",
        ),
        pytest.param(
            {"columns": {"x": {"source": "a", "type": "text", "multiply": 2}}},
            "columns.x.multiply",
            "multiply applies to numbers",
            id="multiply-on-text",
        ),
        pytest.param(
            {"columns": {"x": {"source": "a", "formats": ["dd/mm/yyyy"]}}},
            "columns.x.formats",
            "invalid format 'dd/mm/yyyy'",
            id="format-without-percent",
        ),
        pytest.param(
            {"columns": {"x": {"source": "a", "formats": ["%Y", "%Q%d"]}}},
            "columns.x.formats",
            r"invalid format '%Q%d' \('Q' is a bad directive",
            id="format-bad-directive",
        ),
        pytest.param(
            {"columns": {"x": {"source": "a", "formats": ["%d/%m/%Y %"]}}},
            "columns.x.formats",
            "stray % in format",
            id="format-stray-percent",
        ),
        pytest.param(
            {"columns": {"x": {"source": "a", "formats": ["%G-%V"]}}},
            "columns.x.formats",
            "ISO year directive '%G' must be used with",
            id="format-iso-week-without-weekday",
        ),
        pytest.param(
            {"attributes": "some"}, "attributes", "invalid attributes", id="attributes"
        ),
        pytest.param({"columns": ["a"]}, "columns", "expected a mapping", id="list"),
    ],
)
def test_parse_mapping_invalid(data, field, message):
    with pytest.raises(MappingError, match=message) as info:
        parse_mapping(data, path="m.yaml")
    assert info.value.field == field
    assert str(info.value).startswith(f"m.yaml: {field}: ")


def test_parse_mapping_constant_types():
    mapping = parse_mapping(
        {"columns": {"churned": {"value": True}, "n": {"value": 3}}}
    )
    assert mapping.columns["churned"].value == "true"
    assert mapping.columns["n"].value == "3"


def test_parse_mapping_delimiter_words():
    assert parse_mapping({"csv": {"delimiter": "tab"}}).csv.delimiter == "\t"
    whitespace = parse_mapping({"csv": {"delimiter": "whitespace"}})
    assert whitespace.csv.delimiter == "whitespace"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PaymentMethod", "payment_method"),
        ("SeniorCitizen", "senior_citizen"),
        ("tenure", "tenure"),
        ("customerID", "customer_id"),
        ("StreamingTV", "streaming_tv"),
        ("Total Charges ($)", "total_charges"),
        ("HTTPStatus", "http_status"),
    ],
)
def test_snake_case_names(name, expected):
    assert snake_case(name) == expected


def test_parse_mapping_valid_strptime_formats():
    formats = ["%d/%m/%Y %H:%M", "%Y-%m-%dT%H:%M:%S.%f%z", "%d %b %Y", "100%% %Y"]
    mapping = parse_mapping({"columns": {"x": {"source": "a", "formats": formats}}})
    assert mapping.columns["x"].formats == tuple(formats)
