//! The directories and names that differ between machines and runs, as
//! placeholders: one small type, [`Filters`], with one verb, `apply_to`.

use std::collections::HashMap;
use std::fmt::Write as _;

/// Replacements of whole paths (the user's first, then the temp, home,
/// working and cargo target directories), with the names `tempfile` and
/// cargo make in them numbered.
#[derive(Default)]
pub(crate) struct Filters {
    replacements: Vec<(String, String)>,
    temps: HashMap<String, usize>,
}

impl Filters {
    /// Filters with `extra` replacements first, then the built-in
    /// placeholders.
    pub(crate) fn new(extra: &[(String, String)]) -> Filters {
        let mut replacements: Vec<(String, String)> = extra.to_vec();
        replacements.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        let mut builtin = placeholders();
        builtin.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        replacements.extend(builtin);
        Filters { replacements, temps: HashMap::new() }
    }

    /// Applies the replacements, then numbers `tempfile`-style names in the
    /// temp directory and cargo's hashes in the target directory.
    pub(crate) fn apply_to(&mut self, s: &str) -> String {
        let mut out = s.to_owned();
        for (from, to) in &self.replacements {
            out = replace_path(&out, from, to);
        }
        if out.contains("<tmp>/.tmp") {
            out = self.number_temps(&out);
        }
        if out.contains("<target>") {
            out = cargo_hashes(&out);
            out = profiles(&out);
        }
        out
    }

    /// `<tmp>/.tmpAb3dEf` as `<tmp>/.tmp<1>`: the names `tempfile` makes.
    fn number_temps(&mut self, s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(at) = rest.find("<tmp>/.tmp") {
            let after = at + "<tmp>/.tmp".len();
            out.push_str(&rest[..after]);
            let tail = &rest[after..];
            let len = tail.bytes().take_while(u8::is_ascii_alphanumeric).count();
            if len == 6 {
                let next = self.temps.len() + 1;
                let n = *self.temps.entry(tail[..6].to_owned()).or_insert(next);
                let _ = write!(out, "<{n}>");
                rest = &tail[6..];
            } else {
                rest = tail;
            }
        }
        out.push_str(rest);
        out
    }
}

/// The built-in placeholders: directories that differ between machines.
fn placeholders() -> Vec<(String, String)> {
    let mut v = Vec::new();
    let mut add = |dir: Option<String>, to: &str| {
        if let Some(d) = dir {
            let d = d.trim_end_matches('/').to_owned();
            if !d.is_empty() {
                if let Ok(canon) = std::fs::canonicalize(&d) {
                    let canon = canon.to_string_lossy().into_owned();
                    if canon != d && canon != "/" {
                        v.push((canon, to.to_owned()));
                    }
                }
                v.push((d, to.to_owned()));
            }
        }
    };
    add(crate::target_dir::target_dir().map(|d| d.to_string_lossy().into_owned()), "<target>");
    add(Some(std::env::temp_dir().to_string_lossy().into_owned()), "<tmp>");
    add(std::env::var("HOME").ok(), "<home>");
    add(std::env::current_dir().ok().map(|d| d.to_string_lossy().into_owned()), "<cwd>");
    v
}

/// Replaces `from` by `to` where `from` is a whole path prefix: what
/// follows is the end, a `/` or a character that cannot be in a name here.
fn replace_path(s: &str, from: &str, to: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(from) {
        let after = i + from.len();
        let next = rest[after..].chars().next();
        let boundary = next.is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')));
        out.push_str(&rest[..i]);
        out.push_str(if boundary { to } else { from });
        rest = &rest[after..];
    }
    out.push_str(rest);
    out
}

/// Cargo's profile directories, `<target>/debug` and `<target>/release`
/// (also under a target triple, `<target>/x86_64-unknown-linux-gnu/debug`),
/// as `<target>/<profile>`: a debug and a release build of one program
/// give one snapshot.
fn profiles(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("<target>/") {
        let after = at + "<target>/".len();
        out.push_str(&rest[..after]);
        rest = &rest[after..];
        let name_len =
            |r: &str| r.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))).unwrap_or(r.len());
        let first = &rest[..name_len(rest)];
        // A target triple has at least two dashes.
        let skip = if first.matches('-').count() >= 2 && rest[first.len()..].starts_with('/') {
            let second = &rest[first.len() + 1..];
            out.push_str(first);
            out.push('/');
            rest = second;
            &rest[..name_len(rest)]
        } else {
            first
        };
        let ends =
            rest[skip.len()..].chars().next().is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')));
        if matches!(skip, "debug" | "release") && ends {
            out.push_str("<profile>");
            rest = &rest[skip.len()..];
        }
    }
    out.push_str(rest);
    out
}

/// Cargo's `-0123456789abcdef` metadata hashes, after `<target>`, as `-<hash>`.
fn cargo_hashes(s: &str) -> String {
    let mut out = String::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < s.len() {
        let hex = bytes
            .get(i + 1..i + 17)
            .is_some_and(|h| h.iter().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let end_ok = bytes.get(i + 17).is_none_or(|b| !b.is_ascii_alphanumeric());
        if bytes[i] == b'-' && hex && end_ok {
            out.push_str("-<hash>");
            i += 17;
        } else {
            let c = s[i..].chars().next().unwrap_or_default();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_paths_only() {
        assert_eq!(replace_path("\"/tmp/x\" /tmpfoo /tmp", "/tmp", "<tmp>"), "\"<tmp>/x\" /tmpfoo <tmp>");
        assert_eq!(
            cargo_hashes("<target>/debug/build/probity-fixtures-0123456789abcdef/out"),
            "<target>/debug/build/probity-fixtures-<hash>/out"
        );
        assert_eq!(cargo_hashes("a-0123456789abcdefg"), "a-0123456789abcdefg");
        assert_eq!(
            profiles("\"<target>/debug/app\" <target>/release <target>/x86_64-unknown-linux-gnu/release/app"),
            "\"<target>/<profile>/app\" <target>/<profile> <target>/x86_64-unknown-linux-gnu/<profile>/app"
        );
        assert_eq!(profiles("<target>/debugger/x <target>/doc/x"), "<target>/debugger/x <target>/doc/x");
        let mut f = Filters::default();
        assert_eq!(
            f.apply_to("<tmp>/.tmpAbC123/x <tmp>/.tmpZZZ999 <tmp>/.tmpAbC123"),
            "<tmp>/.tmp<1>/x <tmp>/.tmp<2> <tmp>/.tmp<1>"
        );
    }
}
