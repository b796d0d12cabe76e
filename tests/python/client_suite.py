"""The Python `kubernetes` client against a Bramble controller: create, get, list, every patch
kind, server-side apply, watch from a resourceVersion, and a CRD round trip through the dynamic
CustomObjectsApi. Run by tests/tools_python.rs with the kubeconfig path as the only argument;
exits non-zero with a message naming the failed step."""

import sys
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

NS = "pyclient"


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def main(kubeconfig):
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    apps = client.AppsV1Api()

    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    cm = core.create_namespaced_config_map(
        NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg", labels={"app": "py"}), data={"a": "1"})
    )
    start_rv = cm.metadata.resource_version
    check(core.read_namespaced_config_map("cfg", NS).data == {"a": "1"}, "read back")
    names = [c.metadata.name for c in core.list_namespaced_config_map(NS, label_selector="app=py").items]
    check(names == ["cfg"], f"list by label: {names}")

    # JSON patch, merge patch (the client picks the content type from the body's shape), and
    # strategic merge patch on a list merged by its key.
    core.patch_namespaced_config_map(
        "cfg", NS, [{"op": "add", "path": "/data/b", "value": "2"}], _content_type="application/json-patch+json"
    )
    check(core.read_namespaced_config_map("cfg", NS).data == {"a": "1", "b": "2"}, "json patch")
    core.patch_namespaced_config_map(
        "cfg", NS, {"data": {"a": None, "c": "3"}}, _content_type="application/merge-patch+json"
    )
    check(core.read_namespaced_config_map("cfg", NS).data == {"b": "2", "c": "3"}, "merge patch")

    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "a", "image": "busybox:1"}, {"name": "b", "image": "busybox:1"}]},
            },
        },
    }
    apps.create_namespaced_deployment(NS, dep)
    apps.patch_namespaced_deployment(
        "web",
        NS,
        {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "busybox:2"}]}}}},
        _content_type="application/strategic-merge-patch+json",
    )
    containers = apps.read_namespaced_deployment("web", NS).spec.template.spec.containers
    check(
        [(c.name, c.image) for c in containers] == [("a", "busybox:1"), ("b", "busybox:2")],
        f"strategic merge by name: {[(c.name, c.image) for c in containers]}",
    )

    # Server-side apply: a second manager taking a field it does not own conflicts (409) unless forced.
    applied = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "v"}}
    core.patch_namespaced_config_map(
        "applied", NS, applied, field_manager="py-one", _content_type="application/apply-patch+yaml"
    )
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "w"}}
    try:
        core.patch_namespaced_config_map(
            "applied", NS, other, field_manager="py-two", _content_type="application/apply-patch+yaml"
        )
        raise SystemExit("FAILED: conflicting apply was accepted")
    except ApiException as e:
        check(e.status == 409, f"apply conflict status {e.status}")
    core.patch_namespaced_config_map(
        "applied", NS, other, field_manager="py-two", force=True, _content_type="application/apply-patch+yaml"
    )
    got = core.read_namespaced_config_map("applied", NS)
    check(got.data == {"k": "w"}, "forced apply")
    managers = sorted(m.manager for m in got.metadata.managed_fields)
    check("py-two" in managers, f"managedFields: {managers}")

    # Bad input: a 404 and a 422 come back as ApiExceptions with upstream's codes.
    try:
        core.read_namespaced_config_map("missing", NS)
        raise SystemExit("FAILED: missing object was found")
    except ApiException as e:
        check(e.status == 404, f"missing status {e.status}")
    try:
        core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="Bad_Name")))
        raise SystemExit("FAILED: invalid name accepted")
    except ApiException as e:
        check(e.status == 422, f"invalid name status {e.status}")

    # Watch from the first resourceVersion replays every change since, in order.
    seen = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, NS, resource_version=start_rv, timeout_seconds=10):
        obj = ev["object"]
        seen.append((ev["type"], obj.metadata.name))
        if obj.metadata.name == "applied" and ev["type"] == "MODIFIED":
            w.stop()
    check(("MODIFIED", "cfg") in seen and ("ADDED", "applied") in seen, f"watch events: {seen}")

    crd_round_trip()
    core.delete_namespace(NS)
    print("python client suite passed")


def crd_round_trip():
    ext = client.ApiextensionsV1Api()
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                }
                            },
                        }
                    },
                    "subresources": {"status": {}},
                }
            ],
        },
    }
    ext.create_custom_resource_definition(crd)
    for _ in range(100):
        got = ext.read_custom_resource_definition("gadgets.example.com")
        conds = {c.type: c.status for c in (got.status.conditions or [])} if got.status else {}
        if conds.get("Established") == "True":
            break
        time.sleep(0.1)
    else:
        raise SystemExit("FAILED: CRD never Established")

    co = client.CustomObjectsApi()
    body = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"size": 2}}
    co.create_namespaced_custom_object("example.com", "v1", NS, "gadgets", body)
    co.patch_namespaced_custom_object("example.com", "v1", NS, "gadgets", "g1", {"spec": {"size": 5}})
    got = co.get_namespaced_custom_object("example.com", "v1", NS, "gadgets", "g1")
    check(got["spec"]["size"] == 5, f"custom object patch: {got}")
    try:
        co.create_namespaced_custom_object(
            "example.com", "v1", NS, "gadgets", {**body, "metadata": {"name": "g2"}, "spec": {"size": 0}}
        )
        raise SystemExit("FAILED: schema minimum not enforced")
    except ApiException as e:
        check(e.status == 422, f"schema violation status {e.status}")
    items = co.list_namespaced_custom_object("example.com", "v1", NS, "gadgets")["items"]
    check([i["metadata"]["name"] for i in items] == ["g1"], f"custom list: {items}")
    co.delete_namespaced_custom_object("example.com", "v1", NS, "gadgets", "g1")
    ext.delete_custom_resource_definition("gadgets.example.com")


if __name__ == "__main__":
    main(sys.argv[1])
