//! Tests on the real datasets (installed by `scripts/setup.sh`; CI runs them
//! with `--include-ignored`). They check the loaders on the full files.

use std::path::PathBuf;
use trainer::data::fetch::Sources;

fn sources() -> Sources {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut s = Sources::new(Some(workspace.join("data")));
    s.cifar_dirs
        .push(workspace.join("../shared/datasets/cifar10-test"));
    s
}

#[test]
#[ignore = "needs real MNIST: run scripts/setup.sh"]
fn real_mnist_is_complete_and_verified() {
    let (train, test) = sources().mnist().expect("MNIST (run scripts/setup.sh)");
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    // well-known first labels of the official files
    assert_eq!((train.labels[0], test.labels[0]), (5, 7));
    let counts = test.counts(10);
    assert_eq!(counts.iter().sum::<usize>(), 10_000);
    assert_eq!(counts[1], 1135);
}

#[test]
#[ignore = "needs Fashion-MNIST: run scripts/setup.sh"]
fn real_fashion_mnist_test_split() {
    let ds = sources()
        .fashion_test()
        .expect("Fashion-MNIST (apt-get install dataset-fashion-mnist)");
    assert_eq!(ds.len(), 10_000);
    assert!(ds.counts(10).iter().all(|&c| c == 1000));
}

#[test]
#[ignore = "needs the CIFAR-10 test JPEGs in ../shared/datasets"]
fn real_cifar10_test_split() {
    let ds = sources().cifar10_test().expect("CIFAR-10 test");
    assert_eq!(ds.len(), 10_000);
    assert!(ds.counts(10).iter().all(|&c| c == 1000));
}
