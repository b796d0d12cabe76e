//! `imagePullPolicy` semantics as pure functions, following the kubelet's image manager
//! (`shouldPullImage` and `EnsureImageExists`) and the API defaulting of the field.

use std::fmt;

use crate::reference::{ImageRef, DEFAULT_TAG};

/// A container's `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PullPolicy {
    /// Always ask the registry (a cached image with the same digest is reused).
    Always,
    /// Pull only when the image is not in the store.
    IfNotPresent,
    /// Never pull; fail with `ErrImageNeverPull` when the image is missing.
    Never,
}

impl PullPolicy {
    /// Parses the API value (`Always`, `IfNotPresent`, `Never`); `None` for anything else.
    pub fn from_api(s: &str) -> Option<Self> {
        match s {
            "Always" => Some(Self::Always),
            "IfNotPresent" => Some(Self::IfNotPresent),
            "Never" => Some(Self::Never),
            _ => None,
        }
    }

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }

    /// The API server's default when the field is empty: `Always` when the image's tag is
    /// `latest` (explicitly or by default, i.e. no tag and no digest), otherwise `IfNotPresent`.
    /// An image string that does not parse defaults to `IfNotPresent`, as upstream (the error
    /// surfaces later as `InvalidImageName`).
    pub fn default_for_image(image: &str) -> Self {
        match ImageRef::parse_with_default_tag(image) {
            Ok(r) if r.tag() == Some(DEFAULT_TAG) => Self::Always,
            _ => Self::IfNotPresent,
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the kubelet does about a container's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullAction {
    /// Pull from the registry.
    Pull,
    /// Use the image already present (upstream event: `Container image "x" already present on
    /// machine`, reason `Pulled`).
    UsePresent,
}

/// The kubelet's `ErrImageNeverPull`: policy `Never` and the image is not present.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Container image \"{image}\" is not present with pull policy of Never")]
pub struct ImageNeverPull {
    /// The image string as written in the container spec.
    pub image: String,
}

impl ImageNeverPull {
    /// The container status reason upstream reports.
    pub const REASON: &'static str = "ErrImageNeverPull";
}

/// Upstream `shouldPullImage` + the `Never` branch of `EnsureImageExists`: decides from the
/// policy and whether the image is present. `image` is the container's image string, used in
/// the error message verbatim.
pub fn decide_pull(
    policy: PullPolicy,
    image: &str,
    present: bool,
) -> Result<PullAction, ImageNeverPull> {
    match (policy, present) {
        (PullPolicy::Always, _) | (PullPolicy::IfNotPresent, false) => Ok(PullAction::Pull),
        (PullPolicy::IfNotPresent, true) | (PullPolicy::Never, true) => Ok(PullAction::UsePresent),
        (PullPolicy::Never, false) => Err(ImageNeverPull {
            image: image.to_string(),
        }),
    }
}

/// The event message upstream records when a present image is reused.
pub fn already_present_message(image: &str) -> String {
    format!("Container image \"{image}\" already present on machine")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_pulls_even_when_present() {
        assert_eq!(
            decide_pull(PullPolicy::Always, "busybox", true),
            Ok(PullAction::Pull)
        );
        assert_eq!(
            decide_pull(PullPolicy::Always, "busybox", false),
            Ok(PullAction::Pull)
        );
    }

    #[test]
    fn if_not_present_pulls_only_when_missing() {
        assert_eq!(
            decide_pull(PullPolicy::IfNotPresent, "busybox", true),
            Ok(PullAction::UsePresent)
        );
        assert_eq!(
            decide_pull(PullPolicy::IfNotPresent, "busybox", false),
            Ok(PullAction::Pull)
        );
    }

    #[test]
    fn never_uses_present_or_fails_with_upstream_message() {
        assert_eq!(
            decide_pull(PullPolicy::Never, "x", true),
            Ok(PullAction::UsePresent)
        );
        let err = decide_pull(PullPolicy::Never, "x", false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Container image \"x\" is not present with pull policy of Never"
        );
        assert_eq!(ImageNeverPull::REASON, "ErrImageNeverPull");
    }

    #[test]
    fn defaults_follow_the_latest_tag() {
        assert_eq!(PullPolicy::default_for_image("busybox"), PullPolicy::Always);
        assert_eq!(
            PullPolicy::default_for_image("busybox:latest"),
            PullPolicy::Always
        );
        assert_eq!(
            PullPolicy::default_for_image("busybox:1.36"),
            PullPolicy::IfNotPresent
        );
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            PullPolicy::default_for_image(&format!("busybox@{d}")),
            PullPolicy::IfNotPresent
        );
        assert_eq!(PullPolicy::from_api("Never"), Some(PullPolicy::Never));
        assert_eq!(PullPolicy::from_api("never"), None);
        assert_eq!(
            already_present_message("busybox"),
            "Container image \"busybox\" already present on machine"
        );
    }
}
