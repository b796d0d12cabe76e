//! What a sync reads: the target's scale subresource (any kind serving `/scale`, found by
//! discovery as upstream's REST mapper does), its pods from the shared cache, and their
//! samples from `metrics.k8s.io/v1beta1` PodMetrics.

use std::collections::BTreeMap;

use bramble_informer::pod::Pod;
use jiff::SignedDuration;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::{Api, Client};

use bramble_api::quantity::Quantity;
use bramble_api::selectors::LabelSelector;

use super::replicas::{Phase, PodMetric, PodSample, Readiness};

/// The scale subresource of a target.
pub struct Target {
    api: Api<DynamicObject>,
    name: String,
}

impl Target {
    /// Resolves `scaleTargetRef` in `ns` (upstream: REST mappings of the group/kind).
    pub async fn resolve(
        client: &Client,
        ns: &str,
        r: &CrossVersionObjectReference,
    ) -> Result<Target, String> {
        let api_version = r.api_version.as_deref().unwrap_or("");
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        if version.is_empty() {
            return Err(format!("unexpected GroupVersion string: {api_version:?}"));
        }
        let gvk = GroupVersionKind::gvk(group, version, &r.kind);
        let (resource, _caps) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|e| match e {
                // Upstream's REST mapper: `NoKindMatchError` for an unknown group or kind.
                kube::Error::Discovery(_) => no_match(&r.kind, group),
                kube::Error::Api(s) if s.code == 404 => no_match(&r.kind, group),
                other => other.to_string(),
            })?;
        Ok(Target {
            api: Api::namespaced_with(client.clone(), ns, &resource),
            name: r.name.clone(),
        })
    }

    /// `GET .../scale`.
    pub async fn get(&self) -> Result<Scale, kube::Error> {
        self.api.get_scale(&self.name).await
    }

    /// `PUT .../scale` with `replicas` (under the read resourceVersion).
    pub async fn set(&self, mut scale: Scale, replicas: i32) -> Result<Scale, kube::Error> {
        scale.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        self.api
            .replace_scale(&self.name, &PostParams::default(), &scale)
            .await
    }
}

fn no_match(kind: &str, group: &str) -> String {
    format!("no matches for kind \"{kind}\" in group \"{group}\"")
}

/// Which part of each pod a metric looks at.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// `cpu`, `memory`, ...
    pub resource: &'a str,
    /// Only this container (ContainerResource metrics).
    pub container: Option<&'a str>,
}

fn selected<'a>(
    containers: impl Iterator<Item = (&'a str, Option<Quantity>)>,
    subject: Subject<'_>,
) -> impl Iterator<Item = (&'a str, Option<Quantity>)> {
    let only = subject.container.map(str::to_string);
    containers.filter(move |(name, _)| only.as_deref().is_none_or(|c| c == *name))
}

/// A cached pod as the calculator sees it.
pub fn sample_of(pod: &Pod, subject: Subject<'_>) -> PodSample {
    let status = pod.status.clone().unwrap_or_default();
    let phase = match status.phase.as_deref() {
        // As upstream, only an explicit Pending is pending.
        Some("Pending") => Phase::Pending,
        Some("Failed") => Phase::Failed,
        _ => Phase::Running,
    };
    let readiness = status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|c| c.type_ == "Ready")
        .and_then(|c| {
            Some(Readiness {
                ready: c.status == "True",
                not_ready: c.status == "False",
                last_transition: c.last_transition_time.as_ref()?.0,
            })
        });
    let spec = pod.spec.clone().unwrap_or_default();
    // Regular containers and restartable (sidecar) init containers, as upstream.
    let containers = spec.containers.iter().chain(
        spec.init_containers
            .iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always")),
    );
    let requested = containers.map(|c| {
        let q = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(subject.resource))
            .and_then(|q| Quantity::parse(&q.0).ok())
            .filter(|q| !q.is_zero());
        (c.name.as_str(), q)
    });
    let mut request = Ok(0i64);
    for (name, q) in selected(requested, subject) {
        match (q, &mut request) {
            (Some(q), Ok(sum)) => *sum += q.milli_value(),
            (None, Ok(_)) => request = Err(name.to_string()),
            _ => {}
        }
    }
    PodSample {
        name: pod.metadata.name.clone().unwrap_or_default(),
        phase,
        deleting: pod.metadata.deletion_timestamp.is_some(),
        readiness,
        start_time: status.start_time.map(|t| t.0),
        request,
    }
}

/// The pods of `ns` matching `selector` in the cache.
pub fn pods_matching(
    pods: &[std::sync::Arc<Pod>],
    selector: &LabelSelector,
) -> Vec<std::sync::Arc<Pod>> {
    pods.iter()
        .filter(|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            selector.matches(&labels)
        })
        .cloned()
        .collect()
}

/// PodMetrics of `metrics.k8s.io/v1beta1`.
fn pod_metrics_resource() -> ApiResource {
    ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        plural: "pods".into(),
    }
}

/// Upstream's resource metrics client `GetResourceMetric`: the usage of `subject` summed
/// over each pod's containers; a pod lacking the resource in any container is left out.
pub async fn resource_metrics(
    client: &Client,
    ns: &str,
    selector: &str,
    subject: Subject<'_>,
) -> Result<BTreeMap<String, PodMetric>, String> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &pod_metrics_resource());
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| format!("unable to fetch metrics from resource metrics API: {e}"))?;
    if list.items.is_empty() {
        return Err("no metrics returned from resource metrics API".into());
    }
    let mut out = BTreeMap::new();
    for item in &list.items {
        if let Some((name, m)) = pod_metric(item, subject) {
            out.insert(name, m);
        }
    }
    if subject.container.is_some() && out.is_empty() {
        return Err(format!(
            "failed to get container metrics: container {} not present in metrics for any pod",
            subject.container.unwrap_or_default()
        ));
    }
    Ok(out)
}

/// One PodMetrics object: (pod name, summed usage) when every selected container has it.
fn pod_metric(item: &DynamicObject, subject: Subject<'_>) -> Option<(String, PodMetric)> {
    let name = item.metadata.name.clone()?;
    let timestamp = item.data["timestamp"].as_str()?.parse().ok()?;
    let window = item.data["window"]
        .as_str()
        .and_then(parse_duration)
        .unwrap_or(SignedDuration::ZERO);
    let containers = item.data["containers"].as_array()?;
    let usages = containers.iter().map(|c| {
        let q = c["usage"][subject.resource]
            .as_str()
            .and_then(|s| Quantity::parse(s).ok());
        (c["name"].as_str().unwrap_or_default(), q)
    });
    let mut value = 0i64;
    let mut any = false;
    for (_, q) in selected(usages, subject) {
        value += q?.milli_value();
        any = true;
    }
    any.then_some((
        name,
        PodMetric {
            value,
            timestamp,
            window,
        },
    ))
}

/// A Go duration string (`10s`, `1m30s`, `500ms`).
fn parse_duration(s: &str) -> Option<SignedDuration> {
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(split);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let n: f64 = num.parse().ok()?;
        total += n * match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = next;
    }
    SignedDuration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("10s"), Some(SignedDuration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Some(SignedDuration::from_secs(90)));
        assert_eq!(
            parse_duration("500ms"),
            Some(SignedDuration::from_millis(500))
        );
        assert_eq!(parse_duration("10 parsecs"), None);
    }

    #[test]
    fn pod_metrics_sum_containers() {
        let item: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
            "metadata": {"name": "web-1", "namespace": "default"},
            "timestamp": "2026-01-01T00:00:00Z", "window": "10s",
            "containers": [
                {"name": "main", "usage": {"cpu": "250000000n", "memory": "1024Ki"}},
                {"name": "side", "usage": {"cpu": "50m", "memory": "1Mi"}},
            ],
        }))
        .unwrap();
        let all = Subject {
            resource: "cpu",
            container: None,
        };
        let (name, m) = pod_metric(&item, all).unwrap();
        assert_eq!((name.as_str(), m.value), ("web-1", 300));
        assert_eq!(m.window, SignedDuration::from_secs(10));
        let side = Subject {
            resource: "memory",
            container: Some("side"),
        };
        assert_eq!(pod_metric(&item, side).unwrap().1.value, 1_048_576_000);
        let gpu = Subject {
            resource: "gpu",
            container: None,
        };
        assert!(pod_metric(&item, gpu).is_none());
    }

    #[test]
    fn pod_samples_sum_requests() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": [
                {"name": "main", "resources": {"requests": {"cpu": "200m"}}},
                {"name": "side", "resources": {"requests": {"cpu": "0.1", "memory": "64Mi"}}},
            ]},
            "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z",
                "conditions": [{"type": "Ready", "status": "True",
                                "lastTransitionTime": "2026-01-01T00:00:05Z"}]},
        }))
        .unwrap();
        let s = sample_of(
            &pod,
            Subject {
                resource: "cpu",
                container: None,
            },
        );
        assert_eq!(s.request, Ok(300));
        assert_eq!(s.phase, Phase::Running);
        assert!(s.readiness.unwrap().ready);
        let s = sample_of(
            &pod,
            Subject {
                resource: "memory",
                container: None,
            },
        );
        assert_eq!(s.request, Err("main".into()));
        let s = sample_of(
            &pod,
            Subject {
                resource: "memory",
                container: Some("side"),
            },
        );
        assert_eq!(s.request, Ok(64 * 1024 * 1024 * 1000));
    }
}
