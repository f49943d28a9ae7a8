//! A small, strict CBOR (RFC 8949) codec for the sync protocol.
//!
//! The automerge-repo messages are flat CBOR maps with text keys; this module decodes any
//! well-formed CBOR item into a [`Cbor`] tree and encodes one back, with hard limits so that
//! hostile input costs little: nesting depth, declared lengths checked against the bytes that
//! remain, and an overall input size. Decoding never panics; every failure is a [`CborError`].

use std::fmt;

/// A decoded CBOR data item.
#[derive(Clone, PartialEq)]
pub enum Cbor {
    Uint(u64),
    /// A negative integer `-1 - n`, stored as `n`.
    Nint(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Cbor>),
    Map(Vec<(Cbor, Cbor)>),
    Tag(u64, Box<Cbor>),
    Bool(bool),
    Null,
    Undefined,
    Float(f64),
}

impl fmt::Debug for Cbor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cbor::Uint(n) => write!(f, "{n}"),
            Cbor::Nint(n) => write!(f, "-{}", u128::from(*n) + 1),
            // Bytes may be record contents: show only their length.
            Cbor::Bytes(b) => write!(f, "h<{} bytes>", b.len()),
            Cbor::Text(s) => write!(f, "{s:?}"),
            Cbor::Array(a) => f.debug_list().entries(a).finish(),
            Cbor::Map(m) => f
                .debug_map()
                .entries(m.iter().map(|(k, v)| (k, v)))
                .finish(),
            Cbor::Tag(t, v) => write!(f, "{t}({v:?})"),
            Cbor::Bool(b) => write!(f, "{b}"),
            Cbor::Null => f.write_str("null"),
            Cbor::Undefined => f.write_str("undefined"),
            Cbor::Float(x) => write!(f, "{x}"),
        }
    }
}

/// Why bytes are not acceptable CBOR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    #[error("input ends in the middle of an item")]
    Truncated,
    #[error("{0} bytes left over after the item")]
    TrailingBytes(usize),
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("input of {0} bytes is larger than allowed")]
    TooLarge(usize),
    #[error("reserved or unsupported additional information {0}")]
    Reserved(u8),
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    #[error("an indefinite-length string holds a chunk of another type")]
    BadChunk,
    #[error("unexpected break code")]
    UnexpectedBreak,
}

/// Deepest nesting accepted. Protocol messages are at most four levels deep.
pub const MAX_DEPTH: usize = 16;

impl Cbor {
    /// Decodes exactly one item from `input`, refusing inputs larger than `max_len`.
    pub fn decode(input: &[u8], max_len: usize) -> Result<Cbor, CborError> {
        if input.len() > max_len {
            return Err(CborError::TooLarge(input.len()));
        }
        let mut d = Decoder { input, pos: 0 };
        let item = d.item(0)?;
        match d.input.len() - d.pos {
            0 => Ok(item),
            n => Err(CborError::TrailingBytes(n)),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Cbor::Uint(n) => head(out, 0, *n),
            Cbor::Nint(n) => head(out, 1, *n),
            Cbor::Bytes(b) => {
                head(out, 2, b.len() as u64);
                out.extend_from_slice(b);
            }
            Cbor::Text(s) => {
                head(out, 3, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            Cbor::Array(items) => {
                head(out, 4, items.len() as u64);
                for i in items {
                    i.encode_into(out);
                }
            }
            Cbor::Map(entries) => {
                head(out, 5, entries.len() as u64);
                for (k, v) in entries {
                    k.encode_into(out);
                    v.encode_into(out);
                }
            }
            Cbor::Tag(t, v) => {
                head(out, 6, *t);
                v.encode_into(out);
            }
            Cbor::Bool(false) => out.push(0xf4),
            Cbor::Bool(true) => out.push(0xf5),
            Cbor::Null => out.push(0xf6),
            Cbor::Undefined => out.push(0xf7),
            Cbor::Float(x) => {
                out.push(0xfb);
                out.extend_from_slice(&x.to_bits().to_be_bytes());
            }
        }
    }

    /// A text-keyed map entry.
    pub fn get(&self, key: &str) -> Option<&Cbor> {
        match self {
            Cbor::Map(entries) => entries.iter().find_map(|(k, v)| match k {
                Cbor::Text(t) if t == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Cbor::Text(s) => Some(s),
            _ => None,
        }
    }

    /// Byte strings, also when wrapped in a typed-array tag (cbor-x tags `Uint8Array` with 64
    /// unless told otherwise).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Cbor::Bytes(b) => Some(b),
            Cbor::Tag(64, inner) => inner.as_bytes(),
            _ => None,
        }
    }

    /// An unsigned integer, also when a JavaScript encoder wrote a whole number as a float.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Cbor::Uint(n) => Some(*n),
            Cbor::Float(x)
                if x.fract() == 0.0 && *x >= 0.0 && *x < 18_446_744_073_709_551_616.0 =>
            {
                Some(*x as u64)
            }
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Cbor::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Cbor]> {
        match self {
            Cbor::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn text(s: impl Into<String>) -> Cbor {
        Cbor::Text(s.into())
    }
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

/// The "additional information" of an item head: a length/value, or indefinite.
enum Arg {
    Value(u64),
    Indefinite,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CborError> {
        let end = self.pos.checked_add(n).ok_or(CborError::Truncated)?;
        let bytes = self.input.get(self.pos..end).ok_or(CborError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, CborError> {
        Ok(self.take(1)?[0])
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    fn arg(&mut self, info: u8) -> Result<Arg, CborError> {
        let be = |b: &[u8]| b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
        Ok(Arg::Value(match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25 => be(self.take(2)?),
            26 => be(self.take(4)?),
            27 => be(self.take(8)?),
            31 => return Ok(Arg::Indefinite),
            other => return Err(CborError::Reserved(other)),
        }))
    }

    /// A declared length, refused if it cannot possibly fit in what remains (each element takes
    /// at least `min_size` bytes).
    fn length(&self, n: u64, min_size: usize) -> Result<usize, CborError> {
        let n = usize::try_from(n).map_err(|_| CborError::Truncated)?;
        if n.checked_mul(min_size)
            .is_none_or(|need| need > self.remaining())
        {
            return Err(CborError::Truncated);
        }
        Ok(n)
    }

    fn at_break(&self) -> bool {
        self.input.get(self.pos) == Some(&0xff)
    }

    fn item(&mut self, depth: usize) -> Result<Cbor, CborError> {
        if depth > MAX_DEPTH {
            return Err(CborError::TooDeep);
        }
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        match major {
            0 | 1 | 6 => {
                let Arg::Value(n) = self.arg(info)? else {
                    return Err(CborError::Reserved(info));
                };
                Ok(match major {
                    0 => Cbor::Uint(n),
                    1 => Cbor::Nint(n),
                    _ => Cbor::Tag(n, Box::new(self.item(depth + 1)?)),
                })
            }
            2 | 3 => {
                let bytes = match self.arg(info)? {
                    Arg::Value(n) => {
                        let n = self.length(n, 1)?;
                        self.take(n)?.to_vec()
                    }
                    Arg::Indefinite => {
                        let mut all = Vec::new();
                        loop {
                            if self.at_break() {
                                self.pos += 1;
                                break;
                            }
                            let chunk = self.byte()?;
                            if chunk >> 5 != major {
                                return Err(CborError::BadChunk);
                            }
                            let Arg::Value(n) = self.arg(chunk & 0x1f)? else {
                                return Err(CborError::BadChunk);
                            };
                            let n = self.length(n, 1)?;
                            all.extend_from_slice(self.take(n)?);
                        }
                        all
                    }
                };
                if major == 2 {
                    Ok(Cbor::Bytes(bytes))
                } else {
                    String::from_utf8(bytes)
                        .map(Cbor::Text)
                        .map_err(|_| CborError::InvalidUtf8)
                }
            }
            4 => match self.arg(info)? {
                Arg::Value(n) => {
                    let n = self.length(n, 1)?;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.item(depth + 1)?);
                    }
                    Ok(Cbor::Array(items))
                }
                Arg::Indefinite => {
                    let mut items = Vec::new();
                    while !self.at_break() {
                        items.push(self.item(depth + 1)?);
                    }
                    self.pos += 1;
                    Ok(Cbor::Array(items))
                }
            },
            5 => match self.arg(info)? {
                Arg::Value(n) => {
                    let n = self.length(n, 2)?;
                    let mut entries = Vec::with_capacity(n);
                    for _ in 0..n {
                        let k = self.item(depth + 1)?;
                        let v = self.item(depth + 1)?;
                        entries.push((k, v));
                    }
                    Ok(Cbor::Map(entries))
                }
                Arg::Indefinite => {
                    let mut entries = Vec::new();
                    while !self.at_break() {
                        let k = self.item(depth + 1)?;
                        let v = self.item(depth + 1)?;
                        entries.push((k, v));
                    }
                    self.pos += 1;
                    Ok(Cbor::Map(entries))
                }
            },
            _ => match info {
                20 => Ok(Cbor::Bool(false)),
                21 => Ok(Cbor::Bool(true)),
                22 => Ok(Cbor::Null),
                23 => Ok(Cbor::Undefined),
                24 => {
                    self.byte()?;
                    Ok(Cbor::Undefined)
                }
                25 => {
                    let b = self.take(2)?;
                    Ok(Cbor::Float(half_to_f64(u16::from_be_bytes([b[0], b[1]]))))
                }
                26 => {
                    let b = self.take(4)?;
                    Ok(Cbor::Float(f64::from(f32::from_be_bytes([
                        b[0], b[1], b[2], b[3],
                    ]))))
                }
                27 => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    Ok(Cbor::Float(f64::from_be_bytes(a)))
                }
                31 => Err(CborError::UnexpectedBreak),
                0..=19 => Ok(Cbor::Undefined),
                other => Err(CborError::Reserved(other)),
            },
        }
    }
}

fn half_to_f64(h: u16) -> f64 {
    let exp = (h >> 10) & 0x1f;
    let mant = f64::from(h & 0x3ff);
    let value = match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (mant + 1024.0) * 2f64.powi(i32::from(e) - 25),
    };
    if h & 0x8000 != 0 { -value } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8949_appendix_a_examples() {
        let cases: &[(&[u8], Cbor)] = &[
            (&[0x00], Cbor::Uint(0)),
            (&[0x17], Cbor::Uint(23)),
            (&[0x18, 0x18], Cbor::Uint(24)),
            (&[0x19, 0x03, 0xe8], Cbor::Uint(1000)),
            (
                &[0x1b, 0, 0, 0, 0xe8, 0xd4, 0xa5, 0x10, 0],
                Cbor::Uint(1_000_000_000_000),
            ),
            (&[0x20], Cbor::Nint(0)),
            (&[0x38, 0x63], Cbor::Nint(99)),
            (&[0xf9, 0x3c, 0x00], Cbor::Float(1.0)),
            (
                &[0xfb, 0x3f, 0xf1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a],
                Cbor::Float(1.1),
            ),
            (&[0xf4], Cbor::Bool(false)),
            (&[0xf6], Cbor::Null),
            (&[0x40], Cbor::Bytes(vec![])),
            (&[0x44, 1, 2, 3, 4], Cbor::Bytes(vec![1, 2, 3, 4])),
            (&[0x62, 0xc3, 0xbc], Cbor::text("ü")),
            (
                &[0x83, 1, 2, 3],
                Cbor::Array(vec![Cbor::Uint(1), Cbor::Uint(2), Cbor::Uint(3)]),
            ),
            (
                &[0xa1, 0x61, 0x61, 0x01],
                Cbor::Map(vec![(Cbor::text("a"), Cbor::Uint(1))]),
            ),
            (
                &[
                    0x7f, 0x65, 0x73, 0x74, 0x72, 0x65, 0x61, 0x64, 0x6d, 0x69, 0x6e, 0x67, 0xff,
                ],
                Cbor::text("streaming"),
            ),
            (
                &[0x9f, 0x01, 0x82, 0x02, 0x03, 0xff],
                Cbor::Array(vec![
                    Cbor::Uint(1),
                    Cbor::Array(vec![Cbor::Uint(2), Cbor::Uint(3)]),
                ]),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                &Cbor::decode(bytes, 1024).expect("decodes"),
                expected,
                "{bytes:x?}"
            );
        }
    }

    #[test]
    fn encoding_is_minimal_and_round_trips() {
        for n in [
            0u64,
            23,
            24,
            255,
            256,
            65_535,
            65_536,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let bytes = Cbor::Uint(n).encode();
            let expected_len = match n {
                0..=23 => 1,
                24..=255 => 2,
                256..=65_535 => 3,
                65_536..=0xffff_ffff => 5,
                _ => 9,
            };
            assert_eq!(bytes.len(), expected_len, "{n}");
            assert_eq!(Cbor::decode(&bytes, 16), Ok(Cbor::Uint(n)));
        }
        let khmer = Cbor::Map(vec![(Cbor::text("សាក្សី"), Cbor::Bytes(vec![0xff; 300]))]);
        assert_eq!(Cbor::decode(&khmer.encode(), 1024), Ok(khmer));
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        // A byte string claiming 2^64-1 bytes.
        assert_eq!(
            Cbor::decode(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 64),
            Err(CborError::Truncated)
        );
        // An array claiming a billion elements in four bytes.
        assert_eq!(
            Cbor::decode(&[0x9a, 0x3b, 0x9a, 0xca, 0x00], 64),
            Err(CborError::Truncated)
        );
        // Nesting: 1000 nested arrays.
        assert_eq!(Cbor::decode(&[0x81; 1000], 4096), Err(CborError::TooDeep));
        assert_eq!(Cbor::decode(&[0x9f; 1000], 4096), Err(CborError::TooDeep));
        // Invalid UTF-8 in a text string.
        assert_eq!(
            Cbor::decode(&[0x62, 0xc3, 0x28], 64),
            Err(CborError::InvalidUtf8)
        );
        // Trailing garbage, truncation, reserved info, stray break, too large.
        assert_eq!(
            Cbor::decode(&[0x01, 0x02], 64),
            Err(CborError::TrailingBytes(1))
        );
        assert_eq!(Cbor::decode(&[0x19, 0x01], 64), Err(CborError::Truncated));
        assert_eq!(Cbor::decode(&[], 64), Err(CborError::Truncated));
        assert_eq!(Cbor::decode(&[0x1c], 64), Err(CborError::Reserved(28)));
        assert_eq!(Cbor::decode(&[0xff], 64), Err(CborError::UnexpectedBreak));
        assert_eq!(Cbor::decode(&[0; 65], 64), Err(CborError::TooLarge(65)));
        // An indefinite text made of byte-string chunks.
        assert_eq!(
            Cbor::decode(&[0x7f, 0x41, 0x61, 0xff], 64),
            Err(CborError::BadChunk)
        );
        // An unterminated indefinite map.
        assert_eq!(
            Cbor::decode(&[0xbf, 0x61, 0x61], 64),
            Err(CborError::Truncated)
        );
    }
}
