//! Which Ingresses this controller serves: those of an IngressClass whose `spec.controller`
//! is [`CONTROLLER`], those naming no class while such a class is the default
//! (`ingressclass.kubernetes.io/is-default-class: "true"`), and those carrying the legacy
//! `kubernetes.io/ingress.class` annotation with one of its class names.

use std::sync::Arc;

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use serde_json::json;

/// The default IngressClass name.
pub const CLASS_NAME: &str = "bramble";
/// `spec.controller` of the IngressClasses served here.
pub const CONTROLLER: &str = "bramble.dev/ingress";
/// The annotation marking the default IngressClass.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// The deprecated per-Ingress class annotation (still honoured by upstream controllers).
pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The `bramble` IngressClass, marked as the cluster's default.
pub fn ingress_class() -> IngressClass {
    serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": CLASS_NAME, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "spec": {"controller": CONTROLLER},
    }))
    .expect("valid IngressClass")
}

fn ours(class: &IngressClass) -> bool {
    class.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(CONTROLLER)
}

fn is_default(class: &IngressClass) -> bool {
    class
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Whether `ing` belongs to this controller, given the cluster's IngressClasses.
pub fn served(ing: &Ingress, classes: &[Arc<IngressClass>]) -> bool {
    let named = |name: &str| {
        classes
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some(name) && ours(c))
    };
    let spec_class = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref());
    let legacy = ing
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION))
        .map(String::as_str);
    match spec_class.or(legacy) {
        Some(name) => named(name),
        // As upstream's DefaultIngressClass admission: with several default classes none
        // applies; with one, the Ingress is that class's.
        None => {
            let defaults: Vec<_> = classes.iter().filter(|c| is_default(c)).collect();
            defaults.len() == 1 && ours(defaults[0])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ing(class: Option<&str>, legacy: Option<&str>) -> Ingress {
        let mut v = json!({"metadata": {"name": "i", "namespace": "d"}, "spec": {}});
        if let Some(c) = class {
            v["spec"]["ingressClassName"] = json!(c);
        }
        if let Some(c) = legacy {
            v["metadata"]["annotations"] = json!({LEGACY_CLASS_ANNOTATION: c});
        }
        serde_json::from_value(v).unwrap()
    }

    fn class(name: &str, controller: &str, default: bool) -> Arc<IngressClass> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "annotations": {DEFAULT_CLASS_ANNOTATION: default.to_string()}},
                "spec": {"controller": controller},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn class_selection() {
        let ours_default = vec![
            Arc::new(ingress_class()),
            class("nginx", "k8s.io/ingress-nginx", false),
        ];
        assert!(served(&ing(Some("bramble"), None), &ours_default));
        assert!(served(&ing(None, None), &ours_default));
        assert!(served(&ing(None, Some("bramble")), &ours_default));
        assert!(!served(&ing(Some("nginx"), None), &ours_default));
        assert!(!served(&ing(None, Some("nginx")), &ours_default));
        assert!(!served(&ing(Some("missing"), None), &ours_default));
        // Another default class takes the class-less Ingresses; two defaults: none.
        let other_default = vec![
            class("bramble", CONTROLLER, false),
            class("nginx", "k8s.io/ingress-nginx", true),
        ];
        assert!(!served(&ing(None, None), &other_default));
        assert!(served(&ing(Some("bramble"), None), &other_default));
        let two = vec![
            class("bramble", CONTROLLER, true),
            class("nginx", "k8s.io/ingress-nginx", true),
        ];
        assert!(!served(&ing(None, None), &two));
        // No classes at all: nothing is ours.
        assert!(!served(&ing(None, None), &[]));
    }
}
