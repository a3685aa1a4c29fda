"""Rehearses a deploy of the synthesized stacks in the AWS emulator's CloudFormation (moto server).

For each stack it uploads the file assets of the stack's asset manifest (the Lambdas' zips, the template) to
the emulator's S3 bucket the template names, creates the stack from the uploaded template, waits for
CREATE_COMPLETE, checks through the emulator's own APIs that the resources exist as the template describes
them, updates it (a changed parameter) and waits for UPDATE_COMPLETE, then deletes it and waits for
DELETE_COMPLETE. It starts its own moto server on a free port and stops it at the end.

Where the emulator lacks something AWS has, the copy of the template given to the emulator is patched, each
patch named in PATCHES with its reason; the synthesized template itself is never changed. Any other failure
fails the rehearsal, with the emulator's reason.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
WAIT_SECONDS = 120


def log(msg: str) -> None:
    print(msg, flush=True)


import skipped  # noqa: E402
from checks import RehearsalError, check_created, check_updated, gone, need, update_parameters  # noqa: E402


# --- the emulator ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    """A moto server of the rehearsal's own, on a free port, stopped (with its process group) on exit."""

    def __init__(self, server: str, work: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = work / "moto.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [server, "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RehearsalError(f"moto server exited ({self.proc.returncode}); see {self.log_path}")
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RehearsalError(f"moto server did not answer on {self.endpoint} within 60s")
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="rehearsal",
            aws_secret_access_key="rehearsal",
            config=Config(retries={"max_attempts": 2}),
        )


# --- the cloud assembly ------------------------------------------------------------------------------------


class Stack:
    """One stack of a cloud assembly: its template and its asset manifest."""

    def __init__(self, label: str, assembly: Path, stack_name: str) -> None:
        manifest = json.loads((assembly / "manifest.json").read_text())
        arts = manifest["artifacts"]
        found = [
            (aid, a)
            for aid, a in arts.items()
            if a["type"] == "aws:cloudformation:stack" and a.get("properties", {}).get("stackName", aid) == stack_name
        ]
        if len(found) != 1:
            raise RehearsalError(f"{assembly}/manifest.json has no stack {stack_name}")
        aid, art = found[0]
        self.label = label
        self.assembly = assembly
        self.template_path = assembly / art["properties"]["templateFile"]
        self.template = json.loads(self.template_path.read_text())
        assets = [d for d in art.get("dependencies", []) if arts.get(d, {}).get("type") == "cdk:asset-manifest"]
        if len(assets) != 1:
            raise RehearsalError(f"stack {stack_name} in {assembly} has no asset manifest")
        self.assets = json.loads((assembly / arts[assets[0]]["properties"]["file"]).read_text())
        # The emulator's stack name: the label, so the three stacks never collide.
        self.name = "Rehearsal-" + label


def substitute(s: str) -> str:
    return s.replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", REGION).replace("${AWS::Partition}", "aws")


def zip_dir(src: Path, dst: Path) -> None:
    """Zips a directory as the CDK CLI does for a "zip" file asset: the directory's contents, file modes kept."""
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(src).as_posix())


def upload_assets(moto: Moto, st: Stack, work: Path) -> int:
    """Uploads the stack's file assets to the buckets its asset manifest names; returns how many.

    The container image of the reader cannot be built here (no container registry is reachable): the task
    definition keeps its ECR image reference, which the emulator's ECS does not resolve.
    """
    s3 = moto.client("s3")
    n = 0
    for asset_id, asset in st.assets.get("files", {}).items():
        src = st.assembly / asset["source"]["path"]
        body = src
        if asset["source"].get("packaging") == "zip":
            body = work / f"{asset_id}.zip"
            zip_dir(src, body)
        for dest in asset["destinations"].values():
            bucket, key = substitute(dest["bucketName"]), substitute(dest["objectKey"])
            try:
                s3.head_bucket(Bucket=bucket)
            except s3.exceptions.ClientError:
                s3.create_bucket(Bucket=bucket)
            s3.upload_file(str(body), bucket, key)
            n += 1
    need(n > 0, f"{st.label}: the asset manifest lists no file asset")
    return n


# --- the emulator's gaps -----------------------------------------------------------------------------------

# Each patch: (name, reason, function). A function changes the emulator's copy of the template in place and
# returns how many places it changed; a patch that changes nothing for a template that should need it would
# mean the gap is gone or the template changed, and is reported so.
PATCHES: list[tuple[str, str, Callable[[dict[str, Any]], int]]] = []


def patch(name: str, reason: str):
    def register(fn: Callable[[dict[str, Any]], int]):
        PATCHES.append((name, reason, fn))
        return fn

    return register


def resources_of(t: dict[str, Any], typ: str):
    return [(lid, r) for lid, r in t["Resources"].items() if r["Type"] == typ]


def walk(node: Any, fn: Callable[[Any], Any]) -> Any:
    """Rebuilds a template fragment bottom-up, replacing each node by fn(node)."""
    if isinstance(node, dict):
        node = {k: walk(v, fn) for k, v in node.items()}
    elif isinstance(node, list):
        node = [walk(v, fn) for v in node]
    return fn(node)


@patch(
    "EIP PublicIp -> Ref",
    "the emulator's AWS::EC2::EIP has no PublicIp attribute for Fn::GetAtt (it rejects the whole template); "
    "Ref of an EIP is the same public address on AWS",
)
def eip_public_ip(t: dict[str, Any]) -> int:
    eips = {lid for lid, _ in resources_of(t, "AWS::EC2::EIP")}
    n = 0

    def fn(node: Any) -> Any:
        nonlocal n
        if isinstance(node, dict) and list(node) == ["Fn::GetAtt"]:
            ref, attr = node["Fn::GetAtt"]
            if ref in eips and attr == "PublicIp":
                n += 1
                return {"Ref": ref}
        return node

    for section in ("Resources", "Outputs"):
        if section in t:
            t[section] = walk(t[section], fn)
    return n


def camel_keys(node: Any) -> Any:
    """ECS's API spelling of CloudFormation's keys (Name -> name), leaving intrinsic functions as they are."""
    if isinstance(node, list):
        return [camel_keys(v) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1 and (next(iter(node)) == "Ref" or next(iter(node)).startswith("Fn::")):
        return node
    return {k[:1].lower() + k[1:]: camel_keys(v) for k, v in node.items()}


@patch(
    "ECS ContainerDefinitions in camelCase",
    "the emulator's ECS maps the task definition's PascalCase keys to its API's camelCase on create but not on "
    "update, so an updated revision loses its containers' name, image and environment; it takes camelCase on both",
)
def ecs_container_definitions(t: dict[str, Any]) -> int:
    n = 0
    for _, r in resources_of(t, "AWS::ECS::TaskDefinition"):
        props = r["Properties"]
        props["ContainerDefinitions"] = camel_keys(props["ContainerDefinitions"])
        n += 1
    return n


@patch(
    "NLB listener TCP -> HTTP",
    "the emulator's load balancer rejects a Network Load Balancer's TCP listener ('Listener protocol TCP must be "
    "one of HTTP, HTTPS'); the listener is still created, with its port and target group",
)
def nlb_tcp_listener(t: dict[str, Any]) -> int:
    n = 0
    for _, r in resources_of(t, "AWS::ElasticLoadBalancingV2::Listener"):
        if r["Properties"].get("Protocol") == "TCP":
            r["Properties"]["Protocol"] = "HTTP"
            n += 1
    return n


def apply_patches(t: dict[str, Any]) -> list[str]:
    applied = []
    for name, reason, fn in PATCHES:
        n = fn(t)
        if n:
            applied.append(f"{name} ({n}x): {reason}")
    return applied


# Resource types the emulator's CloudFormation does not implement: it skips them (with a warning in its log)
# and still reaches CREATE_COMPLETE. They are counted and named in the output; a resource of any other type
# missing from a created stack fails the rehearsal. The alarms and the two policies are then made through the
# emulator's service APIs from the template's properties (skipped.py), and checked.
NOT_IMPLEMENTED = {
    "AWS::CDK::Metadata": "the CDK's version report; CloudFormation on AWS accepts it and creates nothing",
    "AWS::CloudWatch::Alarm": "the emulator's CloudFormation has no alarms (made through CloudWatch's API)",
    "AWS::SNS::TopicPolicy": "the emulator's CloudFormation has no SNS topic policies (made through SNS's API)",
    "AWS::SQS::QueuePolicy": "the emulator's CloudFormation has no SQS queue policies (made through SQS's API)",
    "AWS::IAM::ServiceLinkedRole": "the emulator's CloudFormation has no service-linked roles (its IAM API has)",
    "AWS::EC2::SecurityGroupEgress": "the emulator's CloudFormation has no separate egress rules (separate ingress it has)",
    "AWS::ApplicationAutoScaling::ScalableTarget": "the emulator's CloudFormation has no Application Auto Scaling",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "the emulator's CloudFormation has no Application Auto Scaling",
}


def before_delete(moto: Moto, ids: dict[str, tuple[str, str]]) -> list[str]:
    """The one gap a template patch cannot close, closed through the emulator's API before DeleteStack.

    The emulator's CloudFormation deletes no AWS::EC2::RouteTable (nor its routes and subnet associations, nor
    NAT gateways, EIPs, internet gateways, flow logs: those leave nothing that blocks), so the stack's VPC would
    then refuse to go ("has dependencies") and DeleteStack fail. CloudFormation on AWS deletes them.
    """
    ec2 = moto.client("ec2")
    tables = [pid for t, pid in ids.values() if t == "AWS::EC2::RouteTable"]
    if not tables:
        return []
    for rt in ec2.describe_route_tables(RouteTableIds=tables)["RouteTables"]:
        for a in rt["Associations"]:
            if not a.get("Main"):
                ec2.disassociate_route_table(AssociationId=a["RouteTableAssociationId"])
        ec2.delete_route_table(RouteTableId=rt["RouteTableId"])
    return [
        f"deleted the stack's {len(tables)} route tables through the EC2 API: the emulator's CloudFormation "
        "does not delete AWS::EC2::RouteTable, and the VPC then refuses to go"
    ]


# --- running ---------------------------------------------------------------------------------------------


def wait_status(cfn, name: str, want: str, stack_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        st = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        status = st["StackStatus"]
        if status == want:
            return st
        if not status.endswith("_IN_PROGRESS"):
            events = cfn.describe_stack_events(StackName=stack_id)["StackEvents"]
            failed = [
                f"{e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason', '')}"
                for e in events
                if e["ResourceStatus"].endswith("_FAILED")
            ]
            raise RehearsalError(
                f"{name}: {status} ({st.get('StackStatusReason', '')}), want {want}; failed: {failed or 'none listed'}"
            )
        if time.monotonic() > deadline:
            raise RehearsalError(f"{name}: still {status} after {WAIT_SECONDS}s, want {want}")
        time.sleep(0.5)


def physical_ids(cfn, stack_id: str) -> dict[str, tuple[str, str]]:
    out = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_id):
        for r in page["StackResourceSummaries"]:
            out[r["LogicalResourceId"]] = (r["ResourceType"], r.get("PhysicalResourceId", ""))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--moto-server", required=True, help="the moto_server executable")
    p.add_argument("--work", required=True, type=Path, help="scratch directory (the emulator's log, zips)")
    p.add_argument(
        "--stack",
        action="append",
        required=True,
        help="label=ASSEMBLY_DIR:STACK_NAME, a stack of a cloud assembly to rehearse",
    )
    args = p.parse_args()
    stacks = []
    for spec in args.stack:
        label, _, rest = spec.partition("=")
        assembly, _, name = rest.rpartition(":")
        stacks.append(Stack(label, Path(assembly), name))

    t0 = time.monotonic()
    moto = Moto(args.moto_server, args.work)
    try:
        log(f"moto server on {moto.endpoint} (its own; log: {moto.log_path})")
        # The templates' BootstrapVersion parameter reads the CDK bootstrap's SSM parameter, as on AWS.
        moto.client("ssm").put_parameter(Name=BOOTSTRAP_VERSION_PARAMETER, Value="30", Type="String")
        for st in stacks:
            rehearse(moto, st, args.work)
    except (RehearsalError, ClientError) as e:
        log(f"FAIL: {e}")
        return 1
    finally:
        moto.stop()
    log(f"rehearsal passed in {time.monotonic() - t0:.0f}s")
    return 0


def rehearse(moto: Moto, st: Stack, work: Path) -> None:
    cfn = moto.client("cloudformation")
    s3 = moto.client("s3")
    t1 = time.monotonic()
    emu = copy.deepcopy(st.template)
    applied = apply_patches(emu)
    uploaded = upload_assets(moto, st, work)
    # The emulator's copy, patched, goes next to the uploaded template; the synthesized one is left as it is.
    bucket = substitute("cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}")
    body = json.dumps(emu).encode()
    key = f"rehearsal/{st.label}-{hashlib.sha256(body).hexdigest()[:16]}.json"
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    url = f"https://{bucket}.s3.{REGION}.amazonaws.com/{key}"
    counts = Counter(r["Type"] for r in emu["Resources"].values())
    log(f"\n{st.label}: {st.template_path} ({len(emu['Resources'])} resources)")
    log(f"  uploaded {uploaded} file assets (the Lambdas' zips, the template) to s3://{bucket}")
    for a in applied:
        log(f"  patched for the emulator: {a}")

    params = update_parameters(st.template, updated=False)
    caps = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    sid = cfn.create_stack(StackName=st.name, TemplateURL=url, Parameters=params, Capabilities=caps)["StackId"]
    wait_status(cfn, st.name, "CREATE_COMPLETE", sid)
    ids = physical_ids(cfn, sid)
    missing = sorted(set(emu["Resources"]) - set(ids))
    skipped_types = Counter(emu["Resources"][lid]["Type"] for lid in missing)
    unexpected = [lid for lid in missing if emu["Resources"][lid]["Type"] not in NOT_IMPLEMENTED]
    if unexpected:
        raise RehearsalError(f"{st.label}: CREATE_COMPLETE, but the stack lacks {unexpected}")
    log(f"  CREATE_COMPLETE: {len(ids)} of {len(emu['Resources'])} resources created "
        f"({', '.join(f'{n} {t}' for t, n in sorted((counts - skipped_types).items()))})")
    log(f"  not implemented by the emulator's CloudFormation (skipped by it): "
        f"{', '.join(f'{n} {t}' for t, n in sorted(skipped_types.items())) or 'none'}")
    alarms, made = skipped.create(moto, emu, ids, st.name)
    for line in made:
        log(f"  made through the emulator's APIs instead, from the template's properties: {line}")
    ids.update({lid: ("AWS::CloudWatch::Alarm", name) for lid, name in alarms.items()})
    for line in check_created(moto, st, emu, ids):
        log(f"  checked: {line}")

    # The update: a changed parameter where the template has one (the default's SourceAddress); the variants
    # have none, so theirs changes the stack's tags, which CloudFormation passes on to every resource.
    params = update_parameters(st.template, updated=True)
    tags = [] if params else [{"Key": "rehearsal-revision", "Value": "2"}]
    cfn.update_stack(StackName=sid, TemplateURL=url, Parameters=params, Capabilities=caps, Tags=tags)
    wait_status(cfn, st.name, "UPDATE_COMPLETE", sid)
    ids.update({lid: v for lid, v in physical_ids(cfn, sid).items()})
    for line in check_updated(moto, st, emu, ids):
        log(f"  checked after UPDATE_COMPLETE: {line}")

    for line in before_delete(moto, ids):
        log(f"  before the delete, for the emulator: {line}")
    cfn.delete_stack(StackName=sid)
    wait_status(cfn, st.name, "DELETE_COMPLETE", sid)
    skipped.delete(moto, alarms)
    for line in check_deleted(moto, ids):
        log(f"  checked after DELETE_COMPLETE: {line}")
    log(f"  {st.label}: created, updated, deleted in {time.monotonic() - t1:.1f}s")


def check_deleted(moto: Moto, ids: dict[str, tuple[str, str]]) -> list[str]:
    """The resources the checks looked at are gone."""
    return gone(moto, ids)


if __name__ == "__main__":
    sys.exit(main())
