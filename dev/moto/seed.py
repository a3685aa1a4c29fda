"""Seeds the Secrets Manager emulator (moto server) of the local stack, idempotently.

It creates two IAM users in the emulator, "pipeline" (may do anything: the credentials tests and the reader
use) and "no-access" (allowed nothing on Secrets Manager, for access-denied tests), puts the secret
MWAA_Secrets with the broker's bootstrap address and SASL/PLAIN credentials, and then turns the emulator's
IAM enforcement on, so unknown keys and missing permissions fail as they do on AWS.

Access keys are kept in a JSON file (mode 0600) and reused while the emulator still knows them, so a second
run leaves the credentials other processes already hold valid. It prints the `export K=V` lines of the
emulator's part of the stack env file on stdout; nothing secret is logged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
# Allows only an unrelated read, so every Secrets Manager call of this user is denied by policy
# (AccessDeniedException) rather than rejected as an unknown key.
NO_ACCESS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}],
}
USERS = {"pipeline": ADMIN_POLICY, "no-access": NO_ACCESS_POLICY}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", required=True, help="emulator URL, http://127.0.0.1:PORT")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--secret-name", default="MWAA_Secrets")
    p.add_argument("--bootstrap", required=True, help="KAFKA_BOOTSTRAP_SERVER value (the SASL_SSL listener)")
    p.add_argument("--username", required=True, help="KAFKA_SASL_USERNAME value")
    p.add_argument("--password-file", required=True, type=Path, help="file holding KAFKA_SASL_PASSWORD")
    p.add_argument("--keys-file", required=True, type=Path, help="JSON file keeping the emulator access keys")
    p.add_argument("--iam-auth", choices=("on", "off"), default="on", help="enforce IAM in the emulator")
    return p.parse_args()


def set_auth(endpoint: str, enforce: bool) -> None:
    """Turns the emulator's IAM enforcement on (from the next request) or off."""
    body = b"0" if enforce else b"inf"
    # A form content type would make the emulator read an empty body, hence text/plain.
    req = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def client(service: str, args: argparse.Namespace, keys: dict[str, str] | None = None) -> Any:
    key_id, secret = (keys["AccessKeyId"], keys["SecretAccessKey"]) if keys else ("seed", "seed")
    return boto3.client(
        service,
        endpoint_url=args.endpoint,
        region_name=args.region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=10),
    )


def ensure_user(iam: Any, name: str, policy: dict[str, Any], known: dict[str, str] | None) -> dict[str, str]:
    try:
        iam.create_user(UserName=name)
    except ClientError as e:
        if e.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
    if known:
        listed = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
        if any(k["AccessKeyId"] == known["AccessKeyId"] for k in listed):
            return known
    created = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AccessKeyId": created["AccessKeyId"], "SecretAccessKey": created["SecretAccessKey"]}


def put_secret(sm: Any, name: str, value: str) -> None:
    try:
        sm.create_secret(Name=name, SecretString=value, Description="Kafka bootstrap and SASL/PLAIN credentials")
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceExistsException":
            raise
        # Only a changed value is a new version: every put is one, and the ClickHouse bootstrap takes a new
        # version for rotated credentials and recreates the Kafka table (its consumers then wait for a new
        # partition assignment). A restart with the same credentials must change nothing.
        if json.loads(sm.get_secret_value(SecretId=name)["SecretString"]) == json.loads(value):
            return
        sm.put_secret_value(SecretId=name, SecretString=value)


def write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main() -> int:
    args = parse_args()
    password = args.password_file.read_text().strip()
    if not password:
        print(f"seed: {args.password_file} is empty", file=sys.stderr)
        return 1
    known: dict[str, dict[str, str]] = {}
    if args.keys_file.exists():
        known = json.loads(args.keys_file.read_text())

    set_auth(args.endpoint, enforce=False)
    iam = client("iam", args)
    keys = {name: ensure_user(iam, name, policy, known.get(name)) for name, policy in USERS.items()}
    write_private(args.keys_file, json.dumps(keys, indent=2) + "\n")

    secret = {
        "KAFKA_BOOTSTRAP_SERVER": args.bootstrap,
        "KAFKA_SASL_USERNAME": args.username,
        "KAFKA_SASL_PASSWORD": password,
    }
    put_secret(client("secretsmanager", args), args.secret_name, json.dumps(secret))
    if args.iam_auth == "on":
        set_auth(args.endpoint, enforce=True)

    # Read it back through the enforced path with the credentials we hand out.
    got = client("secretsmanager", args, keys["pipeline"]).get_secret_value(SecretId=args.secret_name)
    if json.loads(got["SecretString"]) != secret:
        print(f"seed: {args.secret_name} reads back different from what was put", file=sys.stderr)
        return 1

    lines = {
        "AWS_ENDPOINT_URL_SECRETSMANAGER": args.endpoint,
        # The name the AWS SDKs (Go v2, boto3) read by themselves, from the service id "Secrets Manager".
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": args.endpoint,
        "AWS_REGION": args.region,
        "AWS_DEFAULT_REGION": args.region,
        "AWS_ACCESS_KEY_ID": keys["pipeline"]["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": keys["pipeline"]["SecretAccessKey"],
        "AWS_DENIED_ACCESS_KEY_ID": keys["no-access"]["AccessKeyId"],
        "AWS_DENIED_SECRET_ACCESS_KEY": keys["no-access"]["SecretAccessKey"],
        "SECRET_NAME": args.secret_name,
        "MOTO_IAM_AUTH": args.iam_auth,
    }
    for k, v in lines.items():
        print(f"export {k}='{v}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
