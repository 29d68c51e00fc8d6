//! The NFC normalizer, with the Unicode tables Hugging Face `tokenizers` uses.

use std::borrow::Cow;

use unicode_normalization_alignments::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// The normalizers a supported `tokenizer.json` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Normalizer {
    /// No normalizer.
    None,
    /// Unicode NFC.
    Nfc,
}

impl Normalizer {
    /// `text` normalized (borrowed when it already is).
    pub(crate) fn apply(self, text: &str) -> Cow<'_, str> {
        match self {
            Self::None => Cow::Borrowed(text),
            Self::Nfc => nfc(text),
        }
    }
}

fn nfc(text: &str) -> Cow<'_, str> {
    // Every character below U+0300 (UTF-8 lead bytes below 0xCC) is NFC-stable and starts no
    // composition with what precedes it, so such text is already NFC.
    if text.bytes().all(|b| b < 0xCC) || is_nfc_quick(text.chars()) == IsNormalized::Yes {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.nfc().map(|(c, _)| c).collect())
}

#[cfg(test)]
mod tests {
    use super::Normalizer;

    #[test]
    fn composes_and_leaves_normalized_text_borrowed() {
        assert_eq!(Normalizer::Nfc.apply("cafe\u{301}"), "café");
        assert!(matches!(
            Normalizer::Nfc.apply("plain ascii"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert!(matches!(
            Normalizer::Nfc.apply("中文"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(Normalizer::None.apply("e\u{301}"), "e\u{301}");
    }
}
