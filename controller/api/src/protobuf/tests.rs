//! Bodies captured from the real kubectl (scripts/gen-protobuf-fixtures.py) decode to what
//! the same kubectl prints with `--dry-run=client -o json`; malformed bodies are 400s.

use serde_json::{json, Value};

use super::{decode_to_json, envelope, schema, MAGIC};
use crate::registry::Registry;
use crate::status::Reason;

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("testdata/", $name, ".pb")).as_slice(),
            include_str!(concat!("testdata/", $name, ".json")),
        )
    };
}

const FIXTURES: &[(&str, &[u8], &str)] = &[
    fixture!("namespace"),
    fixture!("configmap"),
    fixture!("secret"),
    fixture!("deployment"),
    fixture!("deployment_zero"),
    fixture!("service"),
    fixture!("job"),
    fixture!("cronjob"),
    fixture!("role"),
    fixture!("rolebinding"),
    fixture!("quota"),
    fixture!("priorityclass"),
    fixture!("pdb"),
    fixture!("ingress"),
    fixture!("serviceaccount"),
    fixture!("clusterrole"),
];

#[test]
fn kubectl_bodies_decode_to_kubectls_json() {
    for (name, pb, json) in FIXTURES {
        let want: Value = serde_json::from_str(json).unwrap();
        let got = decode_to_json(pb).unwrap_or_else(|s| panic!("{name}: {}", s.message));
        assert_eq!(
            got,
            want,
            "{name}:\n got {}\nwant {}",
            serde_json::to_string_pretty(&got).unwrap(),
            serde_json::to_string_pretty(&want).unwrap()
        );
    }
}

#[test]
fn pointer_zero_is_kept_value_zero_is_omitted() {
    let (_, pb, _) = FIXTURES.iter().find(|f| f.0 == "deployment_zero").unwrap();
    let v = decode_to_json(pb).unwrap();
    // `replicas *int32` set to 0 stays; `minReadySeconds int32,omitempty` (written as 0 on
    // the wire) does not appear.
    assert_eq!(v["spec"]["replicas"], json!(0));
    assert!(v["spec"].get("minReadySeconds").is_none());
    assert_eq!(v["metadata"]["creationTimestamp"], Value::Null);
}

#[test]
fn secret_bytes_are_base64() {
    let (_, pb, _) = FIXTURES.iter().find(|f| f.0 == "secret").unwrap();
    let v = decode_to_json(pb).unwrap();
    assert_eq!(v["data"]["k"], json!("dg=="));
    assert_eq!(v["data"]["e"], json!(""));
}

#[test]
fn every_served_kind_is_in_the_schema() {
    for info in Registry::builtin().all() {
        let api_version = if info.group.is_empty() {
            info.version.clone()
        } else {
            format!("{}/{}", info.group, info.version)
        };
        assert!(
            schema::message_for_kind(&api_version, &info.kind).is_some(),
            "{api_version} {}",
            info.kind
        );
    }
    for (v, k) in [
        ("v1", "DeleteOptions"),
        ("apps/v1", "DeleteOptions"),
        ("policy/v1", "Eviction"),
        ("authentication.k8s.io/v1", "TokenRequest"),
        ("v1", "Binding"),
        ("autoscaling/v1", "Scale"),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
    ] {
        assert!(schema::message_for_kind(v, k).is_some(), "{v} {k}");
    }
}

/// Builds a body by hand: `k8s\0` + Unknown{typeMeta, raw}.
fn body(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut tm = Vec::new();
    put_bytes(&mut tm, 1, api_version.as_bytes());
    put_bytes(&mut tm, 2, kind.as_bytes());
    let mut out = MAGIC.to_vec();
    put_bytes(&mut out, 1, &tm);
    put_bytes(&mut out, 2, raw);
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, tag: u64, b: &[u8]) {
    put_varint(out, tag << 3 | 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_int(out: &mut Vec<u8>, tag: u64, v: u64) {
    put_varint(out, tag << 3);
    put_varint(out, v);
}

#[test]
fn times_intorstring_rawextension_and_eviction() {
    // DeleteOptions inside an Eviction: pointer fields, a string enum and a list.
    let mut opts = Vec::new();
    put_int(&mut opts, 1, 0); // gracePeriodSeconds: 0 (pointer: kept)
    put_bytes(&mut opts, 4, b"Foreground");
    put_bytes(&mut opts, 5, b"All");
    let mut meta = Vec::new();
    put_bytes(&mut meta, 1, b"web-1");
    let mut ts = Vec::new();
    put_int(&mut ts, 1, 1_700_000_000);
    put_int(&mut ts, 2, 123_456_789);
    put_bytes(&mut meta, 8, &ts); // creationTimestamp
    let mut ev = Vec::new();
    put_bytes(&mut ev, 1, &meta);
    put_bytes(&mut ev, 2, &opts);
    let v = decode_to_json(&body("policy/v1", "Eviction", &ev)).unwrap();
    assert_eq!(
        v,
        json!({"kind": "Eviction", "apiVersion": "policy/v1",
            "metadata": {"name": "web-1", "creationTimestamp": "2023-11-14T22:13:20Z"},
            "deleteOptions": {"gracePeriodSeconds": 0, "propagationPolicy": "Foreground",
                "dryRun": ["All"]}})
    );
    // DeleteOptions under any group version.
    let v = decode_to_json(&body("apps/v1", "DeleteOptions", &opts)).unwrap();
    assert_eq!(v["propagationPolicy"], json!("Foreground"));

    // ControllerRevision.data is a RawExtension; a Service port's targetPort a string.
    let mut raw = Vec::new();
    put_bytes(&mut raw, 1, br#"{"spec":{"a":1}}"#);
    let mut cr = Vec::new();
    put_bytes(&mut cr, 2, &raw);
    put_int(&mut cr, 3, 7);
    let v = decode_to_json(&body("apps/v1", "ControllerRevision", &cr)).unwrap();
    assert_eq!(v["data"], json!({"spec": {"a": 1}}));
    assert_eq!(v["revision"], json!(7));

    let mut target = Vec::new();
    put_int(&mut target, 1, 1);
    put_bytes(&mut target, 3, b"http");
    let mut port = Vec::new();
    put_int(&mut port, 3, 80);
    put_bytes(&mut port, 4, &target);
    let mut spec = Vec::new();
    put_bytes(&mut spec, 1, &port);
    let mut svc = Vec::new();
    put_bytes(&mut svc, 2, &spec);
    let v = decode_to_json(&body("v1", "Service", &svc)).unwrap();
    assert_eq!(
        v["spec"]["ports"],
        json!([{"port": 80, "targetPort": "http"}])
    );
}

#[test]
fn lease_microtime() {
    let mut t = Vec::new();
    put_int(&mut t, 1, 1_700_000_000);
    put_int(&mut t, 2, 123_456_789);
    let mut spec = Vec::new();
    put_bytes(&mut spec, 3, &t); // acquireTime
    let mut lease = Vec::new();
    put_bytes(&mut lease, 2, &spec);
    let v = decode_to_json(&body("coordination.k8s.io/v1", "Lease", &lease)).unwrap();
    assert_eq!(
        v["spec"]["acquireTime"],
        json!("2023-11-14T22:13:20.123456Z")
    );
}

#[test]
fn malformed_bodies_are_bad_requests() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{\"kind\":\"Pod\"}".to_vec(), "expected prefix"),
        (body("v1", "Nope", &[]), "no kind \"Nope\""),
        (
            body("v1", "Namespace", &[0x0a, 0x05, 0x0a]),
            "unexpected EOF",
        ),
        (body("v1", "Namespace", &[0x08, 0x01]), "wrong wireType"),
        (body("v1", "Namespace", &[0x0b]), "illegal wireType"),
        (MAGIC[..3].to_vec(), "expected prefix"),
        (body("", "", &[]), "no kind"),
    ];
    for (bytes, want) in cases {
        let s = decode_to_json(&bytes).unwrap_err();
        assert_eq!(s.reason, Reason::BadRequest);
        assert!(s.message.contains(want), "{want:?} not in {:?}", s.message);
    }
    // The path of a nested error names the fields.
    let mut meta = Vec::new();
    put_int(&mut meta, 1, 5); // name as a varint
    let mut ns = Vec::new();
    put_bytes(&mut ns, 1, &meta);
    let s = decode_to_json(&body("v1", "Namespace", &ns)).unwrap_err();
    assert!(s.message.contains("metadata.name"), "{}", s.message);
}

#[test]
fn truncations_of_real_bodies_never_panic() {
    for (_, pb, _) in FIXTURES {
        for n in 0..pb.len() {
            let _ = decode_to_json(&pb[..n]);
        }
        let mut flipped = pb.to_vec();
        for i in 4..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = decode_to_json(&flipped);
            flipped[i] ^= 0xff;
        }
    }
}

#[test]
fn envelope_fields() {
    let mut b = body("v1", "Namespace", b"xyz");
    put_bytes(&mut b, 4, b"application/vnd.kubernetes.protobuf");
    let env = envelope(&b).unwrap();
    assert_eq!(
        (env.api_version.as_str(), env.kind.as_str()),
        ("v1", "Namespace")
    );
    assert_eq!(env.raw, b"xyz");
    assert_eq!(env.content_type, "application/vnd.kubernetes.protobuf");
    put_bytes(&mut b, 3, b"gzip");
    let s = decode_to_json(&b).unwrap_err();
    assert!(s.message.contains("content encoding"), "{}", s.message);
}

#[test]
fn kubectl_create_token_request() {
    // `kubectl -n x create token sa --duration=1h --audience=a --audience=b`: the name is
    // in the URL; `boundObjectRef` is a pointer without omitempty (`null`).
    let v = decode_to_json(include_bytes!("testdata/token.pb")).unwrap();
    assert_eq!(
        v,
        json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": {"audiences": ["a", "b"], "expirationSeconds": 3600, "boundObjectRef": null},
            "status": {"token": "", "expirationTimestamp": null}})
    );
}

#[test]
fn autoscaling_v1_horizontal_pod_autoscaler() {
    // what a typed client-go `AutoscalingV1()` client sends for `kubectl autoscale`'s object
    let mut target = Vec::new();
    put_bytes(&mut target, 1, b"Deployment");
    put_bytes(&mut target, 2, b"web");
    put_bytes(&mut target, 3, b"apps/v1");
    let mut spec = Vec::new();
    put_bytes(&mut spec, 1, &target);
    put_int(&mut spec, 2, 1); // minReplicas
    put_int(&mut spec, 3, 3); // maxReplicas
    put_int(&mut spec, 4, 50); // targetCPUUtilizationPercentage
    let mut status = Vec::new();
    put_int(&mut status, 3, 0); // currentReplicas
    put_int(&mut status, 4, 0); // desiredReplicas
    let mut meta = Vec::new();
    put_bytes(&mut meta, 1, b"web");
    let mut hpa = Vec::new();
    put_bytes(&mut hpa, 1, &meta);
    put_bytes(&mut hpa, 2, &spec);
    put_bytes(&mut hpa, 3, &status);
    let v = decode_to_json(&body("autoscaling/v1", "HorizontalPodAutoscaler", &hpa)).unwrap();
    assert_eq!(v["apiVersion"], "autoscaling/v1");
    assert_eq!(
        v["spec"],
        json!({"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
            "minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50})
    );
    assert_eq!(
        v["status"],
        json!({"currentReplicas": 0, "desiredReplicas": 0})
    );
}
