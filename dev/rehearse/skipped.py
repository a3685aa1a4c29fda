"""The resources the emulator's CloudFormation skips but its service APIs take: the alarms, the SNS topic
policy and the SQS queue policy. After CREATE_COMPLETE they are made through those APIs from the template's
own properties, with the template's references resolved against the created stack, so their properties
are still checked by the emulator (every alarm's fields against CloudWatch's API, the policies as documents)
and the checks can read them back. They are removed again after DELETE_COMPLETE.
"""

from __future__ import annotations

import json
from typing import Any

from checks import RehearsalError

REGION = "us-east-1"
ACCOUNT = "123456789012"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": None,
}


class Resolver:
    """Resolves the intrinsic functions these resources use: Ref, Fn::GetAtt, Fn::Join, Fn::Sub (no variables map)."""

    def __init__(self, moto, t: dict[str, Any], ids: dict[str, tuple[str, str]], stack_name: str, alarm_names):
        self.moto, self.t, self.ids, self.stack_name, self.alarm_names = moto, t, ids, stack_name, alarm_names

    def ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name == "AWS::StackName":
            return self.stack_name
        if name in self.alarm_names:
            return self.alarm_names[name]
        if name in self.ids:
            return self.ids[name][1]
        raise RehearsalError(f"cannot resolve Ref {name}: not a resource the emulator created")

    def get_att(self, lid: str, attr: str) -> str:
        typ = self.t["Resources"][lid]["Type"]
        if typ == "AWS::CloudWatch::Alarm" and attr == "Arn":
            return f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{self.alarm_names[lid]}"
        pid = self.ref(lid)
        if typ == "AWS::SQS::Queue" and attr == "QueueName":
            return pid.rsplit("/", 1)[-1]
        if typ == "AWS::SQS::Queue" and attr == "Arn":
            return self.moto.client("sqs").get_queue_attributes(QueueUrl=pid, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        if typ == "AWS::Events::Rule" and attr == "Arn":
            return self.moto.client("events").describe_rule(Name=pid.split("|")[-1])["Arn"]
        if typ == "AWS::ECS::Service" and attr == "Name":
            return pid.rsplit("/", 1)[-1]
        if typ == "AWS::SNS::Topic" and attr == "TopicArn":
            return pid
        raise RehearsalError(f"cannot resolve Fn::GetAtt {lid}.{attr} ({typ}): add it to skipped.Resolver")

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self(v) for v in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            k, v = next(iter(node.items()))
            if k == "Ref":
                return self.ref(v)
            if k == "Fn::GetAtt":
                lid, attr = v if isinstance(v, list) else v.split(".", 1)
                return self.get_att(lid, attr)
            if k == "Fn::Join":
                return v[0].join(str(x) for x in self(v[1]))
            if k == "Fn::Sub" and isinstance(v, str):
                import re

                def sub(m):
                    name = m.group(1)
                    if "." in name:
                        return str(self.get_att(*name.split(".", 1)))
                    return str(self.ref(name))

                return re.sub(r"\$\{([^!}][^}]*)\}", sub, v)
            if k.startswith("Fn::"):
                raise RehearsalError(f"cannot resolve {k}: add it to skipped.Resolver")
        return {k: self(v) for k, v in node.items()}


def alarm_names(t: dict[str, Any], stack_name: str) -> dict[str, str]:
    """Each alarm's name: its AlarmName, or the stack name and logical ID, as CloudFormation generates one."""
    return {
        lid: r["Properties"].get("AlarmName", f"{stack_name}-{lid}")
        for lid, r in t["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }


def create(moto, t: dict[str, Any], ids, stack_name: str) -> tuple[dict[str, str], list[str]]:
    """Makes the skipped resources through the APIs; returns the alarms' names and what it made."""
    names = alarm_names(t, stack_name)
    resolve = Resolver(moto, t, ids, stack_name, names)
    made = []
    cw = moto.client("cloudwatch")
    for lid, name in names.items():
        props = resolve(t["Resources"][lid]["Properties"])
        props = {k: v for k, v in props.items() if v is not None}
        props["AlarmName"] = name
        cw.put_metric_alarm(**props)  # botocore validates every field against CloudWatch's API model
    if names:
        made.append(f"{len(names)} alarms through CloudWatch's PutMetricAlarm")
    sns, sqs = moto.client("sns"), moto.client("sqs")
    for lid, r in t["Resources"].items():
        if r["Type"] == "AWS::SNS::TopicPolicy":
            props = resolve(r["Properties"])
            for arn in props["Topics"]:
                sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"]))
            made.append(f"topic policy {lid} through SNS's SetTopicAttributes")
        elif r["Type"] == "AWS::SQS::QueuePolicy":
            props = resolve(r["Properties"])
            for url in props["Queues"]:
                sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
            made.append(f"queue policy {lid} through SQS's SetQueueAttributes")
    return names, made


def delete(moto, names: dict[str, str]) -> None:
    if names:
        moto.client("cloudwatch").delete_alarms(AlarmNames=list(names.values()))
