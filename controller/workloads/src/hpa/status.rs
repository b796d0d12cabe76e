//! The autoscaler's status: conditions set as upstream's `setCondition` (the transition
//! time moves only when the status flips), metric statuses, and the spec's `behavior` with
//! defaults filled in.

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricStatus, HPAScalingRules, HorizontalPodAutoscalerBehavior,
    HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus, MetricStatus,
    MetricValueStatus, ResourceMetricStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use bramble_api::quantity::Quantity;

use super::normalize::{Behavior, Policy, PolicyKind, Rules, Select};

/// Condition types.
pub const ABLE_TO_SCALE: &str = "AbleToScale";
pub const SCALING_ACTIVE: &str = "ScalingActive";
pub const SCALING_LIMITED: &str = "ScalingLimited";

/// Sets condition `type_` (added when absent; the transition time changes with the status).
pub fn set_condition(
    status: &mut HorizontalPodAutoscalerStatus,
    type_: &str,
    value: bool,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let conds = status.conditions.get_or_insert_with(Vec::new);
    let text = if value { "True" } else { "False" };
    let idx = match conds.iter().position(|c| c.type_ == type_) {
        Some(i) => i,
        None => {
            conds.push(HorizontalPodAutoscalerCondition {
                type_: type_.into(),
                ..Default::default()
            });
            conds.len() - 1
        }
    };
    let c = &mut conds[idx];
    if c.status != text {
        c.last_transition_time = Some(Time(now));
    }
    c.status = text.into();
    c.reason = Some(reason.into());
    c.message = Some(message.into());
}

/// A quantity of `milli` milli-units as upstream's `NewMilliQuantity(v, DecimalSI)`.
pub fn milli_quantity(milli: i64) -> K8sQuantity {
    K8sQuantity(Quantity::from_milli(milli).canonical())
}

/// The status of a Resource (or, with `container`, ContainerResource) metric.
pub fn resource_metric_status(
    resource: &str,
    container: Option<&str>,
    utilization: Option<i32>,
    average: i64,
) -> MetricStatus {
    let current = MetricValueStatus {
        average_utilization: utilization,
        average_value: Some(milli_quantity(average)),
        value: None,
    };
    match container {
        None => MetricStatus {
            type_: "Resource".into(),
            resource: Some(ResourceMetricStatus {
                name: resource.into(),
                current,
            }),
            ..Default::default()
        },
        Some(c) => MetricStatus {
            type_: "ContainerResource".into(),
            container_resource: Some(ContainerResourceMetricStatus {
                name: resource.into(),
                container: c.into(),
                current,
            }),
            ..Default::default()
        },
    }
}

fn rules(r: Option<&HPAScalingRules>, default: Rules) -> Rules {
    let Some(r) = r else {
        return default;
    };
    let select = match r.select_policy.as_deref() {
        Some("Min") => Select::Min,
        Some("Disabled") => Select::Disabled,
        _ => Select::Max,
    };
    let policies = match r.policies.as_deref() {
        Some(ps) if !ps.is_empty() => ps
            .iter()
            .map(|p| Policy {
                kind: if p.type_ == "Percent" {
                    PolicyKind::Percent
                } else {
                    PolicyKind::Pods
                },
                value: p.value,
                period_seconds: p.period_seconds,
            })
            .collect(),
        _ => default.policies,
    };
    Rules {
        stabilization_window_seconds: r
            .stabilization_window_seconds
            .unwrap_or(default.stabilization_window_seconds),
        select,
        policies,
    }
}

/// `spec.behavior` with upstream's defaults (`GenerateHPAScaleUpRules`/`...ScaleDownRules`
/// and the controller's downscale window when the scale-down window is unset).
pub fn behavior(b: &HorizontalPodAutoscalerBehavior, downscale_window_seconds: i32) -> Behavior {
    Behavior {
        up: rules(b.scale_up.as_ref(), Rules::default_up()),
        down: rules(
            b.scale_down.as_ref(),
            Rules::default_down(downscale_window_seconds),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    #[test]
    fn conditions_move_their_transition_time_only_on_flips() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut s = HorizontalPodAutoscalerStatus::default();
        set_condition(&mut s, ABLE_TO_SCALE, true, "SucceededGetScale", "m1", t0);
        let t1 = t0 + SignedDuration::from_secs(15);
        set_condition(&mut s, ABLE_TO_SCALE, true, "ReadyForNewScale", "m2", t1);
        let c = &s.conditions.as_ref().unwrap()[0];
        assert_eq!(c.last_transition_time, Some(Time(t0)));
        assert_eq!(c.reason.as_deref(), Some("ReadyForNewScale"));
        set_condition(&mut s, ABLE_TO_SCALE, false, "FailedGetScale", "m3", t1);
        let c = &s.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.status.as_str(), c.last_transition_time.clone()),
            ("False", Some(Time(t1)))
        );
        set_condition(&mut s, SCALING_ACTIVE, true, "ValidMetricFound", "m4", t1);
        assert_eq!(s.conditions.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn quantities_as_upstream_prints_them() {
        assert_eq!(milli_quantity(250).0, "250m");
        assert_eq!(milli_quantity(2000).0, "2");
        assert_eq!(milli_quantity(1_048_576_000).0, "1048576");
    }

    #[test]
    fn behavior_defaults() {
        let b = behavior(&HorizontalPodAutoscalerBehavior::default(), 300);
        assert_eq!(b.up, Rules::default_up());
        assert_eq!(b.down, Rules::default_down(300));
        let b = behavior(
            &HorizontalPodAutoscalerBehavior {
                scale_down: Some(HPAScalingRules {
                    stabilization_window_seconds: Some(5),
                    ..Default::default()
                }),
                ..Default::default()
            },
            300,
        );
        assert_eq!(b.down.stabilization_window_seconds, 5);
        assert_eq!(b.down.policies, Rules::default_down(0).policies);
    }
}
