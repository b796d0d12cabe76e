//! A pod's `/etc/resolv.conf` per `dnsPolicy` and `dnsConfig`, as upstream's kubelet builds
//! it (`pkg/kubelet/network/dns`): ClusterFirst gives the cluster DNS with the search path
//! `<ns>.svc.<domain> svc.<domain> <domain>` (then the node's) and `ndots:5`; Default gives
//! the node's resolv.conf; None only what `dnsConfig` says; a hostNetwork pod's ClusterFirst
//! falls back to Default unless the policy is ClusterFirstWithHostNet. `dnsConfig` is merged
//! on top (nameservers and searches appended, options replaced by name).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;

/// Upstream's limits: 3 nameservers, 32 search domains of at most 2048 characters.
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;

/// The node's DNS settings the kubelet knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterDns {
    /// `--cluster-dns`: the cluster DNS Service IPs (empty: pods fall back to Default).
    pub servers: Vec<IpAddr>,
    /// `--cluster-domain`.
    pub domain: String,
}

/// The parts of a resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` lines.
    pub nameservers: Vec<String>,
    /// The `search` line.
    pub searches: Vec<String>,
    /// `options` (`name` or `name:value`).
    pub options: Vec<String>,
}

impl ResolvConf {
    /// Parses a resolv.conf text (as the node's `/etc/resolv.conf`).
    pub fn parse(text: &str) -> ResolvConf {
        let mut out = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => out.nameservers.extend(words.next().map(str::to_string)),
                Some("search") | Some("domain") => {
                    out.searches = words.map(str::to_string).collect();
                }
                Some("options") => out.options.extend(words.map(str::to_string)),
                _ => {}
            }
        }
        out
    }

    /// The file text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if !self.searches.is_empty() {
            s.push_str(&format!("search {}\n", self.searches.join(" ")));
        }
        for n in &self.nameservers {
            s.push_str(&format!("nameserver {n}\n"));
        }
        if !self.options.is_empty() {
            s.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        s
    }
}

fn option_name(o: &str) -> &str {
    o.split(':').next().unwrap_or(o)
}

/// The resolv.conf of `pod` on a node whose own resolv.conf is `host`.
pub fn pod_resolv_conf(pod: &Pod, cluster: &ClusterDns, host: &ResolvConf) -> ResolvConf {
    let spec = pod.spec.as_ref();
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let policy = spec
        .and_then(|s| s.dns_policy.as_deref())
        .unwrap_or("ClusterFirst");
    let cluster_first = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    } && !cluster.servers.is_empty();
    let mut conf = match policy {
        "None" => ResolvConf::default(),
        _ if cluster_first => {
            let d = cluster.domain.trim_end_matches('.');
            let mut searches = vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.to_string()];
            searches.extend(host.searches.iter().cloned());
            ResolvConf {
                nameservers: cluster.servers.iter().map(IpAddr::to_string).collect(),
                searches,
                options: vec!["ndots:5".into()],
            }
        }
        _ => host.clone(),
    };
    if let Some(dc) = spec.and_then(|s| s.dns_config.as_ref()) {
        for n in dc.nameservers.iter().flatten() {
            if !conf.nameservers.contains(n) {
                conf.nameservers.push(n.clone());
            }
        }
        for s in dc.searches.iter().flatten() {
            if !conf.searches.contains(s) {
                conf.searches.push(s.clone());
            }
        }
        for o in dc.options.iter().flatten() {
            let Some(name) = o.name.as_deref().filter(|n| !n.is_empty()) else {
                continue;
            };
            let rendered = match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name.to_string(),
            };
            conf.options.retain(|x| option_name(x) != name);
            conf.options.push(rendered);
        }
    }
    conf.nameservers.truncate(MAX_NAMESERVERS);
    conf.searches.truncate(MAX_SEARCHES);
    conf
}

/// The node's own resolv.conf (`Default` pods get it).
pub fn host_resolv_conf() -> ResolvConf {
    ResolvConf::parse(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
}

impl<R> crate::pod_worker::PodWorker<R> {
    /// The text of this pod's resolv.conf.
    pub(crate) fn resolv_conf(&self) -> String {
        pod_resolv_conf(&self.pod, &self.ctx.node.cluster_dns, &host_resolv_conf()).render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "team"}, "spec": spec}),
        )
        .unwrap()
    }

    fn cluster() -> ClusterDns {
        ClusterDns {
            servers: vec!["10.43.0.10".parse().unwrap()],
            domain: "cluster.local".into(),
        }
    }

    fn host() -> ResolvConf {
        ResolvConf::parse("# node\nnameserver 192.168.1.1\nsearch lan\noptions edns0\n")
    }

    #[test]
    fn cluster_first_has_search_path_and_ndots() {
        let c = pod_resolv_conf(&pod(json!({"containers": []})), &cluster(), &host());
        assert_eq!(
            c.render(),
            "search team.svc.cluster.local svc.cluster.local cluster.local lan\nnameserver 10.43.0.10\noptions ndots:5\n"
        );
    }

    #[test]
    fn host_network_and_default_use_the_node_file() {
        let hn = pod_resolv_conf(
            &pod(json!({"containers": [], "hostNetwork": true})),
            &cluster(),
            &host(),
        );
        assert_eq!(hn, host());
        let d = pod_resolv_conf(
            &pod(json!({"containers": [], "dnsPolicy": "Default"})),
            &cluster(),
            &host(),
        );
        assert_eq!(d, host());
        let with = pod_resolv_conf(
            &pod(
                json!({"containers": [], "hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"}),
            ),
            &cluster(),
            &host(),
        );
        assert_eq!(with.nameservers, vec!["10.43.0.10"]);
    }

    #[test]
    fn none_takes_dns_config_only_and_options_merge_by_name() {
        let c = pod_resolv_conf(
            &pod(json!({"containers": [], "dnsPolicy": "None", "dnsConfig": {
                "nameservers": ["1.2.3.4"], "searches": ["a.example"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}})),
            &cluster(),
            &host(),
        );
        assert_eq!(
            c.render(),
            "search a.example\nnameserver 1.2.3.4\noptions ndots:2 edns0\n"
        );
        let merged = pod_resolv_conf(
            &pod(
                json!({"containers": [], "dnsConfig": {"options": [{"name": "ndots", "value": "1"}]}}),
            ),
            &cluster(),
            &host(),
        );
        assert_eq!(merged.options, vec!["ndots:1"]);
    }
}
