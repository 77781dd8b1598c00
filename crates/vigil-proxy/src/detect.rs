//! Detection in the proxy: which detectors run on each session's
//! statements and connections.

use std::fmt;
use std::sync::Arc;

use vigil_detect::anomaly::Anomalies;
use vigil_detect::firewall::Firewall;

/// The detectors a proxy runs. Cheap to clone: shared parts are in `Arc`s.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Detection {
    /// SQL injection and dangerous capabilities, read from each query
    /// string's structure (`vigil_detect::sqli`).
    pub sql_injection: bool,
    /// Database users whose sessions are an application's: catalog reads
    /// and role changes by them are findings. `"*"` names every user.
    pub application_roles: Vec<String>,
    /// The query firewall, when configured.
    pub firewall: Option<Arc<Firewall>>,
    /// The anomaly detectors, when configured.
    pub anomalies: Option<Arc<Anomalies>>,
}

impl Detection {
    /// The SQL injection detectors on, nothing else.
    pub fn new() -> Self {
        Detection {
            sql_injection: true,
            ..Detection::default()
        }
    }

    /// Whether `user` is an application's role.
    pub fn is_application_role(&self, user: &str) -> bool {
        self.application_roles.iter().any(|r| r == "*" || r == user)
    }
}

impl fmt::Debug for Detection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detection")
            .field("sql_injection", &self.sql_injection)
            .field("application_roles", &self.application_roles)
            .field(
                "firewall",
                &self.firewall.as_ref().map(|fw| fw.file().to_owned()),
            )
            .field("anomalies", &self.anomalies.is_some())
            .finish()
    }
}

impl PartialEq for Detection {
    fn eq(&self, other: &Self) -> bool {
        fn same<T>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
        }
        self.sql_injection == other.sql_injection
            && self.application_roles == other.application_roles
            && same(&self.firewall, &other.firewall)
            && same(&self.anomalies, &other.anomalies)
    }
}

impl Eq for Detection {}
