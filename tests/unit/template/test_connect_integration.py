"""The contact-flow function added to the Connect instance by the stack, when the user allows it.

AWS::Connect::IntegrationAssociation "Specifies the association of an AWS resource such as Lex
bot (both v1 and v2) and Lambda function with an Amazon Connect instance", with the properties
InstanceId ("The Amazon Resource Name (ARN) of the instance", pattern
^arn:aws[-a-z0-9]*:connect:[-a-z0-9]*:[0-9]{12}:instance/[-a-zA-Z0-9]*$), IntegrationArn ("ARN of
the integration being associated with the instance", at most 140 characters) and
IntegrationType (LAMBDA_FUNCTION among the allowed values), all three required
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-connect-integrationassociation.html).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from callrec_local.template import TEMPLATE_PATH, load_template, local_plan

TEMPLATE = load_template(TEMPLATE_PATH)
DOCUMENTED_INSTANCE_ID = r"^arn:aws[-a-z0-9]*:connect:[-a-z0-9]*:[0-9]{12}:instance/[-a-zA-Z0-9]*$"
INSTANCE = "arn:aws:connect:us-east-1:111122223333:instance/9308c2a1-9bc6-4cea-8290-6c0b4a6d38fa"


def associations(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Connect::IntegrationAssociation"
    }


def test_the_contact_flow_function_is_associated_with_the_instance_when_allowed() -> None:
    # Given the template
    (association,) = associations(TEMPLATE).values()
    condition = TEMPLATE["Conditions"][association["Condition"]]

    # Then the association names the instance and the function Connect may invoke, as documented
    assert association["Properties"] == {
        "InstanceId": {"Ref": "ConnectInstanceArn"},
        "IntegrationType": "LAMBDA_FUNCTION",
        "IntegrationArn": {"Fn::GetAtt": ["SendEventFunction", "Arn"]},
    }
    # And only when the parameter says so; off unless asked (see the parameter's description)
    assert condition == {"Fn::Equals": [{"Ref": "AssociateWithConnectInstance"}, "true"]}
    parameter = TEMPLATE["Parameters"]["AssociateWithConnectInstance"]
    assert parameter["Default"] == "false"
    assert parameter["AllowedValues"] == ["true", "false"]


def test_any_instance_arn_the_template_accepts_is_an_instance_id_the_resource_accepts() -> None:
    ours = TEMPLATE["Parameters"]["ConnectInstanceArn"]["AllowedPattern"]

    assert re.fullmatch(ours, INSTANCE)
    assert re.fullmatch(DOCUMENTED_INSTANCE_ID, INSTANCE)
    # Ours is the narrower: every value it accepts has the documented shape.
    assert ours.startswith("^arn:aws[a-z-]*:connect:[a-z0-9-]+:[0-9]{12}:instance/")


def test_sams_transform_keeps_the_association_and_its_condition(
    translated_template: dict[str, Any],
) -> None:
    (association,) = associations(translated_template).values()

    assert association["Condition"] == "AssociateFunctionWithInstance"
    assert association["Properties"]["IntegrationArn"] == {
        "Fn::GetAtt": ["SendEventFunction", "Arn"]
    }


@pytest.mark.parametrize("associate", ["true", "false"])
def test_the_local_stack_resolves_the_template_either_way(associate: str) -> None:
    # The local stack builds what it emulates and leaves Connect's resources alone.
    plan = local_plan(TEMPLATE, parameters={"AssociateWithConnectInstance": associate})

    assert plan.connect_functions == ("SendEventFunction",)
    assert set(plan.functions) == {
        "SendEventFunction",
        "RecorderFunction",
        "SpectrumFunction",
        "ContactEventsFunction",
    }
