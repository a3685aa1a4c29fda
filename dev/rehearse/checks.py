"""What the rehearsal checks through the emulator's own APIs, after a create, an update and a delete."""

from __future__ import annotations

import json
from typing import Any

SOURCE_BEFORE = "logs.example.internal:5170"
SOURCE_AFTER = "logs-b.example.internal:6514"


class RehearsalError(Exception):
    """A failed step or check of the rehearsal, with what the emulator said."""


def update_parameters(template: dict[str, Any], updated: bool) -> list[dict[str, str]]:
    """The parameters to create with, or to update with (a changed source address, where the template has it)."""
    if "SourceAddress" not in template.get("Parameters", {}):
        return []
    return [{"ParameterKey": "SourceAddress", "ParameterValue": SOURCE_AFTER if updated else SOURCE_BEFORE}]


def of_type(ids: dict[str, tuple[str, str]], typ: str) -> list[tuple[str, str]]:
    return [(lid, pid) for lid, (t, pid) in ids.items() if t == typ]


def resources_of_type(res: dict[str, Any], typ: str) -> list[tuple[str, dict[str, Any]]]:
    return [(lid, r) for lid, r in res.items() if r["Type"] == typ]


def need(cond: bool, msg: str) -> None:
    if not cond:
        raise RehearsalError(msg)


def check_created(moto, st, t: dict[str, Any], ids) -> list[str]:
    out = []
    res = t["Resources"]

    # ECS: the service runs the reader's task definition in the stack's cluster.
    ecs = moto.client("ecs")
    for lid, arn in of_type(ids, "AWS::ECS::TaskDefinition"):
        td = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        names = [c["name"] for c in td["containerDefinitions"]]
        need("reader" in names, f"{st.label}: task definition {arn} has containers {names}, no reader")
        out.append(f"task definition {td['family']}:{td['revision']} (containers {names}, image {td['containerDefinitions'][0]['image'].rsplit('/', 1)[-1]})")
    clusters = of_type(ids, "AWS::ECS::Cluster")
    for lid, arn in of_type(ids, "AWS::ECS::Service"):
        svc = ecs.describe_services(cluster=clusters[0][1], services=[arn])["services"]
        need(len(svc) == 1, f"{st.label}: ECS service {arn} not found in cluster {clusters[0][1]}")
        out.append(f"ECS service {svc[0]['serviceName']} (desired {svc[0]['desiredCount']}, task definition {svc[0]['taskDefinition'].rsplit('/', 1)[-1]})")

    # Load balancer: its listener on the source port, forwarding to the target group (see the TCP listener
    # patch). The emulator's CloudFormation ignores the load balancer's Type: it creates an application one.
    elb = moto.client("elbv2")
    for lid, arn in of_type(ids, "AWS::ElasticLoadBalancingV2::LoadBalancer"):
        lb = elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]
        listeners = elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]
        want = sorted(r["Properties"]["Port"] for _, r in resources_of_type(res, "AWS::ElasticLoadBalancingV2::Listener"))
        ports = sorted(x["Port"] for x in listeners)
        need(ports == want, f"{st.label}: load balancer {arn} listens on {ports}, want {want}")
        out.append(
            f"load balancer {lb['LoadBalancerName']} ({lb['Scheme']}, listeners on {ports}; the template's type "
            f"{res[lid]['Properties'].get('Type')}, the emulator's {lb['Type']})"
        )

    # Lambda: each function exists with the runtime, architecture and code the template names.
    lam = moto.client("lambda")
    for lid, name in of_type(ids, "AWS::Lambda::Function"):
        f = lam.get_function(FunctionName=name)
        cfg = f["Configuration"]
        want = res[lid]["Properties"]
        need(cfg["Runtime"] == want["Runtime"], f"{st.label}: {name} runtime {cfg['Runtime']}, want {want['Runtime']}")
        need(cfg.get("Architectures") == want.get("Architectures", ["x86_64"]), f"{st.label}: {name} architectures {cfg.get('Architectures')}")
        need(cfg["CodeSize"] > 0, f"{st.label}: {name} has no code")
        out.append(f"Lambda {lid} ({cfg['Runtime']}, {cfg['Architectures'][0]}, {cfg['CodeSize']} bytes of code from the uploaded asset)")

    # EventBridge: each rule and its targets, with their retry policy and dead-letter queue.
    ev = moto.client("events")
    for lid, name in of_type(ids, "AWS::Events::Rule"):
        rule = ev.describe_rule(Name=name.split("|")[-1])
        targets = ev.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        want = res[lid]["Properties"]
        need(rule["ScheduleExpression"] == want["ScheduleExpression"], f"{st.label}: rule {name} schedule {rule['ScheduleExpression']}")
        need(len(targets) == len(want["Targets"]), f"{st.label}: rule {name} has {len(targets)} targets, want {len(want['Targets'])}")
        for tg in targets:
            need("DeadLetterConfig" in tg and "RetryPolicy" in tg, f"{st.label}: rule {name} target {tg['Id']} lacks its retry policy or dead-letter queue")
        out.append(f"schedule {lid} ({rule['ScheduleExpression']}, {len(targets)} target(s) with retry policy and dead-letter queue)")

    # CloudWatch: every alarm of the template (made through the API: see skipped.py), notifying the topic.
    cw = moto.client("cloudwatch")
    alarm_names = [pid for _, pid in of_type(ids, "AWS::CloudWatch::Alarm")]
    want_alarms = len(resources_of_type(res, "AWS::CloudWatch::Alarm"))
    got = []
    for i in range(0, len(alarm_names), 100):
        got += cw.describe_alarms(AlarmNames=alarm_names[i : i + 100])["MetricAlarms"]
    need(len(got) == want_alarms, f"{st.label}: {len(got)} of the template's {want_alarms} alarms exist")
    topics = {pid for _, pid in of_type(ids, "AWS::SNS::Topic")}
    silent = [a["AlarmName"] for a in got if not set(a.get("AlarmActions", [])) & topics]
    need(not silent, f"{st.label}: alarms that notify no topic of the stack: {silent}")
    out.append(f"{len(got)} alarms, each notifying the alarm topic")
    for lid, name in of_type(ids, "AWS::CloudWatch::Dashboard"):
        d = cw.get_dashboard(DashboardName=name)
        widgets = json.loads(d["DashboardBody"]).get("widgets", [])
        need(len(widgets) > 0, f"{st.label}: dashboard {name} has no widgets")
        out.append(f"dashboard {name} ({len(widgets)} widgets)")

    # SNS: the alarm topic, encrypted with the stack's key.
    sns = moto.client("sns")
    for lid, arn in of_type(ids, "AWS::SNS::Topic"):
        attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
        if "KmsMasterKeyId" in res[lid]["Properties"]:
            need(bool(attrs.get("KmsMasterKeyId")), f"{st.label}: topic {arn} is not encrypted: {attrs}")
        out.append(f"topic {arn.rsplit(':', 1)[-1]} (KMS key {attrs.get('KmsMasterKeyId', 'none')})")
        if resources_of_type(res, "AWS::SNS::TopicPolicy"):
            pol = json.loads(attrs.get("Policy", "{}"))
            stmts = pol.get("Statement", [])
            allow = [x for x in stmts if x.get("Effect") == "Allow" and "cloudwatch.amazonaws.com" in json.dumps(x.get("Principal"))]
            deny = [x for x in stmts if x.get("Effect") == "Deny" and "aws:SecureTransport" in json.dumps(x.get("Condition"))]
            need(bool(allow) and bool(deny), f"{st.label}: topic {arn} policy lacks CloudWatch's publish or the TLS-only deny: {pol}")
            arns = {a["AlarmArn"] for a in got}
            scoped = json.dumps(allow)
            need(all(a in scoped for a in arns), f"{st.label}: the topic policy's CloudWatch statement does not name every alarm")
            out.append(f"topic policy: CloudWatch may publish for the stack's {len(arns)} alarms, non-TLS denied")

    # SQS: the schedules' dead-letter queue, encrypted.
    sqs = moto.client("sqs")
    for lid, url in of_type(ids, "AWS::SQS::Queue"):
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        out.append(f"queue {url.rsplit('/', 1)[-1]} (retention {attrs.get('MessageRetentionPeriod')}s, SQS-managed encryption {attrs.get('SqsManagedSseEnabled', 'n/a')})")
    return out


def check_updated(moto, st, t: dict[str, Any], ids) -> list[str]:
    if "SourceAddress" not in t.get("Parameters", {}):
        stack = moto.client("cloudformation").describe_stacks(StackName=st.name)["Stacks"][0]
        tags = {x["Key"]: x["Value"] for x in stack.get("Tags", [])}
        need(tags.get("rehearsal-revision") == "2", f"{st.label}: after the update the stack's tags are {tags}")
        return ["the stack carries the changed tag rehearsal-revision=2"]
    ecs = moto.client("ecs")
    out = []
    for lid, arn in of_type(ids, "AWS::ECS::TaskDefinition"):
        td = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        env = {e["name"]: e["value"] for c in td["containerDefinitions"] for e in c.get("environment", [])}
        found = [k for k, v in env.items() if v == SOURCE_AFTER]
        need(bool(found), f"{st.label}: after the update, task definition {arn} holds no {SOURCE_AFTER}: {td['containerDefinitions']}")
        out.append(f"task definition {td['family']}:{td['revision']} has {found[0]}={SOURCE_AFTER}")
    return out


def gone(moto, ids) -> list[str]:
    lam = moto.client("lambda")
    out = []
    fns = of_type(ids, "AWS::Lambda::Function")
    left = []
    for _, name in fns:
        try:
            lam.get_function(FunctionName=name)
            left.append(name)
        except lam.exceptions.ResourceNotFoundException:
            pass
    need(not left, f"Lambdas left after DELETE_COMPLETE: {left}")
    out.append(f"{len(fns)} Lambdas gone")
    sqs = moto.client("sqs")
    queues = of_type(ids, "AWS::SQS::Queue")
    for _, url in queues:
        try:
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            need(False, f"queue left after DELETE_COMPLETE: {url}")
        except sqs.exceptions.QueueDoesNotExist:
            pass
    out.append(f"{len(queues)} queue gone")
    return out
