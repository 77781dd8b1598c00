//! The keywords redaction and classification look at, recognised once per
//! word: the word's bytes, lower-cased, packed into a `u128` and matched
//! against constants, so later passes compare small codes, not strings.

macro_rules! keywords {
    ($($name:ident = $text:literal,)*) => {
        /// A keyword this crate looks at, or `None` for any other word.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Kw {
            None,
            $($name,)*
        }

        #[allow(non_upper_case_globals)]
        mod packed {
            $(pub(super) const $name: u128 = super::pack_const($text);)*
        }

        /// The keyword `word` is, in any case.
        pub(crate) fn keyword(word: &[u8]) -> Kw {
            let Some(key) = pack(word) else { return Kw::None };
            match key {
                $(packed::$name => Kw::$name,)*
                _ => Kw::None,
            }
        }
    };
}

keywords! {
    Absolute = "absolute",
    All = "all",
    Alter = "alter",
    Analyse = "analyse",
    Analyze = "analyze",
    And = "and",
    Any = "any",
    Array = "array",
    As = "as",
    Backward = "backward",
    Begin = "begin",
    Between = "between",
    By = "by",
    Call = "call",
    Case = "case",
    Comment = "comment",
    Copy = "copy",
    Create = "create",
    Declare = "declare",
    Default = "default",
    Delete = "delete",
    Distinct = "distinct",
    Do = "do",
    Drop = "drop",
    Else = "else",
    End = "end",
    Explain = "explain",
    False = "false",
    Fetch = "fetch",
    For = "for",
    Forward = "forward",
    From = "from",
    Function = "function",
    Global = "global",
    Grant = "grant",
    Group = "group",
    Having = "having",
    Ilike = "ilike",
    Import = "import",
    In = "in",
    Insert = "insert",
    Into = "into",
    Like = "like",
    Limit = "limit",
    Local = "local",
    Mapping = "mapping",
    Materialized = "materialized",
    Merge = "merge",
    Move = "move",
    Not = "not",
    Off = "off",
    Offset = "offset",
    On = "on",
    Or = "or",
    Prepare = "prepare",
    Privileges = "privileges",
    Procedural = "procedural",
    Procedure = "procedure",
    Reassign = "reassign",
    Refresh = "refresh",
    Relative = "relative",
    Replace = "replace",
    Return = "return",
    Returning = "returning",
    Revoke = "revoke",
    Role = "role",
    Security = "security",
    Select = "select",
    Session = "session",
    Set = "set",
    Similar = "similar",
    Some = "some",
    Table = "table",
    Temp = "temp",
    Temporary = "temporary",
    Then = "then",
    Time = "time",
    To = "to",
    Transaction = "transaction",
    Truncate = "truncate",
    Trusted = "trusted",
    Unlogged = "unlogged",
    Update = "update",
    User = "user",
    Values = "values",
    Verbose = "verbose",
    When = "when",
    Where = "where",
    With = "with",
    Zone = "zone",
}

impl Kw {
    /// Whether a `-` after this keyword is a sign (an operand is expected),
    /// as in `WHERE -1 < x` or `LIMIT -1`.
    pub(crate) fn expects_operand(self) -> bool {
        use Kw::*;
        matches!(
            self,
            Absolute
                | All
                | And
                | Any
                | Backward
                | Between
                | By
                | Case
                | Distinct
                | Else
                | Fetch
                | Forward
                | Having
                | Ilike
                | Like
                | Limit
                | Move
                | Not
                | Offset
                | On
                | Or
                | Relative
                | Return
                | Returning
                | Select
                | Similar
                | Some
                | Then
                | To
                | Values
                | When
                | Where
        )
    }
}

/// Up to 16 bytes, ASCII-lower-cased, little-endian. Words hold no NUL, so
/// different words pack differently.
fn pack(word: &[u8]) -> Option<u128> {
    if word.len() > 16 {
        return None;
    }
    let mut buf = [0u8; 16];
    buf.get_mut(..word.len())?.copy_from_slice(word);
    buf.make_ascii_lowercase();
    Some(u128::from_le_bytes(buf))
}

const fn pack_const(word: &str) -> u128 {
    let b = word.as_bytes();
    let mut k = 0u128;
    let mut i = 0;
    while i < b.len() {
        k |= (b[i] as u128) << (8 * i);
        i += 1;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_in_any_case() {
        assert_eq!(keyword(b"select"), Kw::Select);
        assert_eq!(keyword(b"SeLeCt"), Kw::Select);
        assert_eq!(keyword(b"MATERIALIZED"), Kw::Materialized);
        assert_eq!(keyword(b"selects"), Kw::None);
        assert_eq!(keyword(b"selec"), Kw::None);
        assert_eq!(keyword(b""), Kw::None);
        assert_eq!(keyword(b"a_very_long_identifier_name"), Kw::None);
        assert_eq!(keyword("sélect".as_bytes()), Kw::None);
    }
}
