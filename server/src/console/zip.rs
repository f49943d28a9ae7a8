//! A ZIP archive written front to back, for the case archive: stored entries (photos and
//! recordings are compressed already), sizes and CRC-32 known before each entry's bytes (the
//! caller reads a file twice rather than writing data descriptors, which some readers mishandle
//! for stored entries), ZIP64 records once the archive passes 4 GiB, names in UTF-8.
//!
//! Entry names are the caller's; [`ZipWriter::add`] refuses any that an unzip tool would read
//! as leaving the folder it extracts into (zip-slip): absolute paths, `..`, backslashes, drive
//! letters, control characters.

use std::io::{self, Read, Write};

use saksi_shared::Timestamp;

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
const END64: u32 = 0x0606_4b50;
const LOCATOR64: u32 = 0x0706_4b50;
/// Version 4.5: ZIP64.
const VERSION: u16 = 45;
/// General purpose flag 11: names are UTF-8.
const UTF8: u16 = 1 << 11;
const MAX32: u64 = 0xFFFF_FFFF;

/// A byte sink that counts what it wrote (the offsets of the central directory).
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct Central {
    name: String,
    crc: u32,
    size: u64,
    offset: u64,
    dos_time: u16,
    dos_date: u16,
}

/// Writes an archive entry by entry into `W`.
pub struct ZipWriter<W: Write> {
    out: Counting<W>,
    entries: Vec<Central>,
}

impl<W: Write> std::fmt::Debug for ZipWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZipWriter")
            .field("entries", &self.entries.len())
            .field("written", &self.out.written)
            .finish()
    }
}

/// Whether `name` is a relative path of plain components that stays inside the folder it is
/// extracted into.
pub fn safe_entry_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 0xFFFF
        && !name.starts_with('/')
        && !name.contains('\\')
        && !name.chars().any(char::is_control)
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains(':'))
}

/// A time as MS-DOS keeps it in ZIP headers (local time is unknowable here: UTC).
fn dos_time(t: Timestamp) -> (u16, u16) {
    let rem = t.as_secs().rem_euclid(86_400);
    let (year, month, day) = t.utc_date();
    if !(1980..=2107).contains(&year) {
        return (0, (1 << 5) | 1);
    }
    let time = ((rem / 3600) << 11) | (((rem % 3600) / 60) << 5) | ((rem % 60) / 2);
    let date = ((year - 1980) << 9) | (month << 5) | day;
    (time as u16, date as u16)
}

impl<W: Write> ZipWriter<W> {
    pub fn new(out: W) -> ZipWriter<W> {
        ZipWriter {
            out: Counting {
                inner: out,
                written: 0,
            },
            entries: Vec::new(),
        }
    }

    /// Adds an entry of `size` bytes whose CRC-32 is `crc`, copying it from `data`. Fails if
    /// the name is not a safe relative path, or if `data` does not give exactly `size` bytes.
    pub fn add(
        &mut self,
        name: &str,
        size: u64,
        crc: u32,
        modified: Timestamp,
        data: &mut dyn Read,
    ) -> io::Result<()> {
        if !safe_entry_name(name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an archive entry name must be a relative path inside the archive",
            ));
        }
        if size >= MAX32 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an archive entry must be smaller than 4 GiB",
            ));
        }
        let (time, date) = dos_time(modified);
        let offset = self.out.written;
        let name_bytes = name.as_bytes();
        let mut head = Vec::with_capacity(30 + name_bytes.len());
        head.extend_from_slice(&LOCAL.to_le_bytes());
        head.extend_from_slice(&VERSION.to_le_bytes());
        head.extend_from_slice(&UTF8.to_le_bytes());
        head.extend_from_slice(&0u16.to_le_bytes());
        head.extend_from_slice(&time.to_le_bytes());
        head.extend_from_slice(&date.to_le_bytes());
        head.extend_from_slice(&crc.to_le_bytes());
        head.extend_from_slice(&(size as u32).to_le_bytes());
        head.extend_from_slice(&(size as u32).to_le_bytes());
        head.extend_from_slice(&(name_bytes.len() as u16).to_le_bytes());
        head.extend_from_slice(&0u16.to_le_bytes());
        head.extend_from_slice(name_bytes);
        self.out.write_all(&head)?;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "an archive entry's source ended early",
            ));
        }
        self.entries.push(Central {
            name: name.to_owned(),
            crc,
            size,
            offset,
            dos_time: time,
            dos_date: date,
        });
        Ok(())
    }

    /// Writes the central directory (and ZIP64 end records if needed); returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        let start = self.out.written;
        for e in &self.entries {
            let zip64 = e.offset >= MAX32;
            let name = e.name.as_bytes();
            let mut rec = Vec::with_capacity(46 + name.len() + 12);
            rec.extend_from_slice(&CENTRAL.to_le_bytes());
            // Made by: 4.5 on Unix (files are 0644 when extracted).
            rec.extend_from_slice(&(VERSION | (3 << 8)).to_le_bytes());
            rec.extend_from_slice(&VERSION.to_le_bytes());
            rec.extend_from_slice(&UTF8.to_le_bytes());
            rec.extend_from_slice(&0u16.to_le_bytes());
            rec.extend_from_slice(&e.dos_time.to_le_bytes());
            rec.extend_from_slice(&e.dos_date.to_le_bytes());
            rec.extend_from_slice(&e.crc.to_le_bytes());
            rec.extend_from_slice(&(e.size as u32).to_le_bytes());
            rec.extend_from_slice(&(e.size as u32).to_le_bytes());
            rec.extend_from_slice(&(name.len() as u16).to_le_bytes());
            rec.extend_from_slice(&(if zip64 { 12u16 } else { 0 }).to_le_bytes());
            rec.extend_from_slice(&0u16.to_le_bytes());
            rec.extend_from_slice(&0u16.to_le_bytes());
            rec.extend_from_slice(&0u16.to_le_bytes());
            rec.extend_from_slice(&((0o100644u32) << 16).to_le_bytes());
            let offset = if zip64 { MAX32 as u32 } else { e.offset as u32 };
            rec.extend_from_slice(&offset.to_le_bytes());
            rec.extend_from_slice(name);
            if zip64 {
                rec.extend_from_slice(&1u16.to_le_bytes());
                rec.extend_from_slice(&8u16.to_le_bytes());
                rec.extend_from_slice(&e.offset.to_le_bytes());
            }
            self.out.write_all(&rec)?;
        }
        let end = self.out.written;
        let (count, size) = (self.entries.len() as u64, end - start);
        let zip64 = count >= 0xFFFF || start >= MAX32 || size >= MAX32;
        if zip64 {
            let mut rec = Vec::with_capacity(56 + 20);
            rec.extend_from_slice(&END64.to_le_bytes());
            rec.extend_from_slice(&44u64.to_le_bytes());
            rec.extend_from_slice(&(VERSION | (3 << 8)).to_le_bytes());
            rec.extend_from_slice(&VERSION.to_le_bytes());
            rec.extend_from_slice(&0u32.to_le_bytes());
            rec.extend_from_slice(&0u32.to_le_bytes());
            rec.extend_from_slice(&count.to_le_bytes());
            rec.extend_from_slice(&count.to_le_bytes());
            rec.extend_from_slice(&size.to_le_bytes());
            rec.extend_from_slice(&start.to_le_bytes());
            rec.extend_from_slice(&LOCATOR64.to_le_bytes());
            rec.extend_from_slice(&0u32.to_le_bytes());
            rec.extend_from_slice(&end.to_le_bytes());
            rec.extend_from_slice(&1u32.to_le_bytes());
            self.out.write_all(&rec)?;
        }
        let clip16 = |n: u64| if zip64 { 0xFFFF } else { n as u16 };
        let clip32 = |n: u64| if zip64 { MAX32 as u32 } else { n as u32 };
        let mut rec = Vec::with_capacity(22);
        rec.extend_from_slice(&END.to_le_bytes());
        rec.extend_from_slice(&0u16.to_le_bytes());
        rec.extend_from_slice(&0u16.to_le_bytes());
        rec.extend_from_slice(&clip16(count).to_le_bytes());
        rec.extend_from_slice(&clip16(count).to_le_bytes());
        rec.extend_from_slice(&clip32(size).to_le_bytes());
        rec.extend_from_slice(&clip32(start).to_le_bytes());
        rec.extend_from_slice(&0u16.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.flush()?;
        Ok(self.out.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saksi_testkit::at;

    #[test]
    fn names_that_leave_the_folder_are_refused() {
        for bad in [
            "../etc/passwd",
            "files/../../x",
            "/etc/passwd",
            "C:evil.exe",
            "files\\..\\x",
            "a/./b",
            "bell\u{7}.mp3",
            "",
            "a//b",
        ] {
            assert!(!safe_entry_name(bad), "{bad:?}");
        }
        for ok in ["records.json", "files/7bcd/សេចក្តីជូនដំណឹង.jpg", "a.b/c"]
        {
            assert!(safe_entry_name(ok), "{ok}");
        }
        let mut zip = ZipWriter::new(Vec::new());
        assert!(
            zip.add("../x", 0, 0, Timestamp::EPOCH, &mut io::empty())
                .is_err()
        );
    }

    #[test]
    fn dos_times() {
        // 2026-12-07 10:42:58 UTC.
        let (time, date) = dos_time(at(1_796_640_178_000));
        assert_eq!((date >> 9, (date >> 5) & 15, date & 31), (46, 12, 7));
        assert_eq!(
            (time >> 11, (time >> 5) & 63, (time & 31) * 2),
            (10, 42, 58)
        );
    }
}
