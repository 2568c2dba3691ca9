//! Prometheus's remote-read protocol with streamed XOR chunks: the stored chunks of the
//! selected series as they are, which Prometheus copies instead of evaluating a query over
//! them. Only the protocol lives here: the request (protobuf, snappy block), the response frames
//! (length, CRC-32C, protobuf) and the XOR ("Gorilla") chunk encoding of Prometheus's TSDB.
//! [`crate::prometheus`] sends it; [`crate::collect`] gives the samples the query API's meaning.
//!
//! Why: for a namespace of the benchmark's dataset, the requests and limits range query cost
//! Prometheus 145 ms of CPU (the instant-vector evaluation at each of 1,441 steps of each
//! series), the same series' chunks 22 ms; the CPU, memory and RSS raw samples 90 ms through
//! the query API (JSON), 30 ms as chunks (`scripts/bench-recommender`, 2026-12-07).

use std::collections::BTreeMap;

/// A label matcher of a remote-read query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// `name="value"`.
    Eq(String, String),
    /// `name!="value"`.
    Neq(String, String),
    /// `name=~"value"`.
    Re(String, String),
}

/// One query of a request: samples from `start_ms` to `end_ms` (both included) of the series
/// the matchers select.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// First millisecond.
    pub start_ms: i64,
    /// Last millisecond.
    pub end_ms: i64,
    /// Matchers (one of them must not match the empty string, as for a selector).
    pub matchers: Vec<Matcher>,
}

/// The value Prometheus writes when a series goes stale: a NaN of its own.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is a staleness marker.
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN
}

/// A series of a response: labels and samples `(milliseconds, value)`, oldest first, within
/// the query's range, staleness markers included.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Labels, `__name__` included.
    pub labels: BTreeMap<String, String>,
    /// Samples.
    pub samples: Vec<(i64, f64)>,
}

/// What a range query of the bare selector returns for one series: at each step from
/// `start_ms` to `end_ms`, the newest sample at most `lookback_ms` old (exactly that old only
/// when `closed`: Prometheus 2.x), unless it is a staleness marker. `samples` oldest first.
pub fn at_steps(
    samples: &[(i64, f64)],
    (start_ms, end_ms, step_ms): (i64, i64, i64),
    lookback_ms: i64,
    closed: bool,
) -> Vec<(i64, f64)> {
    let mut out = Vec::new();
    let mut next = 0;
    let mut t = start_ms;
    while t <= end_ms && step_ms > 0 {
        while next < samples.len() && samples[next].0 <= t {
            next += 1;
        }
        if let Some(&(at, v)) = next.checked_sub(1).map(|i| &samples[i]) {
            let fresh = if closed {
                at >= t - lookback_ms
            } else {
                at > t - lookback_ms
            };
            if fresh && !is_stale(v) {
                out.push((t, v));
            }
        }
        t += step_ms;
    }
    out
}

/// What `rate(…[window])` at each step from `start_ms` to `end_ms` gives for a counter that
/// never changes, or `None` when `samples` change (or hold a NaN): 0 wherever the window
/// `[t − window, t]` (`(t − window, t]` unless `closed`) holds two samples or more, nothing
/// elsewhere; staleness markers are not samples to a range. Whatever Prometheus's
/// extrapolation, an unchanged counter has a rate of 0, so this is exact for every version.
pub fn unchanged_rate(
    samples: &[(i64, f64)],
    (start_ms, end_ms, step_ms): (i64, i64, i64),
    window_ms: i64,
    closed: bool,
) -> Option<Vec<(i64, f64)>> {
    let times: Vec<i64> = samples
        .iter()
        .filter(|(_, v)| !is_stale(*v))
        .map(|&(t, _)| t)
        .collect();
    let mut values = samples.iter().map(|&(_, v)| v).filter(|v| !is_stale(*v));
    if let Some(first) = values.next()
        && (first.is_nan() || values.any(|v| v != first))
    {
        return None;
    }
    let mut out = Vec::new();
    let mut t = start_ms;
    while t <= end_ms && step_ms > 0 {
        let from = if closed {
            times.partition_point(|&s| s < t - window_ms)
        } else {
            times.partition_point(|&s| s <= t - window_ms)
        };
        let to = times.partition_point(|&s| s <= t);
        if to.saturating_sub(from) >= 2 {
            out.push((t, 0.0));
        }
        t += step_ms;
    }
    Some(out)
}

/// Why a response could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Cut short or malformed.
    #[error("malformed remote-read response: {0}")]
    Malformed(&'static str),
    /// A frame's checksum does not match.
    #[error("remote-read frame checksum mismatch")]
    Checksum,
    /// A chunk encoding other than XOR (native histograms).
    #[error("unsupported chunk encoding {0}")]
    Encoding(u64),
}

/// The body of a request for `queries`, answered with streamed XOR chunks: a `ReadRequest`
/// in a snappy block (of literals: snappy is required, compression is not).
pub fn request(queries: &[Query]) -> Vec<u8> {
    let mut message = Vec::new();
    for q in queries {
        let mut query = Vec::new();
        varint_field(&mut query, 1, q.start_ms as u64);
        varint_field(&mut query, 2, q.end_ms as u64);
        for m in &q.matchers {
            let (kind, name, value) = match m {
                Matcher::Eq(n, v) => (0, n, v),
                Matcher::Neq(n, v) => (1, n, v),
                Matcher::Re(n, v) => (2, n, v),
            };
            let mut matcher = Vec::new();
            varint_field(&mut matcher, 1, kind);
            bytes_field(&mut matcher, 2, name.as_bytes());
            bytes_field(&mut matcher, 3, value.as_bytes());
            bytes_field(&mut query, 3, &matcher);
        }
        bytes_field(&mut message, 1, &query);
    }
    // accepted_response_types: STREAMED_XOR_CHUNKS.
    varint_field(&mut message, 2, 1);
    snappy_literals(&message)
}

/// The series of a streamed response, each query's samples kept within `ranges[query]`
/// (`(start_ms, end_ms)`, both included). A series split over several frames is joined.
pub fn decode(mut body: &[u8], ranges: &[(i64, i64)]) -> Result<Vec<Series>, DecodeError> {
    let mut out: Vec<(u64, Series)> = Vec::new();
    while !body.is_empty() {
        let size = usize::try_from(uvarint(&mut body)?).map_err(|_| bad("frame size"))?;
        if body.len() < 4 + size {
            return Err(bad("frame cut short"));
        }
        let crc = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let frame = &body[4..4 + size];
        if CRC32C.checksum(frame) != crc {
            return Err(DecodeError::Checksum);
        }
        body = &body[4 + size..];
        let mut index = 0;
        let mut series = Vec::new();
        for (field, value) in fields(frame) {
            match (field?, value) {
                (1, Value::Bytes(s)) => series.push(s),
                (2, Value::Varint(i)) => index = i,
                _ => {}
            }
        }
        let &(from, to) = usize::try_from(index)
            .ok()
            .and_then(|i| ranges.get(i))
            .ok_or(bad("query index"))?;
        for s in series {
            let read = chunked_series(s, from, to)?;
            match out.last_mut() {
                Some((i, last)) if *i == index && last.labels == read.labels => {
                    last.samples.extend(read.samples);
                }
                _ => out.push((index, read)),
            }
        }
    }
    Ok(out.into_iter().map(|(_, s)| s).collect())
}

// Sixteen tables: a job checks tens of megabytes, a byte-at-a-time table was a visible part of
// the decoding's profile.
const CRC32C: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

fn bad(what: &'static str) -> DecodeError {
    DecodeError::Malformed(what)
}

fn chunked_series(message: &[u8], from: i64, to: i64) -> Result<Series, DecodeError> {
    let mut labels = BTreeMap::new();
    let mut samples = Vec::new();
    for (field, value) in fields(message) {
        match (field?, value) {
            (1, Value::Bytes(label)) => {
                let (mut name, mut value) = (String::new(), String::new());
                for (field, v) in fields(label) {
                    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                    match (field?, v) {
                        (1, Value::Bytes(b)) => name = text(b),
                        (2, Value::Bytes(b)) => value = text(b),
                        _ => {}
                    }
                }
                labels.insert(name, value);
            }
            (2, Value::Bytes(chunk)) => {
                let (mut encoding, mut data) = (0, &[][..]);
                for (field, v) in fields(chunk) {
                    match (field?, v) {
                        (3, Value::Varint(e)) => encoding = e,
                        (4, Value::Bytes(b)) => data = b,
                        _ => {}
                    }
                }
                if encoding != 1 {
                    return Err(DecodeError::Encoding(encoding));
                }
                // The chunk's header counts its samples: room for all of them at once.
                if let [hi, lo, ..] = *data {
                    samples.reserve(usize::from(u16::from_be_bytes([hi, lo])));
                }
                xor_chunk(data, |t, v| {
                    if (from..=to).contains(&t) {
                        samples.push((t, v));
                    }
                })?;
            }
            _ => {}
        }
    }
    Ok(Series { labels, samples })
}

/// Decodes one XOR chunk, calling `sample` for each `(milliseconds, value)` in order.
pub fn xor_chunk(data: &[u8], mut sample: impl FnMut(i64, f64)) -> Result<(), DecodeError> {
    if data.len() < 2 {
        return Err(bad("chunk header"));
    }
    let count = u16::from_be_bytes([data[0], data[1]]);
    let mut bits = Bits::new(&data[2..]);
    let (mut t, mut value, mut delta) = (0i64, 0u64, 0i64);
    let (mut leading, mut trailing) = (0u32, 0u32);
    for n in 0..count {
        match n {
            0 => {
                t = bits.varint()?;
                value = bits.read(64)?;
            }
            1 => {
                delta = bits.uvarint()? as i64;
                t += delta;
                bits.value(&mut value, &mut leading, &mut trailing)?;
            }
            _ => {
                let mut control = 0;
                for _ in 0..4 {
                    control <<= 1;
                    if bits.read(1)? == 0 {
                        break;
                    }
                    control |= 1;
                }
                let size = match control {
                    0b0 => 0,
                    0b10 => 14,
                    0b110 => 17,
                    0b1110 => 20,
                    _ => 64,
                };
                let dod = if size == 0 {
                    0
                } else if size == 64 {
                    bits.read(64)? as i64
                } else {
                    let raw = bits.read(size)?;
                    if raw > 1 << (size - 1) {
                        raw as i64 - (1i64 << size)
                    } else {
                        raw as i64
                    }
                };
                delta += dod;
                t += delta;
                bits.value(&mut value, &mut leading, &mut trailing)?;
            }
        }
        sample(t, f64::from_bits(value));
    }
    Ok(())
}

/// A big-endian bit reader, a byte at a time into a 64-bit cache.
struct Bits<'a> {
    data: &'a [u8],
    /// The next byte to cache.
    next: usize,
    /// Cached bits, the next one in the top bit.
    cache: u64,
    /// How many bits the cache holds.
    cached: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Bits<'a> {
        Bits {
            data,
            next: 0,
            cache: 0,
            cached: 0,
        }
    }

    /// The next `n` bits (at most 64), as the low bits of the answer.
    fn read(&mut self, n: u32) -> Result<u64, DecodeError> {
        if n > 56 {
            let high = self.read(n - 32)?;
            return Ok((high << 32) | self.read(32)?);
        }
        if n == 0 {
            return Ok(0);
        }
        while self.cached < n {
            let byte = *self.data.get(self.next).ok_or(bad("chunk cut short"))?;
            self.cache |= u64::from(byte) << (56 - self.cached);
            self.cached += 8;
            self.next += 1;
        }
        let out = self.cache >> (64 - n);
        self.cache <<= n;
        self.cached -= n;
        Ok(out)
    }

    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.read(8)?;
            out |= (byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(bad("varint"))
    }

    fn varint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    /// The next value: the previous one XOR the stored meaningful bits.
    fn value(
        &mut self,
        value: &mut u64,
        leading: &mut u32,
        trailing: &mut u32,
    ) -> Result<(), DecodeError> {
        if self.read(1)? == 0 {
            return Ok(());
        }
        if self.read(1)? == 1 {
            *leading = self.read(5)? as u32;
            let mut significant = self.read(6)? as u32;
            if significant == 0 {
                significant = 64;
            }
            *trailing = 64u32
                .checked_sub(*leading + significant)
                .ok_or(bad("chunk value bits"))?;
        }
        let significant = 64 - *leading - *trailing;
        let bits = self.read(significant)?;
        *value ^= bits.checked_shl(*trailing).unwrap_or(0);
        Ok(())
    }
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Other,
}

/// The fields of a protobuf message: `(field number, value)`; an error ends it.
fn fields(mut message: &[u8]) -> impl Iterator<Item = (Result<u64, DecodeError>, Value<'_>)> {
    std::iter::from_fn(move || {
        if message.is_empty() {
            return None;
        }
        let field = (|| {
            let key = uvarint(&mut message)?;
            let value = match key & 7 {
                0 => Value::Varint(uvarint(&mut message)?),
                1 | 5 => {
                    let n = if key & 7 == 1 { 8 } else { 4 };
                    message = message.get(n..).ok_or(bad("fixed field"))?;
                    Value::Other
                }
                2 => {
                    let n = usize::try_from(uvarint(&mut message)?).map_err(|_| bad("length"))?;
                    let bytes = message.get(..n).ok_or(bad("field cut short"))?;
                    message = &message[n..];
                    Value::Bytes(bytes)
                }
                _ => return Err(bad("wire type")),
            };
            Ok((key >> 3, value))
        })();
        Some(match field {
            Ok((number, value)) => (Ok(number), value),
            Err(e) => {
                message = &[];
                (Err(e), Value::Other)
            }
        })
    })
}

fn uvarint(data: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = data.split_first().ok_or(bad("varint cut short"))?;
        *data = rest;
        out |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err(bad("varint"))
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_field(out: &mut Vec<u8>, number: u64, v: u64) {
    put_uvarint(out, number << 3);
    put_uvarint(out, v);
}

fn bytes_field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    put_uvarint(out, (number << 3) | 2);
    put_uvarint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A snappy block holding `data` as literals.
fn snappy_literals(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    put_uvarint(&mut out, data.len() as u64);
    for literal in data.chunks(65_536) {
        let n = literal.len() - 1;
        if n < 60 {
            out.push((n as u8) << 2);
        } else {
            // Tag 61: the length - 1 in the next two bytes, little-endian.
            out.push(61 << 2);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        out.extend_from_slice(literal);
    }
    out
}

#[cfg(test)]
mod tests;
