//! Coverage filters: which events a sink receives.
//!
//! A [`Filter`] passes an event when its severity is at least the minimum,
//! it matches an `include` selector (or `include` is empty), and it matches
//! no `exclude` selector. Exclusion wins.

use std::fmt;

use crate::catalog::{self, Category, Kind};
use crate::event::{Event, Severity};

/// Names a set of events in a filter.
///
/// Written in configuration as one of:
/// - a category name: `"statement"`;
/// - an event name: `"client.connected"`;
/// - a name prefix ending in `.*`: `"tls.*"`, `"anomaly.*"`;
/// - a code: `2000` (or `"2000"`);
/// - an inclusive code range: `"3000-3199"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// Every event of a category.
    Category(Category),
    /// One event code.
    Code(u16),
    /// Every event whose name starts with the prefix (given without `*`).
    Prefix(String),
    /// Every code in an inclusive range.
    Range(u16, u16),
}

impl Selector {
    /// Parses a selector; the error says what was expected.
    pub fn parse(s: &str) -> Result<Selector, String> {
        let s = s.trim();
        if let Some(cat) = Category::from_name(s) {
            return Ok(Selector::Category(cat));
        }
        if let Some(prefix) = s.strip_suffix('*') {
            if prefix.ends_with('.') && catalog::ALL.iter().any(|k| k.name().starts_with(prefix)) {
                return Ok(Selector::Prefix(prefix.to_owned()));
            }
            return Err(format!(
                "`{s}` matches no event; a prefix looks like `tls.*`"
            ));
        }
        if let Some((lo, hi)) = s.split_once('-') {
            let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) else {
                return Err(format!(
                    "`{s}` is not a code range; write it as `3000-3199`"
                ));
            };
            if lo > hi {
                return Err(format!("`{s}` is an empty range: {lo} is above {hi}"));
            }
            return Ok(Selector::Range(lo, hi));
        }
        if let Ok(code) = s.parse::<u16>() {
            return Selector::code(code);
        }
        if let Some(kind) = Kind::from_name(s) {
            return Ok(Selector::Code(kind.code()));
        }
        Err(format!(
            "`{s}` is not a category, event name, code or code range \
             (see `vigil events` for the catalog)"
        ))
    }

    /// A selector for one code, which must be in the catalog.
    pub fn code(code: u16) -> Result<Selector, String> {
        match Kind::from_code(code) {
            Some(_) => Ok(Selector::Code(code)),
            None => Err(format!("no event has code {code} (see `vigil events`)")),
        }
    }

    /// True when `kind` is in the set.
    pub fn matches(&self, kind: Kind) -> bool {
        match self {
            Selector::Category(c) => kind.category() == *c,
            Selector::Code(code) => kind.code() == *code,
            Selector::Prefix(p) => kind.name().starts_with(p.as_str()),
            Selector::Range(lo, hi) => (*lo..=*hi).contains(&kind.code()),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Category(c) => f.write_str(c.as_str()),
            Selector::Code(c) => write!(f, "{c}"),
            Selector::Prefix(p) => write!(f, "{p}*"),
            Selector::Range(lo, hi) => write!(f, "{lo}-{hi}"),
        }
    }
}

/// Which events a sink receives. Built once; matching is a bit lookup and a
/// comparison, cheap on the per-statement path.
#[derive(Clone, PartialEq, Eq)]
pub struct Filter {
    min_severity: Severity,
    /// Bit `code` is set when the code passes include and exclude.
    codes: Box<[u64]>,
}

const CODE_WORDS: usize = (u16::MAX as usize + 1) / 64;

impl Filter {
    /// Builds a filter. Empty `include` means every event.
    pub fn new(min_severity: Severity, include: &[Selector], exclude: &[Selector]) -> Filter {
        let mut codes = vec![0u64; CODE_WORDS].into_boxed_slice();
        for &kind in catalog::ALL {
            let included = include.is_empty() || include.iter().any(|s| s.matches(kind));
            let excluded = exclude.iter().any(|s| s.matches(kind));
            if included && !excluded {
                let c = usize::from(kind.code());
                codes[c / 64] |= 1 << (c % 64);
            }
        }
        Filter {
            min_severity,
            codes,
        }
    }

    /// A filter that passes every event.
    pub fn all() -> Filter {
        Filter::new(Severity::Debug, &[], &[])
    }

    /// The minimum severity.
    pub fn min_severity(&self) -> Severity {
        self.min_severity
    }

    /// True when the sink should receive `event`.
    pub fn matches(&self, event: &Event) -> bool {
        event.severity >= self.min_severity && self.matches_kind(event.kind)
    }

    /// True when events of `kind` pass the include and exclude lists.
    pub fn matches_kind(&self, kind: Kind) -> bool {
        let c = usize::from(kind.code());
        self.codes[c / 64] & (1 << (c % 64)) != 0
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let passing: Vec<u16> = catalog::ALL
            .iter()
            .filter(|k| self.matches_kind(**k))
            .map(|k| k.code())
            .collect();
        f.debug_struct("Filter")
            .field("min_severity", &self.min_severity)
            .field("codes", &passing)
            .finish()
    }
}

impl Default for Filter {
    fn default() -> Self {
        Filter::all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::*;

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }

    #[test]
    fn parses_every_selector_form() {
        assert_eq!(sel("statement"), Selector::Category(Category::Statement));
        assert_eq!(sel("client.connected"), Selector::Code(1100));
        assert_eq!(sel("2000"), Selector::Code(2000));
        assert_eq!(sel("3000-3199"), Selector::Range(3000, 3199));
        assert_eq!(sel("tls.*"), Selector::Prefix("tls.".into()));
        assert!(
            Selector::parse("nope")
                .unwrap_err()
                .contains("not a category")
        );
        assert!(
            Selector::parse("9")
                .unwrap_err()
                .contains("no event has code 9")
        );
        assert!(Selector::parse("5-1").unwrap_err().contains("empty range"));
        assert!(
            Selector::parse("zzz.*")
                .unwrap_err()
                .contains("matches no event")
        );
    }

    #[test]
    fn include_exclude_and_severity() {
        let f = Filter::new(
            Severity::Info,
            &[sel("statement"), sel("poison")],
            &[sel("statement.unparsed")],
        );
        let ev = |k: Kind| Event::new(k, "m");
        assert!(f.matches(&ev(STATEMENT_EXECUTED)));
        assert!(f.matches(&ev(POISON_ACCESSED)));
        assert!(!f.matches(&ev(STATEMENT_UNPARSED)), "exclusion wins");
        assert!(!f.matches(&ev(CLIENT_CONNECTED)), "not included");
        assert!(
            !f.matches(&ev(STATEMENT_EXECUTED).severity(Severity::Debug)),
            "below minimum"
        );
        assert!(!f.matches(&ev(FIREWALL_ALLOWED)));
    }

    #[test]
    fn empty_include_passes_everything_at_or_above_the_minimum() {
        let f = Filter::new(Severity::Warning, &[], &[sel("4000-4099")]);
        for &k in ALL {
            let expect = k.severity() >= Severity::Warning && k.category() != Category::Audit;
            assert_eq!(f.matches(&Event::new(k, "m")), expect, "{k:?}");
        }
    }
}
