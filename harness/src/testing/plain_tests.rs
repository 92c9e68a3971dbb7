//! Plain `#[test]`s in a `harness = false` target, which never run.
//!
//! Cargo builds such a target with `--cfg test` but without `--test`, and
//! rustc then drops every `#[test]` item before any macro expands: nothing
//! of it is compiled, so neither `#[traced_test]`, an `inventory` check,
//! nor this harness can see it in the binary. A macro that shadows `test`
//! reaches only its own module (and a macro-expanded import is ambiguous
//! with the prelude's `test`), and a crate-level attribute is unstable. So
//! the harness looks where the tests still are: the sources rustc listed
//! in the binary's dependency file (`<binary>.d`, beside it in
//! `target/*/deps/`). Every `#[test]` attribute in them (or `#[x::test]`,
//! which expands to one) is dead code here, and is reported as a failing
//! test that says what to write instead. Where the dependency file or the
//! sources are gone (a test binary copied or archived elsewhere), there is
//! nothing to read and nothing is reported.

use std::path::{Path, PathBuf};

/// A `#[test]` that this target will never run.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct PlainTest {
    /// The source file, as rustc named it.
    pub file: String,
    /// The line of the attribute, from 1.
    pub line: usize,
    /// The function it is on, when one follows.
    pub name: Option<String>,
}

impl PlainTest {
    /// What the failing test reports.
    pub fn failure(&self) -> String {
        format!(
            "probity: the plain #[test] {}at {}:{} never runs: this target has `harness = false`, and rustc \
             drops #[test] items from it. Write #[probity::traced_test(preload_only)] instead (it runs under \
             both harnesses, without privileges, and need not trace anything), or move the test to a target \
             with the standard harness",
            self.name.as_ref().map(|n| format!("`{n}` ")).unwrap_or_default(),
            self.file,
            self.line
        )
    }
}

/// The plain tests in the sources of the running binary, if its
/// dependency file and sources can be read.
pub(super) fn in_this_binary() -> Vec<PlainTest> {
    let Ok(exe) = std::env::current_exe() else { return Vec::new() };
    let Ok(deps) = std::fs::read_to_string(exe.with_extension("d")) else { return Vec::new() };
    let bases: Vec<PathBuf> = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .map(|dir| dir.ancestors().map(Path::to_path_buf).collect())
        .unwrap_or_default();
    let mut found = Vec::new();
    for file in sources(&deps) {
        let path = Path::new(&file);
        let text = if path.is_absolute() {
            std::fs::read_to_string(path).ok()
        } else {
            bases.iter().find_map(|b| std::fs::read_to_string(b.join(path)).ok())
        };
        if let Some(text) = text {
            found.extend(in_source(&text).into_iter().map(|(line, name)| PlainTest { file: file.clone(), line, name }));
        }
    }
    found
}

/// The Rust sources a dependency file lists: the lines `path:` that
/// name each dependency once.
fn sources(deps: &str) -> Vec<String> {
    let mut files: Vec<String> = deps
        .lines()
        .filter_map(|l| l.strip_suffix(':'))
        .filter(|f| f.ends_with(".rs") && !f.contains(": "))
        .map(|f| f.replace("\\ ", " "))
        .collect();
    files.dedup();
    files
}

/// The line of each `#[test]` (or `#[path::test]`) attribute in `source`,
/// with the function that follows it.
fn in_source(source: &str) -> Vec<(usize, Option<String>)> {
    let code = code_only(source);
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(at) = code[i..].find('#').map(|p| p + i) {
        i = at + 1;
        let rest = code[i..].trim_start();
        let Some(inner) = rest.strip_prefix('[') else { continue };
        let path: String = inner.chars().take_while(|c| c.is_alphanumeric() || "_: \t\n".contains(*c)).collect();
        let after = inner[path.len()..].trim_start();
        let last = path.split("::").last().unwrap_or_default().trim();
        if last == "test" && (after.starts_with(']') || after.starts_with('(')) {
            let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
            found.push((line, next_fn(&code[i..])));
        }
    }
    found
}

/// The name of the first function declared in `code`.
fn next_fn(code: &str) -> Option<String> {
    let mut words = code.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty());
    words.find(|w| *w == "fn")?;
    words.next().map(str::to_string)
}

/// `source` with comments and the insides of literals blanked, line
/// breaks kept, so that what is left is code.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&chars, i) {
            // `r#"…"#`, `br"…"`, `cr"…"`: up to the quote and as many `#`.
            let open = chars[i..].iter().position(|c| *c == '"').map_or(chars.len(), |p| i + p + 1);
            while i < open {
                blank(&mut out, chars[i]);
                i += 1;
            }
            while i < chars.len() {
                if chars[i] == '"' && chars[i + 1..].iter().take(hashes).filter(|c| **c == '#').count() == hashes {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '"' {
            blank(&mut out, c);
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
            if i < chars.len() {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal (a lifetime has no closing quote).
            blank(&mut out, c);
            i += 1;
            if chars.get(i) == Some(&'\\') {
                blank(&mut out, '\\');
                i += 1;
            }
            while i < chars.len() && chars[i] != '\'' {
                blank(&mut out, chars[i]);
                i += 1;
            }
            if i < chars.len() {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// At `i`, the number of `#` of a raw string that starts there, if one
/// does (and is not the end of an identifier).
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if matches!(chars.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|c| **c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some(hashes)
}

#[cfg(test)]
mod tests {
    use super::{in_source, sources};

    #[test]
    fn finds_test_attributes_in_code_only() {
        let source = r####"
//! ```
//! #[test] fn in_a_doc() {}
//! ```
/* #[test] /* nested */ fn in_a_comment() {} */
const S: &str = "#[test] fn in_a_string() {}";
const R: &str = r#"#[test] "fn" in_a_raw_string"#;
const C: char = '#';
fn life<'a>(x: &'a str) -> &'a str { x }

#[test]
fn plain() {}

#[ tokio :: test ]
async fn through_a_path() {}

#[test_case(1)]
fn not_a_test_attribute(_: u32) {}

#[traced_test]
fn traced() {}
"####;
        assert_eq!(in_source(source), [(11, Some("plain".to_string())), (14, Some("through_a_path".to_string()))]);
    }

    #[test]
    fn reads_the_sources_of_a_dependency_file() {
        let deps = "/t/deps/x-1.d: tests/x.rs tests/x/a.rs data.txt\n\n/t/deps/x-1: tests/x.rs tests/x/a.rs \
                    data.txt\n\ntests/x.rs:\ntests/x/a.rs:\ndata.txt:\n";
        assert_eq!(sources(deps), ["tests/x.rs", "tests/x/a.rs"]);
    }
}
