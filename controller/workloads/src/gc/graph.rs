//! The garbage collector's decisions, as a pure function of the ownership graph (upstream's
//! `attemptToDeleteItem`, `orphanDependents` and `processDeletingDependentsItem`).

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// Finalizer asking the collector to orphan dependents before the owner goes.
pub const ORPHAN: &str = "orphan";
/// Finalizer asking the collector to delete blocking dependents before the owner goes.
pub const FOREGROUND: &str = "foregroundDeletion";

/// One object, as far as ownership goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Index of the resource it was listed from (the runner's table).
    pub resource: usize,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub owners: Vec<OwnerReference>,
    pub finalizers: Vec<String>,
    pub deleting: bool,
}

/// How a dependent is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// One thing the collector does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Delete `uid` with `propagation`; `verify` lists owner references believed gone that
    /// must be confirmed absent with a live read first.
    Delete {
        uid: String,
        propagation: Propagation,
        verify: Vec<OwnerReference>,
    },
    /// Remove the owner references with these uids from `uid` (dangling ones after a live
    /// check listed in `verify`).
    RemoveOwners {
        uid: String,
        owners: Vec<String>,
        verify: Vec<OwnerReference>,
    },
    /// Remove a finalizer from `uid`.
    RemoveFinalizer {
        uid: String,
        finalizer: &'static str,
    },
}

/// The graph: every object by uid, and the set of (group, kind) the graph covers.
#[derive(Debug, Default)]
pub struct Graph {
    pub nodes: HashMap<String, Node>,
    pub known_kinds: BTreeSet<(String, String)>,
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

impl Graph {
    fn has(&self, n: &Node, f: &str) -> bool {
        let _ = self;
        n.finalizers.iter().any(|x| x == f)
    }

    /// What the collector should do now.
    pub fn plan(&self) -> Vec<Action> {
        let mut dependents: HashMap<&str, Vec<&Node>> = HashMap::new();
        for n in self.nodes.values() {
            for o in &n.owners {
                dependents.entry(o.uid.as_str()).or_default().push(n);
            }
        }
        let mut actions = Vec::new();
        let mut uids: Vec<&String> = self.nodes.keys().collect();
        uids.sort();
        for uid in uids {
            let n = &self.nodes[uid];
            let deps = dependents
                .get(uid.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if n.deleting && self.has(n, ORPHAN) {
                if deps.is_empty() {
                    actions.push(Action::RemoveFinalizer {
                        uid: uid.clone(),
                        finalizer: ORPHAN,
                    });
                } else {
                    for d in deps {
                        actions.push(Action::RemoveOwners {
                            uid: d.uid.clone(),
                            owners: vec![uid.clone()],
                            verify: Vec::new(),
                        });
                    }
                }
                continue;
            }
            if n.deleting && self.has(n, FOREGROUND) {
                let blocking = deps.iter().any(|d| {
                    d.owners
                        .iter()
                        .any(|o| &o.uid == uid && o.block_owner_deletion == Some(true))
                });
                if !blocking {
                    actions.push(Action::RemoveFinalizer {
                        uid: uid.clone(),
                        finalizer: FOREGROUND,
                    });
                }
            }
            if !n.owners.is_empty() && (!n.deleting || self.has(n, FOREGROUND)) {
                if let Some(a) = self.plan_dependent(n, !deps.is_empty()) {
                    actions.push(a);
                }
            }
        }
        actions
    }

    fn plan_dependent(&self, n: &Node, has_dependents: bool) -> Option<Action> {
        let mut solid = 0;
        let mut dangling = Vec::new();
        let mut waiting = Vec::new();
        for o in &n.owners {
            let known = self
                .known_kinds
                .contains(&(group_of(&o.api_version).to_string(), o.kind.clone()));
            match self.nodes.get(&o.uid) {
                Some(owner) if owner.deleting && self.has(owner, FOREGROUND) => waiting.push(o),
                Some(_) => solid += 1,
                None if known => dangling.push(o.clone()),
                None => solid += 1,
            }
        }
        if solid > 0 {
            if dangling.is_empty() && waiting.is_empty() {
                return None;
            }
            let owners = dangling
                .iter()
                .map(|o| o.uid.clone())
                .chain(waiting.iter().map(|o| o.uid.clone()))
                .collect();
            return Some(Action::RemoveOwners {
                uid: n.uid.clone(),
                owners,
                verify: dangling,
            });
        }
        if n.deleting {
            return None;
        }
        let propagation = if !waiting.is_empty() && has_dependents {
            Propagation::Foreground
        } else if self.has(n, ORPHAN) {
            Propagation::Orphan
        } else if self.has(n, FOREGROUND) {
            Propagation::Foreground
        } else {
            Propagation::Background
        };
        Some(Action::Delete {
            uid: n.uid.clone(),
            propagation,
            verify: dangling,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(uid: &str, owners: &[(&str, &str, bool)]) -> Node {
        Node {
            resource: 0,
            namespace: Some("default".into()),
            name: uid.into(),
            uid: uid.into(),
            resource_version: "1".into(),
            owners: owners
                .iter()
                .map(|(uid, kind, block)| OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: kind.to_string(),
                    name: uid.to_string(),
                    uid: uid.to_string(),
                    controller: Some(true),
                    block_owner_deletion: Some(*block),
                })
                .collect(),
            finalizers: Vec::new(),
            deleting: false,
        }
    }

    fn graph(nodes: Vec<Node>) -> Graph {
        let mut g = Graph::default();
        g.known_kinds.insert(("apps".into(), "Deployment".into()));
        g.known_kinds.insert(("apps".into(), "ReplicaSet".into()));
        for n in nodes {
            g.nodes.insert(n.uid.clone(), n);
        }
        g
    }

    #[test]
    fn owned_objects_with_live_owners_are_left_alone() {
        let g = graph(vec![
            node("d", &[]),
            node("rs", &[("d", "Deployment", true)]),
        ]);
        assert!(g.plan().is_empty());
    }

    #[test]
    fn dependents_of_a_vanished_owner_are_deleted_in_background() {
        let g = graph(vec![node("rs", &[("d", "Deployment", true)])]);
        let plan = g.plan();
        assert_eq!(plan.len(), 1);
        match &plan[0] {
            Action::Delete {
                uid,
                propagation,
                verify,
            } => {
                assert_eq!(uid, "rs");
                assert_eq!(*propagation, Propagation::Background);
                assert_eq!(verify.len(), 1, "the owner is confirmed gone live first");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn owners_of_unknown_kinds_count_as_present() {
        let mut n = node("cm", &[("x", "Widget", true)]);
        n.owners[0].api_version = "example.com/v1".into();
        assert!(graph(vec![n]).plan().is_empty());
    }

    #[test]
    fn orphan_finalizer_strips_owner_refs_then_itself() {
        let mut d = node("d", &[]);
        d.deleting = true;
        d.finalizers = vec![ORPHAN.into()];
        let g = graph(vec![d.clone(), node("rs", &[("d", "Deployment", true)])]);
        assert_eq!(
            g.plan(),
            vec![Action::RemoveOwners {
                uid: "rs".into(),
                owners: vec!["d".into()],
                verify: vec![]
            }]
        );
        let g = graph(vec![d, node("rs", &[])]);
        assert_eq!(
            g.plan(),
            vec![Action::RemoveFinalizer {
                uid: "d".into(),
                finalizer: ORPHAN
            }]
        );
    }

    #[test]
    fn foreground_deletes_dependents_and_waits_for_blocking_ones() {
        let mut d = node("d", &[]);
        d.deleting = true;
        d.finalizers = vec![FOREGROUND.into()];
        let rs = node("rs", &[("d", "Deployment", true)]);
        let pod = node("p", &[("rs", "ReplicaSet", true)]);
        let g = graph(vec![d.clone(), rs.clone(), pod]);
        let plan = g.plan();
        assert_eq!(
            plan,
            vec![Action::Delete {
                uid: "rs".into(),
                propagation: Propagation::Foreground,
                verify: vec![]
            }],
            "the ReplicaSet (which has pods) goes in the foreground; the owner waits"
        );
        let g = graph(vec![d.clone(), node("rs", &[("d", "Deployment", false)])]);
        let plan = g.plan();
        assert!(plan.contains(&Action::RemoveFinalizer {
            uid: "d".into(),
            finalizer: FOREGROUND
        }));
    }

    #[test]
    fn one_live_owner_keeps_the_object_and_drops_the_dangling_reference() {
        let g = graph(vec![
            node("d1", &[]),
            node(
                "rs",
                &[("d1", "Deployment", false), ("d2", "Deployment", false)],
            ),
        ]);
        assert_eq!(
            g.plan(),
            vec![Action::RemoveOwners {
                uid: "rs".into(),
                owners: vec!["d2".into()],
                verify: vec![g.nodes["rs"].owners[1].clone()]
            }]
        );
    }
}
