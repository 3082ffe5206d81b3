//! The expected pairs were printed by Java 17's `Properties.load` on the same bytes.

use super::*;
use proptest::prelude::*;

fn pairs(text: &str) -> Vec<(String, String)> {
    let mut map = std::collections::BTreeMap::new();
    for (k, v) in parse(text).unwrap() {
        map.insert(k, v);
    }
    map.into_iter().collect()
}

fn expect(text: &str, want: &[(&str, &str)]) {
    let want: Vec<(String, String)> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(pairs(text), want, "{text:?}");
}

#[test]
fn separators_comments_continuations_and_escapes_as_java_reads_them() {
    let text = "a=b\n  b : c  \nc d\n# comment \\\nd=e\n! bang\ne\\ f=g\\\n    h\\\n  i\nf\\=x=y\n\
                g=\\u0041\\t\\n\\r\\f\\z\\\\\n h=trailing \n\ni:\n j\n\\\n k=v\nl=a\\\n\n m=n\n";
    expect(
        text,
        &[
            ("a", "b"),
            ("b", "c  "),
            ("c", "d"),
            ("d", "e"),
            ("e f", "ghi"),
            ("f=x", "y"),
            ("g", "A\t\n\r\x0cz\\"),
            ("h", "trailing "),
            ("i", ""),
            ("j", ""),
            ("k", "v"),
            ("l", "a"),
            ("m", "n"),
        ],
    );
}

#[test]
fn carriage_returns_end_lines() {
    expect("a=b\r\nc=d\re=f\\\r\n  g\r\n", &[("a", "b"), ("c", "d"), ("e", "fg")]);
}

#[test]
fn even_backslashes_do_not_continue() {
    expect("a\\\\\n=b\nc=d\\\\\\\ne=f\n", &[("", "b"), ("a\\", ""), ("c", "d\\e=f")]);
}

#[test]
fn blanks_around_separators_and_escaped_comment_marks() {
    let text = "\t\x0ckey\t=\t\x0cval\n\\#notcomment=1\n  #comment=2\nkey2 = = x\nkey3 :=x\nkey4=x\\\n# notcomment\n";
    expect(
        text,
        &[("#notcomment", "1"), ("key", "val"), ("key2", "= x"), ("key3", "=x"), ("key4", "x# notcomment")],
    );
}

#[test]
fn a_backslash_at_the_end_of_the_file_ends_the_line() {
    expect("x=1\na=b\\", &[("a", "b"), ("x", "1")]);
    expect("x=1\n#c\\", &[("x", "1")]);
    expect("a\\\n\\\nb=c\n", &[("ab", "c")]);
}

#[test]
fn malformed_unicode_escape_is_an_error_naming_the_line() {
    let e = parse("ok=1\nx=\\u004\n").unwrap_err();
    assert!(e.contains("line 2") && e.contains("Malformed \\uxxxx encoding."), "{e}");
    assert!(parse("x=\\u00zz").is_err());
}

#[test]
fn surrogate_pairs_join_and_the_last_value_wins() {
    expect("k=\\ud83d\\ude00\nk2=v1\nk2=v2\n", &[("k", "\u{1F600}"), ("k2", "v2")]);
}

#[test]
fn latin1_bytes_are_read_as_java_reads_them() {
    assert_eq!(decode(b"a=\xe9"), "a=\u{e9}");
    assert_eq!(decode("a=é".as_bytes()), "a=é");
}

proptest! {
    /// Any key and value, escaped as `Properties.store` escapes them, read back unchanged.
    #[test]
    fn escaped_pairs_round_trip(key in "\\PC{0,12}|[ =:#!\\\\\t\n\r]{0,6}", value in "\\PC{0,20}|[ =:#!\\\\\t\n\r\x0c]{0,8}") {
        let line = escape_line(&key, &value);
        let parsed = parse(&format!("# header\n{line}\n")).unwrap();
        prop_assert_eq!(parsed, vec![(key, value)]);
    }

    /// Splitting a line with a continuation anywhere between its characters changes nothing.
    #[test]
    fn continuations_are_transparent(value in "[a-z0-9.]{1,20}", at in 0usize..20, indent in "[ \t]{0,3}") {
        let at = at.min(value.len());
        let text = format!("key={}\\\n{indent}{}\n", &value[..at], &value[at..]);
        prop_assert_eq!(parse(&text).unwrap(), vec![("key".to_string(), value)]);
    }
}
