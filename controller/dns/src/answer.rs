//! Turning one DNS query message into a response from the [`Zone`], or deciding to forward
//! it (wire format through hickory-proto).

use std::str::FromStr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, PTR, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::records::{Lookup, Rec, Zone, TTL};

/// Largest UDP answer without EDNS (RFC 1035).
const UDP_PLAIN: usize = 512;
/// The EDNS payload Bramble offers (the DNS flag day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;

/// What to do with a query.
#[derive(Debug)]
pub enum Outcome {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Relay the query to the upstream resolvers.
    Forward,
    /// Not a DNS message worth an answer.
    Drop,
}

fn error_reply(id: u16, op: OpCode, code: ResponseCode) -> Outcome {
    Message::error_msg(id, op, code)
        .to_vec()
        .map_or(Outcome::Drop, Outcome::Reply)
}

fn rdata(rec: &Rec) -> Option<(RecordType, RData)> {
    let name = |s: &str| Name::from_str(&format!("{s}.")).ok();
    Some(match rec {
        Rec::A(ip) => (RecordType::A, RData::A(A(*ip))),
        Rec::Cname(t) => (RecordType::CNAME, RData::CNAME(CNAME(name(t)?))),
        Rec::Ptr(t) => (RecordType::PTR, RData::PTR(PTR(name(t)?))),
        Rec::Srv { port, target } => (
            RecordType::SRV,
            RData::SRV(SRV::new(0, 100, *port, name(target)?)),
        ),
    })
}

/// Answers `query` (a whole DNS message) from `zone`; `udp` limits the size as the
/// transport requires.
pub fn answer(zone: &Zone, query: &[u8], udp: bool) -> Outcome {
    let request = match Message::from_vec(query) {
        Ok(m) => m,
        Err(_) if query.len() >= 2 => {
            let id = u16::from_be_bytes([query[0], query[1]]);
            return error_reply(id, OpCode::Query, ResponseCode::FormErr);
        }
        Err(_) => return Outcome::Drop,
    };
    let meta = request.metadata;
    if meta.message_type != MessageType::Query {
        return Outcome::Drop;
    }
    if meta.op_code != OpCode::Query {
        return error_reply(meta.id, meta.op_code, ResponseCode::NotImp);
    }
    let [q] = request.queries.as_slice() else {
        return error_reply(meta.id, meta.op_code, ResponseCode::FormErr);
    };
    let qname = q.name().to_ascii();
    let qtype = q.query_type();
    let lookup = zone.lookup(&qname);
    let records = match lookup {
        Lookup::Forward => return Outcome::Forward,
        Lookup::NxDomain => None,
        Lookup::Found(recs) => Some(recs),
    };
    let mut resp = Message::response(meta.id, OpCode::Query);
    resp.metadata.recursion_desired = meta.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.metadata.authoritative = true;
    resp.add_query(q.clone());
    match records {
        None => resp.metadata.response_code = ResponseCode::NXDomain,
        Some(recs) => {
            let owner = q.name().clone();
            let cname = recs.iter().find(|r| matches!(r, Rec::Cname(_)));
            for rec in recs.iter() {
                let Some((ty, data)) = rdata(rec) else {
                    continue;
                };
                let wanted = qtype == RecordType::ANY
                    || ty == qtype
                    || (cname.is_some() && ty == RecordType::CNAME);
                if wanted {
                    resp.add_answer(Record::from_rdata(owner.clone(), TTL, data));
                }
            }
            // SRV targets' addresses as additional records (CoreDNS does the same).
            if qtype == RecordType::SRV {
                for rec in &recs {
                    if let Rec::Srv { target, .. } = rec {
                        if let Lookup::Found(extra) = zone.lookup(target) {
                            for e in extra.iter().filter(|e| matches!(e, Rec::A(_))) {
                                if let (Some((_, data)), Ok(n)) =
                                    (rdata(e), Name::from_str(&format!("{target}.")))
                                {
                                    resp.add_additional(Record::from_rdata(n, TTL, data));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let limit = match &request.edns {
        Some(e) => {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_PAYLOAD);
            resp.set_edns(edns);
            usize::from(e.max_payload().clamp(512, EDNS_PAYLOAD))
        }
        None => UDP_PLAIN,
    };
    match resp.to_vec() {
        Ok(bytes) if udp && bytes.len() > limit => resp
            .truncate()
            .to_vec()
            .map_or(Outcome::Drop, Outcome::Reply),
        Ok(bytes) => Outcome::Reply(bytes),
        Err(_) => error_reply(meta.id, OpCode::Query, ResponseCode::ServFail),
    }
}

/// A SERVFAIL for `query` (when forwarding failed).
pub fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut resp = Message::error_msg(request.metadata.id, OpCode::Query, ResponseCode::ServFail);
    resp.metadata.recursion_desired = request.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.add_queries(request.queries);
    resp.to_vec().ok()
}
