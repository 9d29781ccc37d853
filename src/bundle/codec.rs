//! Little-endian primitives for section payloads, with bounded reads.
//!
//! [`Reader`] never allocates from a length it has not checked: every length prefix is
//! compared with the bytes that remain (times the smallest encoding of one element) before a
//! `Vec` or `String` is made, so a 20-byte input can never ask for gigabytes.

use crate::error::BundleError;

/// Appends little-endian values to a byte buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn f32(&mut self, v: f32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// A `u32` length prefix and the UTF-8 bytes.
    pub(crate) fn str(&mut self, s: &str) {
        self.len(s.len());
        self.buf.extend_from_slice(s.as_bytes());
    }
    /// A `u32` length prefix. Panics only on a writer-side bug (more than 4 Gi elements).
    pub(crate) fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).expect("section element count fits in u32"));
    }
    pub(crate) fn f32s(&mut self, v: &[f32]) {
        self.len(v.len());
        for x in v {
            self.f32(*x);
        }
    }
    pub(crate) fn f64s(&mut self, v: &[f64]) {
        self.len(v.len());
        for x in v {
            self.f64(*x);
        }
    }
    pub(crate) fn u32s(&mut self, v: &[u32]) {
        self.len(v.len());
        for x in v {
            self.u32(*x);
        }
    }
    /// A `u32` length prefix and the raw bytes.
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.buf.extend_from_slice(v);
    }
    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads little-endian values from one section's bytes; every error names the section.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self {
            bytes,
            pos: 0,
            what,
        }
    }

    /// A `Malformed` error for this section.
    pub(crate) fn malformed(&self, reason: impl Into<String>) -> BundleError {
        BundleError::Malformed {
            what: self.what.to_string(),
            reason: reason.into(),
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BundleError> {
        if n > self.remaining() {
            return Err(self.malformed(format!(
                "needs {n} more bytes at offset {} but only {} remain",
                self.pos,
                self.remaining()
            )));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BundleError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, BundleError> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, BundleError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, BundleError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, BundleError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// A time in Unix seconds within [`crate::limits::MIN_TIME`]`..=`[`crate::limits::MAX_TIME`]
    /// (every `i64` a section holds is one); `field` names it in the error.
    pub(crate) fn time(&mut self, field: &str) -> Result<i64, BundleError> {
        let t = i64::from_le_bytes(self.array()?);
        if crate::limits::time_in_range(t) {
            Ok(t)
        } else {
            Err(self.malformed(crate::limits::time_error(field, t)))
        }
    }
    /// A finite `f32`; NaN and infinities are refused so scoring never sees them.
    pub(crate) fn f32(&mut self) -> Result<f32, BundleError> {
        let v = f32::from_le_bytes(self.array()?);
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.malformed(format!("non-finite number at offset {}", self.pos - 4)))
        }
    }

    /// A finite `f64`.
    pub(crate) fn f64(&mut self) -> Result<f64, BundleError> {
        let v = f64::from_le_bytes(self.array()?);
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.malformed(format!("non-finite number at offset {}", self.pos - 8)))
        }
    }

    /// A `u32` element count, checked against the bytes left: `count * min_elem_bytes` must
    /// fit in what remains, so the caller may allocate `count` elements.
    pub(crate) fn len(&mut self, min_elem_bytes: usize) -> Result<usize, BundleError> {
        let n = self.u32()? as usize;
        let need = n.saturating_mul(min_elem_bytes.max(1));
        if need > self.remaining() {
            return Err(self.malformed(format!(
                "length {n} at offset {} exceeds the {} bytes left",
                self.pos - 4,
                self.remaining()
            )));
        }
        Ok(n)
    }

    pub(crate) fn str(&mut self) -> Result<String, BundleError> {
        let n = self.len(1)?;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| self.malformed("string is not valid UTF-8"))
    }

    pub(crate) fn f32s(&mut self) -> Result<Vec<f32>, BundleError> {
        let n = self.len(4)?;
        (0..n).map(|_| self.f32()).collect()
    }

    pub(crate) fn f64s(&mut self) -> Result<Vec<f64>, BundleError> {
        let n = self.len(8)?;
        (0..n).map(|_| self.f64()).collect()
    }

    pub(crate) fn u32s(&mut self) -> Result<Vec<u32>, BundleError> {
        let n = self.len(4)?;
        (0..n).map(|_| self.u32()).collect()
    }

    /// A `u32` length prefix and that many raw bytes (borrowed, not copied).
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], BundleError> {
        let n = self.len(1)?;
        self.take(n)
    }

    /// Fails unless every byte was consumed: trailing garbage is a format error.
    pub(crate) fn finish(self) -> Result<(), BundleError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.malformed(format!("{} unexpected trailing bytes", self.remaining())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_outside_the_range_are_malformed() {
        for (t, ok) in [
            (crate::limits::MIN_TIME, true),
            (crate::limits::MAX_TIME, true),
            (crate::limits::MIN_TIME - 1, false),
            (crate::limits::MAX_TIME + 1, false),
            (i64::MIN, false),
            (i64::MAX, false),
        ] {
            let mut w = Writer::new();
            w.i64(t);
            let bytes = w.finish();
            let got = Reader::new(&bytes, "TEST").time("release_time");
            assert_eq!(got.is_ok(), ok, "{t}: {got:?}");
        }
        let mut w = Writer::new();
        w.i64(1_764_446_400_000);
        let bytes = w.finish();
        let err = Reader::new(&bytes, "TEST")
            .time("added_time")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("added_time") && err.contains("milliseconds"),
            "{err}"
        );
    }

    #[test]
    fn round_trip() {
        let mut w = Writer::new();
        w.u8(7);
        w.u16(300);
        w.i64(-5);
        w.str("héllo");
        w.f32s(&[1.5, -2.0]);
        w.f64s(&[0.25, -1e300]);
        w.u32s(&[7, u32::MAX]);
        w.bytes(b"raw");
        let bytes = w.finish();
        let mut r = Reader::new(&bytes, "TEST");
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.u16().unwrap(), 300);
        assert_eq!(r.time("t").unwrap(), -5);
        assert_eq!(r.str().unwrap(), "héllo");
        assert_eq!(r.f32s().unwrap(), vec![1.5, -2.0]);
        assert_eq!(r.f64s().unwrap(), vec![0.25, -1e300]);
        assert_eq!(r.u32s().unwrap(), vec![7, u32::MAX]);
        assert_eq!(r.bytes().unwrap(), b"raw");
        r.finish().unwrap();
    }

    #[test]
    fn huge_length_prefix_is_refused_before_allocating() {
        let bytes = u32::MAX.to_le_bytes();
        let mut r = Reader::new(&bytes, "TEST");
        assert!(matches!(r.f32s(), Err(BundleError::Malformed { .. })));
        for read in [
            |r: &mut Reader| r.f64s().map(drop),
            |r: &mut Reader| r.u32s().map(drop),
            |r: &mut Reader| r.bytes().map(drop),
        ] {
            let mut r = Reader::new(&bytes, "TEST");
            assert!(matches!(read(&mut r), Err(BundleError::Malformed { .. })));
        }
    }

    #[test]
    fn non_finite_floats_are_refused() {
        let mut w = Writer::new();
        w.f32(f32::NAN);
        let bytes = w.finish();
        assert!(Reader::new(&bytes, "TEST").f32().is_err());
        let mut w = Writer::new();
        w.f64(f64::INFINITY);
        let bytes = w.finish();
        assert!(Reader::new(&bytes, "TEST").f64().is_err());
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let r = Reader::new(&[0], "TEST");
        assert!(r.finish().is_err());
    }
}
