//! `edge`: classify images, camera frames or whole test sets with an exported
//! model, on a desktop or a Raspberry Pi. Thin: the logic is in the library.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use edge::frame::{self, FrameSpec, Latest, PixelFormat};
use edge::model::Model;
use edge::preprocess::{self, Roi};
use edge::report;
use ood_core::Verdict;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Digit-or-garbage verdicts from an exported ONNX model (tract)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Args)]
struct ModelArgs {
    /// Model folder (manifest.json + ONNX files); default: models/default.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Which file of the manifest to run (default: the one the manifest names for this CPU architecture, else its default).
    #[arg(long)]
    file: Option<String>,
    /// Threshold: share of validation digits kept (a calibrated value, e.g. 0.99 or 0.95).
    #[arg(long)]
    keep: Option<f32>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Classify image files (PNG/JPEG) or folders of them.
    Classify {
        /// Files or folders (searched recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        model: ModelArgs,
        /// Region of interest X,Y,W,H cut out of each image first.
        #[arg(long)]
        roi: Option<Roi>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Measure the model through tract on MNIST test, Fashion-MNIST and CIFAR-10.
    Eval {
        #[command(flatten)]
        model: ModelArgs,
        /// Data folder (default: $OOD_DATA_DIR or ./data, as for the trainer).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Also write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Time batch-1 inference of every model file of the manifest, and one
    /// 640x480 camera frame to verdict, on this machine (JSON out).
    Bench {
        #[command(flatten)]
        model: ModelArgs,
        /// Timed iterations per measurement.
        #[arg(long, default_value_t = 2000)]
        iters: u32,
    },
    /// Check the model folder on this machine: run its golden inputs
    /// through the f32 and int8 files and compare logits and verdicts with
    /// the ones recorded at export (run it after copying a model to a device)
    Check {
        /// Model folder (manifest.json + ONNX files + golden.json); default: models/default.
        #[arg(long)]
        model: Option<PathBuf>,
        /// JSON out instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Classify frames from a V4L2 camera (e.g. a USB camera on /dev/video0),
    /// captured by ffmpeg's v4l2 input; the capture restarts if it stops.
    Camera {
        #[command(flatten)]
        model: ModelArgs,
        /// The V4L2 device.
        #[arg(long, default_value = "/dev/video0")]
        device: PathBuf,
        /// Capture width.
        #[arg(long, default_value_t = 640)]
        width: u32,
        /// Capture height.
        #[arg(long, default_value_t = 480)]
        height: u32,
        /// Capture frame rate.
        #[arg(long, default_value_t = 15)]
        fps: u32,
        /// Region of interest X,Y,W,H inside each frame.
        #[arg(long)]
        roi: Option<Roi>,
        /// Also send verdicts as wire frames to this file or serial device.
        #[arg(long, value_name = "PATH")]
        wire: Option<PathBuf>,
        /// Capture command writing raw gray8 frames to stdout; {device},
        /// {width}, {height} and {fps} are replaced.
        #[arg(long, default_value = CAPTURE)]
        capture: String,
        /// Stop when the capture ends instead of restarting it.
        #[arg(long)]
        once: bool,
    },
    /// Classify raw frames read from stdin (e.g. `rpicam-vid --codec yuv420 -o -`).
    Stream {
        #[command(flatten)]
        model: ModelArgs,
        /// Frame width in pixels.
        #[arg(long)]
        width: u32,
        /// Frame height in pixels.
        #[arg(long)]
        height: u32,
        /// Pixel format: gray8 or yuv420.
        #[arg(long, default_value = "yuv420")]
        format: PixelFormat,
        /// Region of interest X,Y,W,H inside each frame.
        #[arg(long)]
        roi: Option<Roi>,
        /// Also send each verdict and thumbnail as wire frames to this file or
        /// serial device (e.g. /dev/serial0), for the display firmware.
        #[arg(long, value_name = "PATH")]
        wire: Option<PathBuf>,
    },
}

fn model_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.unwrap_or_else(edge::model::default_dir)
}

fn load(m: ModelArgs) -> Result<Model> {
    let dir = model_dir(m.model);
    Model::load(&dir, m.file.as_deref(), m.keep)
        .with_context(|| format!("loading the model in {}", dir.display()))
}

fn verdict_json(source: &str, v: &Verdict, ms: f64) -> String {
    let mut o = serde_json::json!({ "source": source, "ms": (ms * 1000.0).round() / 1000.0 });
    match *v {
        Verdict::Accept {
            digit,
            confidence,
            uncertainty,
        } => {
            o["verdict"] = "accept".into();
            o["digit"] = digit.into();
            o["confidence"] = confidence.into();
            o["uncertainty"] = uncertainty.into();
        }
        Verdict::Reject { reason, uncertainty } => {
            o["verdict"] = "reject".into();
            o["reason"] = reason.name().into();
            o["uncertainty"] = uncertainty.into();
        }
    }
    o.to_string()
}

fn verdict_row(source: &str, v: &Verdict) -> String {
    match *v {
        Verdict::Accept {
            digit,
            confidence,
            uncertainty,
        } => format!("{source}\taccept\t{digit}\t{confidence:.4}\t{uncertainty:.4}\t"),
        Verdict::Reject { reason, uncertainty } => {
            format!("{source}\treject\t-\t-\t{uncertainty:.4}\t{}", reason.name())
        }
    }
}

fn classify(paths: &[PathBuf], model: ModelArgs, roi: Option<Roi>, json: bool) -> Result<()> {
    let files = report::collect_images(paths)?;
    let model = load(model)?;
    let mut out = std::io::stdout().lock();
    if !json {
        writeln!(out, "source\tverdict\tdigit\tconfidence\tuncertainty\treason")?;
    }
    let mut failed = 0usize;
    for f in &files {
        let t = Instant::now();
        let r = preprocess::load(f, roi).and_then(|x| model.classify(&x));
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let name = f.display().to_string();
        match r {
            Ok(c) => {
                let line = if json {
                    verdict_json(&name, &c[0].verdict, ms)
                } else {
                    verdict_row(&name, &c[0].verdict)
                };
                writeln!(out, "{line}")?;
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
                if json {
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({ "source": name, "error": e.to_string() })
                    )?;
                }
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} inputs could not be classified (see above)",
            files.len()
        );
    }
    Ok(())
}

fn eval(m: ModelArgs, data_dir: Option<PathBuf>, json: Option<PathBuf>) -> Result<()> {
    let model = load(m)?;
    let sources = ood_data::fetch::Sources::new(data_dir).offline();
    let (_, mnist_test) = sources.mnist().context(
        "MNIST test is needed: run scripts/setup.sh (or `cargo run -p trainer --release -- fetch`)",
    )?;
    // the same list as the trainer's reports, without the noise sets
    let sets = ood_data::EvalSets::load(&sources, mnist_test, None, Vec::new())?;
    for s in &sets.skipped {
        eprintln!("warning: skipping {s}");
    }
    let bar = indicatif::ProgressBar::new(0);
    let rep = report::evaluate(&model, &sets.id, &sets.ood, &bar)?;
    bar.finish_and_clear();
    println!("{}", rep.to_markdown());
    if let Some(p) = json {
        std::fs::write(&p, serde_json::to_string_pretty(&rep)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

type Link = edge::link::Sender<std::io::BufWriter<std::fs::File>>;

fn open_link(wire: Option<&Path>, model: &Model) -> Result<Option<Link>> {
    let Some(p) = wire else { return Ok(None) };
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(p)
        .with_context(|| format!("opening the wire output {}", p.display()))?;
    let mut s = edge::link::Sender::named(std::io::BufWriter::new(f), p);
    s.hello(model)?;
    Ok(Some(s))
}

/// Classifies the frames of `source` until it ends; frames arriving while
/// the model is busy are dropped (one-slot mailbox). Sequence numbers start
/// after `seq0`. Returns (frames read, frames dropped).
fn run_frames<R: std::io::Read + Send + 'static>(
    model: &Model,
    spec: FrameSpec,
    roi: Option<Roi>,
    link: &mut Option<Link>,
    source: R,
    seq0: u64,
    started: Instant,
) -> Result<(u64, u64)> {
    let mailbox = std::sync::Arc::new(Latest::new());
    let producer = mailbox.clone();
    let reader = std::thread::spawn(move || -> edge::Result<u64> {
        let mut source = source;
        let mut n = 0u64;
        loop {
            let mut buf = Vec::new();
            match frame::read_frame(&mut source, &spec, &mut buf) {
                Ok(Some(())) => {
                    n += 1;
                    producer.put((seq0 + n, buf));
                }
                Ok(None) => break,
                Err(e) => {
                    producer.close();
                    return Err(e);
                }
            }
        }
        producer.close();
        Ok(n)
    });
    let mut out = std::io::stdout().lock();
    while let Some((seq, buf)) = mailbox.take() {
        let t = Instant::now();
        let r = spec
            .luma(&buf)
            .and_then(|img| preprocess::view_to_input(img, roi))
            .and_then(|x| Ok((x, model.classify(&x)?[0])));
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        match r {
            Ok((x, c)) => {
                writeln!(out, "{}", verdict_json(&format!("frame {seq}"), &c.verdict, ms))?;
                if let Some(l) = link.as_mut() {
                    l.verdict(seq as u32, &x, &c, (ms * 1000.0) as u32)?;
                    if seq % 30 == 0 {
                        l.stats(mailbox.dropped() as u32)?;
                        l.hello(model)?;
                    }
                }
            }
            // a bad frame is reported and the loop goes on
            Err(e) => {
                eprintln!("warning: frame {seq}: {e}");
                if let Some(l) = link.as_mut() {
                    l.heartbeat(started.elapsed().as_millis() as u32)?;
                }
            }
        }
        out.flush()?;
    }
    let frames = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the frame reader panicked"))?
        .context("reading frames")?;
    Ok((frames, mailbox.dropped()))
}

fn stream(m: ModelArgs, spec: FrameSpec, roi: Option<Roi>, wire: Option<PathBuf>) -> Result<()> {
    let model = load(m)?;
    let mut link = open_link(wire.as_deref(), &model)?;
    let (frames, dropped) = run_frames(&model, spec, roi, &mut link, std::io::stdin(), 0, Instant::now())?;
    eprintln!("{frames} frames read, {dropped} dropped (arrived while busy)");
    Ok(())
}

/// The default capture command: ffmpeg's V4L2 input, gray8 frames on stdout.
const CAPTURE: &str = "ffmpeg -hide_banner -loglevel error -f v4l2 -framerate {fps} -video_size {width}x{height} -i {device} -f rawvideo -pix_fmt gray -";

#[allow(clippy::too_many_arguments)]
fn camera(
    m: ModelArgs,
    device: PathBuf,
    width: u32,
    height: u32,
    fps: u32,
    roi: Option<Roi>,
    wire: Option<PathBuf>,
    capture: String,
    once: bool,
) -> Result<()> {
    let spec = FrameSpec::new(width, height, PixelFormat::Gray8)?;
    if capture.contains("{device}") && !device.exists() {
        bail!(
            "no camera at {}: is it plugged in? (`ls /dev/video*` lists the V4L2 devices; pass --device)",
            device.display()
        );
    }
    let model = load(m)?;
    let mut link = open_link(wire.as_deref(), &model)?;
    let cmd = capture
        .replace("{device}", &device.display().to_string())
        .replace("{width}", &width.to_string())
        .replace("{height}", &height.to_string())
        .replace("{fps}", &fps.to_string());
    let started = Instant::now();
    let mut seq = 0u64;
    loop {
        let mut child = std::process::Command::new("sh")
            .args(["-c", &cmd])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the capture command `{cmd}`"))?;
        let stdout = child.stdout.take().context("capture stdout")?;
        let r = run_frames(&model, spec, roi, &mut link, stdout, seq, started);
        let status = child.wait().context("waiting for the capture command")?;
        match r {
            Ok((frames, dropped)) => {
                seq += frames;
                eprintln!("camera: {frames} frames, {dropped} dropped; capture ended ({status})");
            }
            // a torn last frame (camera unplugged mid-frame) is not fatal
            Err(e) => eprintln!("warning: camera: {}", ood_data::error::one_line(e.as_ref())),
        }
        if status.code() == Some(127) {
            bail!("the capture command was not found (`{cmd}`): install ffmpeg (sudo apt install ffmpeg) or pass --capture");
        }
        if once {
            if !status.success() && seq == 0 {
                bail!("the capture command failed ({status}) before any frame: `{cmd}`");
            }
            return Ok(());
        }
        eprintln!("camera: restarting the capture in 1 s");
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// Median over 5 rounds of the mean time per call of `f`, in microseconds.
fn time_us(iters: u32, mut f: impl FnMut() -> edge::Result<()>) -> Result<f64> {
    for _ in 0..iters / 10 + 1 {
        f()?;
    }
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..iters.max(1) {
            f()?;
        }
        rounds.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(iters.max(1)));
    }
    rounds.sort_by(f64::total_cmp);
    Ok(rounds[2])
}

/// The 28x28 inputs of `dir/golden.json`; one blank image when it has none.
fn golden_inputs(dir: &std::path::Path) -> Vec<[u8; ood_core::IMG_PIXELS]> {
    let mut out: Vec<[u8; ood_core::IMG_PIXELS]> = edge::check::read_golden(dir)
        .map(|g| g.cases)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.pixels()?.try_into().ok())
        .collect();
    if out.is_empty() {
        out.push([0u8; ood_core::IMG_PIXELS]);
    }
    out
}

fn check(model: Option<PathBuf>, json: bool) -> Result<()> {
    let dir = model_dir(model);
    let checks = edge::check::check_dir(&dir)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        println!("file\tsame verdict\tmax logit diff (tolerance)");
        for c in &checks {
            println!(
                "{}\t{}/{}\t{:.2e} ({:.0e})",
                c.file, c.same_verdict, c.cases, c.max_logit_diff, c.tolerance
            );
            for d in &c.differences {
                println!("  {d}");
            }
        }
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.passed())
        .map(|c| c.file.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "{}: {} differ from the golden outputs recorded at export (see above): the files or this build do not compute what was exported",
            dir.display(),
            failed.join(", ")
        );
    }
    eprintln!(
        "{}: every golden case gives the exported verdict and logits ({} files, on {})",
        dir.display(),
        checks.len(),
        std::env::consts::ARCH
    );
    Ok(())
}

fn bench(m: ModelArgs, iters: u32) -> Result<()> {
    let dir = model_dir(m.model.clone());
    let base = load(m)?;
    // the golden file's inputs in turn (real digits and OOD images, as
    // scripts/check_onnx.py feeds onnxruntime), and a synthetic 640x480
    // camera frame (dark stroke on paper) for the frame-to-verdict time
    let inputs = golden_inputs(&dir);
    let mut turn = 0usize;
    let frame = image::GrayImage::from_fn(640, 480, |px, py| {
        let on = (300..340).contains(&px) && (120..360).contains(&py);
        image::Luma([if on { 30 } else { 220 }])
    });
    let mut per_file = serde_json::Map::new();
    for f in &base.manifest.models {
        let model = Model::load(&dir, Some(&f.file), None)?;
        let us = time_us(iters, || {
            turn = (turn + 1) % inputs.len();
            model.classify(&inputs[turn]).map(|_| ())
        })?;
        per_file.insert(f.file.clone(), us.into());
    }
    let frame_us = time_us(iters / 20 + 1, || {
        let input = preprocess::to_input(&frame, None)?;
        base.classify(&input).map(|_| ())
    })?;
    let out = serde_json::json!({
        "tract_us_per_image_batch1": per_file,
        "frame_640x480_to_verdict_us": frame_us,
        "frame_model": base.file.file,
        "threads": 1,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Classify {
            paths,
            model,
            roi,
            json,
        } => classify(&paths, model, roi, json),
        Cmd::Eval {
            model,
            data_dir,
            json,
        } => eval(model, data_dir, json),
        Cmd::Bench { model, iters } => bench(model, iters),
        Cmd::Check { model, json } => check(model, json),
        Cmd::Camera {
            model,
            device,
            width,
            height,
            fps,
            roi,
            wire,
            capture,
            once,
        } => camera(model, device, width, height, fps, roi, wire, capture, once),
        Cmd::Stream {
            model,
            width,
            height,
            format,
            roi,
            wire,
        } => stream(model, FrameSpec::new(width, height, format)?, roi, wire),
    }
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {}", ood_data::error::one_line(e.as_ref()));
        std::process::exit(1);
    }
}
