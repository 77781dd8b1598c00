//! Test certificates: a CA ("vigil test CA") and the server and client
//! certificates it issues, written as PEM files, plus expired, not yet
//! valid and unknown-CA variants for the failure cases.
//!
//! Every key is ECDSA P-256 in PKCS#8 PEM, written with mode 0600 (as
//! PostgreSQL and libpq require of key files).
//!
//! ```
//! let dir = vigil_testkit::tempdir();
//! let pki = vigil_testkit::pki::Pki::new(dir.path());
//! let server = pki.server("localhost", &["localhost", "127.0.0.1"]);
//! let client = pki.client("alice");
//! assert!(std::fs::read_to_string(&server.cert).unwrap().contains("BEGIN CERTIFICATE"));
//! assert!(client.key.exists());
//! assert!(pki.ca_cert_path().exists());
//! ```

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, date_time_ymd,
};

/// The subject common name of [`Pki::new`]'s CA.
pub const CA_NAME: &str = "vigil test CA";
/// The subject common name of [`Pki::other_ca`]'s CA.
pub const OTHER_CA_NAME: &str = "vigil unrelated test CA";

/// Where a certificate and its private key were written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPaths {
    /// The certificate, PEM.
    pub cert: PathBuf,
    /// The private key, PKCS#8 PEM, mode 0600.
    pub key: PathBuf,
}

/// When an issued certificate is valid, relative to today.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Validity {
    /// From a year ago until ten years from now.
    Current,
    /// Ended a year ago.
    Expired,
    /// Starts a year from now.
    NotYetValid,
}

impl Validity {
    /// Sets `params`' not-before and not-after dates.
    fn apply(self, params: &mut CertificateParams) {
        let year = current_year();
        let (from, until) = match self {
            Validity::Current => (year - 1, year + 10),
            Validity::Expired => (year - 3, year - 1),
            Validity::NotYetValid => (year + 1, year + 3),
        };
        params.not_before = date_time_ymd(from, 1, 1);
        params.not_after = date_time_ymd(until, 1, 1);
    }

    /// The suffix of the file names, so variants do not overwrite each other.
    fn suffix(self) -> &'static str {
        match self {
            Validity::Current => "",
            Validity::Expired => "-expired",
            Validity::NotYetValid => "-not-yet-valid",
        }
    }
}

/// A test CA with its files in one directory, issuing certificates into it.
///
/// Panics on failure: it is a test fixture, and a failure here means the
/// directory is not writable.
pub struct Pki {
    dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_cert: PathBuf,
    ca_key: PathBuf,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .field("ca_cert", &self.ca_cert)
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// Creates the CA "vigil test CA" and writes `ca.crt` and `ca.key` into
    /// `dir` (created if missing).
    pub fn new(dir: impl AsRef<Path>) -> Pki {
        Pki::with_ca_name(dir.as_ref(), CA_NAME, "ca")
    }

    /// A second CA, unrelated to this one ("vigil unrelated test CA"), in
    /// the subdirectory `other-ca`: what it issues fails verification
    /// against [`ca_cert_path`](Self::ca_cert_path).
    pub fn other_ca(&self) -> Pki {
        Pki::with_ca_name(&self.dir.join("other-ca"), OTHER_CA_NAME, "ca")
    }

    fn with_ca_name(dir: &Path, name: &str, stem: &str) -> Pki {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("create the PKI directory {}: {e}", dir.display()));
        let mut params = CertificateParams::default();
        params.distinguished_name = subject(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Validity::Current.apply(&mut params);
        let key = KeyPair::generate().expect("generate the CA key");
        let key_pem = key.serialize_pem();
        let ca = CertifiedIssuer::self_signed(params, key).expect("self-sign the CA");
        let ca_cert = dir.join(format!("{stem}.crt"));
        let ca_key = dir.join(format!("{stem}.key"));
        write_file(&ca_cert, ca.pem().as_bytes(), 0o644);
        write_file(&ca_key, key_pem.as_bytes(), 0o600);
        Pki {
            dir: dir.to_path_buf(),
            ca,
            ca_cert,
            ca_key,
        }
    }

    /// The CA certificate, PEM: the trust anchor for everything issued here.
    pub fn ca_cert_path(&self) -> &Path {
        &self.ca_cert
    }

    /// The CA's private key, PEM.
    pub fn ca_key_path(&self) -> &Path {
        &self.ca_key
    }

    /// The directory the files are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A server certificate with subject CN `name` and the subject
    /// alternative names `sans` (DNS names, or IP addresses such as
    /// `127.0.0.1`; `[name]` when empty), for server authentication.
    pub fn server(&self, name: &str, sans: &[&str]) -> CertPaths {
        self.issue_server(name, sans, Validity::Current)
    }

    /// Like [`server`](Self::server), but it expired a year ago.
    pub fn expired_server(&self, name: &str, sans: &[&str]) -> CertPaths {
        self.issue_server(name, sans, Validity::Expired)
    }

    /// Like [`server`](Self::server), but valid only from a year from now.
    pub fn not_yet_valid_server(&self, name: &str, sans: &[&str]) -> CertPaths {
        self.issue_server(name, sans, Validity::NotYetValid)
    }

    /// A client certificate with subject CN `common_name`, for client
    /// authentication (PostgreSQL's `cert` method maps the CN to the user).
    pub fn client(&self, common_name: &str) -> CertPaths {
        self.issue_client(common_name, Validity::Current)
    }

    /// Like [`client`](Self::client), but it expired a year ago.
    pub fn expired_client(&self, common_name: &str) -> CertPaths {
        self.issue_client(common_name, Validity::Expired)
    }

    fn issue_server(&self, name: &str, sans: &[&str], validity: Validity) -> CertPaths {
        let sans: Vec<String> = if sans.is_empty() {
            vec![name.to_owned()]
        } else {
            sans.iter().map(|s| (*s).to_owned()).collect()
        };
        let mut params = CertificateParams::new(sans)
            .unwrap_or_else(|e| panic!("invalid subject alternative name for {name:?}: {e}"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, name, "server", validity)
    }

    fn issue_client(&self, common_name: &str, validity: Validity) -> CertPaths {
        let mut params = CertificateParams::default();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, common_name, "client", validity)
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        common_name: &str,
        role: &str,
        validity: Validity,
    ) -> CertPaths {
        params.distinguished_name = subject(common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        validity.apply(&mut params);
        let key = KeyPair::generate().expect("generate a key");
        let cert = params
            .signed_by(&key, &self.ca)
            .unwrap_or_else(|e| panic!("sign the certificate for {common_name:?}: {e}"));
        let stem = self.unused_stem(&format!(
            "{role}-{}{}",
            file_safe(common_name),
            validity.suffix()
        ));
        let paths = CertPaths {
            cert: self.dir.join(format!("{stem}.crt")),
            key: self.dir.join(format!("{stem}.key")),
        };
        write_file(&paths.cert, cert.pem().as_bytes(), 0o644);
        write_file(&paths.key, key.serialize_pem().as_bytes(), 0o600);
        paths
    }

    /// `stem`, or `stem-2`, `stem-3`… when files of that name exist, so a
    /// second certificate for the same name does not replace the first.
    fn unused_stem(&self, stem: &str) -> String {
        let taken = |s: &str| self.dir.join(format!("{s}.crt")).exists();
        if !taken(stem) {
            return stem.to_owned();
        }
        (2..)
            .map(|n| format!("{stem}-{n}"))
            .find(|s| !taken(s))
            .expect("an unused file name")
    }
}

/// A distinguished name with only a common name and organisation.
fn subject(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "vigil tests");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// `name` with every character but ASCII letters, digits, `.`, `-` and `_`
/// replaced by `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `data` to `path` (replacing it) with permission bits `mode`.
fn write_file(path: &Path, data: &[u8], mode: u32) {
    let _ = std::fs::remove_file(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(data)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The current year (UTC).
fn current_year() -> i32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    year_of_day(days)
}

/// The proleptic Gregorian year of `days` since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, year part only).
fn year_of_day(days: i64) -> i32 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month_is_jan_or_feb = mp >= 10;
    let year = yoe + era * 400 + i64::from(month_is_jan_or_feb);
    i32::try_from(year).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    #[test]
    fn years_of_days() {
        assert_eq!(year_of_day(0), 1970);
        assert_eq!(year_of_day(364), 1970);
        assert_eq!(year_of_day(365), 1971);
        // 2000-02-29 and 2000-12-31, 2001-01-01.
        assert_eq!(year_of_day(11_016), 2000);
        assert_eq!(year_of_day(11_322), 2000);
        assert_eq!(year_of_day(11_323), 2001);
        assert_eq!(year_of_day(-1), 1969);
        assert!(current_year() >= 2025);
    }

    #[test]
    fn file_names_are_safe_and_unique() {
        let dir = crate::tempdir();
        let pki = Pki::new(dir.path());
        assert_eq!(file_safe("a b/c*d.e"), "a_b_c_d.e");
        let first = pki.server("localhost", &[]);
        let second = pki.server("localhost", &[]);
        let expired = pki.expired_server("localhost", &[]);
        assert_ne!(first.cert, second.cert);
        assert_ne!(first.key, second.key);
        assert!(expired.cert.ends_with("server-localhost-expired.crt"));
        assert!(second.cert.ends_with("server-localhost-2.crt"));
    }

    #[test]
    fn keys_are_private_and_pems_well_formed() {
        let dir = crate::tempdir();
        let pki = Pki::new(dir.path());
        let other = pki.other_ca();
        let issued = [
            pki.server("db", &["localhost", "127.0.0.1", "::1"]),
            pki.client("alice"),
            pki.expired_server("db", &["localhost"]),
            pki.not_yet_valid_server("db", &["localhost"]),
            pki.expired_client("bob"),
            other.server("db", &["localhost"]),
        ];
        let keys = issued
            .iter()
            .map(|p| p.key.as_path())
            .chain([pki.ca_key_path(), other.ca_key_path()]);
        for key in keys {
            let mode = std::fs::metadata(key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
            let pem = std::fs::read_to_string(key).unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        }
        let certs = issued
            .iter()
            .map(|p| p.cert.as_path())
            .chain([pki.ca_cert_path(), other.ca_cert_path()]);
        for cert in certs {
            let pem = std::fs::read_to_string(cert).unwrap();
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
            assert!(
                pem.trim_end().ends_with("-----END CERTIFICATE-----"),
                "{pem}"
            );
        }
        assert_ne!(
            std::fs::read(pki.ca_cert_path()).unwrap(),
            std::fs::read(other.ca_cert_path()).unwrap()
        );
    }

    /// `openssl x509 -noout ARGS -in cert`, or None without openssl.
    fn openssl_x509(cert: &Path, args: &[&str]) -> Option<String> {
        let openssl = crate::find_program("openssl", &[Path::new("/usr/bin")])?;
        let out = Command::new(openssl)
            .args(["x509", "-noout", "-nameopt", "RFC2253"])
            .args(args)
            .arg("-in")
            .arg(cert)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl x509 {args:?} {}: {}",
            cert.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(String::from_utf8(out.stdout).unwrap())
    }

    /// `openssl verify -CAfile ca cert`: (success, output), or None
    /// without openssl.
    fn openssl_verify(ca: &Path, cert: &Path, purpose: &str) -> Option<(bool, String)> {
        let openssl = crate::find_program("openssl", &[Path::new("/usr/bin")])?;
        let out = Command::new(openssl)
            .args(["verify", "-purpose", purpose, "-CAfile"])
            .arg(ca)
            .arg(cert)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some((out.status.success(), text))
    }

    #[test]
    fn openssl_reads_and_verifies_them() {
        let dir = crate::tempdir();
        let pki = Pki::new(dir.path());
        let ca = pki.ca_cert_path();
        let Some(subject) = openssl_x509(ca, &["-subject"]) else {
            eprintln!("openssl is not installed; skipping");
            return;
        };
        assert_eq!(subject.trim(), "subject=CN=vigil test CA,O=vigil tests");

        let server = pki.server("db.test", &["localhost", "127.0.0.1"]);
        let text = openssl_x509(&server.cert, &["-subject", "-ext", "subjectAltName"]).unwrap();
        assert!(text.contains("subject=CN=db.test,O=vigil tests"), "{text}");
        assert!(text.contains("DNS:localhost"), "{text}");
        assert!(text.contains("IP Address:127.0.0.1"), "{text}");
        let (ok, text) = openssl_verify(ca, &server.cert, "sslserver").unwrap();
        assert!(ok, "{text}");

        let client = pki.client("alice");
        let subject = openssl_x509(&client.cert, &["-subject"]).unwrap();
        assert_eq!(subject.trim(), "subject=CN=alice,O=vigil tests");
        let (ok, text) = openssl_verify(ca, &client.cert, "sslclient").unwrap();
        assert!(ok, "{text}");
        let (ok, _) = openssl_verify(ca, &client.cert, "sslserver").unwrap();
        assert!(!ok, "a client certificate is not a server certificate");

        let (ok, text) =
            openssl_verify(ca, &pki.expired_server("db", &[]).cert, "sslserver").unwrap();
        assert!(!ok && text.contains("expired"), "{text}");
        let (ok, text) =
            openssl_verify(ca, &pki.not_yet_valid_server("db", &[]).cert, "sslserver").unwrap();
        assert!(!ok && text.contains("not yet valid"), "{text}");
        let (ok, text) = openssl_verify(ca, &pki.expired_client("bob").cert, "sslclient").unwrap();
        assert!(!ok && text.contains("expired"), "{text}");

        let other = pki.other_ca();
        let stranger = other.server("db", &["localhost"]);
        let (ok, text) = openssl_verify(ca, &stranger.cert, "sslserver").unwrap();
        assert!(!ok, "{text}");
        let (ok, text) = openssl_verify(other.ca_cert_path(), &stranger.cert, "sslserver").unwrap();
        assert!(ok, "{text}");
    }
}
