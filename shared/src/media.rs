//! What a photo says besides its picture: location, camera, time, thumbnails. A seized phone or
//! an exported case must not show where a family lives, so photos lose it by default before
//! they are hashed and kept ([`strip_metadata`]); the entry records the choice
//! ([`crate::attachment::Metadata`]).
//!
//! - **JPEG**: every APPn segment (EXIF with its GPS block and thumbnail, XMP, ICC profiles,
//!   maker notes, Photoshop blocks) and comments go, except Adobe's colour-transform segment;
//!   anything after the end of the image (a motion photo's video, a vendor trailer) goes too.
//!   The picture's rotation, which only EXIF carries, is written back as a minimal EXIF block
//!   holding nothing but the orientation, so the photo shows the right way up.
//! - **PNG**: text chunks, EXIF, the time and private chunks go; what decoding needs stays
//!   (header, palette, transparency, colour space, pixel density, the image data).
//!
//! The image data itself is copied byte for byte: nothing is decoded or re-encoded, so the
//! picture is exactly what the camera took.

/// Why a photo could not be cleaned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// A type this module does not clean (the photo is kept as it is, and says so).
    #[error("photos of this type cannot be cleaned of location and camera data")]
    Unsupported,
    #[error("the photo is damaged: {0}")]
    Malformed(&'static str),
}

/// The photo without its metadata. `media_type` is the file's type (`image/jpeg`,
/// `image/png`); other types are [`MediaError::Unsupported`].
pub fn strip_metadata(media_type: &str, bytes: &[u8]) -> Result<Vec<u8>, MediaError> {
    match media_type {
        "image/jpeg" | "image/jpg" | "image/pjpeg" => strip_jpeg(bytes),
        "image/png" => strip_png(bytes),
        _ => Err(MediaError::Unsupported),
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Markers that stand alone (no length): SOI, EOI, RST0-7, TEM.
fn standalone(marker: u8) -> bool {
    matches!(marker, 0xD8 | 0xD9 | 0xD0..=0xD7 | 0x01)
}

/// JPEG without APPn (but Adobe's APP14) and COM segments, nothing after EOI, and the EXIF
/// orientation (if any, and not "upright") in a minimal EXIF segment of its own.
fn strip_jpeg(b: &[u8]) -> Result<Vec<u8>, MediaError> {
    if b.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(MediaError::Malformed("no JPEG start"));
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut orientation = None;
    let mut at = 2;
    let mut orientation_written = false;
    loop {
        // Fill bytes before a marker.
        while b.get(at) == Some(&0xFF) && b.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if b.get(at) != Some(&0xFF) {
            return Err(MediaError::Malformed("expected a marker"));
        }
        let marker = *b
            .get(at + 1)
            .ok_or(MediaError::Malformed("truncated marker"))?;
        if marker == 0xD9 {
            out.extend_from_slice(&[0xFF, 0xD9]);
            // Anything after the end of the image is dropped.
            return Ok(out);
        }
        if standalone(marker) {
            out.extend_from_slice(&b[at..at + 2]);
            at += 2;
            continue;
        }
        let len = be16(b, at + 2).ok_or(MediaError::Malformed("truncated segment"))? as usize;
        if len < 2 || at + 2 + len > b.len() {
            return Err(MediaError::Malformed("segment runs past the end"));
        }
        let segment = &b[at..at + 2 + len];
        let body = &segment[4..];
        let keep = match marker {
            0xE1 if body.starts_with(b"Exif\0\0") => {
                orientation = orientation.or_else(|| exif_orientation(&body[6..]));
                false
            }
            0xEE => body.starts_with(b"Adobe"),
            0xE0..=0xEF | 0xFE => false,
            _ => true,
        };
        // The minimal EXIF goes before the first frame or table segment.
        if !orientation_written && !matches!(marker, 0xE0..=0xEF | 0xFE) {
            if let Some(o) = orientation.filter(|o| *o != 1) {
                out.extend_from_slice(&orientation_segment(o));
            }
            orientation_written = true;
        }
        if keep {
            out.extend_from_slice(segment);
        }
        at += 2 + len;
        if marker == 0xDA {
            // Entropy-coded data up to the next marker that is not a restart or stuffing.
            let start = at;
            loop {
                match (b.get(at), b.get(at + 1)) {
                    (Some(0xFF), Some(0x00 | 0xD0..=0xD7)) => at += 2,
                    (Some(0xFF), Some(0xFF)) => at += 1,
                    (Some(0xFF), Some(_)) => break,
                    (Some(_), _) => at += 1,
                    (None, _) => return Err(MediaError::Malformed("the image data has no end")),
                }
            }
            out.extend_from_slice(&b[start..at]);
        }
    }
}

/// The orientation (tag 0x0112) of IFD0 of a TIFF block, if it is there and sane.
fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let big = match tiff.get(..2)? {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let bytes = [*tiff.get(at)?, *tiff.get(at + 1)?];
        Some(if big {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let bytes = [
            *tiff.get(at)?,
            *tiff.get(at + 1)?,
            *tiff.get(at + 2)?,
            *tiff.get(at + 3)?,
        ];
        Some(if big {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    };
    if u16_at(2)? != 42 {
        return None;
    }
    let ifd = u32_at(4)? as usize;
    let count = u16_at(ifd)? as usize;
    (0..count.min(256)).find_map(|i| {
        let entry = ifd + 2 + i * 12;
        (u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3)
            .then(|| u16_at(entry + 8))
            .flatten()
            .filter(|o| (1..=8).contains(o))
    })
}

/// An APP1 segment holding an EXIF block with one tag: the orientation.
fn orientation_segment(orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2A\0\0\0\x08");
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    let mut segment = vec![0xFF, 0xE1];
    let len = (2 + 6 + tiff.len()) as u16;
    segment.extend_from_slice(&len.to_be_bytes());
    segment.extend_from_slice(b"Exif\0\0");
    segment.extend_from_slice(&tiff);
    segment
}

/// PNG chunks kept: what decoding and showing the picture needs.
const PNG_KEPT: [&[u8; 4]; 11] = [
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"pHYs",
    b"acTL",
];

fn strip_png(b: &[u8]) -> Result<Vec<u8>, MediaError> {
    const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";
    if b.get(..8) != Some(SIGNATURE) {
        return Err(MediaError::Malformed("no PNG signature"));
    }
    let mut out = SIGNATURE.to_vec();
    let mut at = 8;
    loop {
        let len = b
            .get(at..at + 4)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .ok_or(MediaError::Malformed("truncated chunk"))?;
        let end = at
            .checked_add(12 + len)
            .filter(|end| *end <= b.len())
            .ok_or(MediaError::Malformed("chunk runs past the end"))?;
        let kind = &b[at + 4..at + 8];
        // Animation frames (APNG) are image data too.
        if PNG_KEPT.iter().any(|k| k.as_slice() == kind) || kind == b"fcTL" || kind == b"fdAT" {
            out.extend_from_slice(&b[at..end]);
        }
        at = end;
        if kind == b"IEND" {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        s.extend_from_slice(body);
        s
    }

    /// An EXIF block (little-endian, as most phones write it) with an orientation, a GPS IFD
    /// pointer and a camera model.
    fn exif(orientation: u16) -> Vec<u8> {
        let mut t = b"Exif\0\0II\x2A\0\x08\0\0\0".to_vec();
        t.extend_from_slice(&3u16.to_le_bytes());
        // Model (ASCII at an offset), Orientation (SHORT), GPS IFD pointer.
        for (tag, typ, count, value) in [
            (0x0110u16, 2u16, 8u32, 50u32),
            (0x0112, 3, 1, u32::from(orientation)),
            (0x8825, 4, 1, 58),
        ] {
            t.extend_from_slice(&tag.to_le_bytes());
            t.extend_from_slice(&typ.to_le_bytes());
            t.extend_from_slice(&count.to_le_bytes());
            t.extend_from_slice(&value.to_le_bytes());
        }
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(b"PhoneX1\0");
        t.extend_from_slice(b"GPS 11.5564N 104.9282E");
        t
    }

    fn jpeg(orientation: u16) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        j.extend(segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
        j.extend(segment(0xE1, &exif(orientation)));
        j.extend(segment(
            0xE1,
            b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>Phnom Penh</x:xmpmeta>",
        ));
        j.extend(segment(0xFE, b"taken at the family's house"));
        j.extend(segment(0xDB, &[0; 65]));
        j.extend(segment(0xC0, &[8, 0, 16, 0, 16, 1, 1, 0x11, 0]));
        j.extend(segment(0xDA, &[1, 1, 0, 0, 63, 0]));
        // Entropy-coded data with stuffing and a restart marker.
        j.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
        j.extend_from_slice(&[0xFF, 0xD9]);
        // A motion photo's video after the end of the image.
        j.extend_from_slice(b"ftypmp42 ... GPS again");
        j
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_jpeg_loses_location_camera_and_trailer_but_keeps_its_picture_and_rotation() {
        let clean = strip_metadata("image/jpeg", &jpeg(6)).expect("cleaned");
        for gone in [
            &b"GPS"[..],
            b"PhoneX1",
            b"Phnom Penh",
            b"family's house",
            b"ftypmp42",
            b"JFIF",
        ] {
            assert!(!contains(&clean, gone), "{}", String::from_utf8_lossy(gone));
        }
        // The picture's segments and data, byte for byte.
        assert!(contains(
            &clean,
            &segment(0xC0, &[8, 0, 16, 0, 16, 1, 1, 0x11, 0])
        ));
        assert!(contains(
            &clean,
            &[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xD9]
        ));
        assert!(clean.ends_with(&[0xFF, 0xD9]));
        // Rotated 90°: the orientation alone is kept, before the first table.
        let exif_at = clean
            .windows(6)
            .position(|w| w == b"Exif\0\0")
            .expect("orientation kept");
        assert_eq!(exif_orientation(&clean[exif_at + 6..]), Some(6));
        assert!(
            exif_at
                < clean
                    .windows(2)
                    .position(|w| w == [0xFF, 0xDB])
                    .expect("DQT")
        );
        // Upright: no EXIF at all.
        let upright = strip_metadata("image/jpeg", &jpeg(1)).expect("cleaned");
        assert!(!contains(&upright, b"Exif"));
        // Cleaning twice changes nothing more.
        assert_eq!(strip_metadata("image/jpeg", &clean).expect("again"), clean);
    }

    #[test]
    fn a_png_loses_its_text_time_and_exif() {
        fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(kind);
            c.extend_from_slice(data);
            c.extend_from_slice(&[0, 0, 0, 0]);
            c
        }
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]));
        png.extend(chunk(b"tEXt", b"Location\x0011.55,104.92"));
        png.extend(chunk(b"eXIf", b"MM\0*GPS"));
        png.extend(chunk(b"tIME", &[7, 234, 12, 7, 10, 0, 0]));
        png.extend(chunk(b"IDAT", &[1, 2, 3]));
        png.extend(chunk(b"IEND", &[]));
        png.extend_from_slice(b"trailing GPS");
        let clean = strip_metadata("image/png", &png).expect("cleaned");
        assert!(!contains(&clean, b"Location") && !contains(&clean, b"GPS"));
        assert!(!contains(&clean, b"tIME"));
        assert!(contains(&clean, &chunk(b"IDAT", &[1, 2, 3])));
        assert!(clean.ends_with(&chunk(b"IEND", &[])));
    }

    /// Hostile or damaged bytes never panic: every cut and every flipped byte of a photo.
    #[test]
    fn no_input_panics() {
        let whole = jpeg(3);
        for end in 0..whole.len() {
            let _ = strip_metadata("image/jpeg", &whole[..end]);
        }
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bytes = whole.clone();
            let at = (state % bytes.len() as u64) as usize;
            bytes[at] = (state >> 32) as u8;
            let _ = strip_metadata("image/jpeg", &bytes);
            let _ = strip_metadata("image/png", &bytes);
        }
    }

    #[test]
    fn damaged_or_other_photos_are_refused_not_guessed() {
        assert_eq!(
            strip_metadata("image/heic", b"...."),
            Err(MediaError::Unsupported)
        );
        let mut cut = jpeg(1);
        cut.truncate(40);
        assert!(matches!(
            strip_metadata("image/jpeg", &cut),
            Err(MediaError::Malformed(_))
        ));
        assert!(matches!(
            strip_metadata("image/png", b"\x89PNG\r\n\x1a\n\0\0\xff\xffIDAT"),
            Err(MediaError::Malformed(_))
        ));
    }
}
