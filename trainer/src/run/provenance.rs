//! What made a run: `run.json`, the source revision and the clock.

use serde::{Deserialize, Serialize};

/// Provenance and summary of a run, written as `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// Config name.
    pub name: String,
    /// Seed.
    pub seed: u64,
    /// `git describe`-style revision of the source tree, or "unknown".
    pub git_revision: String,
    /// Start time, UTC, RFC 3339.
    pub started_utc: String,
    /// Wall time of the whole run, in seconds.
    pub wall_seconds: f64,
    /// Compute device.
    pub device: String,
    /// Number of classifier parameters.
    pub num_params: usize,
    /// sha256 of `classifier.safetensors`.
    pub weights_sha256: String,
    /// Training-set class counts (digits 0..9, garbage).
    pub train_class_counts: Vec<usize>,
    /// Evaluation sets that could not be found and were skipped.
    pub skipped_sets: Vec<String>,
}

/// The source revision (`git describe --always --dirty`), or "unknown".
pub fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// UTC time as RFC 3339, from the system clock.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil-from-days (H. Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        let t = now_utc();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
