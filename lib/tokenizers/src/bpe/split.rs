//! Hand-written equivalents of the pre-tokenizer split patterns in use, so that encoding
//! needs no regular-expression engine.
//!
//! Each pattern is an alternation tried left to right at the current position, and every
//! character starts some alternative, so the pieces tile the text. The functions below return
//! where the match at a position ends, following the alternatives (and Oniguruma's
//! backtracking) exactly; the tests compare them with Oniguruma on random text.

use super::unicode_class::{CharClass, class_of};

/// The `Split` pattern of the GPT-4 family (`cl100k`, Llama 3, Qwen2):
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// where `\p{N}{1,D}` is `\p{N}` for Qwen2 (`D` = 1).
const GPT4_FAMILY: &[(&str, usize)] = &[
    (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        1,
    ),
    (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        3,
    ),
];

/// The pattern of GPT-2's `ByteLevel` pre-tokenizer (`use_regex: true`).
pub(crate) const GPT2: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// How a normalized piece of text is cut into words before BPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SplitPattern {
    /// The GPT-4 family pattern with at most `max_digits` numbers per piece.
    Gpt4 {
        /// The `D` of `\p{N}{1,D}`.
        max_digits: usize,
    },
    /// GPT-2's pattern.
    Gpt2,
    /// No split: the whole piece is one word.
    Whole,
}

impl SplitPattern {
    /// The splitter equivalent to a `Split` regex, if it is one of the known ones.
    pub(crate) fn from_regex(pattern: &str) -> Option<Self> {
        if pattern == GPT2 {
            return Some(Self::Gpt2);
        }
        GPT4_FAMILY
            .iter()
            .find(|(known, _)| *known == pattern)
            .map(|&(_, max_digits)| Self::Gpt4 { max_digits })
    }

    /// Calls `word` with each piece of `text`, in order.
    pub(crate) fn split<'t>(self, text: &'t str, mut word: impl FnMut(&'t str)) {
        let mut start = 0;
        while start < text.len() {
            let rest = &text[start..];
            let len = match self {
                Self::Gpt4 { max_digits } => gpt4_match(rest, max_digits),
                Self::Gpt2 => gpt2_match(rest),
                Self::Whole => rest.len(),
            };
            word(&rest[..len]);
            start += len;
        }
    }
}

/// A character with its class and UTF-8 length.
#[derive(Clone, Copy)]
struct Char {
    c: char,
    class: CharClass,
}

fn first(s: &str) -> Option<Char> {
    s.chars().next().map(|c| Char {
        c,
        class: class_of(c),
    })
}

/// Byte length of the longest prefix of `s` whose characters satisfy `keep`, at most `max`.
fn run(s: &str, max: usize, keep: impl Fn(char) -> bool) -> usize {
    s.char_indices()
        .take(max)
        .find(|&(_, c)| !keep(c))
        .map_or_else(
            || s.chars().take(max).map(char::len_utf8).sum(),
            |(index, _)| index,
        )
}

/// Byte length of the longest prefix of `s` made of `class` characters (ASCII fast path).
fn run_class(s: &str, class: CharClass) -> usize {
    let ascii = s
        .bytes()
        .position(|b| !b.is_ascii() || class_of(char::from(b)) != class)
        .unwrap_or(s.len());
    if s.as_bytes().get(ascii).is_some_and(u8::is_ascii) {
        return ascii;
    }
    ascii + run(&s[ascii..], usize::MAX, is(class))
}

fn is(class: CharClass) -> impl Fn(char) -> bool {
    move |c| class_of(c) == class
}

fn is_cr_lf(c: char) -> bool {
    matches!(c, '\r' | '\n')
}

/// Length of `'s|'t|'re|'ve|'m|'ll|'d` at the start of `s` (`case_insensitive` as `(?i:…)`).
fn contraction(s: &str, case_insensitive: bool) -> Option<usize> {
    let rest = s.strip_prefix('\'')?;
    let mut chars = rest.chars();
    let fold = |c: char| {
        if !case_insensitive {
            return c;
        }
        // Oniguruma's case folding also maps LONG S to `s`.
        match c {
            'ſ' => 's',
            _ => c.to_ascii_lowercase(),
        }
    };
    let second = fold(chars.next()?);
    let matched = match second {
        's' | 't' | 'm' | 'd' => 1,
        'r' | 'v' if chars.next().map(fold) == Some('e') => 2,
        'l' if chars.next().map(fold) == Some('l') => 2,
        _ => return None,
    };
    Some(
        1 + rest
            .chars()
            .take(matched)
            .map(char::len_utf8)
            .sum::<usize>(),
    )
}

/// `\s*[\r\n]+|\s+(?!\S)|\s+` at the start of `s` (a whitespace character); with `newlines`
/// false the first alternative is absent (GPT-2).
fn whitespace(s: &str, newlines: bool) -> usize {
    let end = run_class(s, CharClass::Space);
    let spaces = &s[..end];
    if newlines {
        // Greedy `\s*` backs off to the last newline, which `[\r\n]+` then ends on.
        if let Some(last) = spaces.rfind(is_cr_lf) {
            return last + 1;
        }
    }
    if end == s.len() {
        return end;
    }
    // `\s+(?!\S)` backs off one character before the non-space; a single space takes `\s+`.
    match spaces.char_indices().next_back() {
        Some((last, _)) if last > 0 => last,
        _ => end,
    }
}

/// The match of the GPT-4 family pattern at the start of non-empty `s`.
fn gpt4_match(s: &str, max_digits: usize) -> usize {
    let Some(c0) = first(s) else { return 0 };
    if let Some(len) = contraction(s, true) {
        return len;
    }
    let after0 = &s[c0.c.len_utf8()..];
    let c1 = first(after0);
    // `[^\r\n\p{L}\p{N}]?\p{L}+`
    if c0.class == CharClass::Letter {
        return run_class(s, CharClass::Letter);
    }
    if c0.class != CharClass::Number
        && !is_cr_lf(c0.c)
        && c1.is_some_and(|c| c.class == CharClass::Letter)
    {
        return c0.c.len_utf8() + run_class(after0, CharClass::Letter);
    }
    // `\p{N}{1,D}`
    if c0.class == CharClass::Number {
        return run(s, max_digits, is(CharClass::Number));
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    let other_start = if c0.class == CharClass::Other {
        Some(0)
    } else if c0.c == ' ' && c1.is_some_and(|c| c.class == CharClass::Other) {
        Some(1)
    } else {
        None
    };
    if let Some(start) = other_start {
        let others = start + run_class(&s[start..], CharClass::Other);
        return others + run(&s[others..], usize::MAX, is_cr_lf);
    }
    whitespace(s, true)
}

/// The match of GPT-2's pattern at the start of non-empty `s`.
fn gpt2_match(s: &str) -> usize {
    let Some(c0) = first(s) else { return 0 };
    if let Some(len) = contraction(s, false) {
        return len;
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
    let (start, class) = match (c0.c, first(&s[c0.c.len_utf8()..])) {
        (' ', Some(c1)) if c1.class != CharClass::Space => (1, c1.class),
        _ => (0, c0.class),
    };
    if class == CharClass::Space {
        whitespace(s, false)
    } else {
        start + run_class(&s[start..], class)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{GPT2, GPT4_FAMILY, SplitPattern};

    fn ours(pattern: SplitPattern, text: &str) -> Vec<String> {
        let mut pieces = Vec::new();
        pattern.split(text, |w| pieces.push(w.to_owned()));
        pieces
    }

    /// Oniguruma's matches with the gaps between them (HF's `Isolated` behaviour).
    fn oniguruma(pattern: &str, text: &str) -> Vec<String> {
        let regex = onig::Regex::new(pattern).expect("valid pattern");
        let mut pieces = Vec::new();
        let mut last = 0;
        for (start, end) in regex.find_iter(text) {
            if start > last {
                pieces.push(text[last..start].to_owned());
            }
            pieces.push(text[start..end].to_owned());
            last = end;
        }
        if last < text.len() {
            pieces.push(text[last..].to_owned());
        }
        pieces
    }

    fn check(text: &str) {
        for &(regex, max_digits) in GPT4_FAMILY {
            let pattern = SplitPattern::from_regex(regex).expect("known pattern");
            assert_eq!(pattern, SplitPattern::Gpt4 { max_digits });
            assert_eq!(
                ours(pattern, text),
                oniguruma(regex, text),
                "{regex} on {text:?}"
            );
        }
        assert_eq!(
            ours(SplitPattern::Gpt2, text),
            oniguruma(GPT2, text),
            "gpt2 on {text:?}"
        );
    }

    /// Characters that exercise every alternative and class boundary.
    fn tricky_text() -> impl Strategy<Value = String> {
        let alphabet: Vec<char> =
            "aZsStTrReEvVmMlLdDſKßẞ'’ \t\n\r\u{b}\u{c}\u{85}\u{a0}\u{2028}\u{3000}\
            0159٣½Ⅻ².,!?-_()[]\"#$%&*+/:;<=>@\\^`{|}~é\u{301}中文한😀🇯\u{200d}"
                .chars()
                .collect();
        proptest::collection::vec(proptest::sample::select(alphabet), 0..40)
            .prop_map(|chars| chars.into_iter().collect())
    }

    #[test]
    fn fixed_cases_match_oniguruma() {
        for text in [
            "",
            "Hello world",
            "I'm here, you'RE not. 'LL 'ſ 'sx",
            "  leading and trailing  ",
            "tabs\tand\n\nnewlines \n  \r\n x",
            "12345 numbers 1,000.5",
            "foo...\n\nbar!!\r\n",
            "你好，世界！ 😀😀 👨‍👩‍👧",
            " ?? x",
            "\u{a0}\u{a0}a",
        ] {
            check(text);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn tricky_text_matches_oniguruma(text in tricky_text()) {
            check(&text);
        }

        #[test]
        fn any_text_matches_oniguruma(text in "\\PC{0,40}") {
            check(&text);
        }
    }
}
