//! `kind: Status` errors with upstream reasons and codes.

use serde_json::{json, Value};

/// Upstream `metav1.StatusReason` values Bramble returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    AlreadyExists,
    Conflict,
    Gone,
    Expired,
    Invalid,
    MethodNotAllowed,
    NotAcceptable,
    RequestEntityTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    InternalError,
    ServiceUnavailable,
    Timeout,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BadRequest => "BadRequest",
            Reason::Unauthorized => "Unauthorized",
            Reason::Forbidden => "Forbidden",
            Reason::NotFound => "NotFound",
            Reason::AlreadyExists => "AlreadyExists",
            Reason::Conflict => "Conflict",
            Reason::Gone => "Gone",
            Reason::Expired => "Expired",
            Reason::Invalid => "Invalid",
            Reason::MethodNotAllowed => "MethodNotAllowed",
            Reason::NotAcceptable => "NotAcceptable",
            Reason::RequestEntityTooLarge => "RequestEntityTooLarge",
            Reason::UnsupportedMediaType => "UnsupportedMediaType",
            Reason::TooManyRequests => "TooManyRequests",
            Reason::InternalError => "InternalError",
            Reason::ServiceUnavailable => "ServiceUnavailable",
            Reason::Timeout => "Timeout",
        }
    }

    pub fn code(self) -> u16 {
        match self {
            Reason::BadRequest => 400,
            Reason::Unauthorized => 401,
            Reason::Forbidden => 403,
            Reason::NotFound => 404,
            Reason::MethodNotAllowed => 405,
            Reason::NotAcceptable => 406,
            Reason::AlreadyExists | Reason::Conflict => 409,
            Reason::Gone | Reason::Expired => 410,
            Reason::RequestEntityTooLarge => 413,
            Reason::UnsupportedMediaType => 415,
            Reason::Invalid => 422,
            Reason::TooManyRequests => 429,
            Reason::InternalError => 500,
            Reason::ServiceUnavailable => 503,
            Reason::Timeout => 504,
        }
    }
}

/// One `details.causes` entry: upstream `field.Error` rendered as a `StatusCause`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Upstream cause type, e.g. `FieldValueRequired`, `FieldValueInvalid`,
    /// `FieldValueNotSupported`, `FieldValueDuplicate`, `FieldValueForbidden`,
    /// `FieldValueTooLong`.
    pub reason: String,
    /// The whole upstream `field.Error` text, e.g.
    /// `Required value` or `Invalid value: "Foo": a lowercase RFC 1123 ...`.
    pub message: String,
    /// The field path, e.g. `spec.containers[0].image` or `metadata.name`.
    pub field: String,
}

/// A `kind: Status` failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub reason: Reason,
    pub message: String,
    /// `details.name`, `details.group`, `details.kind`.
    pub name: Option<String>,
    pub group: Option<String>,
    pub kind: Option<String>,
    pub causes: Vec<Cause>,
    /// `details.retryAfterSeconds`.
    pub retry_after_seconds: Option<u32>,
}

impl Status {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Status {
            reason,
            message: message.into(),
            name: None,
            group: None,
            kind: None,
            causes: Vec::new(),
            retry_after_seconds: None,
        }
    }

    pub fn code(&self) -> u16 {
        self.reason.code()
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Status::new(Reason::BadRequest, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Status::new(Reason::InternalError, message)
    }

    /// `resource` is the plural resource with its group, as upstream prints it
    /// (`pods`, `deployments.apps`).
    pub fn not_found(qualified_resource: &str, group: &str, name: &str) -> Self {
        let mut s = Status::new(
            Reason::NotFound,
            format!("{qualified_resource} \"{name}\" not found"),
        );
        s.name = Some(name.to_string());
        s.group = Some(group.to_string());
        s.kind = Some(plural_of(qualified_resource));
        s
    }

    pub fn already_exists(qualified_resource: &str, group: &str, name: &str) -> Self {
        let mut s = Status::new(
            Reason::AlreadyExists,
            format!("{qualified_resource} \"{name}\" already exists"),
        );
        s.name = Some(name.to_string());
        s.group = Some(group.to_string());
        s.kind = Some(plural_of(qualified_resource));
        s
    }

    /// Upstream's optimistic-concurrency conflict message.
    pub fn conflict(qualified_resource: &str, group: &str, name: &str) -> Self {
        let mut s = Status::new(
            Reason::Conflict,
            format!(
                "Operation cannot be fulfilled on {qualified_resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        );
        s.name = Some(name.to_string());
        s.group = Some(group.to_string());
        s.kind = Some(plural_of(qualified_resource));
        s
    }

    /// 422 Invalid: `<Kind> "<name>" is invalid: [cause, cause]` as upstream formats it.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let rendered: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let list = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let mut s = Status::new(
            Reason::Invalid,
            format!("{kind} \"{name}\" is invalid: {list}"),
        );
        s.name = Some(name.to_string());
        s.group = Some(group.to_string());
        s.kind = Some(kind.to_string());
        s.causes = causes;
        s
    }

    /// 410 Expired for a compacted resourceVersion.
    pub fn expired(message: impl Into<String>) -> Self {
        Status::new(Reason::Expired, message)
    }

    /// The `kind: Status` JSON body.
    pub fn to_json(&self) -> Value {
        let mut details = serde_json::Map::new();
        if let Some(n) = &self.name {
            details.insert("name".into(), json!(n));
        }
        if let Some(g) = &self.group {
            details.insert("group".into(), json!(g));
        }
        if let Some(k) = &self.kind {
            details.insert("kind".into(), json!(k));
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(r) = self.retry_after_seconds {
            details.insert("retryAfterSeconds".into(), json!(r));
        }
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
            "code": self.code(),
        });
        if !details.is_empty() {
            body["details"] = Value::Object(details);
        }
        body
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.reason.as_str(),
            self.code(),
            self.message
        )
    }
}

impl std::error::Error for Status {}

/// `details.kind` upstream is the plural resource without its group.
fn plural_of(qualified: &str) -> String {
    qualified.split('.').next().unwrap_or(qualified).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_formats_like_upstream() {
        let s = Status::invalid(
            "Pod",
            "",
            "x",
            vec![Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "spec.containers[0].image".into(),
            }],
        );
        assert_eq!(
            s.message,
            "Pod \"x\" is invalid: spec.containers[0].image: Required value"
        );
        let j = s.to_json();
        assert_eq!(j["code"], 422);
        assert_eq!(
            j["details"]["causes"][0]["field"],
            "spec.containers[0].image"
        );
    }

    #[test]
    fn not_found_names_the_resource() {
        let s = Status::not_found("deployments.apps", "apps", "web");
        assert_eq!(s.message, "deployments.apps \"web\" not found");
        assert_eq!(s.to_json()["details"]["kind"], "deployments");
        assert_eq!(s.code(), 404);
    }
}
