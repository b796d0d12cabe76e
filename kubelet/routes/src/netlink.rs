//! The kernel's main IPv4 routing table through rtnetlink: Bramble's routes (the ones marked
//! with [`ROUTE_PROTO`], as `ip route ... proto 193` would mark them) are listed, replaced and
//! deleted there, and every other route is left alone.

use std::net::Ipv4Addr;

use futures::TryStreamExt;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteType,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, RouteMessageBuilder};

use crate::{PodRoute, RouteError};

/// The routing protocol number marking Bramble's routes (`ip route show proto 193`).
pub const ROUTE_PROTO: u8 = 193;

/// A netlink connection to this thread's network namespace (the socket is opened in the
/// namespace of the thread calling [`RouteTable::connect`]).
#[derive(Clone)]
pub struct RouteTable {
    handle: Handle,
}

impl RouteTable {
    /// Opens the rtnetlink socket and spawns its connection task on the current tokio runtime.
    pub fn connect() -> Result<Self, RouteError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(RouteError::Connect)?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    /// Bramble's routes in the main IPv4 table, as the kernel reports them (sorted).
    #[tracing::instrument(skip(self))]
    pub async fn installed(&self) -> Result<Vec<PodRoute>, RouteError> {
        let mut out: Vec<PodRoute> = self
            .owned_messages()
            .await?
            .iter()
            .filter_map(pod_route)
            .collect();
        out.sort();
        Ok(out)
    }

    async fn owned_messages(&self) -> Result<Vec<RouteMessage>, RouteError> {
        let filter = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let all: Vec<RouteMessage> = self
            .handle
            .route()
            .get(filter)
            .execute()
            .try_collect()
            .await
            .map_err(|source| RouteError::Netlink {
                op: "listing routes".into(),
                source,
            })?;
        Ok(all.into_iter().filter(is_owned).collect())
    }

    /// Makes Bramble's routes exactly `routes`: each is added or replaced (a changed node
    /// address moves its route), and Bramble's routes to other destinations are deleted.
    #[tracing::instrument(skip_all, fields(routes = routes.len()))]
    pub async fn sync(&self, routes: &[PodRoute]) -> Result<(), RouteError> {
        for r in routes {
            let msg = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(r.dst, r.prefix_len)
                .gateway(r.via)
                .protocol(RouteProtocol::Other(ROUTE_PROTO))
                .build();
            self.handle
                .route()
                .add(msg)
                .replace()
                .execute()
                .await
                .map_err(|source| RouteError::Netlink {
                    op: format!("replacing route {r}"),
                    source,
                })?;
        }
        for msg in self.owned_messages().await? {
            let Some(have) = pod_route(&msg) else {
                continue;
            };
            if routes
                .iter()
                .any(|r| r.dst == have.dst && r.prefix_len == have.prefix_len)
            {
                continue;
            }
            tracing::info!(route = %have, "deleting route of a node that left");
            self.handle
                .route()
                .del(msg)
                .execute()
                .await
                .map_err(|source| RouteError::Netlink {
                    op: format!("deleting route {have}"),
                    source,
                })?;
        }
        Ok(())
    }
}

/// A unicast IPv4 route of the main table marked as Bramble's.
fn is_owned(m: &RouteMessage) -> bool {
    let table = m
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table));
    m.header.address_family == AddressFamily::Inet
        && m.header.protocol == RouteProtocol::Other(ROUTE_PROTO)
        && m.header.kind == RouteType::Unicast
        && table == u32::from(RouteHeader::RT_TABLE_MAIN)
}

fn pod_route(m: &RouteMessage) -> Option<PodRoute> {
    let mut dst = Ipv4Addr::UNSPECIFIED;
    let mut via = None;
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = *d,
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => via = Some(*g),
            _ => {}
        }
    }
    Some(PodRoute {
        dst,
        prefix_len: m.header.destination_prefix_length,
        via: via?,
    })
}
