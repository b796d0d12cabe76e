//! The `kube-system/kube-dns` Service (ClusterIP `cluster_ip`, ports 53 UDP and TCP, no
//! selector) and its EndpointSlice pointing at the DNS server, applied server-side so
//! restarts and address changes converge.

use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

/// Field manager of the objects written here.
pub const MANAGER: &str = "bramble-dns";

/// Applies the Service and its EndpointSlice (`<server>:<port>`). A loopback `server` gets
/// no EndpointSlice: validation refuses loopback endpoints (as upstream's), and pods could
/// not reach this host's loopback anyway.
pub async fn kube_dns(
    client: &Client,
    cluster_ip: Ipv4Addr,
    server: IpAddr,
    port: u16,
) -> Result<(), kube::Error> {
    let params = PatchParams::apply(MANAGER).force();
    let services: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS",
                                "kubernetes.io/cluster-service": "true"}},
        "spec": {"clusterIP": cluster_ip.to_string(), "clusterIPs": [cluster_ip.to_string()],
                 "ports": [
                     {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": port},
                     {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": port}]},
    });
    services
        .patch("kube-dns", &params, &Patch::Apply(&svc))
        .await?;
    if server.is_loopback() {
        tracing::warn!(
            %server,
            "cluster DNS advertised on loopback: kube-dns gets no endpoints, pods cannot reach \
             it (give the controller a routable --advertise-address)"
        );
        return Ok(());
    }
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "kube-system");
    let family = if server.is_ipv4() { "IPv4" } else { "IPv6" };
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kube-dns-bramble", "namespace": "kube-system",
                     "labels": {"kubernetes.io/service-name": "kube-dns",
                                "endpointslice.kubernetes.io/managed-by": MANAGER}},
        "addressType": family,
        "endpoints": [{"addresses": [server.to_string()], "conditions": {"ready": true}}],
        "ports": [{"name": "dns", "port": port, "protocol": "UDP"},
                  {"name": "dns-tcp", "port": port, "protocol": "TCP"}],
    });
    slices
        .patch("kube-dns-bramble", &params, &Patch::Apply(&slice))
        .await?;
    Ok(())
}
