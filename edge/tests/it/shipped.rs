//! The shipped model (`models/default`) against its golden file and its
//! manifest's measured numbers.

use crate::support::shipped_dir;
use edge::model::Model;
use ood_core::Verdict;

/// The int8 (QDQ) file: the default on architectures without a measured choice.
const INT8: &str = "classifier.int8.onnx";
/// The f32 file: what the manifest names for x86-64.
const F32: &str = "classifier.onnx";

use edge::check::{read_golden, F32_TOLERANCE as F32_TOL, INT8_TOLERANCE as INT8_TOL};
use ood_core::golden::Golden;

fn golden() -> Golden {
    read_golden(&shipped_dir()).expect("models/default/golden.json")
}

#[test]
fn shipped_models_reproduce_the_golden_outputs() {
    let f32_model = Model::load(&shipped_dir(), Some(F32), None).expect("load f32");
    let int8_model = Model::load(&shipped_dir(), Some(INT8), None).expect("load int8");
    assert_eq!(int8_model.file.precision, "int8");
    let g = golden();
    assert!(g.cases.len() >= 10);
    for c in &g.cases {
        let px = c.pixels().expect("golden pixels");
        assert_eq!(px.len(), 784, "{}", c.source);
        // the exporter's parity: candle (training) vs tract f32, recorded at export
        for (a, b) in c.candle_logits.iter().zip(&c.f32_logits) {
            assert!((a - b).abs() < F32_TOL, "{}: candle {a} vs tract {b}", c.source);
        }
        let f = f32_model.classify(&px).expect("f32")[0];
        for (a, b) in f.logits.iter().zip(&c.f32_logits) {
            assert!((a - b).abs() < F32_TOL, "{}: f32 {a} vs golden {b}", c.source);
        }
        assert_eq!(
            std::mem::discriminant(&f.verdict),
            std::mem::discriminant(&c.f32_verdict),
            "{}",
            c.source
        );
        let q = int8_model.classify(&px).expect("int8")[0];
        for (a, b) in q.logits.iter().zip(&c.int8_logits) {
            assert!((a - b).abs() < INT8_TOL, "{}: int8 {a} vs golden {b}", c.source);
        }
        assert_eq!(
            std::mem::discriminant(&q.verdict),
            std::mem::discriminant(&c.int8_verdict),
            "{}",
            c.source
        );
    }
}

/// The runtime's two plans (one image, with its state reused; a free
/// batch) give the same logits and verdicts, and a reused state carries
/// nothing from one call to the next.
#[test]
fn one_image_and_batch_plans_agree_and_calls_are_independent() {
    let g = golden();
    let all: Vec<u8> = g
        .cases
        .iter()
        .flat_map(|c| c.pixels().expect("golden pixels"))
        .collect();
    for (file, tol) in [(F32, F32_TOL), (INT8, INT8_TOL)] {
        let m = Model::load(&shipped_dir(), Some(file), None).expect("load");
        let batch = m.classify(&all).expect("batch");
        assert_eq!(batch.len(), g.cases.len());
        for (c, b) in g.cases.iter().zip(&batch) {
            let px = c.pixels().expect("golden pixels");
            let one = m.classify(&px).expect("one")[0];
            for (a, z) in one.logits.iter().zip(&b.logits) {
                assert!((a - z).abs() < tol, "{file} {}: one {a} vs batch {z}", c.source);
            }
            assert_eq!(
                std::mem::discriminant(&one.verdict),
                std::mem::discriminant(&b.verdict),
                "{file} {}",
                c.source
            );
            // the same image again, after another one ran on the same state
            assert_eq!(m.classify(&px).expect("again")[0], one, "{file} {}", c.source);
        }
        // a clone has its own state and the same answers
        let twin = m.clone();
        let px = g.cases[0].pixels().expect("golden pixels");
        assert_eq!(
            twin.classify(&px).expect("twin"),
            m.classify(&px).expect("original")
        );
    }
}

#[test]
fn the_file_that_runs_by_default_follows_the_architecture() {
    let m = Model::load(&shipped_dir(), None, None).expect("load");
    assert_eq!(m.file.file, m.manifest.file_for(std::env::consts::ARCH));
    // measured: f32 on x86-64 (tract runs QDQ as f32 plus (de)quantize
    // steps), the int8 default where nothing was measured
    assert_eq!(m.manifest.file_for("x86_64"), F32);
    assert_eq!(m.manifest.file_for("aarch64"), INT8);
    assert_eq!(m.manifest.default_model, INT8);
    // each file has its own thresholds, and the one that runs decides with its own
    let want = m.manifest.decision.policy(&m.file, None).expect("threshold");
    assert_eq!(m.policy, want);
}

#[test]
fn shipped_int8_model_is_small_and_agrees_with_f32_per_its_manifest() {
    let m = Model::load(&shipped_dir(), Some(INT8), None).expect("load");
    assert!(m.file.bytes <= 100 * 1024, "int8 file {} bytes", m.file.bytes);
    let metrics = m
        .manifest
        .metrics
        .iter()
        .find(|x| x.file == m.file.file)
        .expect("int8 metrics");
    assert!(
        metrics.verdict_agreement_with_f32 >= 0.995,
        "{}",
        metrics.verdict_agreement_with_f32
    );
    assert!(metrics.mnist_accuracy >= 0.99, "{}", metrics.mnist_accuracy);
}

/// Real data: MNIST test and Fashion-MNIST test must be present (setup.sh).
#[test]
#[ignore = "needs the real MNIST and Fashion-MNIST test sets (scripts/setup.sh); CI runs it"]
fn int8_agrees_with_f32_on_real_test_sets_and_matches_the_manifest() {
    let src = ood_data::fetch::Sources::new(Some(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data"),
    ))
    .offline();
    let (_, mnist) = src.mnist().expect("MNIST (run scripts/setup.sh)");
    let fashion = src.fashion_test().expect("Fashion-MNIST (run scripts/setup.sh)");
    let f32_model = Model::load(&shipped_dir(), Some(F32), None).expect("f32");
    let int8_model = Model::load(&shipped_dir(), Some(INT8), None).expect("int8");
    let bar = indicatif::ProgressBar::hidden();
    for set in [&mnist, &fashion] {
        let one = std::slice::from_ref(set);
        let id = if set.name == mnist.name { set } else { &mnist };
        let ood: &[ood_data::Dataset] = if set.name == mnist.name { &[] } else { one };
        let a = edge::report::evaluate(&f32_model, id, ood, &bar).expect("f32 eval");
        let b = edge::report::evaluate(&int8_model, id, ood, &bar).expect("int8 eval");
        let agreement = b.agreement(&a);
        assert!(
            agreement >= 0.995,
            "{}: int8 vs f32 verdict agreement {agreement}",
            set.name
        );
        // the manifest's numbers are what the edge measures
        let recorded = int8_model
            .manifest
            .metrics
            .iter()
            .find(|x| x.file == int8_model.file.file)
            .expect("metrics");
        assert!((recorded.mnist_accuracy - b.evaluation.id.accuracy).abs() < 1e-9);
    }
}

/// MNIST test digit `i` as a camera might see it: dark ink on light paper,
/// enlarged 8x with bilinear smoothing, off-centre on a 640x480 page with a
/// lighting gradient and sensor noise.
fn photo_of(digit: &[u8], i: usize) -> image::GrayImage {
    let small = image::GrayImage::from_raw(28, 28, digit.to_vec()).expect("28x28");
    let big = image::imageops::resize(&small, 224, 224, image::imageops::FilterType::Triangle);
    let (ox, oy) = (120 + (i * 37) % 280, 60 + (i * 53) % 180);
    let mut noise = (i as u32).wrapping_mul(2_654_435_761) | 1;
    image::GrayImage::from_fn(640, 480, |x, y| {
        noise ^= noise << 13;
        noise ^= noise >> 17;
        noise ^= noise << 5;
        let paper = 200.0 + 40.0 * x as f32 / 640.0 - 20.0 * y as f32 / 480.0 + (noise % 13) as f32 - 6.0;
        let ink = if (ox..ox + 224).contains(&(x as usize)) && (oy..oy + 224).contains(&(y as usize)) {
            f32::from(big.get_pixel(x - ox as u32, y - oy as u32)[0]) / 255.0
        } else {
            0.0
        };
        image::Luma([(paper * (1.0 - 0.85 * ink)).clamp(0.0, 255.0) as u8])
    })
}

/// The real MNIST test set (installed by `scripts/setup.sh`) and the shipped int8 model.
fn mnist_test_and_shipped_int8() -> (ood_data::Dataset, Model) {
    let src = ood_data::fetch::Sources::new(Some(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data"),
    ))
    .offline();
    let (_, mnist) = src.mnist().expect("MNIST (run scripts/setup.sh)");
    (
        mnist,
        Model::load(&shipped_dir(), Some(INT8), None).expect("int8"),
    )
}

/// The camera path (MNIST-style preprocessing of a 640x480 photo) on real
/// MNIST test digits: they must still be read as the right digit.
#[test]
#[ignore = "needs the real MNIST test set (scripts/setup.sh); CI runs it"]
fn photographed_mnist_digits_survive_the_camera_preprocessing() {
    let (mnist, model) = mnist_test_and_shipped_int8();
    let n = 2000;
    let mut correct = 0;
    for i in 0..n {
        let x = edge::preprocess::to_input(&photo_of(mnist.image(i), i), None).expect("preprocess");
        if let Verdict::Accept { digit, .. } = model.classify(&x).expect("classify")[0].verdict {
            correct += usize::from(digit == mnist.labels[i]);
        }
    }
    let share = correct as f64 / n as f64;
    eprintln!("photographed MNIST digits accepted as the right digit: {share:.4}");
    // the dataset path accepts about 98.5% correctly; the photo path adds
    // resampling twice and is further from the training data, so models
    // differ more on it: over these 2,000 photos the v7 default accepted
    // 95.85% and v8 (the same training, sums in another order) 93.75%.
    // The bar guards the preprocessing (a broken step drops far lower), not
    // one training's luck; the README tracks the number.
    assert!(share >= 0.92, "{share}");
}

/// A 28x28 image as a scan delivers it: dark ink on white, 105x105.
fn scan_of(img: &[u8]) -> image::GrayImage {
    let inv: Vec<u8> = img.iter().map(|&v| 255 - v).collect();
    let small = image::GrayImage::from_raw(28, 28, inv).expect("28x28");
    image::imageops::resize(&small, 105, 105, image::imageops::FilterType::Triangle)
}

/// The device's own path (the preprocessing `edge classify` runs on a
/// file) on dark-on-light 105x105 scans: MNIST test digits must be accepted
/// as the right digit, and the synthetic non-digit symbols and pen strokes of
/// the trainer's near-OOD validation (`ood_data::nearood`, drawn here from
/// the MNIST test digits' own seed) measured for rejection. The numbers go to
/// the README; the bars guard the preprocessing.
#[test]
#[ignore = "needs the real MNIST test set (scripts/setup.sh); CI runs it"]
fn scanned_digits_are_accepted_and_scanned_symbols_measured() {
    use rand::SeedableRng;
    let (mnist, model) = mnist_test_and_shipped_int8();
    let verdict = |img: &[u8]| {
        let x = edge::preprocess::to_input(&scan_of(img), None).expect("preprocess");
        model.classify(&x).expect("classify")[0].verdict
    };
    let n = 2000;
    let correct = (0..n)
        .filter(
            |&i| matches!(verdict(mnist.image(i)), Verdict::Accept { digit, .. } if digit == mnist.labels[i]),
        )
        .count();
    let digits = correct as f64 / n as f64;
    let sets =
        ood_data::nearood::near_ood_sets("scan", &mnist, 500, &mut rand::rngs::StdRng::seed_from_u64(13));
    let mut rejected = Vec::new();
    for set in &sets {
        let r = (0..set.len())
            .filter(|&i| !verdict(set.image(i)).is_accept())
            .count();
        rejected.push((set.name.clone(), r as f64 / set.len() as f64));
    }
    eprintln!("scanned MNIST digits accepted as the right digit: {digits:.4}; rejected: {rejected:?}");
    assert!(digits >= 0.9, "{digits}");
    // pen-drawn symbols are far from digits for any sane model; a broken
    // preprocessing (inverted polarity, lost ink) accepts or rejects all
    let symbols = rejected
        .iter()
        .find(|r| r.0 == "scan-symbols")
        .map_or(0.0, |r| r.1);
    assert!(symbols > 0.3, "{rejected:?}");
}

/// The pen's width on the device's path: the trainer's pen-drawn digits and
/// non-digit symbols (`ood_data::nearood`) drawn on 105x105 white pages,
/// enlarged as [`scan_of`] enlarges a 28x28 image, with a pen of MNIST's
/// width at that size (`ood_data::pen::PEN` x 3.75), with finer pens (a
/// ballpoint's line on a digit a centimetre tall is a third to a fifth of
/// MNIST's relative width) and with broader ones (a marker). At MNIST's width the digits must be accepted
/// as the right digit and the symbols mostly rejected (the bars of
/// [`scanned_digits_are_accepted_and_scanned_symbols_measured`]); at every
/// width the ink must survive the preprocessing. The same paths are also
/// drawn anew as 28x28 images with the pen scaled down as much as the page
/// is (the nearest thing here to fine-pen drawings at MNIST's size) and
/// measured as the model's own input, without preprocessing. The shares
/// per pen go to the README ("Edge runtime").
#[test]
#[ignore = "measures the shipped model (like the tests above); CI runs it"]
fn pen_width_on_scans_measured() {
    use rand::SeedableRng;
    let model = Model::load(&shipped_dir(), Some(INT8), None).expect("int8");
    let n = 500;
    let mnist_width = ood_data::pen::PEN * 3.75;
    let mut lines = Vec::new();
    for pen in [mnist_width, 2.5, 1.5, 1.0, 6.0, 8.0] {
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        // [device path, 28x28]: digits accepted as the right digit, symbols rejected
        let (mut right, mut rejected) = ([0usize; 2], [0usize; 2]);
        for _ in 0..n {
            let (d, paths) = ood_data::nearood::pen_digit_paths(&mut rng);
            let symbol = ood_data::nearood::symbol_paths(&mut rng);
            for (paths, digit) in [(paths, Some(d)), (symbol, None)] {
                let page = ood_data::pen::page(&paths, 105, 3.75, pen);
                let x = edge::preprocess::to_input(&page, None).expect("preprocess");
                let inked = x.iter().filter(|&&v| v > 64).count();
                assert!(inked >= 10, "pen {pen}: {inked} inked pixels after preprocessing");
                let small = ood_data::pen::draw_with(&paths, pen / 3.75);
                for (k, x) in [x, small].iter().enumerate() {
                    match (model.classify(x).expect("classify")[0].verdict, digit) {
                        (Verdict::Accept { digit, .. }, Some(d)) => right[k] += usize::from(digit == d),
                        (v, None) => rejected[k] += usize::from(!v.is_accept()),
                        _ => {}
                    }
                }
            }
        }
        let share = |k: usize| (right[k] as f64 / n as f64, rejected[k] as f64 / n as f64);
        let ((right, rejected), (right28, rejected28)) = (share(0), share(1));
        lines.push(format!(
            "pen radius {pen:.2} px of 105: pen-drawn digits accepted as the right digit {right:.4}, symbols rejected {rejected:.4}; as 28x28 drawings: {right28:.4}, {rejected28:.4}"
        ));
        if pen == mnist_width {
            assert!(right >= 0.9 && rejected > 0.3, "{}", lines.join("; "));
        }
    }
    eprintln!("{}", lines.join("\n"));
}
