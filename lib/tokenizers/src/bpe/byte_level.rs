//! GPT-2's byte-level alphabet: every byte is shown as one printable character so that byte
//! strings can live in a JSON vocabulary (`Ġ` is the space byte, `Ċ` the newline).

/// The character standing for each byte.
pub(crate) const BYTE_CHARS: [char; 256] = {
    let mut table = ['\0'; 256];
    let mut shifted = 0u32;
    let mut byte = 0usize;
    while byte < 256 {
        // Printable Latin-1 bytes stand for themselves; the rest are moved to U+0100 onwards
        // in byte order.
        let printable = matches!(byte, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        let code = if printable {
            byte as u32
        } else {
            shifted += 1;
            255 + shifted
        };
        table[byte] = match char::from_u32(code) {
            Some(c) => c,
            None => panic!("byte-level characters are below U+0144"),
        };
        byte += 1;
    }
    table
};

/// One past the highest byte-level character.
const CHAR_LIMIT: usize = 0x144;

/// The byte each byte-level character stands for (`None` for other characters).
const CHAR_BYTES: [Option<u8>; CHAR_LIMIT] = {
    let mut table = [None; CHAR_LIMIT];
    let mut byte = 0usize;
    while byte < 256 {
        table[BYTE_CHARS[byte] as usize] = Some(byte as u8);
        byte += 1;
    }
    table
};

/// The byte `c` stands for, if it is a byte-level character.
fn char_byte(c: char) -> Option<u8> {
    CHAR_BYTES.get(c as usize).copied().flatten()
}

/// Appends the bytes a vocabulary string stands for: the byte-level decoding when every
/// character is a byte-level one, the string's own UTF-8 otherwise (as Hugging Face's
/// `ByteLevel` decoder does for added tokens such as `<|im_end|>` with a space or CJK inside).
pub(crate) fn push_token_bytes(token: &str, out: &mut Vec<u8>) {
    let start = out.len();
    for c in token.chars() {
        let Some(byte) = char_byte(c) else {
            out.truncate(start);
            out.extend_from_slice(token.as_bytes());
            return;
        };
        out.push(byte);
    }
}

/// The UTF-8 of each byte's character: up to two bytes and the length.
const BYTE_CHAR_UTF8: [([u8; 2], u8); 256] = {
    let mut table = [([0u8; 2], 0u8); 256];
    let mut byte = 0usize;
    while byte < 256 {
        let code = BYTE_CHARS[byte] as u32;
        table[byte] = if code < 0x80 {
            ([code as u8, 0], 1)
        } else {
            // All byte-level characters are below U+0800: two UTF-8 bytes.
            ([0xC0 | (code >> 6) as u8, 0x80 | (code & 0x3F) as u8], 2)
        };
        byte += 1;
    }
    table
};

/// Appends the UTF-8 of the byte-level string of `bytes` (each byte as its character).
pub(crate) fn push_byte_chars(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        // Pushes, not a slice copy: a `memcpy` call per byte would dominate.
        let ([first, second], len) = BYTE_CHAR_UTF8[usize::from(b)];
        out.push(first);
        if len == 2 {
            out.push(second);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BYTE_CHARS, char_byte, push_byte_chars, push_token_bytes};

    #[test]
    fn the_alphabet_is_a_bijection_with_gpt2_landmarks() {
        assert_eq!(BYTE_CHARS[usize::from(b' ')], 'Ġ');
        assert_eq!(BYTE_CHARS[usize::from(b'\n')], 'Ċ');
        assert_eq!(BYTE_CHARS[usize::from(b'a')], 'a');
        for byte in 0..=255u8 {
            assert_eq!(char_byte(BYTE_CHARS[usize::from(byte)]), Some(byte));
        }
    }

    #[test]
    fn tokens_outside_the_alphabet_decode_as_their_own_text() {
        let mut out = Vec::new();
        push_token_bytes("ĠhiĊ", &mut out);
        push_token_bytes("<|im end|>", &mut out);
        assert_eq!(out, b" hi\n<|im end|>");
        let mut s = Vec::new();
        push_byte_chars("é ".as_bytes(), &mut s);
        assert_eq!(s, "Ã©Ġ".as_bytes());
        for byte in 0..=255u8 {
            s.clear();
            push_byte_chars(&[byte], &mut s);
            assert_eq!(s, BYTE_CHARS[usize::from(byte)].to_string().as_bytes());
        }
    }
}
