//! Kafka's configuration file format: Java properties, read as `java.util.Properties.load` reads them
//! (Kafka's `Utils.loadProps`).
//!
//! The rules, from `Properties.load(Reader)`:
//! - The text is split into natural lines at `\n`, `\r` or `\r\n`. Leading whitespace (space, tab, form
//!   feed) of a line is skipped; a line then blank, or whose first character is `#` or `!`, is a comment.
//! - A line ending in an odd number of backslashes continues on the next natural line, whose leading
//!   whitespace is skipped; the backslash and the line break are dropped. A comment line never continues.
//! - The key runs to the first unescaped `=`, `:` or whitespace. After it, whitespace, then at most one
//!   `=` or `:`, then whitespace are skipped; the rest of the logical line is the value (trailing
//!   whitespace kept).
//! - In keys and values, `\t` `\n` `\r` `\f` are the control characters, `\uXXXX` is a UTF-16 code unit
//!   (surrogate pairs join), and a backslash before any other character is dropped (`\=` is `=`, `\\` is
//!   `\`). A `\u` without four hexadecimal digits is an error ("Malformed \uxxxx encoding.").
//! - A key given twice keeps its last value.
//!
//! Bytes: Java's `load(InputStream)` reads ISO 8859-1. strom reads UTF-8 when the file is valid UTF-8
//! (where Java would have made mojibake of non-ASCII bytes) and ISO 8859-1 otherwise.
//!
//! Checked against Java 17's `Properties.load` on the cases of the unit tests below (continuations,
//! separators, escapes, `\r` endings, a trailing backslash at the end of the file). The `java-properties`
//! crate was checked the same way and drops a last line that ends in a backslash, hence this file.

/// Decodes a properties file's bytes: UTF-8 when valid, else ISO 8859-1 (Java's encoding for them).
pub fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Whitespace as `Properties.load` knows it: space, tab, form feed.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// Parses properties text into `(key, value)` pairs in file order (a repeated key appears twice; the
/// caller's map keeps the last). The error names the 1-based line of a malformed `\uXXXX`.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (line_no, logical) in logical_lines(text) {
        let (key, value) = split_key_value(&logical);
        let key = unescape(key).map_err(|e| format!("line {line_no}: {e}"))?;
        let value = unescape(value).map_err(|e| format!("line {line_no}: {e}"))?;
        out.push((key, value));
    }
    Ok(out)
}

/// Splits text into natural lines at `\n`, `\r` or `\r\n`.
fn natural_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            Some(i) => {
                lines.push(&rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
            None => {
                lines.push(rest);
                rest = "";
            }
        }
    }
    lines
}

/// True when `s` ends in an odd number of backslashes (the line continues).
fn continues(s: &str) -> bool {
    s.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Joins continued lines and drops comments and blank lines; each logical line keeps the (1-based)
/// number of its first natural line and still holds its escapes.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let lines = natural_lines(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let first = i + 1;
        let line = lines[i].trim_start_matches(is_blank);
        i += 1;
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let mut logical = String::from(line);
        while continues(&logical) {
            logical.pop();
            match lines.get(i) {
                Some(next) => {
                    logical.push_str(next.trim_start_matches(is_blank));
                    i += 1;
                }
                None => break,
            }
        }
        out.push((first, logical));
    }
    out
}

/// Splits a logical line into its raw (still escaped) key and value.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    let mut sep_is_assign = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' {
            key_end = i;
            sep_is_assign = true;
            break;
        } else if is_blank(c) {
            key_end = i;
            break;
        }
    }
    let key = &line[..key_end];
    let mut rest = &line[key_end..];
    if sep_is_assign {
        rest = &rest[1..];
    } else {
        rest = rest.trim_start_matches(is_blank);
        if let Some(r) = rest.strip_prefix(['=', ':']) {
            rest = r;
        }
    }
    (key, rest.trim_start_matches(is_blank))
}

/// Resolves `Properties.load`'s escapes.
fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut units: Vec<u16> = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush_units(&mut units, &mut out);
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let unit = (hex.len() == 4)
                    .then(|| u16::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .filter(|_| hex.chars().all(|h| h.is_ascii_hexdigit()))
                    .ok_or_else(|| "Malformed \\uxxxx encoding.".to_string())?;
                units.push(unit);
                continue;
            }
            Some(other) => {
                flush_units(&mut units, &mut out);
                out.push(match other {
                    't' => '\t',
                    'n' => '\n',
                    'r' => '\r',
                    'f' => '\x0c',
                    c => c,
                });
            }
            // A lone backslash at the very end (only after a continuation at end of file) is dropped.
            None => flush_units(&mut units, &mut out),
        }
    }
    flush_units(&mut units, &mut out);
    Ok(out)
}

/// Appends pending `\uXXXX` code units as text; an unpaired surrogate becomes U+FFFD.
fn flush_units(units: &mut Vec<u16>, out: &mut String) {
    if !units.is_empty() {
        out.extend(char::decode_utf16(units.drain(..)).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)));
    }
}

/// Writes `(key, value)` as one properties line that [`parse`] reads back unchanged (escapes as
/// `Properties.store` writes them, with non-ASCII text kept as UTF-8). For tests.
#[cfg(test)]
pub fn escape_line(key: &str, value: &str) -> String {
    fn esc(s: &str, is_key: bool, out: &mut String) {
        for (i, c) in s.chars().enumerate() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\x0c' => out.push_str("\\f"),
                '=' | ':' | '#' | '!' => {
                    out.push('\\');
                    out.push(c);
                }
                ' ' if is_key || i == 0 => out.push_str("\\ "),
                c => out.push(c),
            }
        }
    }
    let mut out = String::new();
    esc(key, true, &mut out);
    out.push('=');
    esc(value, false, &mut out);
    out
}

#[cfg(test)]
#[path = "properties_tests.rs"]
mod tests;
