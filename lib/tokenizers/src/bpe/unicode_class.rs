//! The character classes the split patterns use (`\p{L}`, `\p{N}`, `\s`), exactly as the
//! Oniguruma build behind Hugging Face `tokenizers` defines them.
//!
//! The tables in `unicode_tables.rs` are generated from Oniguruma itself by this module's test
//! (`STATOR_REGEN_UNICODE_TABLES=1 cargo test -p stator-tokenizers unicode_class`), which
//! otherwise checks every code point against Oniguruma, so the hand-written splitter and the
//! regular expression can never disagree on what a letter, a number or a space is.

use super::unicode_tables::RANGES;

/// The class of a character as the split patterns see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CharClass {
    /// `\p{L}`.
    Letter,
    /// `\p{N}`.
    Number,
    /// `\s`.
    Space,
    /// Anything else.
    Other,
}

/// Classes of the ASCII characters, the common case.
const ASCII: [CharClass; 128] = {
    let mut table = [CharClass::Other; 128];
    let mut i = 0;
    while i < 128 {
        let c = i as u8;
        table[i] = if c.is_ascii_alphabetic() {
            CharClass::Letter
        } else if c.is_ascii_digit() {
            CharClass::Number
        } else if matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ') {
            CharClass::Space
        } else {
            CharClass::Other
        };
        i += 1;
    }
    table
};

/// The class of `c`.
#[inline]
pub(crate) fn class_of(c: char) -> CharClass {
    let code = c as u32;
    if code < 128 {
        return ASCII[code as usize];
    }
    // The last range starting at or before `code`, if it reaches `code`.
    let index = RANGES.partition_point(|&(start, _, _)| start <= code);
    match index.checked_sub(1).map(|i| RANGES[i]) {
        Some((_, end, class)) if code <= end => class,
        _ => CharClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::{CharClass, class_of};

    /// Classifies every scalar value with Oniguruma (the engine behind HF's `Split`).
    fn oniguruma_classes() -> Vec<(u32, CharClass)> {
        let letter = onig::Regex::new(r"\A\p{L}\z").expect("valid pattern");
        let number = onig::Regex::new(r"\A\p{N}\z").expect("valid pattern");
        let space = onig::Regex::new(r"\A\s\z").expect("valid pattern");
        (0..=char::MAX as u32)
            .filter_map(char::from_u32)
            .map(|c| {
                let mut buf = [0u8; 4];
                let s = c.encode_utf8(&mut buf);
                let class = if letter.is_match(s) {
                    CharClass::Letter
                } else if number.is_match(s) {
                    CharClass::Number
                } else if space.is_match(s) {
                    CharClass::Space
                } else {
                    CharClass::Other
                };
                (c as u32, class)
            })
            .collect()
    }

    /// Writes `unicode_tables.rs` from Oniguruma's classes (non-ASCII ranges only).
    fn regenerate(classes: &[(u32, CharClass)]) {
        let mut ranges: Vec<(u32, u32, CharClass)> = Vec::new();
        for &(code, class) in classes.iter().filter(|(code, _)| *code >= 128) {
            if class == CharClass::Other {
                continue;
            }
            match ranges.last_mut() {
                Some((_, end, last)) if *last == class && *end + 1 == code => *end = code,
                _ => ranges.push((code, code, class)),
            }
        }
        let mut out = String::from(
            "//! Generated from Oniguruma by `unicode_class`'s test \
             (`STATOR_REGEN_UNICODE_TABLES=1`); do not edit.\n\n\
             use super::unicode_class::CharClass::{self, Letter as L, Number as N, Space as S};\n\n\
             /// Non-ASCII ranges `(first, last, class)` in order; code points in no range are \
             `Other`.\n\
             #[rustfmt::skip]\n\
             pub(crate) const RANGES: &[(u32, u32, CharClass)] = &[\n",
        );
        for chunk in ranges.chunks(4) {
            out.push_str("   ");
            for (start, end, class) in chunk {
                let tag = match class {
                    CharClass::Letter => "L",
                    CharClass::Number => "N",
                    CharClass::Space => "S",
                    CharClass::Other => unreachable!("other ranges are skipped"),
                };
                write!(out, " (0x{start:X}, 0x{end:X}, {tag}),").expect("writing to a String");
            }
            out.push('\n');
        }
        out.push_str("];\n");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/bpe/unicode_tables.rs");
        std::fs::write(path, out).expect("write unicode_tables.rs");
    }

    #[test]
    fn every_code_point_matches_oniguruma() {
        let classes = oniguruma_classes();
        if std::env::var_os("STATOR_REGEN_UNICODE_TABLES").is_some() {
            regenerate(&classes);
            return;
        }
        let wrong: Vec<_> = classes
            .iter()
            .filter_map(|&(code, class)| {
                let c = char::from_u32(code).expect("scalar values only");
                (class_of(c) != class).then_some((code, class, class_of(c)))
            })
            .take(10)
            .collect();
        assert!(wrong.is_empty(), "(code, oniguruma, ours): {wrong:?}");
    }
}
