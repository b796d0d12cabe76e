//! One sync of one autoscaler (upstream `reconcileAutoscaler` and
//! `computeReplicasForMetrics`): conditions, events and messages as upstream writes them.

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus, MetricSpec, MetricStatus, MetricTarget,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use kube::ResourceExt;
use tracing::info;

use bramble_api::quantity::Quantity;
use bramble_api::selectors::LabelSelector;

use super::config::HpaConfig;
use super::events::Recorder;
use super::normalize::History;
use super::replicas::{resource_replicas, Target};
use super::source::{self, Subject};
use super::status::{
    behavior, resource_metric_status, set_condition, ABLE_TO_SCALE, SCALING_ACTIVE, SCALING_LIMITED,
};
use crate::context::Ctx;
use crate::error::{Error, Result};

/// A failed metric: the ScalingActive=False (reason, message), the error its event
/// reports, and the error as `computeReplicasForMetrics` wraps it.
struct MetricFailure {
    reason: &'static str,
    message: String,
    event: String,
    error: String,
}

/// What the metrics propose.
struct Proposal {
    replicas: i32,
    metric: String,
    statuses: Vec<MetricStatus>,
}

/// One sync's borrowed context.
pub struct Sync<'a> {
    pub ctx: &'a Ctx,
    pub config: &'a HpaConfig,
    pub recorder: &'a Recorder,
    pub history: &'a mut History,
}

impl Sync<'_> {
    /// Upstream `reconcileAutoscaler`.
    pub async fn run(mut self, shared: &HorizontalPodAutoscaler) -> Result<()> {
        let mut hpa = shared.clone();
        let original = hpa.status.clone().unwrap_or_default();
        let mut status = original.clone();
        let now = self.ctx.clock.now();
        let ns = hpa.namespace().unwrap_or_default();
        let spec = hpa.spec.clone().unwrap_or_default();
        let target_ref = &spec.scale_target_ref;
        let reference = format!("{}/{}/{}", target_ref.kind, ns, target_ref.name);

        let scale = match self.scale(&ns, target_ref).await {
            Ok(s) => s,
            Err(e) => {
                self.recorder.warning(&hpa, "FailedGetScale", &e).await;
                set_condition(
                    &mut status,
                    ABLE_TO_SCALE,
                    false,
                    "FailedGetScale",
                    &format!(
                        "the HPA controller was unable to get the target's current scale: {e}"
                    ),
                    now,
                );
                self.update_status(&mut hpa, &original, status).await?;
                return Err(Error::Invalid(format!(
                    "failed to query scale subresource for {reference}: {e}"
                )));
            }
        };
        let (target, scale) = scale;
        set_condition(
            &mut status,
            ABLE_TO_SCALE,
            true,
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
            now,
        );
        let current = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        self.history.record_initial(current, now);
        let min = spec.min_replicas.unwrap_or(1);
        let max = spec.max_replicas;

        let mut statuses = Vec::new();
        let mut reason = String::new();
        let mut rescale = true;
        let mut desired;
        if current == 0 && min != 0 {
            desired = 0;
            rescale = false;
            set_condition(
                &mut status,
                SCALING_ACTIVE,
                false,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
                now,
            );
        } else if current > max {
            reason = "Current number of replicas above Spec.MaxReplicas".into();
            desired = max;
        } else if current < min {
            reason = "Current number of replicas below Spec.MinReplicas".into();
            desired = min;
        } else {
            let metrics = spec.metrics.as_deref().unwrap_or_default();
            let proposal = match self
                .compute_for_metrics(&hpa, &scale, metrics, &mut status)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    status.current_replicas = Some(current);
                    self.update_status(&mut hpa, &original, status).await?;
                    self.recorder
                        .warning(&hpa, "FailedComputeMetricsReplicas", &e)
                        .await;
                    return Err(Error::Invalid(format!(
                        "failed to compute desired number of replicas based on listed metrics for {reference}: {e}"
                    )));
                }
            };
            statuses = proposal.statuses;
            desired = proposal.replicas.max(0);
            if desired > current {
                reason = format!("{} above target", proposal.metric);
            }
            if desired < current {
                reason = "All metrics below target".into();
            }
            let normalized = match &spec.behavior {
                None => self.history.normalize(
                    current,
                    desired,
                    min,
                    max,
                    self.config.downscale_stabilization,
                    now,
                ),
                Some(b) => {
                    let b = behavior(b, self.config.downscale_window_seconds());
                    self.history
                        .normalize_with_behavior(&b, current, desired, min, max, now)
                }
            };
            let (ok, why, msg) = normalized.able_to_scale;
            set_condition(&mut status, ABLE_TO_SCALE, ok, why, msg, now);
            let (limited, why, msg) = normalized.scaling_limited;
            set_condition(&mut status, SCALING_LIMITED, limited, why, msg, now);
            desired = normalized.replicas;
            rescale = desired != current;
        }

        if rescale {
            if let Err(e) = target.set(scale, desired).await {
                let msg = format!("New size: {desired}; reason: {reason}; error: {e}");
                self.recorder.warning(&hpa, "FailedRescale", &msg).await;
                set_condition(
                    &mut status,
                    ABLE_TO_SCALE,
                    false,
                    "FailedUpdateScale",
                    &format!("the HPA controller was unable to update the target scale: {e}"),
                    now,
                );
                status.current_replicas = Some(current);
                self.update_status(&mut hpa, &original, status).await?;
                return Err(Error::Invalid(format!(
                    "failed to rescale {reference}: {e}"
                )));
            }
            set_condition(
                &mut status,
                ABLE_TO_SCALE,
                true,
                "SucceededRescale",
                &format!("the HPA controller was able to update the target scale to {desired}"),
                now,
            );
            self.recorder
                .normal(
                    &hpa,
                    "SuccessfulRescale",
                    &format!("New size: {desired}; reason: {reason}"),
                )
                .await;
            let b = spec
                .behavior
                .as_ref()
                .map(|b| behavior(b, self.config.downscale_window_seconds()));
            self.history
                .store_scale_event(b.as_ref(), current, desired, now);
            info!(hpa = %hpa.name_any(), old = current, new = desired, %reason, "successful rescale");
            status.last_scale_time = Some(Time(now));
        } else {
            desired = current;
        }
        status.current_replicas = Some(current);
        status.desired_replicas = desired;
        status.current_metrics = (!statuses.is_empty()).then_some(statuses);
        self.update_status(&mut hpa, &original, status).await
    }

    /// The target's scale subresource.
    async fn scale(
        &self,
        ns: &str,
        r: &k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference,
    ) -> std::result::Result<(source::Target, Scale), String> {
        let target = source::Target::resolve(&self.ctx.client, ns, r).await?;
        let scale = target.get().await.map_err(|e| match e {
            kube::Error::Api(s) => s.message,
            other => other.to_string(),
        })?;
        Ok((target, scale))
    }

    /// Writes the status when it changed (upstream `updateStatusIfNeeded`).
    async fn update_status(
        &self,
        hpa: &mut HorizontalPodAutoscaler,
        original: &HorizontalPodAutoscalerStatus,
        status: HorizontalPodAutoscalerStatus,
    ) -> Result<()> {
        if &status == original {
            return Ok(());
        }
        hpa.status = Some(status);
        let api: Api<HorizontalPodAutoscaler> = self.ctx.api(&hpa.namespace().unwrap_or_default());
        if let Err(e) = api
            .replace_status(&hpa.name_any(), &PostParams::default(), hpa)
            .await
        {
            self.recorder
                .warning(hpa, "FailedUpdateStatus", &e.to_string())
                .await;
            return Err(e.into());
        }
        Ok(())
    }

    /// Upstream `computeReplicasForMetrics`: the largest proposal of the valid metrics.
    async fn compute_for_metrics(
        &mut self,
        hpa: &HorizontalPodAutoscaler,
        scale: &Scale,
        metrics: &[MetricSpec],
        status: &mut HorizontalPodAutoscalerStatus,
    ) -> std::result::Result<Proposal, String> {
        let now = self.ctx.clock.now();
        let selector_text = scale
            .status
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        if selector_text.is_empty() {
            let msg = "selector is required";
            self.recorder.warning(hpa, "SelectorRequired", msg).await;
            set_condition(
                status,
                SCALING_ACTIVE,
                false,
                "InvalidSelector",
                "the HPA target's scale is missing a selector",
                now,
            );
            return Err(msg.into());
        }
        let selector = match LabelSelector::parse(&selector_text) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!(
                    "couldn't convert selector into a corresponding internal selector object: {e}"
                );
                self.recorder.warning(hpa, "InvalidSelector", &msg).await;
                set_condition(status, SCALING_ACTIVE, false, "InvalidSelector", &msg, now);
                return Err(msg);
            }
        };
        let spec_replicas = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let mut best: Option<(i32, String)> = None;
        let mut statuses = Vec::new();
        let mut invalid: Vec<MetricFailure> = Vec::new();
        for m in metrics {
            match self
                .compute_for_metric(hpa, m, spec_replicas, &selector, &selector_text)
                .await
            {
                Ok((replicas, name, st)) => {
                    statuses.push(st);
                    if best.as_ref().is_none_or(|(r, _)| replicas > *r) {
                        best = Some((replicas, name));
                    }
                }
                Err(f) => {
                    // An empty status keeps the statuses aligned with the specs, as upstream's
                    // (the table prints `<unknown>` for it).
                    statuses.push(MetricStatus::default());
                    self.recorder.warning(hpa, f.reason, &f.event).await;
                    invalid.push(f);
                }
            }
        }
        let replicas = best.as_ref().map_or(0, |(r, _)| *r);
        // All invalid, or some invalid and the rest would scale down: do not act.
        if !invalid.is_empty() && (invalid.len() >= metrics.len() || replicas < spec_replicas) {
            let first = &invalid[0];
            set_condition(
                status,
                SCALING_ACTIVE,
                false,
                first.reason,
                &first.message,
                now,
            );
            return Err(format!(
                "invalid metrics ({} invalid out of {}), first error is: {}",
                invalid.len(),
                metrics.len(),
                first.error
            ));
        }
        let Some((replicas, metric)) = best else {
            // No metrics at all: nothing to scale on.
            return Err("invalid metrics (0 invalid out of 0), first error is: <nil>".into());
        };
        set_condition(
            status,
            SCALING_ACTIVE,
            true,
            "ValidMetricFound",
            &format!("the HPA was able to successfully calculate a replica count from {metric}"),
            now,
        );
        Ok(Proposal {
            replicas,
            metric,
            statuses,
        })
    }

    /// Upstream `computeReplicasForMetric` for Resource and ContainerResource metrics.
    async fn compute_for_metric(
        &self,
        hpa: &HorizontalPodAutoscaler,
        spec: &MetricSpec,
        current: i32,
        selector: &LabelSelector,
        selector_text: &str,
    ) -> std::result::Result<(i32, String, MetricStatus), MetricFailure> {
        let (resource, container, target, reason, kind) = match spec.type_.as_str() {
            "Resource" => match &spec.resource {
                Some(r) => (
                    &r.name,
                    None,
                    &r.target,
                    "FailedGetResourceMetric",
                    "resource",
                ),
                None => return Err(invalid_source(spec, "FailedGetResourceMetric")),
            },
            "ContainerResource" => match &spec.container_resource {
                Some(r) => (
                    &r.name,
                    Some(r.container.as_str()),
                    &r.target,
                    "FailedGetContainerResourceMetric",
                    "container resource",
                ),
                None => return Err(invalid_source(spec, "FailedGetContainerResourceMetric")),
            },
            "Pods" | "Object" | "External" => {
                return Err(unavailable(spec));
            }
            other => {
                let e = format!("unknown metric source type {other:?}");
                return Err(failure("InvalidMetricSourceType", e.clone(), e));
            }
        };
        let fail = |what: &str, e: String| {
            let inner = format!("failed to get {resource} {what}: {e}");
            failure(
                reason,
                inner.clone(),
                format!("failed to get {resource} {kind} metric value: {inner}"),
            )
        };
        let target = match calc_target(target) {
            Ok(t) => t,
            Err(msg) => return Err(failure(reason, msg.clone(), msg)),
        };
        let what = match target {
            Target::Utilization(_) => "utilization",
            Target::AverageValue(_) => "usage",
        };
        let subject = Subject {
            resource,
            container,
        };
        let ns = hpa.namespace().unwrap_or_default();
        let samples = source::resource_metrics(&self.ctx.client, &ns, selector_text, subject)
            .await
            .map_err(|e| {
                fail(
                    what,
                    format!("unable to get metrics for resource {resource}: {e}"),
                )
            })?;
        let pods: Vec<_> =
            source::pods_matching(&self.ctx.informers.pods.list_namespace(&ns), selector)
                .iter()
                .map(|p| source::sample_of(p, subject))
                .collect();
        let now = self.ctx.clock.now();
        let p = resource_replicas(
            current,
            target,
            resource,
            &pods,
            &samples,
            now,
            &self.config.calc,
        )
        .map_err(|e| fail(what, e.to_string()))?;
        let name = match (target, container) {
            (Target::Utilization(_), None) => {
                format!("{resource} resource utilization (percentage of request)")
            }
            (Target::AverageValue(_), None) => format!("{resource} resource"),
            (Target::Utilization(_), Some(_)) => {
                format!("{resource} container resource utilization (percentage of request)")
            }
            (Target::AverageValue(_), Some(_)) => format!("{resource} container resource"),
        };
        Ok((
            p.replicas,
            name,
            resource_metric_status(resource, container, p.utilization, p.average),
        ))
    }
}

fn failure(reason: &'static str, error: String, wrapped: String) -> MetricFailure {
    MetricFailure {
        reason,
        message: format!("the HPA was unable to compute the replica count: {error}"),
        event: error,
        error: wrapped,
    }
}

fn invalid_source(spec: &MetricSpec, reason: &'static str) -> MetricFailure {
    let e = format!(
        "invalid {} metric source: the source is missing",
        spec.type_
    );
    failure(reason, e.clone(), e)
}

/// Pods, Object and External metrics come from the custom and external metrics APIs,
/// which this cluster does not serve: reported as upstream does when they are absent.
fn unavailable(spec: &MetricSpec) -> MetricFailure {
    let (reason, api) = match spec.type_.as_str() {
        "Pods" => ("FailedGetPodsMetric", "custom metrics API"),
        "Object" => ("FailedGetObjectMetric", "custom metrics API"),
        _ => ("FailedGetExternalMetric", "external metrics API"),
    };
    let e = format!("unable to fetch metrics from {api}: no {api} is served by this cluster");
    failure(reason, e.clone(), e)
}

/// The calculator's target of a MetricTarget (AverageValue wins, as upstream checks it first).
fn calc_target(t: &MetricTarget) -> std::result::Result<Target, String> {
    if let Some(v) = &t.average_value {
        let q = Quantity::parse(&v.0).map_err(|e| format!("invalid averageValue: {e}"))?;
        return Ok(Target::AverageValue(q.milli_value()));
    }
    match t.average_utilization {
        Some(u) => Ok(Target::Utilization(u)),
        None => Err(
            "invalid resource metric source: neither an average utilization target nor an average value (usage) target was set"
                .into(),
        ),
    }
}
