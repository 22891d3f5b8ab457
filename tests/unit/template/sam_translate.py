"""template.yaml translated by SAM's own transform, exactly as `sam validate` translates it.

Run by the aws-sam-cli tool environment's Python (`.tools/envs/aws-sam-cli/bin/python`, installed
by `make tools`), never imported by the tests' interpreter: samtranslator and samcli live only in
that environment. Prints the translated CloudFormation template as JSON on stdout.

`sam validate` (without --lint) builds a `SamTemplateValidator` from the template and a
`ManagedPolicyLoader` that asks IAM for the managed policies' ARNs; this does the same with a
loader that knows no managed policy, so it runs offline. The template names no managed policy by
name (SAM adds X-Ray's by ARN), so nothing is lost: a policy named by name would make the
translation fail loudly here, not pass silently.

    python sam_translate.py TEMPLATE [REGION]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from samcli.lib.translate.sam_template_validator import SamTemplateValidator
from samcli.yamlhelper import yaml_parse


class NoManagedPolicies:
    """The managed-policy loader `sam validate` takes, without the IAM call."""

    def load(self) -> dict[str, str]:
        return {}


def main(argv: list[str]) -> int:
    template_path = Path(argv[1])
    region = argv[2] if len(argv) > 2 else "us-east-1"
    template = yaml_parse(template_path.read_text())
    validator = SamTemplateValidator(template, NoManagedPolicies(), region=region)
    translated = yaml_parse(validator.get_translated_template_if_valid())
    json.dump(translated, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
