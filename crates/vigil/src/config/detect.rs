//! `[detect]`: the SQL injection and capability detectors, the query
//! firewall's rules file, and the anomaly detectors.
//!
//! ```toml
//! [detect]
//! sql_injection = true                  # default
//! application_roles = ["app", "billing"]  # "*": every user
//! firewall = "/etc/vigil/firewall.toml"   # rules: docs/firewall.md
//!
//! [detect.anomaly]                       # present: the anomaly detectors run
//! repeat_seconds = 300
//! [detect.anomaly.error_burst]
//! errors = 5
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use vigil_detect::anomaly::AnomalyConfig;

use super::error::{Invalid, KeyPath};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDetect {
    sql_injection: Option<bool>,
    application_roles: Option<Vec<String>>,
    firewall: Option<String>,
    anomaly: Option<AnomalyConfig>,
}

/// `[detect]`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DetectConfig {
    /// `sql_injection`: the structural injection and capability detectors
    /// (default on).
    pub sql_injection: bool,
    /// `application_roles`: database users whose sessions are an
    /// application's; `"*"` for all.
    pub application_roles: Vec<String>,
    /// `firewall`: the rules file, read at start and on SIGHUP.
    pub firewall: Option<PathBuf>,
    /// `[detect.anomaly]`: the anomaly detectors' settings; absent, they
    /// do not run.
    pub anomaly: Option<AnomalyConfig>,
}

// The settings hold floating-point thresholds, compared as written.
impl Eq for DetectConfig {}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            sql_injection: true,
            application_roles: Vec::new(),
            firewall: None,
            anomaly: None,
        }
    }
}

pub(super) fn detect(raw: RawDetect, at: &KeyPath, dir: &Path) -> Result<DetectConfig, Invalid> {
    let firewall = match raw.firewall.as_deref() {
        None => None,
        Some("") => {
            return Err(Invalid::new(
                at.key("firewall"),
                "empty; give the rules file, e.g. firewall = \"/etc/vigil/firewall.toml\"",
            ));
        }
        Some(f) => {
            let p = Path::new(f);
            Some(if p.is_absolute() {
                p.to_owned()
            } else {
                dir.join(p)
            })
        }
    };
    if let Some(a) = &raw.anomaly {
        a.validate()
            .map_err(|e| Invalid::new(at.key("anomaly"), e.to_string()))?;
    }
    let application_roles = raw.application_roles.unwrap_or_default();
    if let Some(i) = application_roles.iter().position(|r| r.is_empty()) {
        return Err(Invalid::new(
            at.key("application_roles").index(i),
            "empty role name; give a database user, or \"*\" for every user",
        ));
    }
    Ok(DetectConfig {
        sql_injection: raw.sql_injection.unwrap_or(true),
        application_roles,
        firewall,
        anomaly: raw.anomaly,
    })
}
