//! `[poison]`: the poison record registry and the reactions to a hit.
//!
//! ```toml
//! [poison]
//! registry = "/var/lib/vigil/poison.json"
//! reactions = ["block", "script"]      # after the event, which is always sealed
//! script = "/usr/local/bin/vigil-poison-alert"
//! script_timeout_s = 5
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vigil_detect::poison::Reaction;

use super::error::{Invalid, KeyPath};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPoison {
    registry: Option<String>,
    reactions: Option<Vec<String>>,
    script: Option<String>,
    script_timeout_s: Option<i64>,
}

/// `[poison]`: poison records and what to do when one shows.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoisonConfig {
    /// `registry`: the registry file `vigil poison make` writes; read at
    /// start and on SIGHUP, every entry checked with the poison key.
    pub registry: PathBuf,
    /// `reactions`: `block`, `script`, `shutdown`, run in this order after
    /// the event is emitted; none by default.
    pub reactions: Vec<Reaction>,
    /// `script`: the program the `script` reaction runs, with the event as
    /// JSON on its standard input.
    pub script: Option<PathBuf>,
    /// `script_timeout_s`: how long the script may run (default 5 s).
    pub script_timeout: Duration,
}

pub(super) fn poison(raw: RawPoison, at: &KeyPath, dir: &Path) -> Result<PoisonConfig, Invalid> {
    let path = |v: &str| {
        let p = Path::new(v);
        if p.is_absolute() {
            p.to_owned()
        } else {
            dir.join(p)
        }
    };
    let registry = match raw.registry.as_deref() {
        Some(r) if !r.is_empty() => path(r),
        _ => {
            return Err(Invalid::new(
                at.key("registry"),
                "missing; give the file `vigil poison make --registry` writes, e.g. \
                 registry = \"/var/lib/vigil/poison.json\"",
            ));
        }
    };
    let mut reactions = Vec::new();
    for (i, name) in raw.reactions.unwrap_or_default().iter().enumerate() {
        let r = Reaction::from_name(name).ok_or_else(|| {
            Invalid::new(
                at.key("reactions").index(i),
                format!("unknown reaction {name:?}; expected block, script or shutdown"),
            )
        })?;
        if reactions.contains(&r) {
            return Err(Invalid::new(
                at.key("reactions").index(i),
                format!("{name:?} is listed twice; list each reaction once"),
            ));
        }
        reactions.push(r);
    }
    let script = raw.script.filter(|s| !s.is_empty()).map(|s| path(&s));
    match (reactions.contains(&Reaction::Script), &script) {
        (true, None) => {
            return Err(Invalid::new(
                at.key("script"),
                "missing; the script reaction runs it, e.g. script = \"/usr/local/bin/alert\"",
            ));
        }
        (false, Some(_)) => {
            return Err(Invalid::new(
                at.key("script"),
                "set but never run; add \"script\" to reactions, or remove it",
            ));
        }
        _ => {}
    }
    let script_timeout = match raw.script_timeout_s {
        None => Duration::from_secs(5),
        Some(n) => u64::try_from(n)
            .ok()
            .filter(|n| (1..=3600).contains(n))
            .map(Duration::from_secs)
            .ok_or_else(|| {
                Invalid::new(
                    at.key("script_timeout_s"),
                    format!("{n} is out of range; use 1 to 3600 seconds"),
                )
            })?,
    };
    Ok(PoisonConfig {
        registry,
        reactions,
        script,
        script_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        crate::config::parse(text, Path::new("/etc/vigil/vigil.toml"))
    }

    #[test]
    fn poison_section() {
        let cfg = parse(
            "[poison]\nregistry = \"poison.json\"\nreactions = [\"script\", \"block\"]\n\
             script = \"/bin/alert\"\nscript_timeout_s = 2\n",
        )
        .unwrap();
        let p = cfg.poison.unwrap();
        assert_eq!(p.registry, Path::new("/etc/vigil/poison.json"));
        assert_eq!(p.reactions, [Reaction::Script, Reaction::Block]);
        assert_eq!(p.script.as_deref(), Some(Path::new("/bin/alert")));
        assert_eq!(p.script_timeout, Duration::from_secs(2));
        assert!(parse("").unwrap().poison.is_none());
        for (text, key) in [
            ("[poison]\n", "poison.registry"),
            (
                "[poison]\nregistry = \"p\"\nreactions = [\"kill\"]\n",
                "poison.reactions[0]",
            ),
            (
                "[poison]\nregistry = \"p\"\nreactions = [\"block\", \"block\"]\n",
                "poison.reactions[1]",
            ),
            (
                "[poison]\nregistry = \"p\"\nreactions = [\"script\"]\n",
                "poison.script",
            ),
            (
                "[poison]\nregistry = \"p\"\nscript = \"/x\"\n",
                "poison.script",
            ),
            (
                "[poison]\nregistry = \"p\"\nscript_timeout_s = 0\n",
                "poison.script_timeout_s",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.key(), Some(key), "{text}: {e}");
        }
    }
}
