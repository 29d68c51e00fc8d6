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

/// Appends the bytes a vocabulary string stands for: the byte-level decoding when every
/// character is a byte-level one, the string's own UTF-8 otherwise (as Hugging Face's
/// `ByteLevel` decoder does for added tokens such as `<|im_end|>` with a space or CJK inside).
///
/// `token` is the UTF-8 of a vocabulary string. Byte-level characters are all below U+0800,
/// so they are one or two UTF-8 bytes and are decoded here without going through `char`.
pub(crate) fn push_token_bytes(token: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let mut i = 0;
    while i < token.len() {
        let lead = token[i];
        let (code, len) = match (lead, token.get(i + 1)) {
            (0..0x80, _) => (u32::from(lead), 1),
            (0xC0..0xE0, Some(&next)) => {
                ((u32::from(lead & 0x1F) << 6) | u32::from(next & 0x3F), 2)
            }
            _ => (u32::MAX, 1),
        };
        let Some(byte) = usize::try_from(code)
            .ok()
            .and_then(|c| CHAR_BYTES.get(c).copied().flatten())
        else {
            out.truncate(start);
            out.extend_from_slice(token);
            return;
        };
        out.push(byte);
        i += len;
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
    use super::{BYTE_CHARS, CHAR_BYTES, push_byte_chars, push_token_bytes};

    #[test]
    fn the_alphabet_is_a_bijection_with_gpt2_landmarks() {
        assert_eq!(BYTE_CHARS[usize::from(b' ')], 'Ġ');
        assert_eq!(BYTE_CHARS[usize::from(b'\n')], 'Ċ');
        assert_eq!(BYTE_CHARS[usize::from(b'a')], 'a');
        for byte in 0..=255u8 {
            assert_eq!(
                CHAR_BYTES[BYTE_CHARS[usize::from(byte)] as usize],
                Some(byte)
            );
        }
    }

    #[test]
    fn tokens_outside_the_alphabet_decode_as_their_own_text() {
        let mut out = Vec::new();
        push_token_bytes("ĠhiĊ".as_bytes(), &mut out);
        push_token_bytes("<|im end|>".as_bytes(), &mut out);
        push_token_bytes("Ġ中".as_bytes(), &mut out);
        assert_eq!(out, " hi\n<|im end|>Ġ中".as_bytes());
        for byte in 0..=255u8 {
            out.clear();
            push_token_bytes(
                BYTE_CHARS[usize::from(byte)].to_string().as_bytes(),
                &mut out,
            );
            assert_eq!(out, [byte]);
        }
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
