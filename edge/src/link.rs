//! The camera side of the serial link to the display: verdicts, thumbnails,
//! statistics and heartbeats as `ood_core::wire` frames, on any byte sink (a
//! UART such as `/dev/serial0`, a file, a pipe, or memory in the simulator).

use crate::error::{Error, Result};
use crate::model::{Classified, Model};
use ood_core::wire::{encode, Message, Thumbnail, MAX_FRAME, PROTOCOL_VERSION};
use ood_core::{Verdict, IMG_PIXELS};
use std::io::Write;
use std::path::PathBuf;

/// Sends wire frames to `out`, counting what it sent.
#[derive(Debug)]
pub struct Sender<W: Write> {
    out: W,
    name: PathBuf,
    frames: u32,
    accepted: u32,
    rejected_garbage: u32,
    rejected_uncertain: u32,
}

/// First 8 bytes of a hex sha256 (the model id in `Hello`).
pub fn model_id(sha256_hex: &str) -> [u8; 8] {
    let mut id = [0u8; 8];
    for (i, b) in id.iter_mut().enumerate() {
        *b = sha256_hex
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    id
}

impl<W: Write> Sender<W> {
    /// A sender writing to `out` (named "wire" in errors).
    pub fn new(out: W) -> Self {
        Self::named(out, "wire")
    }

    /// A sender writing to `out`, the device or file `name` (for errors).
    pub fn named(out: W, name: impl Into<PathBuf>) -> Self {
        Self {
            out,
            name: name.into(),
            frames: 0,
            accepted: 0,
            rejected_garbage: 0,
            rejected_uncertain: 0,
        }
    }

    /// Encodes and writes one message.
    pub fn send(&mut self, m: &Message) -> Result<()> {
        let mut buf = [0u8; MAX_FRAME];
        let n = encode(m, &mut buf).map_err(|e| Error::Frame(format!("cannot encode {m:?}: {e}")))?;
        let sent = self.out.write_all(&buf[..n]).and_then(|()| self.out.flush());
        sent.map_err(|source| Error::Link {
            path: self.name.clone(),
            source,
        })
    }

    /// Who is talking, and the threshold the display marks on its bar.
    pub fn hello(&mut self, model: &Model) -> Result<()> {
        self.send(&Message::Hello {
            protocol: PROTOCOL_VERSION,
            model_id: model_id(&model.file.sha256),
            score: model.policy.score,
            threshold: model.policy.threshold,
        })
    }

    /// The thumbnail, then the verdict, of frame `seq`.
    pub fn verdict(
        &mut self,
        seq: u32,
        input: &[u8; IMG_PIXELS],
        c: &Classified,
        inference_us: u32,
    ) -> Result<()> {
        self.frames = self.frames.wrapping_add(1);
        match c.verdict {
            Verdict::Accept { .. } => self.accepted = self.accepted.wrapping_add(1),
            Verdict::Reject {
                reason: ood_core::RejectReason::Garbage,
                ..
            } => self.rejected_garbage = self.rejected_garbage.wrapping_add(1),
            Verdict::Reject { .. } => self.rejected_uncertain = self.rejected_uncertain.wrapping_add(1),
        }
        self.send(&Message::Thumbnail {
            seq,
            pixels: Thumbnail(*input),
        })?;
        self.send(&Message::Verdict {
            seq,
            verdict: c.verdict,
            inference_us,
        })
    }

    /// Running counts, with the camera frames dropped so far.
    pub fn stats(&mut self, dropped: u32) -> Result<()> {
        self.send(&Message::Stats {
            frames: self.frames,
            accepted: self.accepted,
            rejected_garbage: self.rejected_garbage,
            rejected_uncertain: self.rejected_uncertain,
            dropped,
        })
    }

    /// "Still here".
    pub fn heartbeat(&mut self, uptime_ms: u32) -> Result<()> {
        self.send(&Message::Heartbeat { uptime_ms })
    }

    /// The sink back.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// The sink (e.g. to take the bytes written to a `Vec<u8>`).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}
