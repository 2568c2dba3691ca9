use super::*;

/// Prometheus's XOR chunk encoding (tsdb/chunkenc), written again for the tests.
struct Writer {
    bytes: Vec<u8>,
    bits: usize,
}

impl Writer {
    fn bit(&mut self, b: u64) {
        if self.bits.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if b & 1 == 1 {
            *self.bytes.last_mut().unwrap() |= 1 << (7 - self.bits % 8);
        }
        self.bits += 1;
    }
    fn bits(&mut self, v: u64, n: u32) {
        for i in (0..n).rev() {
            self.bit(v >> i);
        }
    }
    fn uvarint(&mut self, v: u64) {
        let mut buf = Vec::new();
        put_uvarint(&mut buf, v);
        for b in buf {
            self.bits(u64::from(b), 8);
        }
    }
}

fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut w = Writer {
        bytes: Vec::new(),
        bits: 0,
    };
    let (mut t, mut v, mut delta) = (0i64, 0u64, 0i64);
    let (mut leading, mut trailing) = (0xffu32, 0u32);
    for (n, &(ts, value)) in samples.iter().enumerate() {
        let bits = value.to_bits();
        match n {
            0 => {
                w.uvarint(((ts << 1) ^ (ts >> 63)) as u64);
                w.bits(bits, 64);
            }
            _ => {
                let d = ts - t;
                if n == 1 {
                    w.uvarint(d as u64);
                } else {
                    let dod = d - delta;
                    let fits = |n: u32| -((1i64 << (n - 1)) - 1) <= dod && dod <= 1 << (n - 1);
                    if dod == 0 {
                        w.bit(0);
                    } else if fits(14) {
                        w.bits(0b10, 2);
                        w.bits(dod as u64, 14);
                    } else if fits(17) {
                        w.bits(0b110, 3);
                        w.bits(dod as u64, 17);
                    } else if fits(20) {
                        w.bits(0b1110, 4);
                        w.bits(dod as u64, 20);
                    } else {
                        w.bits(0b1111, 4);
                        w.bits(dod as u64, 64);
                    }
                }
                delta = d;
                let x = bits ^ v;
                if x == 0 {
                    w.bit(0);
                } else {
                    w.bit(1);
                    let lead = x.leading_zeros().min(31);
                    let trail = x.trailing_zeros();
                    if leading != 0xff && lead >= leading && trail >= trailing {
                        w.bit(0);
                        w.bits(x >> trailing, 64 - leading - trailing);
                    } else {
                        (leading, trailing) = (lead, trail);
                        w.bit(1);
                        w.bits(u64::from(lead), 5);
                        let significant = 64 - lead - trail;
                        w.bits(u64::from(significant % 64), 6);
                        w.bits(x >> trail, significant);
                    }
                }
            }
        }
        (t, v) = (ts, bits);
    }
    let mut out = (samples.len() as u16).to_be_bytes().to_vec();
    out.extend(w.bytes);
    out
}

fn decoded(chunk: &[u8]) -> Result<Vec<(i64, u64)>, DecodeError> {
    let mut out = Vec::new();
    xor_chunk(chunk, |t, v| out.push((t, v.to_bits())))?;
    Ok(out)
}

#[test]
fn xor_chunks_decode_every_kind_of_step_and_value() {
    let samples = [
        (-5_000, 1.0),
        (1_793_491_200_000, 1.0),
        (1_793_491_260_000, 0.25),
        (1_793_491_320_000, 0.25),  // same step, same value
        (1_793_491_320_001, -0.25), // step shrinks by 59,999 ms: 17 bits
        (1_793_491_330_000, f64::NAN),
        (1_793_491_340_000, f64::from_bits(STALE_NAN)),
        (1_793_491_350_000, 1e300),
        (1_793_491_350_500, 123_456_789.0),     // 20 bits
        (1_793_500_000_000, f64::MIN_POSITIVE), // 64 bits
        (1_793_500_000_001, 3.0),
        (1_793_500_000_002, 3.5), // same step
        (1_793_500_000_003, 3.75),
        (1_793_500_000_100, 0.0),
        (1_793_500_000_197, -0.0),
    ];
    let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
    assert_eq!(decoded(&encode(&samples)).unwrap(), want);
    for n in 0..samples.len() {
        assert_eq!(decoded(&encode(&samples[..n])).unwrap(), want[..n]);
    }
    assert!(is_stale(f64::from_bits(STALE_NAN)));
    assert!(!is_stale(f64::NAN));
}

#[test]
fn a_cut_chunk_is_an_error_not_a_panic() {
    let chunk = encode(&[(1, 1.0), (2, 2.0), (4, 8.5), (9, -1.0)]);
    for n in 0..chunk.len() {
        assert!(decoded(&chunk[..n]).is_err(), "{n} bytes");
    }
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_uvarint(&mut out, message.len() as u64);
    out.extend(CRC32C.checksum(message).to_be_bytes());
    out.extend(message);
    out
}

fn series(labels: &[(&str, &str)], chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in labels {
        let mut label = Vec::new();
        bytes_field(&mut label, 1, name.as_bytes());
        bytes_field(&mut label, 2, value.as_bytes());
        bytes_field(&mut out, 1, &label);
    }
    for data in chunks {
        let mut chunk = Vec::new();
        varint_field(&mut chunk, 1, 0);
        varint_field(&mut chunk, 3, 1);
        bytes_field(&mut chunk, 4, data);
        bytes_field(&mut out, 2, &chunk);
    }
    out
}

fn response(series_: &[Vec<u8>], index: u64) -> Vec<u8> {
    let mut message = Vec::new();
    for s in series_ {
        bytes_field(&mut message, 1, s);
    }
    varint_field(&mut message, 2, index);
    message
}

#[test]
fn frames_are_checked_joined_and_kept_within_their_query_range() {
    let a = [("__name__", "m"), ("pod", "a")];
    let first = series(&a, &[encode(&[(10, 1.0), (20, 2.0)])]);
    let rest = series(&a, &[encode(&[(30, 3.0), (40, 4.0)])]);
    let b = series(&[("__name__", "m"), ("pod", "b")], &[encode(&[(5, 9.0)])]);
    let other = series(&a, &[encode(&[(1, 7.0), (50, 8.0)])]);
    let frames = [
        frame(&response(&[first], 0)),
        frame(&response(&[rest, b], 0)),
        frame(&response(&[other], 1)),
    ];
    let body = frames.concat();
    let ends: Vec<usize> = (1..=frames.len())
        .map(|n| frames[..n].concat().len())
        .collect();
    let got = decode(&body, &[(10, 30), (0, 100)]).unwrap();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].labels["pod"], "a");
    assert_eq!(
        got[0].samples,
        vec![(10, 1.0), (20, 2.0), (30, 3.0)],
        "joined, 40 left out"
    );
    assert!(got[1].samples.is_empty(), "5 is before the range");
    assert_eq!(
        got[2].samples,
        vec![(1, 7.0), (50, 8.0)],
        "the second query's own range"
    );

    let mut corrupt = body.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    assert_eq!(
        decode(&corrupt, &[(0, 100), (0, 100)]),
        Err(DecodeError::Checksum)
    );
    for n in (1..body.len()).filter(|n| !ends.contains(n)) {
        assert!(
            decode(&body[..n], &[(0, 100), (0, 100)]).is_err(),
            "{n} bytes"
        );
    }
    assert!(
        matches!(decode(&body, &[(0, 100)]), Err(DecodeError::Malformed(_))),
        "no range for query 1"
    );
    let mut histogram = Vec::new();
    let mut chunk = Vec::new();
    varint_field(&mut chunk, 3, 2);
    bytes_field(&mut histogram, 2, &chunk);
    assert_eq!(
        decode(&frame(&response(&[histogram], 0)), &[(0, 1)]),
        Err(DecodeError::Encoding(2))
    );
}

/// Reads a snappy block of literals (what `request` writes).
fn unsnappy(mut data: &[u8]) -> Vec<u8> {
    let len = uvarint(&mut data).unwrap() as usize;
    let mut out = Vec::new();
    while !data.is_empty() {
        let tag = data[0];
        assert_eq!(tag & 3, 0, "a literal");
        let (n, skip) = match tag >> 2 {
            61 => (usize::from(u16::from_le_bytes([data[1], data[2]])) + 1, 3),
            n if n < 60 => (usize::from(n) + 1, 1),
            other => panic!("tag {other}"),
        };
        out.extend_from_slice(&data[skip..skip + n]);
        data = &data[skip + n..];
    }
    assert_eq!(out.len(), len);
    out
}

#[test]
fn requests_are_protobuf_in_a_snappy_block() {
    let query = |n: usize| Query {
        start_ms: 1_000,
        end_ms: 2_000,
        matchers: vec![
            Matcher::Eq("__name__".into(), "m".repeat(n)),
            Matcher::Neq("container".into(), String::new()),
            Matcher::Re("unit".into(), "core|byte".into()),
        ],
    };
    let message = unsnappy(&request(&[query(1)]));
    let top: Vec<_> = fields(&message).map(|(f, v)| (f.unwrap(), v)).collect();
    assert_eq!(top.len(), 2);
    assert!(
        matches!(top[1], (2, Value::Varint(1))),
        "streamed XOR chunks"
    );
    let Value::Bytes(q) = top[0].1 else {
        panic!("query")
    };
    let q: Vec<_> = fields(q).map(|(f, v)| (f.unwrap(), v)).collect();
    assert!(matches!(q[0], (1, Value::Varint(1_000))));
    assert!(matches!(q[1], (2, Value::Varint(2_000))));
    let Value::Bytes(re) = q[4].1 else {
        panic!("matcher")
    };
    let re: Vec<_> = fields(re).map(|(f, v)| (f.unwrap(), v)).collect();
    assert!(matches!(re[0], (1, Value::Varint(2))));
    assert!(matches!(re[2], (3, Value::Bytes(b"core|byte"))));
    // Long enough for literals of 65,536 bytes and a shorter last one.
    let long = request(&[query(70_000)]);
    assert!(unsnappy(&long).ends_with(&[0x10, 0x01]), "{:?}", &long[..4]);
}

#[test]
fn steps_take_the_newest_fresh_sample_like_an_instant_vector() {
    let stale = f64::from_bits(STALE_NAN);
    let samples = [
        (0, 1.0),
        (300, 2.0),
        (1_000, stale),
        (1_500, 3.0),
        (1_600, f64::NAN),
    ];
    // Steps every 100 ms from 0 to 2,000, lookback 300 ms.
    let closed = at_steps(&samples, (0, 2_000, 100), 300, true);
    let t = |v: &[(i64, f64)]| v.iter().map(|p| p.0).collect::<Vec<_>>();
    assert_eq!(
        t(&closed),
        vec![
            0, 100, 200, 300, 400, 500, 600, 1_500, 1_600, 1_700, 1_800, 1_900
        ]
    );
    assert_eq!(closed[3], (300, 2.0), "a sample exactly at the step");
    assert_eq!(closed[6], (600, 2.0), "exactly lookback old: in (2.x)");
    assert!(closed[8].1.is_nan(), "a NaN sample is a value");
    let open = at_steps(&samples, (0, 2_000, 100), 300, false);
    assert_eq!(
        t(&open),
        vec![0, 100, 200, 300, 400, 500, 1_500, 1_600, 1_700, 1_800]
    );
    assert!(at_steps(&[], (0, 100, 10), 300, true).is_empty());
    assert!(
        at_steps(&samples, (0, 100, 0), 300, true).is_empty(),
        "no step, no loop"
    );
}

#[test]
fn an_unchanged_counter_rates_zero_where_a_window_holds_two_samples() {
    let stale = f64::from_bits(STALE_NAN);
    let samples = [
        (0, 5.0),
        (100, 5.0),
        (250, 5.0),
        (300, stale),
        (700, 5.0),
        (800, 5.0),
    ];
    let closed = unchanged_rate(&samples, (0, 1_000, 100), 200, true).unwrap();
    let t = |v: &[(i64, f64)]| v.iter().map(|p| p.0).collect::<Vec<_>>();
    // [t − 200, t]: 100 holds 0 and 100; 200 holds 0, 100; 300: 100, 250; 400: 250 only.
    assert_eq!(t(&closed), vec![100, 200, 300, 800, 900]);
    assert!(closed.iter().all(|&(_, v)| v == 0.0));
    let open = unchanged_rate(&samples, (0, 1_000, 100), 200, false).unwrap();
    // (t − 200, t]: 200 holds 100 only, 300 250 only, 900 800 only.
    assert_eq!(t(&open), vec![100, 800]);
    let changed = [(0, 5.0), (100, 6.0)];
    assert_eq!(unchanged_rate(&changed, (0, 100, 100), 200, true), None);
    assert_eq!(
        unchanged_rate(&[(0, f64::NAN), (1, f64::NAN)], (0, 1, 1), 2, true),
        None
    );
    assert_eq!(unchanged_rate(&[], (0, 100, 100), 200, true), Some(vec![]));
}
