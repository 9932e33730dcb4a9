//! `firmware-sim`: the display firmware on the desktop. Test images go
//! through the edge runtime with the shipped model, the verdicts become wire
//! frames, the bytes cross a simulated serial link (with optional corruption
//! and drops), and the firmware library draws what the device would show:
//! headless, as PNG frames and an optional animated GIF.

use anyhow::{bail, Context, Result};
use clap::Parser;
use edge::link::Sender;
use edge::model::Model;
use firmware_sim::framebuffer::Framebuffer;
use firmware_sim::state::LINK_TIMEOUT_MS;
use firmware_sim::{ui, Firmware};
use ood_core::IMG_PIXELS;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Simulate the OOD display: images -> edge verdicts -> serial link -> firmware -> PNG/GIF"
)]
struct Cli {
    /// Image folders, image files, or dataset files (IDX raw/.gz, CIFAR-10
    /// binary, SVHN .mat); several are interleaved one image each in turn.
    #[arg(long, num_args = 1.., required_unless_present = "serial", conflicts_with = "serial")]
    images: Vec<PathBuf>,
    /// Replay wire frames written by `edge stream --wire PATH` instead.
    #[arg(long, value_name = "PATH")]
    serial: Option<PathBuf>,
    /// Model folder (default: models/default).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Output folder for PNG frames, the GIF and verdicts.jsonl.
    #[arg(long, default_value = "sim-out")]
    out: PathBuf,
    /// At most this many images.
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// Probability that a byte on the link is corrupted (bits flipped).
    #[arg(long, default_value_t = 0.0)]
    corrupt: f64,
    /// Probability that a byte on the link is lost.
    #[arg(long, default_value_t = 0.0)]
    drop: f64,
    /// Seed of the link's corruption.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write a PNG of the screen every N images (0: only the first and last screens).
    #[arg(long, default_value_t = 1)]
    png_every: usize,
    /// Also write an animated GIF (first 300 screens).
    #[arg(long)]
    gif: bool,
    /// Simulated time between two images, milliseconds.
    #[arg(long, default_value_t = 500)]
    ms_per_image: u32,
    /// Also show the screen live in a window, one image per --ms-per-image of
    /// real time (builds with `--features window`; needs a display).
    #[arg(long)]
    window: bool,
}

/// The live window (feature `window`): the same drawing code on
/// embedded-graphics-simulator's SDL2 display.
#[cfg(feature = "window")]
struct Viewer {
    display: embedded_graphics_simulator::SimulatorDisplay<embedded_graphics::pixelcolor::Rgb565>,
    window: embedded_graphics_simulator::Window,
}

#[cfg(feature = "window")]
impl Viewer {
    fn open() -> Result<Self> {
        if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
            bail!("--window needs a display (DISPLAY is not set); run without --window for PNG/GIF output");
        }
        let settings = embedded_graphics_simulator::OutputSettingsBuilder::new()
            .scale(2)
            .build();
        Ok(Self {
            display: embedded_graphics_simulator::SimulatorDisplay::new(
                embedded_graphics::prelude::Size::new(ui::WIDTH, ui::HEIGHT),
            ),
            window: embedded_graphics_simulator::Window::new("OOD display (240x240 ST7789)", &settings),
        })
    }

    /// Draws the screen; false when the user closed the window.
    fn show(&mut self, fw: &Firmware) -> bool {
        let Ok(()) = ui::draw(&fw.screen, &mut self.display);
        self.window.update(&self.display);
        !self
            .window
            .events()
            .any(|e| matches!(e, embedded_graphics_simulator::SimulatorEvent::Quit))
    }
}

#[cfg(not(feature = "window"))]
struct Viewer;

#[cfg(not(feature = "window"))]
impl Viewer {
    fn open() -> Result<Self> {
        bail!("this build has no window: rebuild with `cargo run -p firmware-sim --release --features window` (needs libsdl2-dev), or run without --window for PNG/GIF output")
    }

    fn show(&mut self, _fw: &Firmware) -> bool {
        true
    }
}

/// One input, ready for the model.
struct Input {
    source: String,
    pixels: [u8; IMG_PIXELS],
}

/// The inputs of one `--images` argument, in order.
fn load_source(p: &Path, limit: usize) -> Result<Vec<Input>> {
    if p.is_dir() || edge::report::is_image(p) {
        let mut files = edge::report::collect_images(&[p.to_path_buf()])?;
        files.truncate(limit);
        let mut out = Vec::new();
        for f in files {
            match edge::preprocess::load(&f, None) {
                Ok(pixels) => out.push(Input {
                    source: f.display().to_string(),
                    pixels,
                }),
                Err(e) => eprintln!("warning: skipping {e}"),
            }
        }
        return Ok(out);
    }
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ds = ood_data::load_any(&name, p).with_context(|| format!("reading {}", p.display()))?;
    Ok((0..ds.len().min(limit))
        .map(|i| {
            let mut pixels = [0u8; IMG_PIXELS];
            pixels.copy_from_slice(ds.image(i));
            Input {
                source: format!("{}#{i}", p.display()),
                pixels,
            }
        })
        .collect())
}

/// Round-robin over the sources, at most `limit` inputs.
fn interleave(sources: Vec<Vec<Input>>, limit: usize) -> Vec<Input> {
    let mut iters: Vec<_> = sources.into_iter().map(|v| v.into_iter()).collect();
    let mut out = Vec::new();
    while out.len() < limit {
        let before = out.len();
        for it in iters.iter_mut() {
            if out.len() < limit {
                if let Some(x) = it.next() {
                    out.push(x);
                }
            }
        }
        if out.len() == before {
            break;
        }
    }
    out
}

/// A serial link that corrupts and drops bytes at random.
struct Link {
    rng: rand::rngs::StdRng,
    corrupt: f64,
    drop: f64,
}

impl Link {
    fn carry(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        for &b in bytes {
            if self.rng.random_bool(self.drop) {
                continue;
            }
            if self.rng.random_bool(self.corrupt) {
                out.push(b ^ self.rng.random_range(1..=255u8));
            } else {
                out.push(b);
            }
        }
        out
    }
}

struct Screens {
    dir: PathBuf,
    gif: Option<image::codecs::gif::GifEncoder<std::fs::File>>,
    gif_frames: usize,
    written: usize,
}

impl Screens {
    fn save(&mut self, fw: &Firmware, name: &str, png: bool) -> Result<()> {
        let mut fb = Framebuffer::default();
        let Ok(()) = ui::draw(&fw.screen, &mut fb);
        let rgb: Vec<u8> = fb.rgb888().flatten().collect();
        let img = image::RgbImage::from_raw(ui::WIDTH, ui::HEIGHT, rgb).context("frame buffer size")?;
        if png {
            let p = self.dir.join(name);
            img.save(&p).with_context(|| format!("writing {}", p.display()))?;
            self.written += 1;
        }
        if let Some(g) = self.gif.as_mut() {
            if self.gif_frames < 300 {
                let rgba = image::DynamicImage::ImageRgb8(img).to_rgba8();
                let frame = image::Frame::from_parts(rgba, 0, 0, image::Delay::from_numer_denom_ms(500, 1));
                g.encode_frame(frame).context("writing the GIF")?;
                self.gif_frames += 1;
            }
        }
        Ok(())
    }
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {}", ood_data::error::one_line(e.as_ref()));
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    for (name, p) in [("--corrupt", cli.corrupt), ("--drop", cli.drop)] {
        if !(0.0..=1.0).contains(&p) {
            bail!("{name} must be a probability in [0, 1], got {p}");
        }
    }
    std::fs::create_dir_all(&cli.out).with_context(|| format!("creating {}", cli.out.display()))?;
    let gif = if cli.gif {
        let p = cli.out.join("screens.gif");
        let f = std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?;
        let mut g = image::codecs::gif::GifEncoder::new(f);
        g.set_repeat(image::codecs::gif::Repeat::Infinite)
            .context("GIF")?;
        Some(g)
    } else {
        None
    };
    let mut screens = Screens {
        dir: cli.out.clone(),
        gif,
        gif_frames: 0,
        written: 0,
    };
    let mut fw = Firmware::new();
    let mut viewer = if cli.window { Some(Viewer::open()?) } else { None };
    if let Some(serial) = &cli.serial {
        return replay(serial, &mut fw, &mut screens);
    }
    let dir = cli.model.clone().unwrap_or_else(edge::model::default_dir);
    let model =
        Model::load(&dir, None, None).with_context(|| format!("loading the model in {}", dir.display()))?;
    let sources = cli
        .images
        .iter()
        .map(|p| load_source(p, cli.limit))
        .collect::<Result<Vec<_>>>()?;
    let inputs = interleave(sources, cli.limit);
    if inputs.is_empty() {
        bail!("no images found in {:?}", cli.images);
    }
    let mut link = Link {
        rng: rand::rngs::StdRng::seed_from_u64(cli.seed),
        corrupt: cli.corrupt,
        drop: cli.drop,
    };
    let mut sender = Sender::new(Vec::<u8>::new());
    let mut log = std::io::BufWriter::new(
        std::fs::File::create(cli.out.join("verdicts.jsonl")).context("creating verdicts.jsonl")?,
    );
    let mut now = 0u32;
    sender.hello(&model)?;
    let (mut shown_count, mut wrong, mut sent) = (0usize, 0usize, Vec::with_capacity(inputs.len()));
    for (i, input) in inputs.iter().enumerate() {
        let seq = i as u32 + 1;
        let t = Instant::now();
        let c = model.classify(&input.pixels)?[0];
        let us = t.elapsed().as_micros() as u32;
        sender.verdict(seq, &input.pixels, &c, us)?;
        if seq % 25 == 0 {
            sender.stats(0)?;
            sender.hello(&model)?;
        }
        if seq % 4 == 0 {
            sender.heartbeat(now)?;
        }
        now = now.wrapping_add(cli.ms_per_image);
        let bytes = std::mem::take(sender.get_mut());
        fw.feed(&link.carry(&bytes), now);
        sent.push(c.verdict);
        // what the display shows now must be exactly what was sent for its seq
        let shown = fw.screen.verdict.filter(|s| s.seq == seq);
        if let Some(s) = fw.screen.verdict {
            let idx = s.seq as usize - 1;
            // bit-exact: a frame that passed the CRC carries exactly what was sent
            if idx >= sent.len() || s.verdict != sent[idx] {
                wrong += 1;
            }
        }
        shown_count += usize::from(shown.is_some());
        writeln!(
            log,
            "{}",
            serde_json::json!({
                "seq": seq,
                "source": input.source,
                "sent": c.verdict,
                "shown": shown.map(|s| s.verdict),
            })
        )?;
        let png = cli.png_every > 0 && i % cli.png_every == 0 || i == 0;
        screens.save(&fw, &format!("screen_{seq:05}.png"), png)?;
        if let Some(v) = viewer.as_mut() {
            if !v.show(&fw) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(u64::from(cli.ms_per_image)));
        }
    }
    // the camera side goes quiet: the display must say so
    fw.tick(now.wrapping_add(LINK_TIMEOUT_MS + 1000));
    screens.save(&fw, "screen_link_lost.png", true)?;
    if let Some(v) = viewer.as_mut() {
        v.show(&fw);
    }
    log.flush()?;
    let summary = serde_json::json!({
        "images": inputs.len(),
        "verdicts_shown": shown_count,
        "corrupt_frames": fw.screen.corrupt,
        "wrong_verdicts_shown": wrong,
        "pngs": screens.written,
        "gif_frames": screens.gif_frames,
        "corrupt_probability": cli.corrupt,
        "drop_probability": cli.drop,
    });
    std::fs::write(
        cli.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    println!("{summary}");
    if wrong > 0 {
        bail!("the display showed {wrong} verdicts that differ from what was sent");
    }
    Ok(())
}

/// Replays a file of wire frames (from `edge stream --wire`), 64 bytes per
/// 10 ms of simulated time, saving a screen at each new verdict.
fn replay(path: &Path, fw: &mut Firmware, screens: &mut Screens) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (mut now, mut last_seq, mut verdicts) = (0u32, None, 0usize);
    for chunk in bytes.chunks(64) {
        now = now.wrapping_add(10);
        fw.feed(chunk, now);
        let seq = fw.screen.verdict.map(|v| v.seq);
        if seq != last_seq {
            last_seq = seq;
            verdicts += 1;
            screens.save(fw, &format!("screen_{:05}.png", seq.unwrap_or(0)), true)?;
        }
    }
    fw.tick(now.wrapping_add(LINK_TIMEOUT_MS + 1000));
    screens.save(fw, "screen_link_lost.png", true)?;
    let cut = fw.partial_frame();
    if cut > 0 {
        // what a display meets when the cable is pulled: it shows "link
        // lost"; everything before the cut was decoded and shown
        eprintln!(
            "warning: {}: the link was cut in the middle of a frame: the last {cut} bytes were not a whole frame and were dropped; the {verdicts} verdicts before the cut were shown",
            path.display()
        );
    }
    println!(
        "{}",
        serde_json::json!({ "bytes": bytes.len(), "verdicts_shown": verdicts, "corrupt_frames": fw.screen.corrupt, "cut_mid_frame_bytes": cut })
    );
    Ok(())
}
