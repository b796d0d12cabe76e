//! `labelSelector` and `fieldSelector` of list and watch requests, applied to stored JSON.

use serde_json::Value;

use bramble_api::selectors::{FieldSelector, LabelSelector};
use bramble_api::{ResourceInfo, Status};

use crate::query::Query;

/// The selectors of one request.
pub struct Filter {
    label: Option<LabelSelector>,
    field: Option<FieldSelector>,
    name: Option<String>,
}

impl Filter {
    /// `None` when the request selects everything.
    pub fn from_query(info: &ResourceInfo, q: &Query) -> Result<Option<Filter>, Status> {
        let label = q
            .get("labelSelector")
            .map(LabelSelector::parse)
            .transpose()?;
        let field = q
            .get("fieldSelector")
            .map(|s| FieldSelector::parse_for(info, s))
            .transpose()?;
        let label = label.filter(|l| !l.is_everything());
        let field = field.filter(|f| !f.is_everything());
        if label.is_none() && field.is_none() {
            return Ok(None);
        }
        Ok(Some(Filter {
            label,
            field,
            name: None,
        }))
    }

    /// Adds a `metadata.name` match to a filter (or makes one).
    pub fn and_name(filter: Option<Filter>, name: &str) -> Filter {
        let mut f = filter.unwrap_or(Filter {
            label: None,
            field: None,
            name: None,
        });
        f.name = Some(name.to_string());
        f
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(name) = &self.name {
            if bramble_api::meta::name(obj) != Some(name.as_str()) {
                return false;
            }
        }
        if let Some(l) = &self.label {
            if !l.matches_object(obj) {
                return false;
            }
        }
        self.field.as_ref().is_none_or(|f| f.matches(obj))
    }

    /// Matches stored JSON; an undecodable object matches nothing.
    pub fn matches_raw(&self, raw: &[u8]) -> bool {
        serde_json::from_slice::<Value>(raw).is_ok_and(|v| self.matches(&v))
    }
}
