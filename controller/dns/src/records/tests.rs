use super::*;
use serde_json::json;

fn svc(v: serde_json::Value) -> Arc<Service> {
    Arc::new(serde_json::from_value(v).unwrap())
}

fn slice(v: serde_json::Value) -> Arc<EndpointSlice> {
    Arc::new(serde_json::from_value(v).unwrap())
}

fn zone() -> Zone {
    let services = vec![
        svc(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"],
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 81}]}})),
        svc(json!({"metadata": {"name": "db", "namespace": "prod"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})),
        svc(json!({"metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "example.org."}})),
    ];
    let slices = vec![slice(json!({
        "metadata": {"name": "db-abc", "namespace": "prod",
                     "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.42.1.5"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["10.42.2.6"], "conditions": {"ready": true}},
            {"addresses": ["10.42.2.7"], "hostname": "db-2", "conditions": {"ready": false}}],
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}))];
    Zone::build("cluster.local", &services, &slices)
}

#[test]
fn cluster_ip_service_a_srv_and_ptr() {
    let z = zone();
    assert_eq!(
        z.lookup("Web.Default.svc.cluster.local."),
        Lookup::Found(vec![Rec::A("10.43.0.20".parse().unwrap())])
    );
    assert_eq!(
        z.lookup("_http._tcp.web.default.svc.cluster.local"),
        Lookup::Found(vec![Rec::Srv {
            port: 80,
            target: "web.default.svc.cluster.local".into()
        }])
    );
    assert_eq!(
        z.lookup("20.0.43.10.in-addr.arpa."),
        Lookup::Found(vec![Rec::Ptr("web.default.svc.cluster.local".into())])
    );
    assert_eq!(z.lookup("nope.default.svc.cluster.local"), Lookup::NxDomain);
    assert_eq!(z.lookup("default.svc.cluster.local"), Lookup::Found(vec![]));
    assert_eq!(z.lookup("example.org"), Lookup::Forward);
    assert_eq!(z.lookup("1.1.168.192.in-addr.arpa"), Lookup::Forward);
}

#[test]
fn headless_service_lists_ready_endpoints_and_their_hostnames() {
    let z = zone();
    let Lookup::Found(recs) = z.lookup("db.prod.svc.cluster.local") else {
        panic!("db missing")
    };
    assert_eq!(
        recs,
        vec![
            Rec::A("10.42.1.5".parse().unwrap()),
            Rec::A("10.42.2.6".parse().unwrap())
        ]
    );
    assert_eq!(
        z.lookup("db-0.db.prod.svc.cluster.local"),
        Lookup::Found(vec![Rec::A("10.42.1.5".parse().unwrap())])
    );
    assert_eq!(
        z.lookup("10-42-2-6.db.prod.svc.cluster.local"),
        Lookup::Found(vec![Rec::A("10.42.2.6".parse().unwrap())])
    );
    assert_eq!(z.lookup("db-2.db.prod.svc.cluster.local"), Lookup::NxDomain);
    assert_eq!(
        z.lookup("5.1.42.10.in-addr.arpa"),
        Lookup::Found(vec![Rec::Ptr("db-0.db.prod.svc.cluster.local".into())])
    );
    let Lookup::Found(srv) = z.lookup("_pg._tcp.db.prod.svc.cluster.local") else {
        panic!("srv missing")
    };
    assert_eq!(srv.len(), 2);
    assert!(srv.contains(&Rec::Srv {
        port: 5432,
        target: "db-0.db.prod.svc.cluster.local".into()
    }));
}

#[test]
fn external_name_and_pod_names() {
    let z = zone();
    assert_eq!(
        z.lookup("ext.default.svc.cluster.local"),
        Lookup::Found(vec![Rec::Cname("example.org".into())])
    );
    assert_eq!(
        z.lookup("10-42-0-9.default.pod.cluster.local"),
        Lookup::Found(vec![Rec::A("10.42.0.9".parse().unwrap())])
    );
    assert_eq!(z.lookup("x-y.default.pod.cluster.local"), Lookup::NxDomain);
}
