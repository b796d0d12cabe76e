#!/usr/bin/env python3
"""Captures real kubectl protobuf request bodies as test fixtures for bramble-api's protobuf
decoder (controller/api/src/protobuf/testdata/NAME.pb) with the JSON kubectl prints for the
same command with --dry-run=client -o json (NAME.json).

kubectl -v=9 logs each request body as a hex dump; the body is taken from there, so any
API server works (even one answering 415). Usage:
  scripts/gen-protobuf-fixtures.py KUBECONFIG
"""
import json
import os
import re
import subprocess
import sys

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "controller/api/src/protobuf/testdata")

COMMANDS = {
    "namespace": ["create", "namespace", "x"],
    "configmap": ["-n", "x", "create", "configmap", "cm", "--from-literal=a=b", "--from-literal=c=d"],
    "secret": ["-n", "x", "create", "secret", "generic", "s", "--from-literal=k=v", "--from-literal=e="],
    "deployment": ["-n", "x", "create", "deployment", "web", "--image=nginx", "--port=80"],
    "deployment_zero": ["-n", "x", "create", "deployment", "idle", "--image=nginx", "--replicas=0"],
    "service": ["-n", "x", "create", "service", "clusterip", "svc", "--tcp=80:8080", "--tcp=443:https"],
    "job": ["-n", "x", "create", "job", "j", "--image=busybox", "--", "echo", "hi"],
    "cronjob": ["-n", "x", "create", "cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *",
                "--", "date"],
    "role": ["-n", "x", "create", "role", "r", "--verb=get,list", "--resource=pods,deployments.apps"],
    "rolebinding": ["-n", "x", "create", "rolebinding", "rb", "--role=r", "--user=alice",
                    "--serviceaccount=x:default"],
    "quota": ["-n", "x", "create", "quota", "q", "--hard=cpu=1500m,memory=1Gi,pods=2",
              "--scopes=NotBestEffort"],
    "priorityclass": ["create", "priorityclass", "pc", "--value=1000", "--description=high",
                      "--preemption-policy=Never"],
    "pdb": ["-n", "x", "create", "pdb", "p", "--selector=app=web", "--min-available=50%"],
    "ingress": ["-n", "x", "create", "ingress", "ing", "--rule=foo.com/bar*=svc:8080,tls=cert"],
    "serviceaccount": ["-n", "x", "create", "serviceaccount", "sa"],
    "clusterrole": ["create", "clusterrole", "cr", "--verb=get", "--non-resource-url=/logs/*"],
}


# Commands with no --dry-run: only the body is captured (the test states the JSON).
BODY_ONLY = {
    "token": ["-n", "x", "create", "token", "sa", "--duration=1h", "--audience=a",
              "--audience=b"],
}


def with_flags(args, *flags):
    """`args` with `flags` before any `--` (what follows `--` is the container's command)."""
    i = args.index("--") if "--" in args else len(args)
    return ["kubectl", *args[:i], *flags, *args[i:]]


def body(kubeconfig, args):
    env = dict(os.environ, KUBECONFIG=kubeconfig)
    p = subprocess.run(with_flags(args, "-v=9"), capture_output=True, text=True, env=env)
    m = re.search(r'"Request Body" body=<\n(.*?)\n\s*>', p.stderr, re.S)
    if not m:
        sys.exit(f"no request body logged for {args}:\n{p.stderr[-2000:]}")
    data = bytearray()
    for line in m.group(1).splitlines():
        hexpart = line.strip()[8:].split("|")[0]
        data += bytes.fromhex(hexpart.replace(" ", ""))
    return bytes(data)


def dry_run(kubeconfig, args):
    env = dict(os.environ, KUBECONFIG=kubeconfig)
    out = subprocess.run(with_flags(args, "--dry-run=client", "-o", "json"),
                         capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    os.makedirs(OUT, exist_ok=True)
    for name, args in COMMANDS.items():
        pb = body(sys.argv[1], args)
        if not pb.startswith(b"k8s\0"):
            sys.exit(f"{name}: body is not protobuf: {pb[:40]!r}")
        with open(os.path.join(OUT, name + ".pb"), "wb") as f:
            f.write(pb)
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump(dry_run(sys.argv[1], args), f, indent=2)
            f.write("\n")
        print(f"{name}: {len(pb)} bytes")
    for name, args in BODY_ONLY.items():
        pb = body(sys.argv[1], args)
        with open(os.path.join(OUT, name + ".pb"), "wb") as f:
            f.write(pb)
        print(f"{name}: {len(pb)} bytes (body only)")


if __name__ == "__main__":
    main()
