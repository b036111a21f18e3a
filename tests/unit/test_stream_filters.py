"""Stream FilterCriteria as AWS takes them: on the `dynamodb` key only, in Lambda's filter rule syntax.

AWS pages: Lambda Developer Guide, "Using event filtering with a DynamoDB event source"
(DynamoDB event source mappings only support filtering on the `dynamodb` key; `exists`
works on leaf nodes) and "Control which events Lambda sends to your function" (Filter
rule syntax; at most 5 filters per mapping by default); Lambda API reference, "Filter"
(Pattern: at most 4,096 characters).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cinnox_sms.model import FAILURE_STATUSES, Status
from local_stack.streams import MappingConfig
from local_stack.template import (
    ROOT,
    FilterPatternError,
    Template,
    check_dynamodb_filter,
    dynamodb_filters,
    matches_filter,
    stream_filters,
)

# An alert's record (alertedAt, written by an UpdateItem: a MODIFY) wakes neither function.
NOT_ALERTED = {"alertedAt": {"S": [{"exists": False}]}}
STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-11-29T00:00:00.000"


def _dynamodb_events(template: Template) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (function, name): event["Properties"]
        for function, resource in template.resources_of_type("AWS::Serverless::Function").items()
        for name, event in resource["Properties"].get("Events", {}).items()
        if event["Type"] == "DynamoDB"
    }


def _criteria(*patterns: Any) -> dict[str, Any]:
    return {"Filters": [{"Pattern": p if isinstance(p, str) else json.dumps(p)} for p in patterns]}


def _record(event_name: str, image: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """A stream record as Lambda filters it (NEW_IMAGE view: a REMOVE has no NewImage)."""
    dynamodb: dict[str, Any] = {"Keys": {"transactionId": {"S": "txn-1"}}, "SequenceNumber": "1"}
    if image is not None:
        dynamodb["NewImage"] = image
    return {"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": dynamodb, **extra}


def _tdr_image(status: str) -> dict[str, Any]:
    return {"transactionId": {"S": "txn-1"}, "status": {"S": status}, "expiresAt": {"N": "1830340800"}}


# --- the template's patterns ---------------------------------------------------------------


def test_the_template_filters_on_new_image_only(template: Template) -> None:
    """Lambda guide, "Using event filtering with a DynamoDB event source": the `dynamodb` key only."""
    # Given the template's stream mappings, When their FilterCriteria are read as Lambda checks them
    patterns = {key: stream_filters(template, *key) for key in _dynamodb_events(template)}
    # Then they are exactly these, and none filters on eventName (or any key but dynamodb)
    assert patterns == {
        ("AlertFunction", "TdrStream"): [
            {"dynamodb": {"NewImage": {"status": {"S": ["Undelivered", "Rejected"]}, **NOT_ALERTED}}}
        ],
        ("MetricsFunction", "Stored"): [
            {"dynamodb": {"NewImage": {"status": {"S": [{"exists": True}]}, **NOT_ALERTED}}}
        ],
    }
    for pattern in (p for found in patterns.values() for p in found):
        assert set(pattern) == {"dynamodb"}


def test_the_templates_own_patterns_are_accepted_at_mapping_creation(template: Template) -> None:
    """Lambda guide, "Using event filtering with a DynamoDB event source"."""
    for (function, event), properties in _dynamodb_events(template).items():
        # When the local stack creates the mapping as it does at start
        config = MappingConfig.from_properties({**properties, "Stream": STREAM_ARN, "DestinationConfig": {}}, {})
        # Then it takes the patterns unchanged
        assert list(config.filters) == stream_filters(template, function, event)


def test_a_pattern_on_event_name_is_refused_when_the_mapping_is_created(template: Template) -> None:
    """Lambda guide, "Using event filtering with a DynamoDB event source": `dynamodb` key only."""
    # Given the alert mapping with the pattern it had before: eventName next to dynamodb
    properties = template.resource("AlertFunction")["Properties"]["Events"]["TdrStream"]["Properties"]
    old = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["Undelivered", "Rejected"]}}}}
    properties = {**properties, "Stream": STREAM_ARN, "DestinationConfig": {}, "FilterCriteria": _criteria(old)}
    # When the mapping is created, Then it is refused, naming the key and the rule
    with pytest.raises(FilterPatternError) as refused:
        MappingConfig.from_properties(properties, {})
    message = str(refused.value)
    assert "'eventName'" in message
    assert "'dynamodb' key only" in message
    assert "FilterCriteria.Filters[0].Pattern" in message


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ({"eventName": ["INSERT"]}, "'eventName'"),
        ({"eventSource": ["aws:dynamodb"], "dynamodb": {"Keys": {"id": {"S": ["1"]}}}}, "'eventSource'"),
        ({"awsRegion": [{"prefix": "us-"}]}, "'awsRegion'"),
        ({"$or": [{"dynamodb": {"Keys": {"id": {"S": ["1"]}}}}, {"eventName": ["REMOVE"]}]}, "'eventName'"),
        ({"dynamodb": ["INSERT"]}, "fields inside the record's dynamodb object"),
    ],
)
def test_keys_other_than_dynamodb_are_refused(pattern: dict[str, Any], why: str) -> None:
    """Lambda guide, "Using event filtering with a DynamoDB event source": `dynamodb` key only."""
    with pytest.raises(FilterPatternError, match=why):
        dynamodb_filters(_criteria(pattern))


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ({}, "non-empty JSON object"),
        ({"dynamodb": {}}, "non-empty JSON object"),
        ({"dynamodb": {"NewImage": {"status": {"S": []}}}}, "empty array"),
        ({"dynamodb": {"NewImage": {"status": {"S": "Rejected"}}}}, "an object or an array of rules"),
        ({"dynamodb": {"NewImage": {"status": {"S": [["Rejected"]]}}}}, "a value or an object with one operator"),
        ({"dynamodb": {"Keys": {"id": {"S": [{"prefix": "a", "suffix": "b"}]}}}}, "one operator"),
        ({"dynamodb": {"Keys": {"id": {"S": [{"wildcard": "a*"}]}}}}, "'wildcard' is not an operator"),
        ({"dynamodb": {"Keys": {"ip": {"S": [{"cidr": "10.0.0.0/24"}]}}}}, "'cidr' is not an operator"),
        ({"dynamodb": {"Keys": {"id": {"S": [{"anything-but": {"prefix": "a"}}]}}}}, "anything-but takes"),
        ({"dynamodb": {"Keys": {"id": {"S": [{"anything-but": ["a", 1]}]}}}}, "anything-but takes"),
        ({"dynamodb": {"Keys": {"id": {"S": [{"anything-but": []}]}}}}, "anything-but takes"),
        ({"dynamodb": {"Keys": {"id": {"S": [{"prefix": {"equals-ignore-case": "a"}}]}}}}, "prefix takes a string"),
        ({"dynamodb": {"Keys": {"id": {"S": [{"exists": "yes"}]}}}}, "exists takes true or false"),
        ({"dynamodb": {"$or": [{"Keys": {"id": {"S": ["1"]}}}]}}, "at least two objects"),
        ({"dynamodb": {"NewImage": {"n": {"N": [{"numeric": [">", 1]}]}}}}, "local stack does not evaluate"),
    ],
)
def test_shapes_outside_lambdas_filter_syntax_are_refused(pattern: dict[str, Any], why: str) -> None:
    """Lambda guide, "Control which events Lambda sends to your function": Filter rule syntax."""
    with pytest.raises(FilterPatternError, match=why):
        dynamodb_filters(_criteria(pattern))


def test_criteria_lambda_refuses_as_a_whole_are_refused() -> None:
    """Lambda guide: 5 filters per mapping by default; Lambda API reference, Filter: Pattern ≤ 4,096 characters."""
    allowed = {"dynamodb": {"Keys": {"id": {"S": ["1"]}}}}
    assert len(dynamodb_filters(_criteria(*[allowed] * 5))) == 5
    with pytest.raises(FilterPatternError, match="6 filters"):
        dynamodb_filters(_criteria(*[allowed] * 6))
    with pytest.raises(FilterPatternError, match="not JSON"):
        dynamodb_filters(_criteria('{"dynamodb": '))
    long = {"dynamodb": {"Keys": {"id": {"S": ["x" * 4100]}}}}
    with pytest.raises(FilterPatternError, match="over Lambda's 4096"):
        dynamodb_filters(_criteria(long))
    assert dynamodb_filters(None) == ()
    assert dynamodb_filters({}) == ()


# --- what the patterns keep -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "record", "kept"),
    [
        ({"a": [{"suffix": ".png"}]}, {"a": "x.png"}, True),
        ({"a": [{"suffix": ".png"}]}, {"a": "x.jpg"}, False),
        ({"a": [{"equals-ignore-case": "rejected"}]}, {"a": "REJECTED"}, True),
        ({"a": [None]}, {"a": None}, True),
        ({"a": [None]}, {}, False),
        ({"a": [""]}, {"a": ""}, True),
        ({"a": ["1"]}, {"a": 1}, False),  # types are matched too
        ({"a": [1]}, {"a": 1}, True),
        ({"a": [True]}, {"a": 1}, False),
        ({"a": ["x"]}, {"a": ["y", "x"]}, True),  # an array matches when one element does
        ({"a": [{"exists": True}]}, {"a": {"b": "x"}}, False),  # exists works on leaves only
        ({"a": [{"exists": False}]}, {"a": {"b": "x"}}, True),
        # A pattern is its leaf paths: under an absent field every path is absent, which only exists: false takes
        ({"a": {"S": [{"exists": False}]}}, {}, True),
        ({"a": {"S": [{"exists": False}]}}, {"a": {"S": "x"}}, False),
        ({"a": {"S": [{"exists": False}]}}, {"a": {"N": "1"}}, True),
        ({"a": {"S": [{"exists": True}]}}, {}, False),
        ({"a": {"S": ["x"]}}, {}, False),
        ({"a": {"b": ["x"]}}, {"a": [{"b": "y"}, {"b": "x"}]}, True),
        ({"a": [{"anything-but": [1, 2]}]}, {"a": 3}, True),
        ({"a": [{"anything-but": "x"}]}, {}, False),
        ({"$or": [{"a": ["x"]}, {"b": ["y"]}]}, {"b": "y"}, True),
        ({"$or": [{"a": ["x"]}, {"b": ["y"]}]}, {"a": "y"}, False),
        ({"a": ["x"], "$or": [{"b": ["1"]}, {"c": ["2"]}]}, {"a": "x", "c": "2"}, True),
    ],
)
def test_filter_rule_semantics(pattern: dict[str, Any], record: dict[str, Any], kept: bool) -> None:
    """Lambda guide, "Control which events Lambda sends to your function": Filter rule syntax."""
    assert matches_filter(pattern, record) is kept


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("event_name", ["INSERT", "MODIFY", "REMOVE", "TTL"])
def test_what_each_template_filter_keeps(template: Template, status: Status, event_name: str) -> None:
    """Lambda guide, "Using event filtering with a DynamoDB event source": NEW_IMAGE records, REMOVEs without one."""
    # Given a record as the NEW_IMAGE stream has it: REMOVEs, TTL's included, carry no NewImage
    ttl = {"userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"}}
    record = (
        _record("REMOVE", None, **ttl)
        if event_name == "TTL"
        else _record(event_name, None if event_name == "REMOVE" else _tdr_image(status.value))
    )
    alert = any(matches_filter(p, record) for p in stream_filters(template, "AlertFunction", "TdrStream"))
    counted = any(matches_filter(p, record) for p in stream_filters(template, "MetricsFunction", "Stored"))
    # Then the alert function wakes for items with a failed status, the metrics function for
    # any stored TDR; a MODIFY gets through both, which is why the functions act on INSERTs only
    has_image = event_name in ("INSERT", "MODIFY")
    assert alert is (has_image and status in FAILURE_STATUSES)
    assert counted is has_image


def test_an_alerts_record_wakes_neither_function(template: Template) -> None:
    """Lambda guide, "Using event filtering with a DynamoDB event source" (Using the Exists operator: on leaves,
    here alertedAt's S): the MODIFY that records an alert (cinnox_sms.alert_ledger) costs no invocation."""
    # Given the MODIFY an alert's record makes: the failure's item with alertedAt set
    image = _tdr_image("Undelivered") | {"alertedAt": {"S": "2026-12-06T03:00:00.000+00:00"}}
    record = _record("MODIFY", image)
    # Then neither mapping passes it on, while the INSERT before it reaches both
    for key in _dynamodb_events(template):
        assert not any(matches_filter(p, record) for p in stream_filters(template, *key))
        assert any(
            matches_filter(p, _record("INSERT", _tdr_image("Undelivered"))) for p in stream_filters(template, *key)
        )


def test_the_sam_generated_unrelated_batch_wakes_neither_function(template: Template) -> None:
    """Lambda guide, "Using event filtering with a DynamoDB event source"."""
    # Given `sam local generate-event dynamodb update` (an item with no status), committed in events/
    records = json.loads((ROOT / "events" / "alert-stream-unrelated.json").read_text())["Records"]
    patterns = [p for key in _dynamodb_events(template) for p in stream_filters(template, *key)]
    # Then on AWS no record of it reaches either function (the functions cope if it does: see test_alert.py)
    assert not any(matches_filter(p, r) for p in patterns for r in records)


def test_check_accepts_what_lambdas_syntax_offers() -> None:
    """Lambda guide, "Control which events Lambda sends to your function": every operator the page lists but numeric."""
    check_dynamodb_filter(
        {
            "dynamodb": {
                "Keys": {"id": {"S": ["a", "", None, {"prefix": "p"}, {"suffix": "s"}, {"equals-ignore-case": "e"}]}},
                "NewImage": {
                    "status": {"S": [{"anything-but": ["Delivered", "Submitted"]}, {"anything-but": "x"}]},
                    "n": {"N": [{"exists": False}]},
                    "b": {"BOOL": [True]},
                },
                "$or": [{"SizeBytes": [26]}, {"StreamViewType": ["NEW_IMAGE"]}],
            }
        }
    )
