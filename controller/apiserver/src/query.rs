//! Query parameters of API requests.

use std::collections::HashMap;

use bramble_api::Status;

/// Query parameters, decoded. Repeated keys keep the first value.
#[derive(Debug, Default, Clone)]
pub struct Query {
    params: HashMap<String, String>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut params = HashMap::new();
        if let Some(q) = raw {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                params
                    .entry(k.into_owned())
                    .or_insert_with(|| v.into_owned());
            }
        }
        Query { params }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true") | Some("1"))
    }

    pub fn u64(&self, key: &str) -> Result<Option<u64>, Status> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                Status::bad_request(format!("invalid value {v:?} for query parameter {key}"))
            }),
        }
    }

    pub fn i64(&self, key: &str) -> Result<Option<i64>, Status> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                Status::bad_request(format!("invalid value {v:?} for query parameter {key}"))
            }),
        }
    }

    /// `dryRun=All` (the only value upstream accepts).
    pub fn dry_run(&self) -> Result<bool, Status> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(Status::bad_request(format!(
                "Invalid dry run value: \"{other}\", supported values: All"
            ))),
        }
    }

    /// `fieldValidation`: upstream defaults to Warn for requests without it... kubectl sends
    /// Strict; Bramble reports unknown fields accordingly.
    pub fn field_validation(&self) -> Result<FieldValidation, Status> {
        match self.get("fieldValidation") {
            None | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(Status::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_selectors() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb%2Ctier+in+%28a%2Cb%29&limit=5&watch=true",
        ));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a,b)"));
        assert_eq!(q.u64("limit").unwrap(), Some(5));
        assert!(q.flag("watch"));
        assert!(q.u64("nope").unwrap().is_none());
        assert!(Query::parse(Some("limit=x")).u64("limit").is_err());
    }

    #[test]
    fn dry_run_values() {
        assert!(Query::parse(Some("dryRun=All")).dry_run().unwrap());
        assert!(Query::parse(Some("dryRun=Some")).dry_run().is_err());
    }
}
