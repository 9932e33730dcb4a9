//! The firmware's state machine: bytes in, what the screen must show out.

use ood_core::wire::{Decoder, Message, WireError};
use ood_core::{Score, Verdict, IMG_PIXELS};

/// No valid frame for this long (milliseconds) -> "LINK LOST".
pub const LINK_TIMEOUT_MS: u32 = 3000;

/// The verdict on screen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shown {
    /// Sequence number of the camera frame it belongs to.
    pub seq: u32,
    /// The decision, as the camera side made it.
    pub verdict: Verdict,
    /// Camera-side preprocessing + inference time, microseconds.
    pub inference_us: u32,
}

/// Everything the UI draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Screen {
    /// Latest verdict received intact.
    pub verdict: Option<Shown>,
    /// Latest thumbnail received intact, with its sequence number.
    pub thumbnail: Option<(u32, [u8; IMG_PIXELS])>,
    /// `U(x)` above which a digit is rejected (from the Hello message).
    pub threshold_u: Option<f32>,
    /// Verdicts shown: accepted.
    pub accepted: u32,
    /// Verdicts shown: rejected.
    pub rejected: u32,
    /// Frames refused (corrupt, too long, unknown).
    pub corrupt: u32,
    /// Frames from a sender of another protocol version (its version).
    pub version_mismatch: Option<u8>,
    /// Camera frames the sender dropped (from its Stats).
    pub sender_dropped: u32,
    /// Clock (ms) of the last valid frame.
    pub last_rx_ms: Option<u32>,
    /// Clock now (ms).
    pub now_ms: u32,
}

impl Screen {
    const fn new() -> Self {
        Self {
            verdict: None,
            thumbnail: None,
            threshold_u: None,
            accepted: 0,
            rejected: 0,
            corrupt: 0,
            version_mismatch: None,
            sender_dropped: 0,
            last_rx_ms: None,
            now_ms: 0,
        }
    }

    /// Whether a valid frame arrived within [`LINK_TIMEOUT_MS`].
    pub fn link_ok(&self) -> bool {
        self.last_rx_ms
            .is_some_and(|t| self.now_ms.wrapping_sub(t) <= LINK_TIMEOUT_MS)
    }

    /// The thumbnail that belongs to the verdict on screen (or, before any
    /// verdict, the latest one): a thumbnail of another frame is not shown
    /// next to a verdict it did not produce.
    pub fn matching_thumbnail(&self) -> Option<&[u8; IMG_PIXELS]> {
        match (&self.thumbnail, &self.verdict) {
            (Some((s, px)), Some(v)) if *s == v.seq => Some(px),
            (Some((_, px)), None) => Some(px),
            _ => None,
        }
    }
}

/// The link decoder plus the screen state.
#[derive(Debug, Clone)]
pub struct Firmware {
    decoder: Decoder,
    /// What to draw.
    pub screen: Screen,
}

impl Default for Firmware {
    fn default() -> Self {
        Self::new()
    }
}

impl Firmware {
    /// Power-on state: no link, nothing received.
    pub const fn new() -> Self {
        Self {
            decoder: Decoder::new(),
            screen: Screen::new(),
        }
    }

    /// Advances the clock (link-lost detection).
    pub fn tick(&mut self, now_ms: u32) {
        self.screen.now_ms = now_ms;
    }

    /// Bytes of a frame begun but not finished: after the link goes quiet,
    /// what a cut in the middle of a frame left behind (never shown).
    pub fn partial_frame(&self) -> usize {
        self.decoder.pending()
    }

    /// Feeds bytes received at `now_ms`; returns the number of valid frames.
    pub fn feed(&mut self, bytes: &[u8], now_ms: u32) -> usize {
        self.tick(now_ms);
        let mut n = 0;
        for &b in bytes {
            match self.decoder.push(b) {
                None => {}
                Some(Ok(m)) => {
                    n += 1;
                    self.apply(m);
                }
                Some(Err(WireError::Version { got })) => self.screen.version_mismatch = Some(got),
                Some(Err(_)) => self.screen.corrupt = self.screen.corrupt.saturating_add(1),
            }
        }
        n
    }

    fn apply(&mut self, m: Message) {
        let s = &mut self.screen;
        s.last_rx_ms = Some(s.now_ms);
        s.version_mismatch = None;
        match m {
            Message::Hello { score, threshold, .. } => {
                // the bar shows U(x); only the uncertainty score maps onto it
                s.threshold_u = (score == Score::Uncertainty).then_some(1.0 - threshold);
            }
            Message::Verdict {
                seq,
                verdict,
                inference_us,
            } => {
                if verdict.is_accept() {
                    s.accepted = s.accepted.saturating_add(1);
                } else {
                    s.rejected = s.rejected.saturating_add(1);
                }
                s.verdict = Some(Shown {
                    seq,
                    verdict,
                    inference_us,
                });
            }
            Message::Thumbnail { seq, pixels } => s.thumbnail = Some((seq, pixels.0)),
            Message::Stats { dropped, .. } => s.sender_dropped = dropped,
            Message::Heartbeat { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ood_core::wire::{encode, encode_version, Thumbnail, MAX_FRAME, PROTOCOL_VERSION};
    use ood_core::RejectReason;

    fn bytes(m: &Message) -> std::vec::Vec<u8> {
        let mut out = [0u8; MAX_FRAME];
        let n = encode(m, &mut out).expect("encode");
        out[..n].to_vec()
    }

    #[test]
    fn verdicts_counts_link_and_corruption() {
        let mut fw = Firmware::new();
        assert!(!fw.screen.link_ok());
        fw.feed(
            &bytes(&Message::Hello {
                protocol: PROTOCOL_VERSION,
                model_id: [0; 8],
                score: Score::Uncertainty,
                threshold: 0.75,
            }),
            10,
        );
        assert_eq!(fw.screen.threshold_u, Some(0.25));
        assert!(fw.screen.link_ok());
        let v = Verdict::Reject {
            reason: RejectReason::Garbage,
            uncertainty: 0.1,
        };
        let mut f = bytes(&Message::Verdict {
            seq: 3,
            verdict: v,
            inference_us: 9,
        });
        fw.feed(&f, 20);
        assert_eq!(fw.screen.verdict.map(|s| s.verdict), Some(v));
        assert_eq!((fw.screen.accepted, fw.screen.rejected), (0, 1));
        // a corrupt copy changes nothing but the corrupt count
        f[3] ^= 0x40;
        assert_eq!(fw.feed(&f, 30), 0);
        assert_eq!(fw.screen.corrupt, 1);
        assert_eq!(fw.screen.rejected, 1);
        // thumbnails of another frame are not shown next to the verdict
        fw.feed(
            &bytes(&Message::Thumbnail {
                seq: 4,
                pixels: Thumbnail([9; IMG_PIXELS]),
            }),
            40,
        );
        assert!(fw.screen.matching_thumbnail().is_none());
        // silence -> link lost
        fw.tick(40 + LINK_TIMEOUT_MS + 1);
        assert!(!fw.screen.link_ok());
        // a newer sender is reported as such, not as corruption
        let mut out = [0u8; MAX_FRAME];
        let n = encode_version(
            &Message::Heartbeat { uptime_ms: 1 },
            PROTOCOL_VERSION + 1,
            &mut out,
        )
        .expect("enc");
        fw.feed(&out[..n], 5000);
        assert_eq!(fw.screen.version_mismatch, Some(PROTOCOL_VERSION + 1));
        assert_eq!(fw.screen.corrupt, 1);
    }
}
