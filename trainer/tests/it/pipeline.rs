//! A whole training run on tiny synthetic data: every artifact is written,
//! the numbers are sane, and the same seed gives the same numbers.

use std::path::PathBuf;
use trainer::config::TrainConfig;
use trainer::data::fetch::Sources;
use trainer::model::{ClassifierConfig, Device};

/// A config small enough for tests: seconds per run.
pub fn tiny_config() -> TrainConfig {
    let mut c = TrainConfig {
        name: "tiny".into(),
        seed: 7,
        model: ClassifierConfig {
            conv1: 6,
            conv2: 12,
            hidden: 24,
            dropout: 0.1,
        },
        ..Default::default()
    };
    c.data.validation = 50;
    c.data.noise_count = 60;
    c.data.smooth_noise_count = 20;
    c.data.scribble_count = 20;
    c.data.turned_count = 10;
    c.data.scanned_count = 10;
    c.data.augment_shift = 0; // the classes are bars 2 px apart
    c.train.epochs = 6;
    c.train.batch_size = 32;
    c.eval.noise_sets = 40;
    c.eval.per_epoch = 30;
    c.eval.near_ood = 20;
    c.eval.counterfeit_steps = 5;
    c.inversion.epochs = 2;
    c.inversion.batch_size = 16;
    c.inversion.generator_steps = 5;
    c.inversion.samples_per_epoch = 30;
    c.inversion.garbage_cap = 40;
    c.inversion.mode_seeking = 50.0;
    c.inversion.restart_floor = 0.3;
    c.inversion.generator.hidden1 = 32;
    c.inversion.generator.hidden2 = 64;
    c
}

fn sources(dir: &std::path::Path) -> Sources {
    let mut s = Sources::new(Some(dir.to_path_buf())).offline();
    s.verify = false; // synthetic stand-ins for MNIST
    s.fashion_dirs.clear();
    s.cifar_dirs.clear();
    s
}

#[test]
fn tiny_run_writes_every_artifact_and_repeats_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    crate::fixtures::write_mnist(&tmp.path().join("mnist"), 600, 200);
    // an extra OOD set in SVHN's .mat format, and one as an IDX file
    let mat = tmp.path().join("svhn.mat");
    std::fs::write(
        &mat,
        trainer::data::svhn::write_svhn_like([32, 32, 3, 4], &[90; 32 * 32 * 3 * 4], &[1, 2, 3, 10], true),
    )
    .expect("write mat");
    let idx = tmp.path().join("ood-idx3-ubyte");
    std::fs::write(&idx, trainer::data::idx::encode(&[5, 28, 28], &[200; 5 * 784])).expect("write idx");
    let extra: Vec<(String, PathBuf)> = vec![("svhn".into(), mat), ("flat".into(), idx)];
    let cfg = tiny_config();
    let src = sources(tmp.path());

    let a =
        trainer::run::run(&cfg, &src, &tmp.path().join("run-a"), &extra, &Device::Cpu, false).expect("run a");
    for f in [
        "config.toml",
        "classifier.safetensors",
        "checkpoint.safetensors",
        "progress.json",
        "report.json",
        "report.md",
        "eval.json",
        "run.json",
        "curves.png",
        "roc.png",
        "hist_uncertainty.png",
        "hist_garbage_prob.png",
        "samples_epoch001.png",
        "samples_epoch002.png",
    ] {
        assert!(a.dir.join(f).is_file(), "{f} missing");
    }
    assert_eq!(a.epochs.len(), 8, "6 pre-training + 2 inversion epochs");
    let inv: Vec<_> = a.epochs.iter().filter_map(|e| e.inversion.as_ref()).collect();
    assert_eq!(inv.len(), 2);
    assert_eq!(inv[0].garbage_size, 30);
    assert_eq!(inv[1].garbage_size, 40, "reservoir capped at garbage_cap");
    assert!(inv.iter().all(|i| (0.0..=1.0).contains(&i.new_samples_mean_u)));
    assert!(a.before.is_some());
    for i in &inv {
        let d = i.diversity.as_ref().expect("diversity measured every epoch");
        assert_eq!((d.generated_pixel.len(), d.real_pixel.len()), (10, 10));
        assert!(d.real_pixel.iter().all(|&v| v > 0.0), "real digits vary: {d:?}");
    }
    let md = std::fs::read_to_string(a.dir.join("report.md")).expect("report");
    assert!(
        md.contains("before inversion")
            && md.contains("avg U of inverted")
            && md.contains("Diversity of the generated samples")
            && md.contains("Deployed decision"),
        "{md}"
    );
    let report: trainer::report::Report =
        serde_json::from_str(&std::fs::read_to_string(a.dir.join("report.json")).expect("json"))
            .expect("report json");
    let d = report.deployed.expect("deployed decision measured");
    let fams: Vec<&str> = d.near_ood.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        fams,
        [
            "val-stitched",
            "val-overlaid",
            "val-fragments",
            "val-strokes",
            "val-symbols"
        ]
    );
    assert!(d.near_ood.iter().all(|s| s.n == 20));
    // the same families as the device sees them, in the same order
    let dev: Vec<String> = d.near_ood_device.iter().map(|s| s.name.clone()).collect();
    let want: Vec<String> = fams.iter().map(|f| f.replace("val-", "device-")).collect();
    assert_eq!(dev, want);
    assert!(d.near_ood_device.iter().all(|s| s.n == 20));
    assert!(d.near_ood_device_rejected().is_some());
    assert!(md.contains("| device-symbols | 20 |"), "{md}");
    // digit sets scored as accepted-as-the-right-digit: measured, named, sized, in report.md
    for (set, name, n, phrase) in [
        // the other side: the validation digits as a scan delivers them
        (
            &d.val_scanned,
            "device-digits",
            50,
            "as a 105x105 scan delivers them",
        ),
        // and the other side of the symbols: digits drawn by the same pen
        (
            &d.pen_digits,
            "val-pen-digits",
            20,
            "drawn by the same pen and hand",
        ),
        // and the camera's side: validation digits photographed (eval.near_ood of them)
        (
            &d.val_photographed,
            "device-photos",
            20,
            "validation digits photographed as dark ink",
        ),
    ] {
        let v = set.as_ref().unwrap_or_else(|| panic!("{name} measured"));
        assert_eq!((v.name.as_str(), v.n), (name, n));
        assert!(v.accepted_correct <= v.accepted, "{name}");
        assert!(md.contains(phrase), "{name}: {md}");
    }
    let c = d.counterfeits.expect("counterfeit check on");
    assert_eq!(c.n, 30, "one epoch's worth of samples");
    assert!((0.0..=1.0).contains(&c.accepted));
    // the threshold keeps 99% of the validation digits
    assert!(d.mnist.accepted > 0.8, "{:?}", d.mnist);
    // bars at distinct columns are easy: the tiny net must learn them
    assert!(a.eval.id.accuracy > 0.8, "accuracy {}", a.eval.id.accuracy);
    let names: Vec<&str> = a.eval.ood.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["uniform-noise", "gaussian-noise", "svhn", "flat"]);
    assert_eq!(
        a.info.skipped_sets.len(),
        2,
        "fashion-mnist and cifar10 are absent here"
    );
    // the absent headline sets read "not evaluated" where their numbers
    // would be, and the report says how to get each
    for name in ["fashion-mnist", "cifar10"] {
        assert!(
            md.contains(&format!("| {name} | not evaluated |"))
                && md.contains(&format!("| {name} | - | not evaluated |")),
            "{name}: {md}"
        );
    }
    assert!(md.contains("apt-get install dataset-fashion-mnist"), "{md}");
    // noise, smooth, scribbles, turned digits, generated (capped)
    assert_eq!(
        a.info.train_class_counts[ood_core::GARBAGE],
        60 + 20 + 20 + 10 + 40
    );
    // 600 training images less 50 validation digits, plus 10 scanned digits
    let digits: usize = a.info.train_class_counts[..ood_core::GARBAGE].iter().sum();
    assert_eq!(digits, 600 - 50 + 10);
    let weights = std::fs::read(a.dir.join("classifier.safetensors")).expect("weights");
    assert_eq!(a.info.weights_sha256, trainer::data::fetch::sha256_hex(&weights));
    let cfg_back = TrainConfig::from_toml(
        &std::fs::read_to_string(a.dir.join("config.toml")).expect("cfg"),
        "run config",
    )
    .expect("parse run config");
    assert_eq!(cfg_back, cfg);

    // same seed, same CPU -> same numbers
    let b =
        trainer::run::run(&cfg, &src, &tmp.path().join("run-b"), &extra, &Device::Cpu, false).expect("run b");
    assert_eq!(a.eval, b.eval);
    assert_eq!(
        weights,
        std::fs::read(b.dir.join("classifier.safetensors")).expect("weights b")
    );
}

/// Agreement of candle and tract f32 logits. Both compute the same f32 sums
/// in a different order (im2col matmul vs tract's conv kernels) over at most
/// 512 products of values below ~10: differences are ~1e-5; 1e-3 leaves a
/// wide margin while still catching any layout error (those are O(1)).
const F32_PARITY_TOL: f32 = 1e-3;

#[test]
fn a_stroke_generator_run_inverts_with_pen_drawings_and_repeats_exactly() {
    use trainer::model::generator::GeneratorKind;
    let tmp = tempfile::tempdir().expect("tmp");
    crate::fixtures::write_mnist(&tmp.path().join("mnist"), 600, 200);
    let mut cfg = tiny_config();
    cfg.inversion.generator.kind = GeneratorKind::Strokes;
    cfg.inversion.ink = 100.0;
    cfg.data.scribble_count = 0;
    // twice the samples drawn, the most trusted half kept
    let kept = cfg.inversion.samples_per_epoch;
    cfg.inversion.candidates = 2 * kept;
    let src = sources(tmp.path());
    let a = trainer::run::run(&cfg, &src, &tmp.path().join("a"), &[], &Device::Cpu, false).expect("run");
    let inv: Vec<_> = a.epochs.iter().filter_map(|e| e.inversion.as_ref()).collect();
    assert_eq!(inv.len(), 2);
    assert!(
        inv.iter().all(|i| i.loss.total.is_finite() && i.loss.ink >= 0.0),
        "{inv:?}"
    );
    assert_eq!(
        inv.iter().map(|i| i.garbage_size).collect::<Vec<_>>(),
        vec![kept, (2 * kept).min(cfg.inversion.garbage_cap)],
        "only the kept samples join the garbage"
    );
    assert!(inv.iter().all(|i| i.candidates_to_garbage.is_some()), "{inv:?}");
    let md = std::fs::read_to_string(a.dir.join("report.md")).expect("report");
    assert!(
        md.contains("(all drawn: "),
        "the share among all drawn is reported"
    );
    let written = std::fs::read_to_string(a.dir.join("config.toml")).expect("config");
    assert!(written.contains("kind = \"strokes\""), "{written}");
    assert!(
        written.contains(&format!("candidates = {}", 2 * kept)),
        "{written}"
    );
    let d = inv[1].diversity.as_ref().expect("diversity");
    // 30 samples over 10 digits: a digit drawn once has no pairs to compare
    let varied = d.generated_pixel.iter().filter(|&&v| v > 0.0).count();
    assert!(varied >= 5, "drawings of a digit differ: {d:?}");
    // a second run of the same config writes the same weights
    let b = trainer::run::run(&cfg, &src, &tmp.path().join("b"), &[], &Device::Cpu, false).expect("run b");
    let w = |dir: &std::path::Path| std::fs::read(dir.join("classifier.safetensors")).expect("weights");
    assert_eq!(w(&a.dir), w(&b.dir), "same seed, same bytes");
}

#[test]
fn a_run_can_ship_the_mean_of_its_last_epochs_weights() {
    let tmp = tempfile::tempdir().expect("tmp");
    crate::fixtures::write_mnist(&tmp.path().join("mnist"), 600, 200);
    let src = sources(tmp.path());
    let run = |cfg: &TrainConfig, name: &str| {
        trainer::run::run(cfg, &src, &tmp.path().join(name), &[], &Device::Cpu, false).expect(name)
    };
    let w = |dir: &std::path::Path| std::fs::read(dir.join("classifier.safetensors")).expect("weights");
    let report = |dir: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).expect("report"))
            .expect("json")
    };
    let mut cfg = tiny_config();
    let last = run(&cfg, "last");
    assert!(
        report(&last.dir).get("averaged").is_none(),
        "off: not in the report"
    );
    // the mean of one epoch is that epoch's weights, bit for bit
    cfg.train.average_epochs = 1;
    let one = run(&cfg, "one");
    assert_eq!(w(&one.dir), w(&last.dir));
    // over the last three epochs (the first inversion epoch's and the two before)
    cfg.train.average_epochs = 3;
    let three = run(&cfg, "three");
    assert_ne!(
        w(&three.dir),
        w(&last.dir),
        "a mean of three epochs is not the last"
    );
    let r = report(&three.dir);
    assert_eq!(r["averaged"]["epochs"], 3);
    let acc = r["averaged"]["val_accuracy"].as_f64().expect("accuracy");
    assert!((0.5..=1.0).contains(&acc), "{acc}");
    let md = std::fs::read_to_string(three.dir.join("report.md")).expect("report.md");
    assert!(
        md.contains("mean of the weights at the end of the last 3 epochs"),
        "{md}"
    );
    let selection = r["selection"].as_str().expect("selection");
    assert!(selection.contains("`train.average_epochs = 3`"), "{selection}");
    let before = report(&last.dir);
    let plain = before["selection"].as_str().expect("selection");
    assert!(
        !plain.contains("average_epochs"),
        "off: the selection text as before"
    );
    let written = std::fs::read_to_string(three.dir.join("config.toml")).expect("config");
    assert!(written.contains("average_epochs = 3"), "{written}");
}

#[test]
fn digits_and_turned_digits_redrawn_with_other_pens_join_their_sides() {
    use trainer::run::data::TrainingData;
    let tmp = tempfile::tempdir().expect("tmp");
    crate::fixtures::write_mnist(&tmp.path().join("mnist"), 600, 200);
    let src = sources(tmp.path());
    let plain_cfg = tiny_config();
    let mut pens_cfg = tiny_config();
    pens_cfg.data.pen_count = 12;
    let plain = TrainingData::load(&plain_cfg, &src, &[]).expect("plain data");
    let pens = TrainingData::load(&pens_cfg, &src, &[]).expect("pens data");
    // their own stream: every other set is the same
    assert_eq!(pens.digits, plain.digits);
    assert_eq!(pens.val, plain.val);
    assert_eq!(
        (&pens.noise, &pens.smooth, &pens.scribbles),
        (&plain.noise, &plain.smooth, &plain.scribbles)
    );
    assert_eq!(pens.near_ood, plain.near_ood);
    // `with` is `plain` and then 12 redrawn images labelled as `labels` asks
    let appended = |plain: &trainer::data::Dataset, with: &trainer::data::Dataset, labels: fn(u8) -> bool| {
        let n = plain.len();
        assert_eq!(with.len(), n + 12, "{}", with.name);
        assert_eq!(&with.images[..n * ood_core::IMG_PIXELS], &plain.images[..]);
        assert!(with.labels[n..].iter().all(|&l| labels(l)), "{}", with.name);
    };
    let garbage = |l: u8| usize::from(l) == ood_core::GARBAGE;
    // redrawn digits after the scanned ones, as digits; redrawn turned digits
    // after the turned ones, as garbage
    appended(&plain.scanned, &pens.scanned, |l| l < 10);
    appended(&plain.turned, &pens.turned, garbage);
    // with pen_scribbles, as many redrawn scribbles after the scribbles
    let mut both_cfg = pens_cfg.clone();
    both_cfg.data.pen_scribbles = true;
    let both = TrainingData::load(&both_cfg, &src, &[]).expect("pens and scribbles");
    assert_eq!((&both.scanned, &both.turned), (&pens.scanned, &pens.turned));
    appended(&plain.scribbles, &both.scribbles, garbage);
    // and a run trains on them and writes the key
    let a = trainer::run::run(
        &pens_cfg,
        &src,
        &tmp.path().join("pens"),
        &[],
        &Device::Cpu,
        false,
    )
    .expect("run");
    let written = std::fs::read_to_string(a.dir.join("config.toml")).expect("config");
    assert!(written.contains("pen_count = 12"), "{written}");
    assert!(a.epochs.iter().all(|e| e.classifier.loss.is_finite()));
}

#[test]
fn generator_runs_on_training_digits_of_other_classes() {
    use trainer::model::generator::GeneratorKind;
    let tmp = tempfile::tempdir().expect("tmp");
    crate::fixtures::write_mnist(&tmp.path().join("mnist"), 600, 200);
    let src = sources(tmp.path());
    // bent digits (a candle graph), and pen drawings over digits (the CPU
    // path), their ink counted whole or over the page only, their batch
    // terms over the whole batch or per kind of row, by one generator or a
    // pair (one over digits, one with the pen alone)
    for (i, (kind, name, key)) in [
        (GeneratorKind::Warp, "warp", "warp_shift = 2.0"),
        (GeneratorKind::StrokesOverDigits, "strokes-over-digits", ""),
        (
            GeneratorKind::StrokesOverDigits,
            "strokes-over-digits",
            "added_ink_only = true",
        ),
        (
            GeneratorKind::StrokesOverDigits,
            "strokes-over-digits",
            "batch_terms_per_kind = true",
        ),
        (
            GeneratorKind::StrokesOverDigits,
            "strokes-over-digits",
            "two_generators = true",
        ),
        (
            GeneratorKind::StrokesOverDigits,
            "strokes-over-digits",
            "turned_pages = true",
        ),
        (
            GeneratorKind::StrokesOverDigits,
            "strokes-over-digits",
            "half_pages = true",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut cfg = tiny_config();
        cfg.inversion.generator.kind = kind;
        cfg.inversion.generator.warp_shift = if key.starts_with("warp") { 2.0 } else { 3.0 };
        cfg.inversion.generator.added_ink_only = key.starts_with("added");
        cfg.inversion.generator.batch_terms_per_kind = key.starts_with("batch");
        cfg.inversion.generator.two_generators = key.starts_with("two");
        cfg.inversion.generator.turned_pages = key.starts_with("turned");
        cfg.inversion.generator.half_pages = key.starts_with("half");
        let dir = tmp.path().join(format!("{name}-{i}"));
        let a = trainer::run::run(&cfg, &src, &dir, &[], &Device::Cpu, false).expect("run");
        let inv: Vec<_> = a.epochs.iter().filter_map(|e| e.inversion.as_ref()).collect();
        assert_eq!(inv.len(), 2, "{name}");
        assert!(inv.iter().all(|i| i.loss.total.is_finite()), "{name}: {inv:?}");
        let written = std::fs::read_to_string(a.dir.join("config.toml")).expect("config");
        assert!(
            written.contains(&format!("kind = \"{name}\"")) && written.contains(key),
            "{written}"
        );
        // the defaults are not written
        assert_eq!(
            written.contains("warp_shift"),
            key.starts_with("warp"),
            "{written}"
        );
        assert_eq!(
            written.contains("added_ink_only"),
            key.starts_with("added"),
            "{written}"
        );
        assert_eq!(
            written.contains("batch_terms_per_kind"),
            key.starts_with("batch"),
            "{written}"
        );
        assert_eq!(
            written.contains("two_generators"),
            key.starts_with("two"),
            "{written}"
        );
        assert_eq!(
            written.contains("turned_pages"),
            key.starts_with("turned"),
            "{written}"
        );
        assert_eq!(
            written.contains("half_pages"),
            key.starts_with("half"),
            "{written}"
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(a.dir.join("report.json")).expect("report"))
                .expect("json");
        assert!(
            report["deployed"]["counterfeits"]["accepted"].is_number(),
            "{name}: the counterfeit check ran a fresh generator"
        );
        // different latents and source digits: a digit's samples differ
        let d = inv[1].diversity.as_ref().expect("diversity");
        assert!(d.generated_pixel.iter().any(|&v| v > 0.0), "{name}: {d:?}");
    }
    // pages of turned digits need turned digits
    let mut cfg = tiny_config();
    cfg.inversion.generator.kind = GeneratorKind::StrokesOverDigits;
    cfg.inversion.generator.turned_pages = true;
    cfg.data.turned_count = 0;
    let err = trainer::run::run(
        &cfg,
        &src,
        &tmp.path().join("no-turned"),
        &[],
        &Device::Cpu,
        false,
    )
    .expect_err("no turned digits to draw over");
    assert!(err.to_string().contains("turned_count"), "{err}");
}

#[test]
fn export_writes_verified_onnx_files_that_match_candle() {
    let tmp = tempfile::tempdir().expect("tmp");
    crate::fixtures::write_mnist(&tmp.path().join("mnist"), 600, 200);
    let mut cfg = tiny_config();
    cfg.inversion.epochs = 0;
    cfg.train.epochs = 3;
    let src = sources(tmp.path());
    let run = trainer::run::run(&cfg, &src, &tmp.path().join("run"), &[], &Device::Cpu, false).expect("run");
    let summary = trainer::package::export(&run.dir, &src, &Device::Cpu).expect("export");
    let m = &summary.manifest;
    assert_eq!(m.version, ood_core::manifest::MANIFEST_VERSION);
    assert_eq!(m.default_model, trainer::package::INT8_FILE);
    // f32 runs on x86-64 (measured), the int8 default elsewhere
    assert_eq!(m.file_for("x86_64"), trainer::package::F32_FILE);
    assert_eq!(m.file_for("aarch64"), trainer::package::INT8_FILE);
    for f in &m.models {
        // each file calibrated on its own logits
        assert_eq!(f.thresholds.len(), 2, "{}", f.file);
        assert!(m.decision.policy(f, Some(0.95)).is_some() && m.decision.policy(f, None).is_some());
        let bytes = std::fs::read(run.dir.join(&f.file)).expect("onnx");
        assert_eq!(edge::model::sha256_hex(&bytes), f.sha256);
        assert_eq!(bytes.len() as u64, f.bytes);
    }
    let int8 = m.model(trainer::package::INT8_FILE).expect("int8 entry").bytes;
    let f32 = m.model(trainer::package::F32_FILE).expect("f32 entry").bytes;
    // tiny net: names and scales weigh more than in the real one (~3.8x smaller)
    assert!(int8 * 2 < f32, "int8 {int8} bytes vs f32 {f32}");
    // the edge loads both (sha256 and shapes checked) and agrees with candle
    let golden: trainer::package::Golden =
        serde_json::from_str(&std::fs::read_to_string(run.dir.join("golden.json")).expect("golden"))
            .expect("golden json");
    assert!(golden.cases.len() >= 10);
    let f32_model =
        edge::model::Model::load(&run.dir, Some(trainer::package::F32_FILE), None).expect("load f32");
    let int8_model =
        edge::model::Model::load(&run.dir, Some(trainer::package::INT8_FILE), None).expect("load int8");
    let integer_model = edge::model::Model::load(&run.dir, Some(trainer::package::INT8_INTEGER_FILE), None)
        .expect("load integer");
    let qlinear_model = edge::model::Model::load(&run.dir, Some(trainer::package::INT8_QLINEAR_FILE), None)
        .expect("load qlinear");
    for case in &golden.cases {
        let px = case.pixels().expect("pixels");
        let z = f32_model.classify(&px).expect("classify")[0].logits;
        for (a, b) in z.iter().zip(&case.candle_logits) {
            assert!(
                (a - b).abs() < F32_PARITY_TOL,
                "{}: tract {a} vs candle {b}",
                case.source
            );
        }
        let q = int8_model.classify(&px).expect("classify int8")[0];
        // the forms with quantised activations: their own tract logits,
        // recorded next to the QDQ file's (which quantises weights only)
        for (file, model) in [
            (trainer::package::INT8_INTEGER_FILE, &integer_model),
            (trainer::package::INT8_QLINEAR_FILE, &qlinear_model),
        ] {
            let z = model.classify(&px).expect("classify")[0].logits;
            assert_eq!(
                Some(&z.to_vec()),
                case.other_logits.get(file),
                "{file}: {}",
                case.source
            );
        }
        assert_eq!(q.logits.to_vec(), case.int8_logits, "{}", case.source);
        assert_eq!(q.verdict, case.int8_verdict);
        let f = f32_model.classify(&px).expect("classify")[0];
        assert_eq!(f.verdict, case.f32_verdict, "{}", case.source);
    }
    // a tampered model file is refused by the edge with the file named
    let int8_path = run.dir.join(trainer::package::INT8_FILE);
    let mut bytes = std::fs::read(&int8_path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&int8_path, bytes).expect("write");
    let err =
        edge::model::Model::load(&run.dir, Some(trainer::package::INT8_FILE), None).expect_err("tampered");
    assert!(
        err.to_string().contains("sha256") && err.to_string().contains("classifier.int8.onnx"),
        "{err}"
    );
}

#[test]
fn export_with_a_shift_average_answers_as_the_trainer_decides() {
    let tmp = tempfile::tempdir().expect("tmp");
    crate::fixtures::write_mnist(&tmp.path().join("mnist"), 600, 200);
    let mut cfg = tiny_config();
    cfg.inversion.epochs = 0;
    cfg.train.epochs = 2;
    let src = sources(tmp.path());
    let plain =
        trainer::run::run(&cfg, &src, &tmp.path().join("plain"), &[], &Device::Cpu, false).expect("run");
    // the same weights, exported with the decision averaged over shifts
    let shifted = tmp.path().join("shifted");
    std::fs::create_dir(&shifted).expect("dir");
    for f in ["config.toml", "classifier.safetensors"] {
        std::fs::copy(plain.dir.join(f), shifted.join(f)).expect("copy");
    }
    let mut with_shift = cfg.clone();
    with_shift.calibration.shift_average = 2;
    std::fs::write(shifted.join("config.toml"), with_shift.to_toml()).expect("config");
    trainer::package::export(&plain.dir, &src, &Device::Cpu).expect("export plain");
    let summary = trainer::package::export(&shifted, &src, &Device::Cpu).expect("export shifted");
    assert!(
        summary
            .manifest
            .decision
            .calibration
            .contains("four shifts by 2 pixels"),
        "{}",
        summary.manifest.decision.calibration
    );
    let golden = |dir: &std::path::Path| -> trainer::package::Golden {
        serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).expect("golden"))
            .expect("json")
    };
    let (g0, g2) = (golden(&plain.dir), golden(&shifted));
    let model = edge::model::Model::load(&shifted, Some(trainer::package::F32_FILE), None).expect("load f32");
    let mut differs = 0;
    for (c0, c2) in g0.cases.iter().zip(&g2.cases) {
        assert_eq!(c0.source, c2.source);
        // the trainer's shifted decision (candle) and the shifted graph (tract) agree
        let z = model.classify(&c2.pixels().expect("pixels")).expect("classify")[0].logits;
        for (a, b) in z.iter().zip(&c2.candle_logits) {
            assert!(
                (a - b).abs() < F32_PARITY_TOL,
                "{}: tract {a} vs candle {b}",
                c2.source
            );
        }
        if c0
            .candle_logits
            .iter()
            .zip(&c2.candle_logits)
            .any(|(a, b)| (a - b).abs() > 1e-3)
        {
            differs += 1;
        }
    }
    assert!(
        differs > g0.cases.len() / 2,
        "the averaging changes most answers: {differs}"
    );
}
