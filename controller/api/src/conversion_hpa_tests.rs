use serde_json::{json, Value};

use super::*;

fn annotation(obj: &Value, key: &str) -> Option<Value> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .map(|s| serde_json::from_str(s).expect("annotation is JSON"))
}

/// What `kubectl autoscale deployment web --min=1 --max=3 --cpu-percent=50` posts.
fn kubectl_autoscale() -> Value {
    json!({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50},
        "status": {"currentReplicas": 0, "desiredReplicas": 0},
    })
}

/// A v2 autoscaler using everything v1 has no field for.
fn rich_v2() -> Value {
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "memory",
                    "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"},
                    "target": {"type": "AverageValue", "averageValue": "10"}}},
                {"type": "Object", "object": {
                    "describedObject": {"kind": "Ingress", "name": "main", "apiVersion": "networking.k8s.io/v1"},
                    "metric": {"name": "requests", "selector": {"matchLabels": {"a": "b"}}},
                    "target": {"type": "AverageValue", "averageValue": "2k"}}},
                {"type": "External", "external": {"metric": {"name": "queue"},
                    "target": {"type": "Value", "value": "30"}}},
                {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
                    "target": {"type": "Utilization", "averageUtilization": 60}}},
                {"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70}}},
            ],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Min",
                    "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}],
                    "tolerance": "50m"},
            },
        },
        "status": {
            "observedGeneration": 3, "lastScaleTime": "2026-11-24T01:00:00Z",
            "currentReplicas": 2, "desiredReplicas": 3,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "80Mi"}}},
                {"type": "Object", "object": {
                    "metric": {"name": "requests", "selector": {"matchLabels": {"a": "b"}}},
                    "current": {"averageValue": "1500"},
                    "describedObject": {"kind": "Ingress", "name": "main", "apiVersion": "networking.k8s.io/v1"}}},
                {"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageValue": "120m", "averageUtilization": 65}}},
            ],
            "conditions": [
                {"type": "AbleToScale", "status": "True", "lastTransitionTime": "2026-11-24T00:00:00Z",
                    "reason": "ReadyForNewScale", "message": "recommended size matches current size"},
            ],
        },
    })
}

#[test]
fn kubectl_autoscale_is_a_cpu_utilization_metric() {
    let v2 = v1_to_v2(kubectl_autoscale());
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"],
        json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}]})
    );
    assert_eq!(
        v2["status"],
        json!({"currentReplicas": 0, "desiredReplicas": 0})
    );
    assert!(v2["metadata"].get("annotations").is_none());
    assert_eq!(v2_to_v1(v2), kubectl_autoscale());
}

#[test]
fn a_v1_autoscaler_without_a_target_gets_upstreams_80_percent() {
    let mut v1 = kubectl_autoscale();
    v1["spec"]
        .as_object_mut()
        .unwrap()
        .remove("targetCPUUtilizationPercentage");
    let v2 = v1_to_v2(v1);
    assert_eq!(
        v2["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}])
    );
    assert_eq!(v2_to_v1(v2)["spec"]["targetCPUUtilizationPercentage"], 80);
}

#[test]
fn v2_fields_v1_lacks_travel_in_upstreams_annotations() {
    let v1 = v2_to_v1(rich_v2());
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
    assert_eq!(v1["spec"]["minReplicas"], 2);
    assert!(v1["spec"].get("metrics").is_none() && v1["spec"].get("behavior").is_none());
    assert_eq!(
        v1["status"],
        json!({"observedGeneration": 3, "lastScaleTime": "2026-11-24T01:00:00Z",
            "currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 65})
    );
    let annotations = v1["metadata"]["annotations"].as_object().unwrap();
    assert_eq!(annotations["team"], "a");
    // the metrics annotation holds upstream's v1 MetricSpec JSON (v2beta1 shapes), byte for
    // byte as upstream writes it
    assert_eq!(
        annotations[METRICS_ANNOTATION],
        concat!(
            r#"[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}},"#,
            r#"{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"10"}},"#,
            r#"{"type":"Object","object":{"target":{"kind":"Ingress","name":"main","apiVersion":"networking.k8s.io/v1"},"#,
            r#""metricName":"requests","targetValue":"0","selector":{"matchLabels":{"a":"b"}},"averageValue":"2k"}},"#,
            r#"{"type":"External","external":{"metricName":"queue","targetValue":"30"}},"#,
            r#"{"type":"ContainerResource","containerResource":{"name":"cpu","targetAverageUtilization":60,"container":"app"}}]"#,
        )
    );
    assert_eq!(
        annotation(&v1, CURRENT_METRICS_ANNOTATION).unwrap()[2],
        json!({"type": "Resource", "resource": {"name": "cpu",
            "currentAverageUtilization": 65, "currentAverageValue": "120m"}})
    );
    assert_eq!(
        annotation(&v1, CONDITIONS_ANNOTATION).unwrap(),
        rich_v2()["status"]["conditions"]
    );
    assert_eq!(
        annotations[BEHAVIOR_ANNOTATION],
        concat!(
            r#"{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","#,
            r#""Policies":[{"Type":"Pods","Value":4,"PeriodSeconds":15}],"Tolerance":null},"#,
            r#""ScaleDown":{"StabilizationWindowSeconds":300,"SelectPolicy":"Min","#,
            r#""Policies":[{"Type":"Percent","Value":10,"PeriodSeconds":60}],"Tolerance":"50m"}}"#,
        )
    );
}

#[test]
fn v2_to_v1_to_v2_is_lossless() {
    assert_eq!(v1_to_v2(v2_to_v1(rich_v2())), rich_v2());
    // a memory-only autoscaler: no CPU target in v1, and none added on the way back
    let mut memory = rich_v2();
    memory["spec"]["metrics"] = json!([{"type": "Resource", "resource": {"name": "memory",
        "target": {"type": "Utilization", "averageUtilization": 60}}}]);
    memory["spec"].as_object_mut().unwrap().remove("behavior");
    memory["status"] = json!({"currentReplicas": 1, "desiredReplicas": 1});
    let v1 = v2_to_v1(memory.clone());
    assert!(v1["spec"].get("targetCPUUtilizationPercentage").is_none());
    assert_eq!(
        annotation(&v1, METRICS_ANNOTATION).unwrap(),
        json!([{"type": "Resource", "resource": {"name": "memory", "targetAverageUtilization": 60}}])
    );
    assert_eq!(v1_to_v2(v1), memory);
}

#[test]
fn the_cpu_target_follows_the_annotations_metrics_as_upstream_orders_them() {
    let mut v2 = rich_v2();
    let metrics = v2["spec"]["metrics"].as_array_mut().unwrap();
    let cpu = metrics.pop().unwrap();
    metrics.insert(0, cpu);
    let back = v1_to_v2(v2_to_v1(v2.clone()));
    assert_eq!(back["spec"]["metrics"], rich_v2()["spec"]["metrics"]);
    // once in that order, it stays
    assert_eq!(v1_to_v2(v2_to_v1(back.clone())), back);
}

#[test]
fn v1_to_v2_to_v1_is_lossless() {
    let mut v1 = kubectl_autoscale();
    let annotations = json!({
        "team": "a",
        METRICS_ANNOTATION: r#"[{"type":"External","external":{"metricName":"queue","metricSelector":{"matchLabels":{"q":"jobs"}},"targetAverageValue":"5"}}]"#,
        CURRENT_METRICS_ANNOTATION: r#"[{"type":"External","external":{"metricName":"queue","currentValue":"0","currentAverageValue":"4"}},{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":40,"currentAverageValue":"40m"}}]"#,
        CONDITIONS_ANNOTATION: r#"[{"type":"ScalingActive","status":"True","lastTransitionTime":"2026-11-24T00:00:00Z","reason":"ValidMetricFound","message":"ok"}]"#,
        BEHAVIOR_ANNOTATION: r#"{"ScaleUp":null,"ScaleDown":{"StabilizationWindowSeconds":60,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":1,"PeriodSeconds":30}],"Tolerance":null}}"#,
    });
    v1["metadata"]["annotations"] = annotations;
    v1["status"]["currentCPUUtilizationPercentage"] = json!(40);
    let v2 = v1_to_v2(v1.clone());
    assert_eq!(v2["metadata"]["annotations"], json!({"team": "a"}));
    assert_eq!(
        v2["spec"]["metrics"],
        json!([
            {"type": "External", "external": {"metric": {"name": "queue", "selector": {"matchLabels": {"q": "jobs"}}},
                "target": {"type": "AverageValue", "averageValue": "5"}}},
            {"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}},
        ])
    );
    assert_eq!(
        v2["spec"]["behavior"],
        json!({"scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}]}})
    );
    assert_eq!(
        v2["status"]["currentMetrics"][0]["external"]["current"],
        json!({"averageValue": "4"})
    );
    assert_eq!(v2["status"]["conditions"][0]["reason"], "ValidMetricFound");
    let back = v2_to_v1(v2);
    assert_eq!(back["spec"], v1["spec"]);
    assert_eq!(back["status"], v1["status"]);
    for key in [
        METRICS_ANNOTATION,
        CURRENT_METRICS_ANNOTATION,
        CONDITIONS_ANNOTATION,
        BEHAVIOR_ANNOTATION,
    ] {
        assert_eq!(annotation(&back, key), annotation(&v1, key), "{key}");
    }
}

#[test]
fn behavior_annotations_are_read_as_go_reads_them() {
    let mut v1 = kubectl_autoscale();
    v1["metadata"]["annotations"] = json!({BEHAVIOR_ANNOTATION:
        r#"{"scaleUp":{"policies":[{"type":"Percent","value":50,"periodSeconds":10}],"unknown":1}}"#});
    let v2 = v1_to_v2(v1);
    assert_eq!(
        v2["spec"]["behavior"],
        json!({"scaleUp": {"policies": [{"type": "Percent", "value": 50, "periodSeconds": 10}]}})
    );
    // `{}` and `null` rules say nothing: no behavior, as upstream
    for empty in ["{}", r#"{"ScaleUp":null,"ScaleDown":null}"#] {
        let mut v1 = kubectl_autoscale();
        v1["metadata"]["annotations"] = json!({BEHAVIOR_ANNOTATION: empty});
        assert!(v1_to_v2(v1)["spec"].get("behavior").is_none(), "{empty}");
    }
}

#[test]
fn malformed_annotations_are_ignored_and_dropped() {
    for bad in [
        "",
        "abc",
        "[]",
        "{}",
        r#"[{"type":"Pods","pods":{"targetAverageValue":"x y","currentAverageValue":"x y"}}]"#,
        r#"[{"type":7}]"#,
        r#"{"ScaleUp":{"Policies":[{"Value":"4"}]}}"#,
    ] {
        let mut v1 = kubectl_autoscale();
        v1["metadata"]["annotations"] = json!({
            METRICS_ANNOTATION: bad, CURRENT_METRICS_ANNOTATION: bad,
            CONDITIONS_ANNOTATION: r#"[{"type":"AbleToScale","status":true}]"#,
            BEHAVIOR_ANNOTATION: bad,
        });
        let v2 = v1_to_v2(v1);
        assert!(v2["metadata"].get("annotations").is_none(), "{bad}: {v2}");
        assert_eq!(v2["spec"]["metrics"].as_array().unwrap().len(), 1, "{bad}");
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            50
        );
        assert!(v2["spec"].get("behavior").is_none(), "{bad}");
        assert!(v2["status"].get("currentMetrics").is_none(), "{bad}");
        assert!(v2["status"].get("conditions").is_none(), "{bad}");
    }
}

#[test]
fn stale_round_trip_annotations_on_v2_objects_are_replaced() {
    let mut v2 = rich_v2();
    v2["metadata"]["annotations"][METRICS_ANNOTATION] = json!("[]");
    v2["metadata"]["annotations"][BEHAVIOR_ANNOTATION] = json!("stale");
    v2["spec"].as_object_mut().unwrap().remove("behavior");
    let v1 = v2_to_v1(v2);
    assert!(
        annotation(&v1, METRICS_ANNOTATION)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
            == 5
    );
    assert!(v1["metadata"]["annotations"]
        .get(BEHAVIOR_ANNOTATION)
        .is_none());
}

#[test]
fn object_and_external_zero_values_v1_requires_are_not_carried_back() {
    let v1 = v2_to_v1(rich_v2());
    let metrics = annotation(&v1, METRICS_ANNOTATION).unwrap();
    assert_eq!(metrics[2]["object"]["targetValue"], "0");
    let v2 = v1_to_v2(v1);
    assert!(v2["spec"]["metrics"][2]["object"]["target"]
        .get("value")
        .is_none());
    // a value v1 wrote on its own is kept
    let mut v1 = kubectl_autoscale();
    v1["metadata"]["annotations"] = json!({METRICS_ANNOTATION:
        r#"[{"type":"Object","object":{"target":{"kind":"Service","name":"s"},"metricName":"m","targetValue":"0"}}]"#});
    let v2 = v1_to_v2(v1);
    assert_eq!(
        v2["spec"]["metrics"][0]["object"],
        json!({"describedObject": {"kind": "Service", "name": "s"},
            "target": {"type": "Value", "value": "0"}, "metric": {"name": "m"}})
    );
}
