//! Subjects with several organizations.
//!
//! Kubernetes maps every `O` of a client certificate's subject to a group, so a user in two
//! groups needs two `O` attributes. rcgen 0.14's `DistinguishedName` keeps one value per
//! attribute type (rustls/rcgen#81), so client certificates are signed by rcgen and then their
//! subject is replaced with one encoded here, and the to-be-signed part is signed again with
//! the CA key. Only DER framing is touched: every other field stays as rcgen wrote it.

use rcgen::SigningKey;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::PkiError;

const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_UTF8STRING: u8 = 0x0c;
const TAG_OID: u8 = 0x06;
const TAG_BIT_STRING: u8 = 0x03;
/// id-at-commonName (2.5.4.3), DER content octets.
const OID_CN: [u8; 3] = [0x55, 0x04, 0x03];
/// id-at-organizationName (2.5.4.10), DER content octets.
const OID_O: [u8; 3] = [0x55, 0x04, 0x0a];

/// Encodes a DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Reads the header of the DER TLV at the front of `input`: (header length, total length).
fn tlv_bounds(input: &[u8]) -> Option<(usize, usize)> {
    let first_len = *input.get(1)?;
    let (header, len) = if first_len < 0x80 {
        (2usize, first_len as usize)
    } else {
        let n = (first_len & 0x7f) as usize;
        if n == 0 || n > std::mem::size_of::<usize>() {
            return None;
        }
        let len = input
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (2 + n, len)
    };
    let end = header.checked_add(len)?;
    (end <= input.len()).then_some((header, end))
}

/// Splits one DER TLV off the front of `input`: (whole TLV, rest).
fn split_tlv(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_, end) = tlv_bounds(input)?;
    Some(input.split_at(end))
}

/// The content octets of the TLV at the front of `input`.
fn content(input: &[u8]) -> Option<&[u8]> {
    let (header, end) = tlv_bounds(input)?;
    Some(&input[header..end])
}

/// DER of the Name `O=orgs[0], O=orgs[1], ..., CN=cn` (one attribute per RDN, in the order
/// Go's `pkix.Name` writes them: organizations before the common name).
pub fn encode_subject(cn: &str, orgs: &[&str]) -> Vec<u8> {
    let rdn = |oid: &[u8], value: &str| {
        let mut atv = tlv(TAG_OID, oid);
        atv.extend(tlv(TAG_UTF8STRING, value.as_bytes()));
        tlv(TAG_SET, &tlv(TAG_SEQUENCE, &atv))
    };
    let mut rdns = Vec::new();
    for org in orgs {
        rdns.extend(rdn(&OID_O, org));
    }
    rdns.extend(rdn(&OID_CN, cn));
    tlv(TAG_SEQUENCE, &rdns)
}

/// Returns `cert_der` with its subject replaced by `subject_der`, re-signed by `ca_key`.
/// The signature algorithm is unchanged (the CA key is the one that signed `cert_der`).
pub fn replace_subject(
    cert_der: &[u8],
    subject_der: &[u8],
    ca_key: &impl SigningKey,
) -> Result<Vec<u8>, PkiError> {
    let bad = |what: &str| PkiError::parse("issued certificate", what.to_string());
    let (_, parsed) =
        X509Certificate::from_der(cert_der).map_err(|e| bad(&format!("does not parse: {e}")))?;
    let tbs: &[u8] = parsed.tbs_certificate.as_ref();
    let subject = parsed.subject().as_raw();
    let tbs_content = content(tbs).ok_or_else(|| bad("bad TBS framing"))?;
    // Offsets of the subject inside the TBS content, from the parser's zero-copy slices.
    let start = (subject.as_ptr() as usize)
        .checked_sub(tbs_content.as_ptr() as usize)
        .filter(|s| s + subject.len() <= tbs_content.len())
        .ok_or_else(|| bad("subject not inside TBS"))?;
    let mut new_tbs_content = Vec::with_capacity(tbs_content.len() + subject_der.len());
    new_tbs_content.extend_from_slice(&tbs_content[..start]);
    new_tbs_content.extend_from_slice(subject_der);
    new_tbs_content.extend_from_slice(&tbs_content[start + subject.len()..]);
    let new_tbs = tlv(TAG_SEQUENCE, &new_tbs_content);

    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    let outer = content(cert_der).ok_or_else(|| bad("bad certificate framing"))?;
    let (_, rest) = split_tlv(outer).ok_or_else(|| bad("no TBS"))?;
    let (sig_alg, _) = split_tlv(rest).ok_or_else(|| bad("no signature algorithm"))?;

    let signature = ca_key.sign(&new_tbs)?;
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(&signature);

    let mut cert = new_tbs;
    cert.extend_from_slice(sig_alg);
    cert.extend(tlv(TAG_BIT_STRING, &bits));
    Ok(tlv(TAG_SEQUENCE, &cert))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_long_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let payload = vec![7u8; len];
            let enc = tlv(TAG_SEQUENCE, &payload);
            let (whole, rest) = split_tlv(&enc).unwrap();
            assert!(rest.is_empty());
            assert_eq!(whole, &enc[..]);
            assert_eq!(content(&enc).unwrap(), &payload[..]);
        }
        assert!(split_tlv(&[0x30, 0x85, 1]).is_none());
        assert!(split_tlv(&[0x30, 0x05, 1]).is_none());
    }

    #[test]
    fn subject_parses_with_all_orgs_in_order() {
        let der = encode_subject("jane", &["system:masters", "dev", "ops"]);
        let (rest, name) = x509_parser::x509::X509Name::from_der(&der).unwrap();
        assert!(rest.is_empty());
        let orgs: Vec<_> = name
            .iter_organization()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(orgs, ["system:masters", "dev", "ops"]);
        let cn: Vec<_> = name
            .iter_common_name()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(cn, ["jane"]);
    }
}
