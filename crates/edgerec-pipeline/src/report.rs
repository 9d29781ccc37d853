//! Rolling-origin folds and the data report.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::PipelineConfig;
use crate::sql::{LabelCounts, TableFiles};

const DAY: i64 = 86_400;

/// One rolling-origin fold: train on examples before `valid_start`, validate on
/// `valid_start ≤ time < valid_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    /// 0 for the oldest window.
    pub index: u32,
    /// First second of the validation window (the training cutoff).
    pub valid_start: i64,
    /// First second after the validation window.
    pub valid_end: i64,
}

/// The last `n` windows of `days` days each ending right after `last_time`, oldest first.
/// Windows that would start before `first_time` are dropped.
pub fn rolling_folds(first_time: i64, last_time: i64, n: u32, days: u32) -> Vec<Fold> {
    let end = last_time + 1;
    let len = i64::from(days) * DAY;
    (0..n)
        .map(|k| {
            let valid_start = end - i64::from(n - k) * len;
            Fold {
                index: k,
                valid_start,
                valid_end: valid_start + len,
            }
        })
        .filter(|f| f.valid_start > first_time)
        .enumerate()
        .map(|(i, f)| Fold {
            index: i as u32,
            ..f
        })
        .collect()
}

/// The window an example at `time` validates in, or −1 before the first window.
pub fn fold_window(folds: &[Fold], time: i64) -> i32 {
    folds
        .iter()
        .find(|f| f.valid_start <= time && time < f.valid_end)
        .map_or(-1, |f| f.index as i32)
}

/// Counts made while writing the examples.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    /// Examples written.
    pub rows: u64,
    /// Positive examples.
    pub positives: u64,
    /// Negative plays kept.
    pub negative_plays: u64,
    /// Negative impressions kept.
    pub negative_impressions: u64,
    /// Weight histogram: 40 bins of 0.1 over [0, 4].
    pub weight_bins: Vec<u64>,
    /// Sum of positive weights.
    pub positive_weight: f64,
    /// Sum of negative weights.
    pub negative_weight: f64,
    /// Examples per validation window (index = window).
    pub per_window: Vec<u64>,
    /// Positives per validation window.
    pub positives_per_window: Vec<u64>,
    /// Examples before the first window.
    pub before_windows: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, label: i8, source: &str, weight: f32, window: i32) {
        if self.weight_bins.is_empty() {
            self.weight_bins = vec![0; 40];
        }
        self.rows += 1;
        if label == 1 {
            self.positives += 1;
            self.positive_weight += f64::from(weight);
        } else {
            if source == "impression" {
                self.negative_impressions += 1;
            } else {
                self.negative_plays += 1;
            }
            self.negative_weight += f64::from(weight);
        }
        let bin = ((weight * 10.0) as usize).min(39);
        self.weight_bins[bin] += 1;
        if window < 0 {
            self.before_windows += 1;
        } else {
            let w = window as usize;
            if self.per_window.len() <= w {
                self.per_window.resize(w + 1, 0);
                self.positives_per_window.resize(w + 1, 0);
            }
            self.per_window[w] += 1;
            if label == 1 {
                self.positives_per_window[w] += 1;
            }
        }
    }
}

/// A fold with its sizes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FoldReport {
    /// The fold.
    pub fold: Fold,
    /// Examples before the window (its training set).
    pub train_examples: u64,
    /// Examples in the window.
    pub valid_examples: u64,
    /// Positives in the window.
    pub valid_positives: u64,
}

/// Everything a run reports (also written as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The configuration used.
    pub config: PipelineConfig,
    /// Part files per input table.
    pub inputs: TableFiles,
    /// Label bands before downsampling.
    pub before: LabelCounts,
    /// Probability of keeping a negative.
    pub negative_sample_rate: f64,
    /// What was written.
    pub after: Tally,
    /// Output part files.
    pub files: usize,
    /// Time range of the input events.
    pub first_time: i64,
    /// Time range of the input events.
    pub last_time: i64,
    /// Rolling-origin folds.
    pub folds: Vec<FoldReport>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl Report {
    /// Assembles the report.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: &PipelineConfig,
        inputs: TableFiles,
        before: LabelCounts,
        negative_sample_rate: f64,
        after: Tally,
        files: usize,
        (first_time, last_time): (i64, i64),
        folds: &[Fold],
        seconds: f64,
    ) -> Report {
        let folds = folds
            .iter()
            .map(|f| {
                let w = f.index as usize;
                FoldReport {
                    fold: *f,
                    train_examples: after.before_windows
                        + after.per_window.iter().take(w).sum::<u64>(),
                    valid_examples: after.per_window.get(w).copied().unwrap_or(0),
                    valid_positives: after.positives_per_window.get(w).copied().unwrap_or(0),
                }
            })
            .collect();
        Report {
            config: config.clone(),
            inputs,
            before,
            negative_sample_rate,
            after,
            files,
            first_time,
            last_time,
            folds,
            seconds,
        }
    }

    /// The report as markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Training-data report\n");
        let _ = writeln!(
            s,
            "Events from {} to {} (unix s); {:.1} s wall clock.\n",
            self.first_time, self.last_time, self.seconds
        );
        self.labels_section(&mut s);
        self.downsampling_section(&mut s);
        self.weights_section(&mut s);
        self.folds_section(&mut s);
        s
    }

    /// Appends the label bands before downsampling.
    fn labels_section(&self, s: &mut String) {
        let b = &self.before;
        let c = &self.config;
        let _ = writeln!(s, "## Labels before downsampling\n");
        let _ = writeln!(s, "| rows | count | share |\n|---|---|---|");
        let _ = writeln!(s, "| plays | {} | 100% |", b.plays);
        let _ = writeln!(
            s,
            "| positive plays (fraction > {}) | {} | {:.1}% |",
            c.positive_above,
            b.positive_plays,
            percent(b.positive_plays, b.plays)
        );
        let _ = writeln!(
            s,
            "| negative plays (fraction < {}) | {} | {:.1}% |",
            c.negative_below,
            b.negative_plays,
            percent(b.negative_plays, b.plays)
        );
        let _ = writeln!(
            s,
            "| dropped plays (middle band) | {} | {:.1}% |",
            b.dropped_plays,
            percent(b.dropped_plays, b.plays)
        );
        let _ = writeln!(s, "| impressions | {} | |", b.impressions);
        let _ = writeln!(
            s,
            "| impressions without a play{} | {} | {:.1}% |",
            if b.impressions_as_negatives {
                " (negatives)"
            } else {
                " (not used)"
            },
            b.negative_impressions,
            percent(b.negative_impressions, b.impressions)
        );
    }

    /// Appends the sampling rate and what was kept.
    fn downsampling_section(&self, s: &mut String) {
        let a = &self.after;
        let c = &self.config;
        let _ = writeln!(s, "\n## After downsampling\n");
        let _ = writeln!(
            s,
            "Negatives kept with probability {:.4} (target {} per positive, seed {}).\n",
            self.negative_sample_rate, c.negatives_per_positive, c.seed
        );
        let _ = writeln!(s, "| examples | count | weight sum |\n|---|---|---|");
        let _ = writeln!(
            s,
            "| positives | {} | {:.1} |",
            a.positives, a.positive_weight
        );
        let _ = writeln!(
            s,
            "| negatives (plays) | {} | |\n| negatives (impressions) | {} | |\n| negatives (all) | {} | {:.1} |",
            a.negative_plays,
            a.negative_impressions,
            a.negative_plays + a.negative_impressions,
            a.negative_weight
        );
        let _ = writeln!(s, "| total | {} | |", a.rows);
    }

    /// Appends the weight formula and histogram.
    fn weights_section(&self, s: &mut String) {
        let _ = writeln!(s, "\n## Weights\n");
        let _ = writeln!(
            s,
            "Positive: clamp(watched_s / 3600, 0.1, 4); negative: clamp(duration_s / 3600, 0.1, 4).\n"
        );
        let _ = writeln!(s, "| weight | examples |\n|---|---|");
        for (i, n) in self
            .after
            .weight_bins
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
        {
            let _ = writeln!(
                s,
                "| [{:.1}, {:.1}) | {n} |",
                i as f32 / 10.0,
                (i + 1) as f32 / 10.0
            );
        }
    }

    /// Appends the rolling-origin folds with their sizes.
    fn folds_section(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "\n## Rolling-origin folds ({} days each)\n",
            self.config.fold_days
        );
        let _ = writeln!(
            s,
            "| fold | validation window (unix s) | train examples | validation examples | validation positives |\n|---|---|---|---|---|"
        );
        for f in &self.folds {
            let _ = writeln!(
                s,
                "| {} | [{}, {}) | {} | {} | {} |",
                f.fold.index,
                f.fold.valid_start,
                f.fold.valid_end,
                f.train_examples,
                f.valid_examples,
                f.valid_positives
            );
        }
    }
}

/// `x` as a percentage of `n` (0 when `n` is 0).
fn percent(x: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        100.0 * x as f64 / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_tile_the_end_of_the_range() {
        let folds = rolling_folds(0, 30 * DAY - 1, 3, 7);
        assert_eq!(folds.len(), 3);
        assert_eq!(folds[2].valid_end, 30 * DAY);
        assert_eq!(folds[1].valid_end, folds[2].valid_start);
        assert_eq!(folds[0].valid_start, 9 * DAY);
        assert_eq!(fold_window(&folds, 9 * DAY - 1), -1);
        assert_eq!(fold_window(&folds, 9 * DAY), 0);
        assert_eq!(fold_window(&folds, 30 * DAY - 1), 2);
        // Windows that would start before the data are dropped.
        assert_eq!(rolling_folds(0, 10 * DAY, 3, 7).len(), 1);
    }
}
