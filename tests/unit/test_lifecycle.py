"""The local stack's CloudFormation rules that need no server: ServiceTimeout, and property values as
CloudFormation passes them to the function."""

from __future__ import annotations

from typing import Any

import pytest

from local_stack.cloudformation import (
    as_sent,
    service_timeout,
)
from local_stack.template import Template


@pytest.mark.parametrize(("value", "seconds"), [(None, 3600), (300, 300), ("1", 1), ("3600", 3600)])
def test_service_timeout_is_read_from_the_resource(value: Any, seconds: int) -> None:
    properties = {} if value is None else {"ServiceTimeout": value}
    assert service_timeout(properties) == seconds


@pytest.mark.parametrize("value", [0, 3601, "five minutes", 2.5])
def test_a_service_timeout_cloudformation_refuses_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="ServiceTimeout must be an integer from 1 to 3600"):
        service_timeout({"ServiceTimeout": value})


def test_the_template_service_timeout_is_what_the_local_stack_waits() -> None:
    # The template's own value is one CloudFormation accepts (the stack waits for exactly that).
    resource = Template.load().resource("CinnoxSubscription")["Properties"]
    assert 1 <= service_timeout(resource) <= 3600


def test_property_values_reach_the_function_as_strings() -> None:
    """CloudFormation passes numbers and booleans in ResourceProperties as strings
    (aws-cloudformation/cloudformation-coverage-roadmap#1037)."""
    assert as_sent({"a": 1, "b": True, "c": [2.5, "x"], "d": {"e": False}}) == {
        "a": "1",
        "b": "true",
        "c": ["2.5", "x"],
        "d": {"e": "false"},
    }
