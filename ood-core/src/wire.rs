//! The serial link between the camera-side Pi and the display controller.
//!
//! A frame on the wire is `COBS(version, postcard(message), crc32) 0x00`:
//!
//! - `version` ([`PROTOCOL_VERSION`]) comes first so that a receiver can tell
//!   a frame from a newer sender ([`WireError::Version`]) from a corrupt one;
//! - the payload is the [`Message`] in postcard's compact encoding;
//! - the CRC-32 (IEEE) covers version and payload: a frame with a flipped
//!   byte is rejected ([`WireError::Crc`]), never shown;
//! - COBS removes every zero byte, so `0x00` only ever ends a frame and a
//!   receiver that lost sync (noise, a dropped byte) recovers at the next one.
//!
//! Everything here is `no_std` and allocation-free: frames are built in and
//! decoded from fixed-size buffers of [`MAX_FRAME`] bytes.
//!
//! ```
//! use ood_core::wire::{encode, Decoder, Message, MAX_FRAME};
//!
//! let msg = Message::Heartbeat { uptime_ms: 1234 };
//! let mut frame = [0u8; MAX_FRAME];
//! let n = encode(&msg, &mut frame).expect("fits");
//! assert_eq!(frame[n - 1], 0, "a frame ends with its delimiter");
//!
//! // the receiver is fed byte by byte, as from a UART
//! let mut rx = Decoder::default();
//! let mut got = None;
//! for &b in &frame[..n] {
//!     if let Some(r) = rx.push(b) {
//!         got = Some(r.expect("intact frame"));
//!     }
//! }
//! assert_eq!(got, Some(msg));
//! ```

use crate::score::Score;
use crate::verdict::Verdict;
use crate::IMG_PIXELS;
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u8 = 1;
/// Largest frame on the wire, delimiter included. A thumbnail frame (the
/// largest message) takes about 800 bytes.
pub const MAX_FRAME: usize = 1024;
/// Largest decoded frame (version + payload + CRC).
pub const MAX_RAW: usize = MAX_FRAME - 2 - MAX_FRAME / 254;

/// The model's 28x28 input, as the display shows it (row-major, 0..=255).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail(pub [u8; IMG_PIXELS]);

impl Serialize for Thumbnail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Thumbnail {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Thumbnail;
            fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                write!(f, "{IMG_PIXELS} bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Thumbnail, E> {
                let a: [u8; IMG_PIXELS] = v.try_into().map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(Thumbnail(a))
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(self, v: &'de [u8]) -> Result<Thumbnail, E> {
                self.visit_bytes(v)
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Everything the camera side says to the display.
// No allocator on the display side, so the 784-byte thumbnail stays inline
// rather than boxed; a Message lives in one place at a time.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// Sent at start-up and every few seconds: who is talking and how it decides.
    Hello {
        /// The sender's protocol version (also in every frame header).
        protocol: u8,
        /// First 8 bytes of the model file's sha256.
        model_id: [u8; 8],
        /// The acceptance score.
        score: Score,
        /// Threshold on the in-distribution score (for the uncertainty bar).
        threshold: f32,
    },
    /// One decision.
    Verdict {
        /// Frame sequence number (wraps).
        seq: u32,
        /// The verdict, exactly as `ood_core::Policy::decide` made it.
        verdict: Verdict,
        /// Preprocessing + inference time, microseconds.
        inference_us: u32,
    },
    /// The input the verdict with the same `seq` was made on.
    Thumbnail {
        /// Frame sequence number.
        seq: u32,
        /// 28x28 pixels.
        pixels: Thumbnail,
    },
    /// Periodic counters of the camera side.
    Stats {
        /// Frames classified.
        frames: u32,
        /// Accepted as digits.
        accepted: u32,
        /// Rejected: garbage class.
        rejected_garbage: u32,
        /// Rejected: uncertain.
        rejected_uncertain: u32,
        /// Camera frames dropped because inference was busy.
        dropped: u32,
    },
    /// "Still here", sent when nothing else was sent for a while.
    Heartbeat {
        /// Sender uptime, milliseconds (wraps).
        uptime_ms: u32,
    },
}

/// Why a frame was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// More than [`MAX_FRAME`] bytes before a delimiter (bytes skipped until it).
    TooLong,
    /// The COBS code bytes are inconsistent (corruption).
    Cobs,
    /// Too short to hold a version, a message and a CRC.
    Short,
    /// The CRC does not match: corruption.
    Crc,
    /// A valid frame of another protocol version.
    Version {
        /// The version the sender speaks.
        got: u8,
    },
    /// Valid CRC and version, but the payload is not a message we know.
    Payload,
    /// The message does not fit in [`MAX_FRAME`] (encoding side).
    Capacity,
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WireError::TooLong => write!(f, "frame longer than {MAX_FRAME} bytes"),
            WireError::Cobs => write!(f, "corrupt framing (COBS)"),
            WireError::Short => write!(f, "frame too short"),
            WireError::Crc => write!(f, "CRC mismatch (corrupt frame)"),
            WireError::Version { got } if *got > PROTOCOL_VERSION => write!(
                f,
                "sender speaks protocol {got}, this receiver only {PROTOCOL_VERSION}: update the display firmware"
            ),
            WireError::Version { got } => write!(
                f,
                "sender speaks protocol {got}, this receiver {PROTOCOL_VERSION}: update the camera side"
            ),
            WireError::Payload => write!(f, "unknown message"),
            WireError::Capacity => write!(f, "message larger than a frame"),
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// COBS-encodes `src` into `dst` (no delimiter); returns the length written.
fn cobs_encode(src: &[u8], dst: &mut [u8]) -> Result<usize, WireError> {
    let mut code_at = 0;
    let mut out = 1;
    let mut code = 1u8;
    for &b in src {
        if b == 0 {
            *dst.get_mut(code_at).ok_or(WireError::Capacity)? = code;
            code_at = out;
            out += 1;
            code = 1;
        } else {
            *dst.get_mut(out).ok_or(WireError::Capacity)? = b;
            out += 1;
            code += 1;
            if code == 0xff {
                *dst.get_mut(code_at).ok_or(WireError::Capacity)? = code;
                code_at = out;
                out += 1;
                code = 1;
            }
        }
    }
    *dst.get_mut(code_at).ok_or(WireError::Capacity)? = code;
    Ok(out)
}

/// Decodes a COBS block (no delimiter) into `dst`; returns the length.
fn cobs_decode(src: &[u8], dst: &mut [u8]) -> Result<usize, WireError> {
    let (mut i, mut out) = (0, 0);
    while i < src.len() {
        let code = src[i] as usize;
        if code == 0 || i + code > src.len() {
            return Err(WireError::Cobs);
        }
        for &b in &src[i + 1..i + code] {
            if b == 0 {
                return Err(WireError::Cobs);
            }
            *dst.get_mut(out).ok_or(WireError::TooLong)? = b;
            out += 1;
        }
        i += code;
        if code < 0xff && i < src.len() {
            *dst.get_mut(out).ok_or(WireError::TooLong)? = 0;
            out += 1;
        }
    }
    Ok(out)
}

/// Encodes `msg` as one frame (delimiter included) into `out`; returns its length.
pub fn encode(msg: &Message, out: &mut [u8; MAX_FRAME]) -> Result<usize, WireError> {
    encode_version(msg, PROTOCOL_VERSION, out)
}

/// [`encode`] with an explicit protocol version (tests of version handling).
pub fn encode_version(msg: &Message, version: u8, out: &mut [u8; MAX_FRAME]) -> Result<usize, WireError> {
    let mut raw = [0u8; MAX_RAW];
    raw[0] = version;
    let n = postcard::to_slice(msg, &mut raw[1..MAX_RAW - 4])
        .map_err(|_| WireError::Capacity)?
        .len();
    let crc = crc32(&raw[..1 + n]);
    raw[1 + n..5 + n].copy_from_slice(&crc.to_le_bytes());
    let len = cobs_encode(&raw[..5 + n], &mut out[..MAX_FRAME - 1])?;
    out[len] = 0;
    Ok(len + 1)
}

/// Decodes one frame's COBS block (the bytes between two delimiters).
pub fn decode_block(block: &[u8]) -> Result<Message, WireError> {
    let mut raw = [0u8; MAX_FRAME];
    let n = cobs_decode(block, &mut raw)?;
    if n < 1 + 1 + 4 {
        return Err(WireError::Short);
    }
    let (body, crc) = raw[..n].split_at(n - 4);
    let want = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32(body) != want {
        return Err(WireError::Crc);
    }
    if body[0] != PROTOCOL_VERSION {
        return Err(WireError::Version { got: body[0] });
    }
    let (msg, rest) = postcard::take_from_bytes::<Message>(&body[1..]).map_err(|_| WireError::Payload)?;
    if !rest.is_empty() {
        return Err(WireError::Payload);
    }
    Ok(msg)
}

/// A streaming receiver: feed it bytes as they arrive, one at a time.
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: heapless::Vec<u8, MAX_FRAME>,
    overflow: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// An empty receiver.
    pub const fn new() -> Self {
        Self {
            buf: heapless::Vec::new(),
            overflow: false,
        }
    }

    /// Bytes received since the last frame delimiter: the start of a frame
    /// still to come, or, when the link has gone quiet, what was left of a
    /// frame cut in the middle.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Takes one byte; at a frame delimiter, returns the frame's message or
    /// why it was refused. Never panics, whatever the bytes.
    pub fn push(&mut self, byte: u8) -> Option<Result<Message, WireError>> {
        if byte != 0 {
            if !self.overflow && self.buf.push(byte).is_err() {
                self.overflow = true;
            }
            return None;
        }
        let result = if self.overflow {
            Some(Err(WireError::TooLong))
        } else if self.buf.is_empty() {
            None // idle delimiters between frames
        } else {
            Some(decode_block(&self.buf))
        };
        self.buf.clear();
        self.overflow = false;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::RejectReason;
    use proptest::prelude::*;
    use std::string::String;
    use std::vec::Vec;

    fn frame(msg: &Message) -> Vec<u8> {
        let mut out = [0u8; MAX_FRAME];
        let n = encode(msg, &mut out).expect("encode");
        out[..n].to_vec()
    }

    fn feed(d: &mut Decoder, bytes: &[u8]) -> Vec<Result<Message, WireError>> {
        bytes.iter().filter_map(|&b| d.push(b)).collect()
    }

    /// One example of every message (the golden vectors).
    fn examples() -> Vec<(&'static str, Message)> {
        let mut px = [0u8; IMG_PIXELS];
        for (i, p) in px.iter_mut().enumerate() {
            *p = (i % 251) as u8;
        }
        std::vec![
            (
                "hello",
                Message::Hello {
                    protocol: PROTOCOL_VERSION,
                    model_id: [0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3],
                    score: Score::Uncertainty,
                    threshold: 0.75,
                },
            ),
            (
                "verdict_accept",
                Message::Verdict {
                    seq: 7,
                    verdict: Verdict::Accept {
                        digit: 3,
                        confidence: 0.96875,
                        uncertainty: 0.0625,
                    },
                    inference_us: 180,
                },
            ),
            (
                "verdict_reject_garbage",
                Message::Verdict {
                    seq: 8,
                    verdict: Verdict::Reject {
                        reason: RejectReason::Garbage,
                        uncertainty: 0.125,
                    },
                    inference_us: 175,
                },
            ),
            (
                "verdict_reject_uncertain",
                Message::Verdict {
                    seq: 70_000,
                    verdict: Verdict::Reject {
                        reason: RejectReason::Uncertain,
                        uncertainty: 0.5,
                    },
                    inference_us: 200,
                },
            ),
            (
                "thumbnail",
                Message::Thumbnail {
                    seq: 7,
                    pixels: Thumbnail(px)
                }
            ),
            (
                "stats",
                Message::Stats {
                    frames: 1000,
                    accepted: 400,
                    rejected_garbage: 550,
                    rejected_uncertain: 50,
                    dropped: 3,
                },
            ),
            ("heartbeat", Message::Heartbeat { uptime_ms: 123_456 }),
        ]
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| std::format!("{x:02x}")).collect()
    }

    #[test]
    fn pending_counts_an_unfinished_frame_and_clears_at_its_delimiter() {
        let mut out = [0u8; MAX_FRAME];
        let n = encode(&Message::Heartbeat { uptime_ms: 7 }, &mut out).expect("encodes");
        let mut d = Decoder::new();
        assert_eq!(d.pending(), 0);
        let half = n / 2;
        for &b in &out[..half] {
            assert!(d.push(b).is_none());
        }
        assert!(d.pending() > 0 && d.pending() <= half, "{}", d.pending());
        let got: Vec<_> = out[half..n].iter().filter_map(|&b| d.push(b)).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(d.pending(), 0);
    }

    /// Golden byte vectors: a change to the encoding fails here; rewrite the
    /// file only on purpose, with `UPDATE_GOLDEN=1 cargo test -p ood-core`.
    #[test]
    fn every_message_matches_its_golden_bytes() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/wire.txt");
        let text: String = examples()
            .iter()
            .map(|(name, m)| std::format!("{name} {}\n", hex(&frame(m))))
            .collect();
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
            std::fs::write(&path, &text).expect("write golden");
        }
        let want = std::fs::read_to_string(&path).expect("golden/wire.txt (UPDATE_GOLDEN=1 writes it)");
        assert_eq!(
            text, want,
            "wire encoding changed: bump PROTOCOL_VERSION, then UPDATE_GOLDEN=1"
        );
        // and each golden frame decodes back
        let mut d = Decoder::new();
        for ((_, m), line) in examples().iter().zip(want.lines()) {
            let h = line.split(' ').nth(1).expect("hex");
            let bytes: Vec<u8> = (0..h.len() / 2)
                .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex"))
                .collect();
            assert!(bytes.len() <= MAX_FRAME);
            assert_eq!(feed(&mut d, &bytes), std::vec![Ok(m.clone())]);
        }
    }

    #[test]
    fn versions_corruption_and_oversize_are_told_apart() {
        let m = Message::Heartbeat { uptime_ms: 5 };
        let mut out = [0u8; MAX_FRAME];
        let n = encode_version(&m, PROTOCOL_VERSION + 1, &mut out).expect("encode");
        let mut d = Decoder::new();
        let r = feed(&mut d, &out[..n]);
        assert_eq!(
            r,
            std::vec![Err(WireError::Version {
                got: PROTOCOL_VERSION + 1
            })]
        );
        let msg = std::format!(
            "{}",
            WireError::Version {
                got: PROTOCOL_VERSION + 1
            }
        );
        assert!(msg.contains("update the display firmware"), "{msg}");
        // a flipped byte inside a frame: CRC (or framing) error, never a message
        let f = frame(&Message::Verdict {
            seq: 1,
            verdict: Verdict::Accept {
                digit: 4,
                confidence: 0.9,
                uncertainty: 0.1,
            },
            inference_us: 1,
        });
        for i in 0..f.len() - 1 {
            let mut g = f.clone();
            g[i] ^= 0x10;
            if g[i] == 0 {
                continue; // becomes a delimiter: two short frames, both refused
            }
            let r = feed(&mut Decoder::new(), &g);
            assert!(r.iter().all(|x| x.is_err()), "byte {i}: {r:?}");
        }
        // oversize: refused at the delimiter, and the next frame is fine
        let mut long = std::vec![0x55u8; MAX_FRAME + 10];
        long.push(0);
        long.extend(frame(&m));
        assert_eq!(feed(&mut d, &long), std::vec![Err(WireError::TooLong), Ok(m)]);
    }

    fn arb_verdict() -> impl Strategy<Value = Verdict> {
        prop_oneof![
            (0u8..10, 0.0f32..1.0, 0.0f32..1.0).prop_map(|(digit, confidence, uncertainty)| {
                Verdict::Accept {
                    digit,
                    confidence,
                    uncertainty,
                }
            }),
            (any::<bool>(), 0.0f32..1.0).prop_map(|(g, uncertainty)| Verdict::Reject {
                reason: if g {
                    RejectReason::Garbage
                } else {
                    RejectReason::Uncertain
                },
                uncertainty
            }),
        ]
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (
                any::<[u8; 8]>(),
                any::<f32>().prop_filter("not NaN", |x| !x.is_nan())
            )
                .prop_map(|(model_id, threshold)| Message::Hello {
                    protocol: PROTOCOL_VERSION,
                    model_id,
                    score: Score::Energy,
                    threshold
                }),
            (any::<u32>(), arb_verdict(), any::<u32>()).prop_map(|(seq, verdict, inference_us)| {
                Message::Verdict {
                    seq,
                    verdict,
                    inference_us,
                }
            }),
            (any::<u32>(), proptest::collection::vec(any::<u8>(), IMG_PIXELS)).prop_map(|(seq, v)| {
                let mut px = [0u8; IMG_PIXELS];
                px.copy_from_slice(&v);
                Message::Thumbnail {
                    seq,
                    pixels: Thumbnail(px),
                }
            }),
            any::<[u32; 5]>().prop_map(|a| Message::Stats {
                frames: a[0],
                accepted: a[1],
                rejected_garbage: a[2],
                rejected_uncertain: a[3],
                dropped: a[4]
            }),
            any::<u32>().prop_map(|uptime_ms| Message::Heartbeat { uptime_ms }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(m in arb_message()) {
            let f = frame(&m);
            prop_assert!(f.len() <= MAX_FRAME);
            prop_assert_eq!(f.iter().filter(|&&b| b == 0).count(), 1);
            prop_assert_eq!(feed(&mut Decoder::new(), &f), std::vec![Ok(m)]);
        }

        #[test]
        fn decoder_never_panics_and_resyncs_after_garbage(
            junk in proptest::collection::vec(any::<u8>(), 0..3000),
            m in arb_message(),
        ) {
            let mut d = Decoder::new();
            let _ = feed(&mut d, &junk);
            // after any junk, a delimiter and then a good frame decodes
            let mut tail = std::vec![0u8];
            tail.extend(frame(&m));
            let r = feed(&mut d, &tail);
            prop_assert_eq!(r.last().cloned(), Some(Ok(m)));
        }
    }
}
