#!/usr/bin/env python3
"""Generates controller/api/src/protobuf/schema_table.rs: the protobuf schema of every message
reachable from the kinds Bramble serves (controller/api/src/registry.rs) plus the request-only
kinds typed clients POST (DeleteOptions, Eviction, TokenRequest, Binding, Scale, reviews).

Sources, all real and none hand-typed:
- wire schema (message names, field numbers, wire types, repeated/map, referenced message) from
  the `k8s-pb` crate (prost-generated from upstream's generated.proto files), read from the
  cargo registry (`cargo fetch` puts it under ~/.cargo/registry/src/*/k8s-pb-0.9.0);
- JSON names and JSON presence (`omitempty`, pointer or value, `json:",inline"`) from upstream's
  Go types, the only place that records them (proto2 `optional` says nothing about Go pointers,
  and gogo-protobuf writes every non-pointer field, zero or not): a k8s.io/api checkout and a
  k8s.io/apimachinery checkout (their `protobuf:"..,N,.."` struct tags give the field number);
- the JSON names are cross-checked against k8s-openapi's serde field names.

Usage: scripts/gen-protobuf-schema.py K8S_API_DIR K8S_APIMACHINERY_DIR K8S_APIEXTENSIONS_DIR
  (git checkouts or `git archive` trees of kubernetes/api, kubernetes/apimachinery and
  kubernetes/apiextensions-apiserver)
"""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "controller/api/src/protobuf/schema_table.rs")


def registry_crate(name):
    hits = sorted(glob.glob(os.path.expanduser(f"~/.cargo/registry/src/*/{name}")))
    if not hits:
        sys.exit(f"{name} not in the cargo registry: run `cargo fetch` first")
    return hits[-1]


# Request-only kinds (subresources and options) typed clients send as protobuf bodies.
# (k8s-pb has no `Resource` impl, so no apiVersion, for most of them.)
EXTRA_ROOTS = [
    ("api/core/v1", "Binding", "v1"),
    ("api/policy/v1", "Eviction", "policy/v1"),
    ("api/authentication/v1", "TokenRequest", "authentication.k8s.io/v1"),
    ("api/authentication/v1", "TokenReview", "authentication.k8s.io/v1"),
    ("api/authentication/v1", "SelfSubjectReview", "authentication.k8s.io/v1"),
    ("api/authorization/v1", "SubjectAccessReview", "authorization.k8s.io/v1"),
    ("api/authorization/v1", "SelfSubjectAccessReview", "authorization.k8s.io/v1"),
    ("api/authorization/v1", "LocalSubjectAccessReview", "authorization.k8s.io/v1"),
    ("api/authorization/v1", "SelfSubjectRulesReview", "authorization.k8s.io/v1"),
    ("api/autoscaling/v1", "Scale", "autoscaling/v1"),
    # Registered in every group version upstream; looked up by kind alone.
    ("apimachinery/pkg/apis/meta/v1", "DeleteOptions", "meta.k8s.io/v1"),
]

# Messages with their own JSON form (decoded by hand-written code in json.rs).
SPECIAL = {
    "apimachinery/pkg/apis/meta/v1.Time": "Time",
    "apimachinery/pkg/apis/meta/v1.MicroTime": "MicroTime",
    "apimachinery/pkg/apis/meta/v1.Duration": "Duration",
    "apimachinery/pkg/apis/meta/v1.FieldsV1": "RawJson",
    "apimachinery/pkg/api/resource.Quantity": "Quantity",
    "apimachinery/pkg/util/intstr.IntOrString": "IntOrString",
    "apimachinery/pkg/runtime.RawExtension": "RawJson",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1.Json": "RawJson",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1.JsonSchemaPropsOrArray": "SchemaOrArray",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1.JsonSchemaPropsOrBool": "SchemaOrBool",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1.JsonSchemaPropsOrStringArray": "SchemaOrStringArray",
}

SCALARS = {"string": "String", "bool": "Bool", "int32": "Int32", "int64": "Int64",
           "double": "Double", "bytes": "Bytes"}

WRAPPERS = {"Option", "Vec", "Box", "BTreeMap", "String", "i32", "i64", "u8", "bool", "f64"}


# ---------------------------------------------------------------- k8s-pb (wire schema)
def parse_pb(pb_root):
    """{ "pkg/path.Message": {"fields": [...], "kind": (apiVersion, kind) or None} }"""
    msgs = {}
    for path in glob.glob(os.path.join(pb_root, "src/**/mod.rs"), recursive=True):
        pkg = os.path.relpath(os.path.dirname(path), os.path.join(pb_root, "src"))
        src = open(path).read()
        for m in re.finditer(r"\npub struct (\w+) \{(\}|.*?\n\})", src, re.S):
            name, body = m.group(1), m.group(2)
            fields = []
            for f in re.finditer(
                r"#\[prost\((.*?)\)\]\s*pub (?:r#)?(\w+):\s*(.*?),\n\s*(?=///|#\[|\}|$)",
                body + "\n", re.S,
            ):
                attr, fname, ty = f.group(1), f.group(2), " ".join(f.group(3).split())
                tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
                mm = re.match(r'btree_map = "string, (\w+)"', attr)
                if mm:
                    wire, label = mm.group(1), "map"
                else:
                    wire = attr.split(",")[0].split("=")[0].strip()
                    label = "repeated" if "repeated" in attr else "optional"
                ref = None
                if wire == "message":
                    paths = [p for p in re.findall(r"((?:\w+::)*[A-Z]\w*)", ty)
                             if p.split("::")[-1] not in WRAPPERS]
                    ref = resolve(pkg, paths[-1])
                elif wire not in SCALARS:
                    sys.exit(f"unknown prost type {attr} in {pkg}.{name}")
                fields.append({"tag": tag, "snake": fname, "wire": wire, "label": label, "ref": ref})
            msgs[f"{pkg}.{name}"] = {"fields": fields, "kind": None}
        for m in re.finditer(
            r"impl crate::Resource for (\w+) \{.*?API_VERSION: &'static str = \"([^\"]*)\";"
            r".*?KIND: &'static str = \"([^\"]*)\";", src, re.S):
            msgs[f"{pkg}.{m.group(1)}"]["kind"] = (m.group(2), m.group(3))
    return msgs


def resolve(pkg, rust_path):
    parts = rust_path.split("::")
    mod = pkg.split("/")
    while parts and parts[0] in ("super", "self", "crate"):
        if parts.pop(0) == "super":
            mod = mod[:-1]
    return "/".join(mod + parts[:-1]) + "." + parts[-1]


# ---------------------------------------------------------------- Go types (JSON presence)
def go_dir(pkg, api_dir, mach_dir, ext_dir):
    if pkg.startswith("apiextensions_apiserver/"):
        return os.path.join(ext_dir, pkg[len("apiextensions_apiserver/"):])
    if pkg.startswith("api/"):
        return os.path.join(api_dir, pkg[4:])
    if pkg.startswith("apimachinery/"):
        return os.path.join(mach_dir, pkg[len("apimachinery/"):])
    return None


def parse_go(dirpath):
    """{ lowercased struct name: {tag: {...}} } and the set of `type X []string` names."""
    structs, lists = {}, set()
    if not dirpath or not os.path.isdir(dirpath):
        return structs, lists
    for path in glob.glob(os.path.join(dirpath, "*.go")):
        if path.endswith("_test.go") or path.endswith(".pb.go"):
            continue
        src = open(path).read()
        for m in re.finditer(r"^type (\w+) \[\]string\b", src, re.M):
            lists.add(m.group(1).lower())
        for m in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", src, re.S | re.M):
            fields = {}
            for line in m.group(2).splitlines():
                line = line.strip()
                if not line or line.startswith("//") or "`" not in line:
                    continue
                decl, tags = line.split("`", 1)
                tags = tags.rsplit("`", 1)[0]
                pb = re.search(r'protobuf:"([^"]*)"', tags)
                js = re.search(r'json:"([^"]*)"', tags)
                if not pb or pb.group(1) == "-":
                    continue
                toks = decl.split()
                gotype = toks[-1]
                embedded = len(toks) == 1
                jparts = (js.group(1) if js else "").split(",")
                jname = jparts[0]
                tag = int(pb.group(1).split(",")[1])
                fields[tag] = {
                    "json": jname,
                    "omitempty": "omitempty" in jparts[1:],
                    "pointer": gotype.startswith("*"),
                    "inline": (embedded and jname == "") or "inline" in jparts[1:],
                }
            structs[m.group(1).lower()] = fields
    return structs, lists


# ---------------------------------------------------------------- k8s-openapi (cross-check)
def parse_openapi(root):
    """{ lowercased definition name: {normalized rust field: json name} }"""
    out = {}
    # The workspace's v1_33 first; later versions only add what it lacks.
    for version in ["v1_33"] + sorted(os.listdir(os.path.join(root, "src")), reverse=True):
        for path in glob.glob(os.path.join(root, "src", version, "**/*.rs"), recursive=True):
            src = open(path).read()
            d = re.search(r"// Generated from definition ([\w.\-]+)", src)
            if not d:
                continue
            keys = dict(re.findall(r'"([^"]+)" => Field::Key_(\w+),', src))
            known = out.setdefault(d.group(1).lower(), {})
            for k, v in keys.items():
                known.setdefault(norm(v), k)
    return out


def norm(s):
    return s.replace("_", "").lower()


def openapi_name(key):
    pkg, name = key.split(".")
    if pkg.startswith("api/"):
        return "io.k8s.api." + pkg[4:].replace("/", ".") + "." + name
    if pkg.startswith("apimachinery/"):
        return "io.k8s.apimachinery." + pkg[len("apimachinery/"):].replace("/", ".") + "." + name
    if pkg.startswith("apiextensions_apiserver/"):
        return "io.k8s.apiextensions-apiserver." + pkg[len("apiextensions_apiserver/"):].replace("/", ".") + "." + name
    return key


# ---------------------------------------------------------------- generation
def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    api_dir, mach_dir, ext_dir = sys.argv[1:4]
    pb = parse_pb(registry_crate("k8s-pb-0.9.0"))
    oapi = parse_openapi(registry_crate("k8s-openapi-0.29.0"))

    reg = open(os.path.join(ROOT, "controller/api/src/registry.rs")).read()
    served = re.findall(r'def\(\s*"([^"]*)",\s*"([^"]*)",\s*"([^"]*)",\s*"([^"]*)"', reg)
    by_kind = {v["kind"]: k for k, v in pb.items() if v["kind"]}
    roots = []
    for group, version, _plural, kind in served:
        av = f"{group}/{version}" if group else version
        if (av, kind) not in by_kind:
            sys.exit(f"served kind {av} {kind} not in k8s-pb")
        roots.append(by_kind[(av, kind)])
    for pkg, name, api_version in EXTRA_ROOTS:
        roots.append(f"{pkg}.{name}")
        pb[f"{pkg}.{name}"]["kind"] = (api_version, name)

    go_cache = {}

    def go_info(key):
        pkg, name = key.split(".")
        if pkg not in go_cache:
            go_cache[pkg] = parse_go(go_dir(pkg, api_dir, mach_dir, ext_dir))
        structs, lists = go_cache[pkg]
        return structs.get(name.lower()), name.lower() in lists

    order, index = [], {}
    todo = list(roots)
    while todo:
        key = todo.pop(0)
        if key in index or key in SPECIAL or go_info(key)[1]:
            continue
        if key not in pb:
            sys.exit(f"message {key} not in k8s-pb")
        index[key] = len(order)
        order.append(key)
        for f in pb[key]["fields"]:
            if f["ref"]:
                todo.append(f["ref"])

    names, name_off = [], {}
    missing, mismatched, dropped = [], [], []

    def name_ref(s):
        if s not in name_off:
            joined = "".join(names)
            at = joined.find(s)
            if at < 0:
                at = len(joined)
                names.append(s)
            name_off[s] = at
        assert name_off[s] < 65536 and len(s) < 256
        return name_off[s], len(s)

    msg_rows, field_rows = [], []
    for key in order:
        go, is_list = go_info(key)
        oa = oapi.get(openapi_name(key).lower(), {})
        start = len(field_rows)
        for f in sorted(pb[key]["fields"], key=lambda f: f["tag"]):
            g = (go or {}).get(f["tag"])
            if g is None:
                missing.append(f"{key}.{f['snake']}")
                jname = oa.get(norm(f["snake"]))
                if jname is None:
                    # Neither the Go types nor any k8s-openapi version has it (a withdrawn
                    # alpha field): skipped on the wire like any unknown field.
                    dropped.append(f"{key}.{f['snake']} (tag {f['tag']})")
                    continue
                g = {"json": jname, "omitempty": True, "pointer": True, "inline": False}
            elif not g["inline"] and oa and norm(f["snake"]) in oa and oa[norm(f["snake"])] != g["json"]:
                mismatched.append(f"{key}.{f['snake']}: go {g['json']} openapi {oa[norm(f['snake'])]}")
            if f["wire"] == "message":
                kind = SPECIAL.get(f["ref"], "Message")
                if kind == "Message" and go_info(f["ref"])[1]:
                    kind = "StringList"
                msg = index.get(f["ref"], 0)
                if kind.startswith("Schema"):
                    msg = index[f["ref"].rsplit(".", 1)[0] + ".JsonSchemaProps"]
            else:
                kind, msg = SCALARS[f["wire"]], 0
            flags = []
            if f["label"] == "repeated":
                flags.append("REPEATED")
            if f["label"] == "map":
                flags.append("MAP")
            if g["inline"]:
                flags.append("INLINE")
            if f["label"] != "optional" or f["wire"] in SCALARS:
                # Scalars, lists and maps: Go pointers are written only when set (emit as
                # sent); value fields are always written, so JSON presence follows the tag.
                if not g["pointer"] or f["label"] != "optional":
                    flags.append("OMIT_EMPTY" if g["omitempty"] else "ALWAYS")
            if g["pointer"] and not g["omitempty"] and f["label"] == "optional":
                flags.append("NULLABLE")  # a nil pointer without omitempty is `null`
            off, ln = name_ref("" if g["inline"] else g["json"])
            field_rows.append(
                f"    f({f['tag']}, {off}, {ln}, Kind::{kind}, {msg}, {'|'.join(flags) or '0'}),")
        assert len(field_rows) - start < 256 and start < 65536
        name_off_m, name_len_m = name_ref(key.split(".")[1])
        msg_rows.append(f"    m({name_off_m}, {name_len_m}, {start}, {len(field_rows) - start}), // {key}")

    kind_rows = []
    for key in dict.fromkeys(roots):
        if pb[key]["kind"]:
            av, kind = pb[key]["kind"]
            kind_rows.append(f'    ("{av}", "{kind}", {index[key]}),')

    with open(OUT, "w") as out:
        out.write("// @generated by scripts/gen-protobuf-schema.py from k8s-pb 0.9.0 (wire schema), upstream\n")
        out.write("// Go types (JSON names and presence) and k8s-openapi 0.29 (cross-check). Do not edit.\n\n")
        out.write("use super::schema::{f, m, Field, Kind, Message, ALWAYS, INLINE, MAP, NULLABLE, OMIT_EMPTY, REPEATED};\n\n")
        out.write("/// Every field name and message name, concatenated; fields point into it.\n")
        out.write('pub static NAMES: &str = "' + "".join(names) + '";\n\n')
        out.write(f"/// Messages reachable from the served kinds, by index.\npub static MESSAGES: [Message; {len(msg_rows)}] = [\n")
        out.write("\n".join(msg_rows) + "\n];\n\n")
        out.write(f"/// Fields of all messages, each message's sorted by number.\npub static FIELDS: [Field; {len(field_rows)}] = [\n")
        out.write("\n".join(field_rows) + "\n];\n\n")
        out.write(f"/// `(apiVersion, kind, message)` of each top-level kind.\npub static KINDS: [(&str, &str, u16); {len(kind_rows)}] = [\n")
        out.write("\n".join(kind_rows) + "\n];\n")
    print(f"{len(msg_rows)} messages, {len(field_rows)} fields, {sum(len(n) for n in names)} name bytes -> {OUT}")
    if missing:
        print(f"{len(missing)} fields not in the Go types (k8s-openapi name, emitted as sent):", *missing, sep="\n  ")
    if dropped:
        print(f"{len(dropped)} fields with no JSON name anywhere (skipped when decoding):", *dropped, sep="\n  ")
    if mismatched:
        print("JSON name mismatches (Go tag used):", *mismatched, sep="\n  ")


if __name__ == "__main__":
    main()
