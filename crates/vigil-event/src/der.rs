//! Just enough DER to read the subject's common name from an X.509
//! certificate, for the `client_identity` of events (TLS clients of the
//! proxy and of the syslog receiver). Every read is bounds-checked;
//! anything unexpected gives `None`.

/// The OID 2.5.4.3 (commonName), encoded.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// One TLV: its tag and contents.
struct Tlv<'a> {
    tag: u8,
    contents: &'a [u8],
}

/// Reads one TLV from the front of `input`; returns it and the rest.
fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((Tlv { tag, contents }, rest))
}

/// Reads a TLV with tag `tag`.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (tlv, rest) = read(input)?;
    (tlv.tag == tag).then_some((tlv.contents, rest))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// The subject's common name, if the certificate has one that is text.
pub fn subject_common_name(cert: &[u8]) -> Option<String> {
    let (certificate, _) = expect(cert, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    if rest.first() == Some(&0xa0) {
        rest = read(rest)?.1;
    }
    // serialNumber, signature, issuer, validity, then subject.
    for _ in 0..4 {
        rest = read(rest)?.1;
    }
    let (mut subject, _) = expect(rest, SEQUENCE)?;
    let mut found = None;
    while !subject.is_empty() {
        let (rdn, next) = expect(subject, SET)?;
        subject = next;
        let mut attrs = rdn;
        while !attrs.is_empty() {
            let (attr, next) = expect(attrs, SEQUENCE)?;
            attrs = next;
            let (oid, value) = expect(attr, OID)?;
            if oid == OID_COMMON_NAME {
                let (tlv, _) = read(value)?;
                // UTF8String, PrintableString, IA5String, T61String.
                if matches!(tlv.tag, 0x0c | 0x13 | 0x16 | 0x14) {
                    let text = std::str::from_utf8(tlv.contents).ok()?;
                    if text.chars().all(|c| !c.is_control()) {
                        found = Some(text.to_owned());
                    }
                }
            }
        }
    }
    found
}

/// Runs the reader on arbitrary bytes, for the fuzz target.
pub fn fuzz_subject(data: &[u8]) {
    let _ = subject_common_name(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_common_name_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "app-server-7");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_common_name(cert.der()).as_deref(),
            Some("app-server-7")
        );
        // Every truncation is refused or read, never a panic.
        for n in 0..cert.der().len() {
            let _ = subject_common_name(&cert.der()[..n]);
        }
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(subject_common_name(&[]), None);
        assert_eq!(
            subject_common_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            None
        );
        assert_eq!(subject_common_name(&[0x30, 0x00]), None);
    }
}
