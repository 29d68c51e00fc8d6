//! A lean MessagePack reader for response-stream items, the hot path of every streamed token.
//!
//! `rmp_serde` validates every map key as UTF-8 and threads each value through a generic
//! reader; a stream item is a handful of small maps whose keys only need a byte comparison.
//! This reader borrows from the frame, hands struct and variant names to serde as bytes (the
//! derived identifier visitors match those directly), and refuses anything unusual (ext and
//! bin values, non-string variant tags, 128-bit integers, deep nesting): the caller then
//! decodes the same bytes with `rmp_serde`, so a value this reader accepts is exactly the value
//! `rmp_serde` produces, and everything else keeps `rmp_serde`'s behaviour and errors.

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

/// Nesting beyond this is left to `rmp_serde` (which has its own limit).
const MAX_DEPTH: u16 = 64;

/// Name `rmp_serde` gives its ext-type newtype; left to `rmp_serde`.
const EXT_STRUCT_NAME: &str = "_ExtStruct";

/// The bytes are not something this reader handles; decode them with `rmp_serde` instead.
#[derive(Debug, thiserror::Error)]
#[error("not handled by the fast MessagePack reader")]
pub(crate) struct Unsupported;

impl de::Error for Unsupported {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Self
    }
}

/// Decodes one value from the start of `bytes` (trailing bytes are ignored, as by
/// `rmp_serde::from_slice`).
pub(crate) fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Unsupported> {
    T::deserialize(&mut Reader {
        input: bytes,
        depth: 0,
    })
}

/// What a marker byte starts (integers keep their written width: `rmp_serde` visits each
/// width with its own method, and so does this reader).
#[derive(Clone, Copy)]
enum Head {
    Nil,
    Bool(bool),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Str(usize),
    Array(usize),
    Map(usize),
}

struct Reader<'de> {
    input: &'de [u8],
    depth: u16,
}

impl<'de> Reader<'de> {
    fn take(&mut self, n: usize) -> Result<&'de [u8], Unsupported> {
        if n > self.input.len() {
            return Err(Unsupported);
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], Unsupported> {
        self.take(N)?.try_into().map_err(|_| Unsupported)
    }

    fn peek(&self) -> Result<u8, Unsupported> {
        self.input.first().copied().ok_or(Unsupported)
    }

    fn len8(&mut self) -> Result<usize, Unsupported> {
        Ok(usize::from(self.take_array::<1>()?[0]))
    }

    fn len16(&mut self) -> Result<usize, Unsupported> {
        Ok(usize::from(u16::from_be_bytes(self.take_array()?)))
    }

    fn len32(&mut self) -> Result<usize, Unsupported> {
        usize::try_from(u32::from_be_bytes(self.take_array()?)).map_err(|_| Unsupported)
    }

    /// Reads a marker and its fixed-size payload.
    fn head(&mut self) -> Result<Head, Unsupported> {
        let marker = self.take_array::<1>()?[0];
        Ok(match marker {
            0x00..=0x7f => Head::U8(marker),
            0x80..=0x8f => Head::Map(usize::from(marker & 0x0f)),
            0x90..=0x9f => Head::Array(usize::from(marker & 0x0f)),
            0xa0..=0xbf => Head::Str(usize::from(marker & 0x1f)),
            0xc0 => Head::Nil,
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xca => Head::F32(f32::from_be_bytes(self.take_array()?)),
            0xcb => Head::F64(f64::from_be_bytes(self.take_array()?)),
            0xcc => Head::U8(u8::from_be_bytes(self.take_array()?)),
            0xcd => Head::U16(u16::from_be_bytes(self.take_array()?)),
            0xce => Head::U32(u32::from_be_bytes(self.take_array()?)),
            0xcf => Head::U64(u64::from_be_bytes(self.take_array()?)),
            0xd0 => Head::I8(i8::from_be_bytes(self.take_array()?)),
            0xd1 => Head::I16(i16::from_be_bytes(self.take_array()?)),
            0xd2 => Head::I32(i32::from_be_bytes(self.take_array()?)),
            0xd3 => Head::I64(i64::from_be_bytes(self.take_array()?)),
            0xd9 => Head::Str(self.len8()?),
            0xda => Head::Str(self.len16()?),
            0xdb => Head::Str(self.len32()?),
            0xdc => Head::Array(self.len16()?),
            0xdd => Head::Array(self.len32()?),
            0xde => Head::Map(self.len16()?),
            0xdf => Head::Map(self.len32()?),
            0xe0..=0xff => Head::I8(marker.cast_signed()),
            // bin, ext and the reserved marker: left to `rmp_serde`.
            _ => return Err(Unsupported),
        })
    }

    fn str(&mut self, len: usize) -> Result<&'de str, Unsupported> {
        std::str::from_utf8(self.take(len)?).map_err(|_| Unsupported)
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, Unsupported>,
    ) -> Result<T, Unsupported> {
        if self.depth >= MAX_DEPTH {
            return Err(Unsupported);
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }

    fn visit<V: Visitor<'de>>(&mut self, head: Head, visitor: V) -> Result<V::Value, Unsupported> {
        match head {
            Head::Nil => visitor.visit_unit(),
            Head::Bool(b) => visitor.visit_bool(b),
            Head::U8(v) => visitor.visit_u8(v),
            Head::U16(v) => visitor.visit_u16(v),
            Head::U32(v) => visitor.visit_u32(v),
            Head::U64(v) => visitor.visit_u64(v),
            Head::I8(v) => visitor.visit_i8(v),
            Head::I16(v) => visitor.visit_i16(v),
            Head::I32(v) => visitor.visit_i32(v),
            Head::I64(v) => visitor.visit_i64(v),
            Head::F32(v) => visitor.visit_f32(v),
            Head::F64(v) => visitor.visit_f64(v),
            Head::Str(len) => visitor.visit_borrowed_str(self.str(len)?),
            Head::Array(len) => self.nested(|de| {
                let mut access = Access { de, left: len };
                let value = visitor.visit_seq(&mut access)?;
                if access.left == 0 {
                    Ok(value)
                } else {
                    Err(Unsupported)
                }
            }),
            Head::Map(len) => self.nested(|de| {
                let mut access = Access { de, left: len };
                let value = visitor.visit_map(&mut access)?;
                if access.left == 0 {
                    Ok(value)
                } else {
                    Err(Unsupported)
                }
            }),
        }
    }

    /// Skips one value of any kind (bin and ext included: an ignored value never reaches a
    /// visitor, and `rmp_serde` accepts every kind there too).
    fn skip(&mut self) -> Result<(), Unsupported> {
        let marker = self.peek()?;
        let payload = match marker {
            0xc4 | 0xd9 => 1 + self.input.get(1).map_or(0, |&n| usize::from(n)),
            0xc5 | 0xda => 2 + self.be_len(2)?,
            0xc6 | 0xdb => 4 + self.be_len(4)?,
            0xd4 => 2,
            0xd5 => 3,
            0xd6 => 5,
            0xd7 => 9,
            0xd8 => 17,
            0xc7 => 2 + self.be_len(1)?,
            0xc8 => 3 + self.be_len(2)?,
            0xc9 => 5 + self.be_len(4)?,
            _ => {
                return match self.head()? {
                    Head::Str(len) => self.take(len).map(drop),
                    Head::Array(len) => self.nested(|de| (0..len).try_for_each(|_| de.skip())),
                    Head::Map(len) => self.nested(|de| (0..len * 2).try_for_each(|_| de.skip())),
                    _ => Ok(()),
                };
            }
        };
        self.take(1 + payload).map(drop)
    }

    /// The big-endian length of `width` bytes after the marker (without consuming).
    fn be_len(&self, width: usize) -> Result<usize, Unsupported> {
        let bytes = self.input.get(1..1 + width).ok_or(Unsupported)?;
        Ok(bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)))
    }
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = Unsupported;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsupported> {
        let head = self.head()?;
        self.visit(head, visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsupported> {
        if self.peek()? == 0xc0 {
            self.input = &self.input[1..];
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Unsupported> {
        // `rmp_serde` writes unit structs as `[]` and accepts nil too.
        if matches!(self.peek()?, 0xc0 | 0x90) {
            self.input = &self.input[1..];
            visitor.visit_unit()
        } else {
            self.deserialize_any(visitor)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Unsupported> {
        if name == EXT_STRUCT_NAME {
            return Err(Unsupported);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Unsupported> {
        match self.head()? {
            // A unit variant is its name.
            Head::Str(len) => {
                let name = self.str(len)?;
                visitor.visit_enum(name.into_deserializer())
            }
            // Any other variant is a one-entry map from its name to its content.
            Head::Map(1) => self.nested(|de| visitor.visit_enum(Variant { de })),
            _ => Err(Unsupported),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsupported> {
        // Field and variant names: derived visitors compare bytes, so no UTF-8 check.
        match self.head()? {
            Head::Str(len) => visitor.visit_borrowed_bytes(self.take(len)?),
            head => self.visit(head, visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsupported> {
        self.skip()?;
        visitor.visit_unit()
    }

    fn deserialize_i128<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Unsupported> {
        Err(Unsupported)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Unsupported> {
        Err(Unsupported)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 char str string bytes byte_buf unit seq
        tuple tuple_struct map struct
    }
}

/// The elements of an array or the entries of a map.
struct Access<'a, 'de> {
    de: &'a mut Reader<'de>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Access<'_, 'de> {
    type Error = Unsupported;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Unsupported> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        // Every element takes at least one byte: a hostile length cannot over-allocate.
        Some(self.left.min(self.de.input.len()))
    }
}

impl<'de> de::MapAccess<'de> for Access<'_, 'de> {
    type Error = Unsupported;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Unsupported> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Unsupported> {
        seed.deserialize(&mut *self.de)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left.min(self.de.input.len() / 2))
    }
}

/// A non-unit enum variant: a one-entry map `{name: content}`.
struct Variant<'a, 'de> {
    de: &'a mut Reader<'de>,
}

impl<'de> de::EnumAccess<'de> for Variant<'_, 'de> {
    type Error = Unsupported;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), Unsupported> {
        let tag = match self.de.head()? {
            Head::Str(len) => self.de.str(len)?,
            _ => return Err(Unsupported),
        };
        let value = seed.deserialize(tag.into_deserializer())?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = Unsupported;

    fn unit_variant(self) -> Result<(), Unsupported> {
        // `{name: nil}`, as `rmp_serde` accepts it.
        de::Deserialize::deserialize(&mut *self.de)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Unsupported> {
        seed.deserialize(&mut *self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Unsupported> {
        de::Deserializer::deserialize_any(&mut *self.de, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Unsupported> {
        de::Deserializer::deserialize_any(&mut *self.de, visitor)
    }
}

#[cfg(test)]
#[path = "msgpack_tests.rs"]
mod tests;
