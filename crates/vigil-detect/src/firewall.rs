//! The query firewall: ordered rules that allow, report or deny a statement
//! by fingerprint, table, statement class and pattern on its redacted text,
//! scoped per database user, application name and database; then an
//! allowlist of known statements, used as the mode says:
//!
//! - `learn`: statements outside the allowlist are allowed and
//!   [`Firewall::learn`] appends them to the allowlist file;
//! - `detect`: statements outside the allowlist are reported;
//! - `enforce`: statements outside the allowlist are denied.
//!
//! Only `enforce` denies. In `learn` and `detect` a verdict that would deny
//! (a `deny` rule, the `unparsed = "deny"` policy) is a report instead, so
//! a new rules file can be tried without refusing anything.
//!
//! The proxy loads one [`Firewall`] from a rules file, shares it between
//! sessions in an `Arc`, and for every statement calls
//! [`Firewall::check`], then [`decision_event`] for the event, and, when
//! the decision says so, [`Firewall::learn`]. A denied statement never
//! reaches the database: the client gets an ErrorResponse with SQLSTATE
//! [`DENIED_SQLSTATE`] and [`DENIED_MESSAGE`], and the session goes on.
//!
//! ```no_run
//! use std::path::Path;
//! use vigil_detect::firewall::{self, Firewall, Statement, Verdict, Who};
//!
//! let fw = Firewall::load(Path::new("/etc/vigil/firewall.toml")).expect("rules");
//! let redacted = vigil_sql::redact("SELECT * FROM users WHERE id = 42");
//! let info = &redacted.statements[0];
//! let tables = if fw.needs_tables() { firewall::tables(&info.text) } else { Vec::new() };
//! let stmt = Statement::new(info, &tables);
//! let who = Who { user: "app", application: "web", database: "shop" };
//! let decision = fw.check(&who, &stmt);
//! let _event = firewall::decision_event(&decision, &who, &stmt, None);
//! if decision.learn && fw.learn(&who, &stmt).expect("allowlist") {
//!     let _learned = firewall::learned_event(&who, &stmt, None);
//! }
//! if decision.verdict == Verdict::Deny {
//!     // Answer the client with SQLSTATE 42501; do not forward.
//! }
//! ```
//!
//! # Reloading
//!
//! A firewall never changes its rules. To reload, the caller loads a new
//! one with [`Firewall::load`]: on success it replaces its `Arc<Firewall>`
//! and emits [`Firewall::loaded_event`]; on failure it keeps the old one
//! and emits [`RulesError::event`]. At start, a [`RulesError`] is printed
//! and vigil exits with status 2.
//!
//! See `docs/firewall.md` for the file formats.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue};
use vigil_event::{Event, Session, catalog};
use vigil_sql::{Lexer, StatementClass, StatementInfo, TokenKind};

/// The SQLSTATE of the ErrorResponse a denied statement gets:
/// `insufficient_privilege`.
pub const DENIED_SQLSTATE: &str = "42501";

/// The message of the ErrorResponse a denied statement gets. It names no
/// rule, so a client learns nothing about the rules.
pub const DENIED_MESSAGE: &str = "statement denied by the vigil query firewall";

/// How many allowlist entries one firewall learns at most, unless the rules
/// file says otherwise.
pub const DEFAULT_LEARN_LIMIT: usize = 10_000;

// ---------------------------------------------------------------------------
// Public types

/// What the firewall does with statements no rule decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Allow them, and add them to the allowlist.
    Learn,
    /// Allow them, and report those outside the allowlist.
    Detect,
    /// Deny those outside the allowlist.
    Enforce,
}

impl Mode {
    /// The name used in the rules file: `learn`, `detect`, `enforce`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Learn => "learn",
            Mode::Detect => "detect",
            Mode::Enforce => "enforce",
        }
    }

    fn from_name(name: &str) -> Option<Mode> {
        [Mode::Learn, Mode::Detect, Mode::Enforce]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule, or the policy for statements that cannot be lexed, does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Let the statement through.
    Allow,
    /// Let it through and report it.
    Report,
    /// Refuse it (in `enforce` mode; report it in the others).
    Deny,
}

impl Action {
    /// The name used in the rules file: `allow`, `report`, `deny`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Report => "report",
            Action::Deny => "deny",
        }
    }

    fn from_name(name: &str) -> Option<Action> {
        [Action::Allow, Action::Report, Action::Deny]
            .into_iter()
            .find(|a| a.as_str() == name)
    }
}

/// What happens to a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Forward it.
    Allow,
    /// Forward it and report it.
    Report,
    /// Do not forward it; answer with SQLSTATE [`DENIED_SQLSTATE`].
    Deny,
}

impl Verdict {
    /// `allow`, `report` or `deny`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Report => "report",
            Verdict::Deny => "deny",
        }
    }
}

/// Why a decision was taken: the `reason` of a [`Decision`] and of its
/// event.
pub mod reason {
    /// A rule with `action = "allow"` matched.
    pub const RULE_ALLOWS: &str = "rule allows";
    /// A rule with `action = "report"` matched.
    pub const RULE_REPORTS: &str = "rule reports";
    /// A rule with `action = "deny"` matched, in `enforce` mode.
    pub const RULE_DENIES: &str = "rule denies";
    /// A rule with `action = "deny"` matched, in `learn` or `detect` mode.
    pub const RULE_WOULD_DENY: &str = "rule denies; not enforced in this mode";
    /// The statement's fingerprint is in the allowlist.
    pub const ALLOWLISTED: &str = "in the allowlist";
    /// The statement is outside the allowlist (`detect`, `enforce`).
    pub const UNLISTED: &str = "not in the allowlist";
    /// The statement is outside the allowlist, and the firewall learns it.
    pub const LEARNING: &str = "not in the allowlist; learning";
    /// The statement could not be lexed: the `unparsed` policy decided.
    pub const UNPARSED: &str = "statement could not be lexed";
    /// The statement could not be lexed and the policy denies, but the mode
    /// does not enforce.
    pub const UNPARSED_WOULD_DENY: &str = "statement could not be lexed; not enforced in this mode";
}

/// Who runs a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Who<'a> {
    /// The database user.
    pub user: &'a str,
    /// The `application_name` (empty when the client sent none).
    pub application: &'a str,
    /// The database.
    pub database: &'a str,
}

/// A statement as the firewall sees it: redacted, never with a literal.
#[derive(Clone, Copy, Debug)]
pub struct Statement<'a> {
    /// The statement's redacted text, without its `;`.
    pub text: &'a str,
    /// Its fingerprint.
    pub fingerprint: u64,
    /// Its class.
    pub class: StatementClass,
    /// The tables it names (see [`tables`]); may be empty when
    /// [`Firewall::needs_tables`] is false.
    pub tables: &'a [TableRef],
    /// A lexer error masked its end.
    pub masked: bool,
}

impl<'a> Statement<'a> {
    /// The statement of a redacted query string, with its tables.
    pub fn new(info: &'a StatementInfo, tables: &'a [TableRef]) -> Self {
        Statement {
            text: &info.text,
            fingerprint: info.fingerprint,
            class: info.class,
            tables,
            masked: info.masked,
        }
    }
}

/// What the firewall decided for one statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// What happens to the statement.
    pub verdict: Verdict,
    /// The rule that decided: its `name`, or `rules[i]` (0-based) when it
    /// has none; `None` when no rule did.
    pub rule: Option<Arc<str>>,
    /// Why: one of the [`reason`] constants.
    pub reason: &'static str,
    /// The firewall's mode.
    pub mode: Mode,
    /// The statement is outside the allowlist and the firewall is
    /// learning: the caller should call [`Firewall::learn`].
    pub learn: bool,
}

// ---------------------------------------------------------------------------
// The firewall

/// A loaded rules file and allowlist. Shared between sessions in an `Arc`;
/// [`check`](Self::check) takes no lock, [`learn`](Self::learn) takes one.
#[derive(Debug)]
pub struct Firewall {
    file: PathBuf,
    mode: Mode,
    unparsed: Action,
    rules: Vec<Rule>,
    allowlist_path: Option<PathBuf>,
    allowlist: HashMap<u64, Vec<Option<Box<str>>>>,
    allowlist_entries: usize,
    search_path: Vec<Box<str>>,
    needs_tables: bool,
    learner: Option<Mutex<Learner>>,
    /// The capture file, one JSON line per statement seen.
    capture: Option<(PathBuf, Mutex<File>)>,
    log_allowed: bool,
}

#[derive(Debug)]
struct Learner {
    file: File,
    learned: HashMap<u64, Vec<Box<str>>>,
    count: usize,
    limit: usize,
    /// The file does not end with a newline (a torn last line).
    needs_newline: bool,
}

impl Firewall {
    /// Loads a rules file and the allowlist it names.
    ///
    /// In `learn` mode the allowlist file is created (mode 0600) when it does
    /// not exist; in `detect` and `enforce` it must exist when named.
    pub fn load(rules: &Path) -> Result<Firewall, RulesError> {
        let text = std::fs::read_to_string(rules).map_err(|e| RulesError::read(rules, &e))?;
        let parsed = parse_rules(&text, rules)?;
        let allowlist_path = parsed.allowlist.as_ref().map(|(p, _)| {
            let p = Path::new(p);
            if p.is_relative() {
                rules.parent().unwrap_or(Path::new("")).join(p)
            } else {
                p.to_path_buf()
            }
        });
        let mut allowlist = HashMap::new();
        let mut read = ListRead::default();
        if let Some(path) = &allowlist_path {
            match std::fs::read_to_string(path) {
                Ok(list) => read = parse_allowlist(&list, path, &mut allowlist)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound && parsed.mode == Mode::Learn => {}
                Err(e) => {
                    let line = parsed.allowlist.as_ref().map_or(1, |(_, l)| *l);
                    return Err(RulesError::at(
                        rules,
                        line,
                        "allowlist",
                        format!(
                            "cannot read the allowlist {}: {e}; check the path, or run in learn mode first to create it",
                            path.display()
                        ),
                    ));
                }
            }
        }
        let learner = match (&allowlist_path, parsed.mode) {
            (Some(path), Mode::Learn) => {
                let file = open_append(path, read.torn_at).map_err(|e| {
                    let line = parsed.allowlist.as_ref().map_or(1, |(_, l)| *l);
                    RulesError::at(
                        rules,
                        line,
                        "allowlist",
                        format!(
                            "cannot open the allowlist {} for writing: {e}; check the directory and its permissions",
                            path.display()
                        ),
                    )
                })?;
                Some(Mutex::new(Learner {
                    file,
                    learned: HashMap::new(),
                    count: 0,
                    limit: parsed.learn_limit,
                    needs_newline: read.needs_newline,
                }))
            }
            _ => None,
        };
        let needs_tables = parsed.rules.iter().any(|r| !r.tables.is_empty());
        let capture = match &parsed.capture {
            None => None,
            Some((p, line)) => {
                let path = if Path::new(p).is_relative() {
                    rules.parent().unwrap_or(Path::new("")).join(p)
                } else {
                    PathBuf::from(p)
                };
                let file = open_append(&path, None).map_err(|e| {
                    RulesError::at(
                        rules,
                        *line,
                        "capture",
                        format!(
                            "cannot open the capture file {} for appending: {e}; check the directory and its permissions",
                            path.display()
                        ),
                    )
                })?;
                Some((path, Mutex::new(file)))
            }
        };
        Ok(Firewall {
            file: rules.to_path_buf(),
            mode: parsed.mode,
            unparsed: parsed.unparsed,
            rules: parsed.rules,
            allowlist_path,
            allowlist,
            allowlist_entries: read.entries,
            search_path: parsed.search_path,
            needs_tables,
            learner,
            capture,
            log_allowed: parsed.log_allowed,
        })
    }

    /// Whether allowed statements are reported too (`log_allowed = true`),
    /// as `firewall.allowed` debug events.
    pub fn log_allowed(&self) -> bool {
        self.log_allowed
    }

    /// Whether a capture file is configured.
    pub fn captures(&self) -> bool {
        self.capture.is_some()
    }

    /// Appends the statement and its decision to the capture file, as one
    /// JSON line: time, user, application, database, fingerprint, class,
    /// verdict, reason and the redacted statement (never a literal). A
    /// write error is returned for the caller to report; capturing goes on.
    pub fn capture(
        &self,
        who: &Who<'_>,
        stmt: &Statement<'_>,
        decision: &Decision,
    ) -> io::Result<()> {
        let Some((_, file)) = &self.capture else {
            return Ok(());
        };
        let mut time = Vec::with_capacity(32);
        vigil_event::Timestamp::now().write_rfc3339(&mut time);
        let line = serde_json::json!({
            "time": String::from_utf8_lossy(&time),
            "user": who.user,
            "application": who.application,
            "database": who.database,
            "fingerprint": format!("{:016x}", stmt.fingerprint),
            "class": stmt.class.as_str(),
            "verdict": decision.verdict.as_str(),
            "reason": decision.reason,
            "statement": stmt.text,
        });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(&bytes)
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The rules file it was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The allowlist file, resolved against the rules file's directory.
    pub fn allowlist_path(&self) -> Option<&Path> {
        self.allowlist_path.as_deref()
    }

    /// How many rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// How many allowlist entries were loaded.
    pub fn allowlist_len(&self) -> usize {
        self.allowlist_entries
    }

    /// Whether some rule selects by table: only then need the caller
    /// extract a statement's [`tables`].
    pub fn needs_tables(&self) -> bool {
        self.needs_tables
    }

    /// Decides what happens to a statement. Takes no lock and allocates
    /// nothing.
    ///
    /// A statement that could not be lexed is decided by the `unparsed`
    /// policy. Otherwise the first rule that matches decides; then the
    /// allowlist, as the mode says.
    pub fn check(&self, who: &Who<'_>, stmt: &Statement<'_>) -> Decision {
        let enforce = self.mode == Mode::Enforce;
        let decision = |verdict, rule: Option<&Arc<str>>, reason| Decision {
            verdict,
            rule: rule.cloned(),
            reason,
            mode: self.mode,
            learn: false,
        };
        if stmt.masked {
            return match self.unparsed {
                Action::Allow => decision(Verdict::Allow, None, reason::UNPARSED),
                Action::Report => decision(Verdict::Report, None, reason::UNPARSED),
                Action::Deny if enforce => decision(Verdict::Deny, None, reason::UNPARSED),
                Action::Deny => decision(Verdict::Report, None, reason::UNPARSED_WOULD_DENY),
            };
        }
        if let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.matches(who, stmt, &self.search_path))
        {
            let name = Some(&rule.name);
            return match rule.action {
                Action::Allow => decision(Verdict::Allow, name, reason::RULE_ALLOWS),
                Action::Report => decision(Verdict::Report, name, reason::RULE_REPORTS),
                Action::Deny if enforce => decision(Verdict::Deny, name, reason::RULE_DENIES),
                Action::Deny => decision(Verdict::Report, name, reason::RULE_WOULD_DENY),
            };
        }
        if self.allowlisted(who.user, stmt.fingerprint) {
            return decision(Verdict::Allow, None, reason::ALLOWLISTED);
        }
        match self.mode {
            Mode::Learn => Decision {
                learn: true,
                ..decision(Verdict::Allow, None, reason::LEARNING)
            },
            Mode::Detect => decision(Verdict::Report, None, reason::UNLISTED),
            Mode::Enforce => decision(Verdict::Deny, None, reason::UNLISTED),
        }
    }

    fn allowlisted(&self, user: &str, fingerprint: u64) -> bool {
        self.allowlist
            .get(&fingerprint)
            .is_some_and(|users| users.iter().any(|u| u.as_deref().is_none_or(|u| u == user)))
    }

    /// In `learn` mode, adds the statement to the allowlist for `who.user`
    /// unless it is there already: appends one line to the allowlist file.
    /// Returns whether it was added; always `false` in the other modes, for
    /// statements that could not be lexed, and once the learn limit is
    /// reached.
    ///
    /// Each entry is written with one `write` to a file opened for
    /// appending, so entries from several writers never interleave, and
    /// synced before this returns.
    pub fn learn(&self, who: &Who<'_>, stmt: &Statement<'_>) -> io::Result<bool> {
        let Some(learner) = &self.learner else {
            return Ok(false);
        };
        if stmt.masked || self.allowlisted(who.user, stmt.fingerprint) {
            return Ok(false);
        }
        let mut l = learner.lock().unwrap_or_else(PoisonError::into_inner);
        let known = l
            .learned
            .get(&stmt.fingerprint)
            .is_some_and(|users| users.iter().any(|u| **u == *who.user));
        if known || l.count >= l.limit {
            return Ok(false);
        }
        let entry = AllowlistEntry {
            fingerprint: format!("{:016x}", stmt.fingerprint),
            user: Some(who.user.to_owned()),
            statement: Some(stmt.text.to_owned()),
        };
        let mut line = String::with_capacity(stmt.text.len() + 64);
        if l.needs_newline {
            line.push('\n');
        }
        line.push_str(&serde_json::to_string(&entry).map_err(io::Error::other)?);
        line.push('\n');
        l.file.write_all(line.as_bytes())?;
        l.file.sync_data()?;
        l.needs_newline = false;
        l.count += 1;
        l.learned
            .entry(stmt.fingerprint)
            .or_default()
            .push(who.user.into());
        Ok(true)
    }

    /// The `firewall.rules_loaded` event for this firewall: file, rules,
    /// mode, allowlist and its entries.
    pub fn loaded_event(&self) -> Event {
        let mut ev = Event::new(catalog::FIREWALL_RULES_LOADED, "firewall rules loaded")
            .field("file", self.file.display().to_string())
            .field("rules", self.rules.len())
            .field("mode", self.mode.as_str())
            .field("unparsed", self.unparsed.as_str());
        if let Some(p) = &self.allowlist_path {
            ev = ev
                .field("allowlist", p.display().to_string())
                .field("allowlist_entries", self.allowlist_entries);
        }
        ev
    }
}

/// The event for a decision: `firewall.allowed` (debug) for
/// [`Verdict::Allow`], `firewall.unlisted` for [`Verdict::Report`],
/// `statement.denied` for [`Verdict::Deny`]. The message is the redacted
/// statement; fields: rule (when one decided), reason, mode, class, and,
/// without a session, user, application and database.
///
/// Allowed statements are many: a caller that does not log debug events
/// can skip this call for them.
pub fn decision_event(
    decision: &Decision,
    who: &Who<'_>,
    stmt: &Statement<'_>,
    session: Option<&Arc<Session>>,
) -> Event {
    let kind = match decision.verdict {
        Verdict::Allow => catalog::FIREWALL_ALLOWED,
        Verdict::Report => catalog::FIREWALL_UNLISTED,
        Verdict::Deny => catalog::STATEMENT_DENIED,
    };
    let mut ev = statement_event(kind, who, stmt, session);
    if let Some(rule) = &decision.rule {
        ev = ev.field("rule", rule.to_string());
    }
    ev = ev
        .field("reason", decision.reason)
        .field("mode", decision.mode.as_str());
    if decision.verdict == Verdict::Deny {
        ev = ev.field("sqlstate", DENIED_SQLSTATE);
    }
    ev
}

/// The `firewall.learned` event, for a statement [`Firewall::learn`] added.
pub fn learned_event(who: &Who<'_>, stmt: &Statement<'_>, session: Option<&Arc<Session>>) -> Event {
    statement_event(catalog::FIREWALL_LEARNED, who, stmt, session).field("mode", "learn")
}

fn statement_event(
    kind: vigil_event::Kind,
    who: &Who<'_>,
    stmt: &Statement<'_>,
    session: Option<&Arc<Session>>,
) -> Event {
    let mut ev = Event::new(kind, stmt.text.to_owned())
        .fingerprint(stmt.fingerprint)
        .field("class", stmt.class.as_str());
    match session {
        Some(s) => ev = ev.session(Arc::clone(s)),
        None => {
            ev = ev
                .field("user", who.user.to_owned())
                .field("application", who.application.to_owned())
                .field("database", who.database.to_owned());
        }
    }
    ev
}

// ---------------------------------------------------------------------------
// Rules

#[derive(Debug)]
struct Rule {
    name: Arc<str>,
    /// Where the rule's name, or else the rule, starts in the rules file.
    at: usize,
    action: Action,
    users: Vec<Glob>,
    applications: Vec<Glob>,
    databases: Vec<Glob>,
    classes: Vec<StatementClass>,
    tables: Vec<TablePattern>,
    fingerprints: Vec<u64>,
    pattern: Option<Glob>,
}

impl Rule {
    fn matches(&self, who: &Who<'_>, stmt: &Statement<'_>, search_path: &[Box<str>]) -> bool {
        (self.fingerprints.is_empty() || self.fingerprints.contains(&stmt.fingerprint))
            && (self.classes.is_empty() || self.classes.contains(&stmt.class))
            && any_glob(&self.users, who.user)
            && any_glob(&self.applications, who.application)
            && any_glob(&self.databases, who.database)
            && self.tables_match(stmt.tables, search_path)
            && self.pattern.as_ref().is_none_or(|p| p.matches(stmt.text))
    }

    /// A `deny` or `report` rule matches a statement that names any of its
    /// tables; an `allow` rule one that names at least one table and only
    /// tables of its list.
    fn tables_match(&self, tables: &[TableRef], search_path: &[Box<str>]) -> bool {
        if self.tables.is_empty() {
            return true;
        }
        let listed = |t: &TableRef| self.tables.iter().any(|p| p.matches(t, search_path));
        match self.action {
            Action::Allow => !tables.is_empty() && tables.iter().all(listed),
            Action::Deny | Action::Report => tables.iter().any(listed),
        }
    }
}

fn any_glob(globs: &[Glob], s: &str) -> bool {
    globs.is_empty() || globs.iter().any(|g| g.matches(s))
}

// ---------------------------------------------------------------------------
// Globs

/// A pattern where `*` stands for any run of characters; `\*` is a `*`
/// and `\\` a `\`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Glob {
    items: Vec<G>,
    fold_case: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum G {
    Byte(u8),
    Star,
}

impl Glob {
    /// Parses a glob. With `statement`, matching ignores ASCII case and runs
    /// of whitespace in the pattern count as one space, as in redacted text.
    pub(crate) fn new(pattern: &str, statement: bool) -> Glob {
        let mut items = Vec::with_capacity(pattern.len());
        let mut bytes = pattern.trim().bytes().peekable();
        while let Some(b) = bytes.next() {
            match b {
                b'\\' if matches!(bytes.peek(), Some(b'*' | b'\\')) => {
                    items.push(G::Byte(bytes.next().unwrap_or(b)));
                }
                b'*' => {
                    if items.last() != Some(&G::Star) {
                        items.push(G::Star);
                    }
                }
                b if statement && b.is_ascii_whitespace() => {
                    while bytes.peek().is_some_and(u8::is_ascii_whitespace) {
                        bytes.next();
                    }
                    items.push(G::Byte(b' '));
                }
                b => items.push(G::Byte(if statement { b.to_ascii_lowercase() } else { b })),
            }
        }
        Glob {
            items,
            fold_case: statement,
        }
    }

    /// A glob that matches exactly `s`.
    fn literal(s: &str) -> Glob {
        Glob {
            items: s.bytes().map(G::Byte).collect(),
            fold_case: false,
        }
    }

    /// Whether the glob matches all of `s`.
    pub(crate) fn matches(&self, s: &str) -> bool {
        let t = s.as_bytes();
        let p = &self.items;
        let (mut pi, mut ti) = (0, 0);
        // The last star seen and where in `t` its match currently ends.
        let mut star: Option<(usize, usize)> = None;
        while let Some(&c) = t.get(ti) {
            let c = if self.fold_case {
                c.to_ascii_lowercase()
            } else {
                c
            };
            match p.get(pi) {
                Some(G::Star) => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(&G::Byte(b)) if b == c => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        p.get(pi..)
            .is_some_and(|rest| rest.iter().all(|&g| g == G::Star))
    }
}

// ---------------------------------------------------------------------------
// Tables

/// A table a statement names: `schema.name` or `name`, as PostgreSQL reads
/// the name (unquoted parts lower-cased, quoted ones as written).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableRef {
    /// The schema, when the statement names one.
    pub schema: Option<Box<str>>,
    /// The table.
    pub name: Box<str>,
}

impl TableRef {
    /// A table reference from its parts.
    pub fn new(schema: Option<&str>, name: &str) -> TableRef {
        TableRef {
            schema: schema.map(Box::from),
            name: name.into(),
        }
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.schema {
            write!(f, "{s}.")?;
        }
        f.write_str(&self.name)
    }
}

/// A table in a rule or a configuration: `name` or `schema.name`, written
/// as in SQL (unquoted parts are lower-cased; `"Quoted"` parts are kept),
/// where `*` in an unquoted part stands for any run of characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TablePattern {
    schema: Option<Glob>,
    name: Glob,
}

impl TablePattern {
    /// Parses `name` or `schema.name`; the error says what is wrong.
    pub(crate) fn parse(s: &str) -> Result<TablePattern, String> {
        let mut parts: Vec<Glob> = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        loop {
            let part;
            if b.get(i) == Some(&b'"') {
                let mut name = String::new();
                let mut j = i + 1;
                loop {
                    match b.get(j) {
                        None => return Err(format!("unterminated quoted name in {s:?}")),
                        Some(b'"') if b.get(j + 1) == Some(&b'"') => {
                            name.push('"');
                            j += 2;
                        }
                        Some(b'"') => break,
                        Some(_) => {
                            let start = j;
                            while b.get(j).is_some_and(|&c| c != b'"') {
                                j += 1;
                            }
                            name.push_str(s.get(start..j).unwrap_or(""));
                        }
                    }
                }
                if name.is_empty() {
                    return Err(format!("empty quoted name in {s:?}"));
                }
                part = Glob::literal(&name);
                i = j + 1;
            } else {
                let start = i;
                while b.get(i).is_some_and(|&c| c != b'.' && c != b'"') {
                    i += 1;
                }
                let raw = s.get(start..i).unwrap_or("");
                if raw.is_empty() || raw.bytes().any(|c| c.is_ascii_whitespace()) {
                    return Err(format!(
                        "{s:?} is not a table name; write name or schema.name"
                    ));
                }
                part = Glob::new(&raw.to_ascii_lowercase(), false);
            }
            parts.push(part);
            match b.get(i) {
                None => break,
                Some(b'.') => i += 1,
                Some(_) => {
                    return Err(format!(
                        "{s:?} is not a table name; write name or schema.name"
                    ));
                }
            }
        }
        let mut parts = parts.into_iter();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(name), None, None) => Ok(TablePattern { schema: None, name }),
            (Some(schema), Some(name), None) => Ok(TablePattern {
                schema: Some(schema),
                name,
            }),
            _ => Err(format!(
                "{s:?} has more than two parts; write name or schema.name"
            )),
        }
    }

    /// Whether the pattern matches a table. A pattern without a schema
    /// matches the table in any schema; one with a schema matches a table
    /// named without one when that schema is on `search_path`.
    pub(crate) fn matches(&self, t: &TableRef, search_path: &[Box<str>]) -> bool {
        if !self.name.matches(&t.name) {
            return false;
        }
        match (&self.schema, &t.schema) {
            (None, _) => true,
            (Some(p), Some(s)) => p.matches(s),
            (Some(p), None) => search_path.iter().any(|s| p.matches(s)),
        }
    }
}

/// The tables a statement names: the targets of `FROM`, `JOIN`, `USING`,
/// `INTO`, `UPDATE`, `TABLE`, `TRUNCATE`, `LOCK` and `COPY`, schema-qualified
/// when written so, each once, in order. Names of common table expressions
/// and set-returning functions in `FROM` are not tables and are left out.
/// Works on the redacted text as on the original.
pub fn tables(sql: &str) -> Vec<TableRef> {
    let mut out = Vec::new();
    tables_into(sql, &mut out);
    out
}

/// [`tables`] into a vector, which is cleared first.
pub fn tables_into(sql: &str, out: &mut Vec<TableRef>) {
    out.clear();
    let toks: Vec<vigil_sql::Token> = Lexer::new(sql)
        .map_while(Result::ok)
        .filter(|t| t.kind != TokenKind::Whitespace && !t.kind.is_comment())
        .collect();
    let s = Scan { sql, toks: &toks };
    let mut ctes: Vec<Box<str>> = Vec::new();
    let mut saw_with = false;
    // One frame per open parenthesis or bracket, and one for the statement:
    // (is a function call's argument list, a FROM list is open).
    let mut frames: Vec<(bool, bool)> = vec![(false, false)];
    let mut i = 0;
    while let Some(t) = toks.get(i) {
        let text = t.text(sql);
        i += 1;
        match (t.kind, text) {
            (TokenKind::Punctuation, "(" | "[") => {
                let call = i >= 2
                    && s.is_name(i - 2)
                    && !s.word_in(i, &["select", "with", "values", "table"]);
                frames.push((call, false));
            }
            (TokenKind::Punctuation, ")" | "]") if frames.len() > 1 => {
                frames.pop();
            }
            (TokenKind::Punctuation, ";") => frames = vec![(false, false)],
            (TokenKind::Punctuation, ",") if frames.last().is_some_and(|f| f.1) => {
                i = s.table(i, true, out);
            }
            (TokenKind::Word, _) => {
                // Every keyword that matters here is short: lower-case it on
                // the stack.
                let mut buf = [0u8; 12];
                let w = match buf.get_mut(..text.len()) {
                    Some(b) => {
                        b.copy_from_slice(text.as_bytes());
                        b.make_ascii_lowercase();
                        std::str::from_utf8(b).unwrap_or("")
                    }
                    None => "",
                };
                let prev = i.checked_sub(2).and_then(|p| s.word(p));
                let top = frames.last_mut();
                match w {
                    "with" => saw_with = true,
                    "as" if saw_with && s.is_cte_body(i) => {
                        if let Some(name) = s.cte_name(i - 1) {
                            ctes.push(name);
                        }
                    }
                    "from" => {
                        let in_call = top.as_ref().is_some_and(|f| f.0);
                        if !in_call && prev.is_none_or(|p| !p.eq_ignore_ascii_case("distinct")) {
                            if let Some(f) = top {
                                f.1 = true;
                            }
                            i = s.table(i, true, out);
                        }
                    }
                    "join" => i = s.table(i, true, out),
                    "using" if !s.sym_at(i, "(") => {
                        if let Some(f) = top {
                            f.1 = true;
                        }
                        i = s.table(i, true, out);
                    }
                    "into" | "copy" => i = s.table(i, false, out),
                    "update" => {
                        let skip = prev.is_some_and(|p| {
                            [
                                "for", "key", "do", "on", "before", "after", "or", "of", "instead",
                            ]
                            .iter()
                            .any(|k| p.eq_ignore_ascii_case(k))
                        }) || i >= 2 && s.sym_at(i - 2, ",");
                        if !skip {
                            i = s.table(i, false, out);
                        }
                    }
                    "table" => {
                        let list = prev.is_some_and(|p| p.eq_ignore_ascii_case("drop"));
                        if list && let Some(f) = top {
                            f.1 = true;
                        }
                        i = s.table(i, false, out);
                    }
                    "truncate" | "lock" => {
                        if let Some(f) = top {
                            f.1 = true;
                        }
                        i = s.table(i, false, out);
                    }
                    "where" | "group" | "order" | "having" | "limit" | "offset" | "window"
                    | "union" | "intersect" | "except" | "returning" | "set" | "for" | "fetch"
                    | "values" | "select" | "add" | "alter" | "rename" | "cascade" | "restrict"
                    | "nowait" => {
                        if let Some(f) = top {
                            f.1 = false;
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if !ctes.is_empty() {
        out.retain(|t| t.schema.is_some() || !ctes.contains(&t.name));
    }
    let mut seen = 0;
    for k in 0..out.len() {
        let dup = out
            .get(..seen)
            .is_some_and(|before| out.get(k).is_some_and(|t| before.contains(t)));
        if !dup {
            out.swap(seen, k);
            seen += 1;
        }
    }
    out.truncate(seen);
}

struct Scan<'a> {
    sql: &'a str,
    toks: &'a [vigil_sql::Token],
}

/// Words that never name a table where a table is expected.
const NOT_TABLES: &[&str] = &[
    "select", "values", "with", "stdin", "stdout", "program", "set", "where", "on", "default",
    "of", "nowait", "skip", "key", "all", "to", "from", "do", "as", "add", "column",
];

/// Words skipped before a table name: `ONLY t`, `IF NOT EXISTS t`,
/// `TEMP TABLE t`, `LATERAL (…)`.
const BEFORE_TABLES: &[&str] = &[
    "only",
    "if",
    "not",
    "exists",
    "temp",
    "temporary",
    "unlogged",
    "table",
    "lateral",
];

impl Scan<'_> {
    fn word(&self, i: usize) -> Option<&str> {
        self.toks
            .get(i)
            .filter(|t| t.kind == TokenKind::Word)
            .map(|t| t.text(self.sql))
    }

    fn word_in(&self, i: usize, words: &[&str]) -> bool {
        self.word(i)
            .is_some_and(|w| words.iter().any(|k| w.eq_ignore_ascii_case(k)))
    }

    fn sym_at(&self, i: usize, sym: &str) -> bool {
        self.toks
            .get(i)
            .is_some_and(|t| t.kind == TokenKind::Punctuation && t.text(self.sql) == sym)
    }

    fn is_name(&self, i: usize) -> bool {
        self.toks
            .get(i)
            .is_some_and(|t| matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdentifier))
    }

    /// The name the identifier at `i` stands for.
    fn name(&self, i: usize) -> Option<Box<str>> {
        let t = self.toks.get(i)?;
        let text = t.text(self.sql);
        match t.kind {
            TokenKind::Word => Some(text.to_ascii_lowercase().into()),
            TokenKind::QuotedIdentifier => Some(quoted_name(text).into()),
            _ => None,
        }
    }

    /// After `AS` at `i - 1`: `[NOT] [MATERIALIZED] (` follows.
    fn is_cte_body(&self, mut i: usize) -> bool {
        if self.word_in(i, &["not"]) {
            i += 1;
        }
        if self.word_in(i, &["materialized"]) {
            i += 1;
        }
        self.sym_at(i, "(")
    }

    /// The name of a common table expression whose `AS` is at `as_`:
    /// `name AS` or `name (columns) AS`.
    fn cte_name(&self, as_: usize) -> Option<Box<str>> {
        let mut j = as_.checked_sub(1)?;
        if self.sym_at(j, ")") {
            let mut depth = 0usize;
            loop {
                if self.sym_at(j, ")") {
                    depth += 1;
                } else if self.sym_at(j, "(") {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                }
                j = j.checked_sub(1)?;
            }
            j = j.checked_sub(1)?;
        }
        self.name(j)
    }

    /// Reads a table name at `i`, after the words that may precede it;
    /// pushes it to `out` unless, with `call_check`, a `(` follows it (a
    /// function in FROM). Returns where scanning goes on.
    fn table(&self, mut i: usize, call_check: bool, out: &mut Vec<TableRef>) -> usize {
        while self.word_in(i, BEFORE_TABLES) {
            i += 1;
        }
        if !self.is_name(i) || self.word_in(i, NOT_TABLES) {
            return i;
        }
        let mut parts: Vec<Box<str>> = Vec::with_capacity(2);
        while let Some(name) = self.name(i) {
            parts.push(name);
            i += 1;
            if self.sym_at(i, ".") && self.is_name(i + 1) {
                i += 1;
            } else {
                break;
            }
        }
        if call_check && self.sym_at(i, "(") {
            return i;
        }
        let name = parts.pop();
        let schema = parts.pop();
        if let Some(name) = name {
            out.push(TableRef { schema, name });
        }
        i
    }
}

/// The name a quoted identifier token stands for: `"a""b"` is `a"b`,
/// `U&"d\0061t"` is `dat`.
fn quoted_name(token: &str) -> String {
    let mut out = String::new();
    if let Some(rest) = token.strip_prefix('"') {
        let inner = rest.strip_suffix('"').unwrap_or(rest);
        out = inner.replace("\"\"", "\"");
        return out;
    }
    // U&"…" [UESCAPE 'c']
    let body = token.get(2..).unwrap_or("");
    let (quoted, escape) = match body.to_ascii_lowercase().rfind("uescape") {
        Some(k) => {
            let clause = body.get(k..).unwrap_or("");
            let esc = clause
                .split('\'')
                .nth(1)
                .and_then(|c| c.chars().next())
                .unwrap_or('\\');
            (body.get(..k).unwrap_or("").trim_end(), esc)
        }
        None => (body, '\\'),
    };
    let inner = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(quoted)
        .replace("\"\"", "\"");
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != escape {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&escape) {
            chars.next();
            out.push(escape);
            continue;
        }
        let digits = if chars.peek() == Some(&'+') {
            chars.next();
            6
        } else {
            4
        };
        let hex: String = chars.by_ref().take(digits).collect();
        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
            Some(c) => out.push(c),
            None => out.push('?'),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The allowlist file

/// One line of the allowlist file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowlistEntry {
    fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    statement: Option<String>,
}

/// What reading an allowlist file found.
#[derive(Debug, Default)]
struct ListRead {
    entries: usize,
    /// A torn last line (unterminated and unreadable, as after a crash
    /// during a write) starts here; it is ignored, and cut off before the
    /// next entry is learned.
    torn_at: Option<u64>,
    /// The file does not end with a newline.
    needs_newline: bool,
}

/// Reads allowlist lines into `into`.
fn parse_allowlist(
    text: &str,
    file: &Path,
    into: &mut HashMap<u64, Vec<Option<Box<str>>>>,
) -> Result<ListRead, RulesError> {
    let mut read = ListRead {
        needs_newline: !text.is_empty() && !text.ends_with('\n'),
        ..ListRead::default()
    };
    let mut start = 0;
    let mut lines = text.split('\n').enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        let line_start = start;
        start += line.len() + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let entry: AllowlistEntry = match serde_json::from_str(trimmed) {
            Ok(e) => e,
            Err(_) if lines.peek().is_none() => {
                read.torn_at = Some(line_start as u64);
                read.needs_newline = false;
                break;
            }
            Err(e) => {
                return Err(RulesError::at(
                    file,
                    n + 1,
                    "entry",
                    format!(
                        "not an allowlist entry: {e}; write one JSON object per line, {{\"fingerprint\": \"<16 hex digits>\", \"user\": \"…\", \"statement\": \"…\"}}"
                    ),
                ));
            }
        };
        let fp = parse_fingerprint(&entry.fingerprint).ok_or_else(|| {
            RulesError::at(
                file,
                n + 1,
                "fingerprint",
                format!(
                    "{:?} is not a fingerprint; write its 16 hex digits, as in the events",
                    entry.fingerprint
                ),
            )
        })?;
        into.entry(fp)
            .or_default()
            .push(entry.user.map(String::into_boxed_str));
        read.entries += 1;
    }
    Ok(read)
}

/// Opens the allowlist for appending, created with mode 0600, and cuts off
/// a torn last line.
fn open_append(path: &Path, torn_at: Option<u64>) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let file = opts.open(path)?;
    if let Some(len) = torn_at {
        file.set_len(len)?;
        file.sync_data()?;
    }
    Ok(file)
}

fn parse_fingerprint(s: &str) -> Option<u64> {
    (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
}

// ---------------------------------------------------------------------------
// The rules file

/// Why a rules file (or the allowlist it names) was rejected.
///
/// Its `Display` is one line: `<file>:<line>: <key>: <what is wrong; what
/// to do>`, e.g. `firewall.toml:7: rules[1].action: unknown action "block";
/// expected one of allow, report, deny`. A file that cannot be read has no
/// line and no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError {
    file: PathBuf,
    line: Option<usize>,
    key: Option<String>,
    message: String,
}

impl RulesError {
    fn read(file: &Path, e: &io::Error) -> RulesError {
        RulesError {
            file: file.to_path_buf(),
            line: None,
            key: None,
            message: format!("cannot read the file: {e}; check the path and its permissions"),
        }
    }

    fn at(file: &Path, line: usize, key: &str, message: String) -> RulesError {
        RulesError {
            file: file.to_path_buf(),
            line: Some(line),
            key: (!key.is_empty()).then(|| key.to_owned()),
            message,
        }
    }

    /// The file at fault: the rules file, or the allowlist.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The 1-based line, when the file could be read.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The key path, e.g. `rules[2].tables[0]` (indexes are 0-based).
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What is wrong and what to do.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The `firewall.rules_invalid` event: file, line, key, reason.
    pub fn event(&self) -> Event {
        let mut ev = Event::new(catalog::FIREWALL_RULES_INVALID, self.to_string())
            .field("file", self.file.display().to_string());
        if let Some(line) = self.line {
            ev = ev.field("line", line);
        }
        if let Some(key) = &self.key {
            ev = ev.field("key", key.clone());
        }
        ev.field("reason", self.message.clone())
    }
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&one_line(&self.file.display().to_string()))?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{}: ", one_line(key))?;
        }
        f.write_str(&one_line(&self.message))
    }
}

impl std::error::Error for RulesError {}

/// Escapes control characters so the text cannot break the line.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug)]
struct Parsed {
    mode: Mode,
    unparsed: Action,
    allowlist: Option<(String, usize)>,
    learn_limit: usize,
    search_path: Vec<Box<str>>,
    rules: Vec<Rule>,
    capture: Option<(String, usize)>,
    log_allowed: bool,
}

/// A problem found while reading the tree: where, which key, what.
struct Problem {
    offset: usize,
    key: String,
    message: String,
}

struct Reader {
    problems: Vec<Problem>,
}

impl Reader {
    fn problem(&mut self, offset: usize, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            offset,
            key: key.to_owned(),
            message: message.into(),
        });
    }

    fn string<'v>(&mut self, v: &'v Spanned<DeValue<'_>>, key: &str) -> Option<&'v str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s),
            other => {
                self.problem(
                    v.span().start,
                    key,
                    format!("expected a string, found {}; quote it", other.type_str()),
                );
                None
            }
        }
    }

    /// A list of non-empty strings, each with its key path and offset.
    fn strings<'v>(
        &mut self,
        v: &'v Spanned<DeValue<'_>>,
        key: &str,
    ) -> Vec<(&'v str, String, usize)> {
        let DeValue::Array(items) = v.get_ref() else {
            self.problem(
                v.span().start,
                key,
                format!(
                    "expected a list of strings, found {}; write [\"…\", \"…\"]",
                    v.get_ref().type_str()
                ),
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.problem(
                v.span().start,
                key,
                "empty list; remove the key to match everything, or list values",
            );
        }
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let k = format!("{key}[{i}]");
            if let Some(s) = self.string(item, &k) {
                if s.is_empty() {
                    self.problem(
                        item.span().start,
                        &k,
                        "empty string; remove it or fill it in",
                    );
                } else {
                    out.push((s, k, item.span().start));
                }
            }
        }
        out
    }
}

fn parse_rules(text: &str, file: &Path) -> Result<Parsed, RulesError> {
    let (tree, errors) = DeTable::parse_recoverable(text);
    if let Some(e) = errors
        .iter()
        .min_by_key(|e| e.span().map_or(usize::MAX, |s| s.start))
    {
        let offset = e.span().map_or(0, |s| s.start);
        let msg = e.message().trim().replace('\n', "; ");
        return Err(RulesError::at(
            file,
            line_at(text, offset),
            &key_near(text, offset),
            format!("invalid TOML: {msg}; fix the syntax"),
        ));
    }
    let mut r = Reader {
        problems: Vec::new(),
    };
    let mut mode = None;
    let mut unparsed = Action::Deny;
    let mut allowlist = None;
    let mut learn_limit = DEFAULT_LEARN_LIMIT;
    let mut search_path: Vec<Box<str>> = vec!["public".into()];
    let mut rules = Vec::new();
    let mut capture = None;
    let mut log_allowed = false;
    for (k, v) in tree.get_ref().iter() {
        let key = k.get_ref().as_ref();
        match key {
            "mode" => {
                if let Some(s) = r.string(v, key) {
                    mode = Mode::from_name(s);
                    if mode.is_none() {
                        r.problem(
                            v.span().start,
                            key,
                            format!("unknown mode {s:?}; expected one of learn, detect, enforce"),
                        );
                    }
                }
            }
            "unparsed" => {
                if let Some(s) = r.string(v, key) {
                    match Action::from_name(s) {
                        Some(a) => unparsed = a,
                        None => r.problem(
                            v.span().start,
                            key,
                            format!("unknown policy {s:?}; expected one of deny, report, allow"),
                        ),
                    }
                }
            }
            "allowlist" => {
                if let Some(s) = r.string(v, key) {
                    if s.trim().is_empty() {
                        r.problem(v.span().start, key, "empty path; name the allowlist file");
                    } else {
                        allowlist = Some((s.to_owned(), line_at(text, v.span().start)));
                    }
                }
            }
            "learn_limit" => match v.get_ref() {
                DeValue::Integer(n) => match u64::from_str_radix(n.as_str(), n.radix()) {
                    Ok(n) if n > 0 => learn_limit = usize::try_from(n).unwrap_or(usize::MAX),
                    _ => r.problem(
                        v.span().start,
                        key,
                        "must be a positive number of entries; e.g. learn_limit = 10000",
                    ),
                },
                other => r.problem(
                    v.span().start,
                    key,
                    format!(
                        "expected a positive integer, found {}; e.g. learn_limit = 10000",
                        other.type_str()
                    ),
                ),
            },
            "search_path" => {
                search_path = r
                    .strings(v, key)
                    .into_iter()
                    .map(|(s, _, _)| s.into())
                    .collect();
            }
            "rules" => rules = read_rules(&mut r, v),
            "capture" => {
                if let Some(s) = r.string(v, key) {
                    if s.trim().is_empty() {
                        r.problem(v.span().start, key, "empty path; name the capture file");
                    } else {
                        capture = Some((s.to_owned(), line_at(text, v.span().start)));
                    }
                }
            }
            "log_allowed" => match v.get_ref() {
                DeValue::Boolean(b) => log_allowed = *b,
                other => r.problem(
                    v.span().start,
                    key,
                    format!("expected true or false, found {}", other.type_str()),
                ),
            },
            _ => r.problem(
                k.span().start,
                key,
                "unknown key; expected mode, allowlist, unparsed, learn_limit, search_path, \
                 capture, log_allowed or [[rules]]",
            ),
        }
    }
    if mode.is_none() && !r.problems.iter().any(|p| p.key == "mode") {
        r.problem(
            0,
            "mode",
            "missing; add mode = \"learn\", \"detect\" or \"enforce\"",
        );
    }
    if mode == Some(Mode::Learn)
        && allowlist.is_none()
        && !r.problems.iter().any(|p| p.key == "allowlist")
    {
        r.problem(
            0,
            "allowlist",
            "learn mode needs an allowlist file to write to; add allowlist = \"allowlist.jsonl\"",
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, rule) in rules.iter().enumerate() {
        if let Some(first) = seen.insert(&rule.name, i) {
            r.problem(
                rule.at,
                &format!("rules[{i}].name"),
                format!(
                    "duplicate rule name {:?} (also rules[{first}]); give each rule its own name",
                    rule.name
                ),
            );
        }
    }
    if let Some(p) = r.problems.into_iter().min_by_key(|p| p.offset) {
        return Err(RulesError::at(
            file,
            line_at(text, p.offset),
            &p.key,
            p.message,
        ));
    }
    Ok(Parsed {
        mode: mode.unwrap_or(Mode::Detect),
        unparsed,
        allowlist,
        learn_limit,
        search_path,
        rules,
        capture,
        log_allowed,
    })
}

fn read_rules(r: &mut Reader, v: &Spanned<DeValue<'_>>) -> Vec<Rule> {
    let DeValue::Array(items) = v.get_ref() else {
        r.problem(
            v.span().start,
            "rules",
            format!(
                "expected [[rules]] tables, found {}; write each rule as a [[rules]] table",
                v.get_ref().type_str()
            ),
        );
        return Vec::new();
    };
    let mut rules = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let base = format!("rules[{i}]");
        let DeValue::Table(t) = item.get_ref() else {
            r.problem(
                item.span().start,
                &base,
                format!(
                    "expected a table, found {}; write each rule as a [[rules]] table",
                    item.get_ref().type_str()
                ),
            );
            continue;
        };
        let mut rule = Rule {
            name: Arc::from(base.as_str()),
            at: item.span().start,
            action: Action::Deny,
            users: Vec::new(),
            applications: Vec::new(),
            databases: Vec::new(),
            classes: Vec::new(),
            tables: Vec::new(),
            fingerprints: Vec::new(),
            pattern: None,
        };
        let mut action = None;
        for (k, v) in t.iter() {
            let name = k.get_ref().as_ref();
            let key = format!("{base}.{name}");
            let at = v.span().start;
            match name {
                "name" => {
                    if let Some(s) = r.string(v, &key) {
                        if s.trim().is_empty() {
                            r.problem(at, &key, "empty name; name the rule or remove the key");
                        } else {
                            rule.name = Arc::from(s);
                            rule.at = at;
                        }
                    }
                }
                "action" => {
                    if let Some(s) = r.string(v, &key) {
                        action = Action::from_name(s);
                        if action.is_none() {
                            r.problem(
                                at,
                                &key,
                                format!("unknown action {s:?}; expected one of allow, report, deny"),
                            );
                        }
                    }
                }
                "users" | "applications" | "databases" => {
                    let globs = r
                        .strings(v, &key)
                        .into_iter()
                        .map(|(s, _, _)| Glob::new(s, false))
                        .collect();
                    match name {
                        "users" => rule.users = globs,
                        "applications" => rule.applications = globs,
                        _ => rule.databases = globs,
                    }
                }
                "classes" => {
                    for (s, k, at) in r.strings(v, &key) {
                        match StatementClass::from_name(s) {
                            Some(c) => rule.classes.push(c),
                            None => r.problem(
                                at,
                                &k,
                                format!(
                                    "unknown statement class {s:?}; expected one of read, write, function, role, ddl, misc"
                                ),
                            ),
                        }
                    }
                }
                "tables" => {
                    for (s, k, at) in r.strings(v, &key) {
                        match TablePattern::parse(s) {
                            Ok(p) => rule.tables.push(p),
                            Err(m) => r.problem(at, &k, m),
                        }
                    }
                }
                "fingerprints" => {
                    for (s, k, at) in r.strings(v, &key) {
                        match parse_fingerprint(s) {
                            Some(fp) => rule.fingerprints.push(fp),
                            None => r.problem(
                                at,
                                &k,
                                format!(
                                    "{s:?} is not a fingerprint; write its 16 hex digits, as in the events"
                                ),
                            ),
                        }
                    }
                }
                "pattern" => {
                    if let Some(s) = r.string(v, &key) {
                        if s.trim().is_empty() {
                            r.problem(at, &key, "empty pattern; write the redacted statement, with * for any text");
                        } else {
                            rule.pattern = Some(Glob::new(s, true));
                        }
                    }
                }
                _ => r.problem(
                    k.span().start,
                    &key,
                    "unknown key; expected name, action, users, applications, databases, classes, tables, fingerprints or pattern",
                ),
            }
        }
        match action {
            Some(a) => rule.action = a,
            None => {
                if !t.iter().any(|(k, _)| k.get_ref() == "action") {
                    r.problem(
                        item.span().start,
                        &format!("{base}.action"),
                        "missing; add action = \"allow\", \"report\" or \"deny\"",
                    );
                }
            }
        }
        rules.push(rule);
    }
    rules
}

/// The 1-based line holding byte `offset` of `text`.
fn line_at(text: &str, offset: usize) -> usize {
    let b = text.as_bytes();
    let end = offset.min(b.len());
    b.get(..end)
        .map_or(0, |s| s.iter().filter(|&&c| c == b'\n').count())
        + 1
}

/// For a syntax error: the table header above `offset` (`rules[2]` for the
/// third `[[rules]]`) and the key written at the start of its line.
fn key_near(text: &str, offset: usize) -> String {
    let line_no = line_at(text, offset);
    let mut table = String::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut key = String::new();
    for (n, line) in text.split('\n').enumerate() {
        let t = line.trim();
        if let Some(inner) = t.strip_prefix("[[") {
            let name = inner.split("]]").next().unwrap_or("").trim().to_owned();
            let c = counts.entry(name.clone()).or_insert(0);
            table = format!("{name}[{c}]");
            *c += 1;
        } else if let Some(inner) = t.strip_prefix('[') {
            table = inner.split(']').next().unwrap_or("").trim().to_owned();
        }
        if n + 1 == line_no {
            if !t.starts_with('[') {
                let k = t.split('=').next().unwrap_or("").trim();
                if !k.is_empty()
                    && t.contains('=')
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
                {
                    key = k.to_owned();
                }
            }
            break;
        }
    }
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}
