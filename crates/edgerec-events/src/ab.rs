//! The A/B report: online metrics per arm of an experiment, from the sessions devices
//! reported (`metrics` clients' aggregates and `full` clients' events alike, see
//! [`EventStore::session_metrics`](crate::EventStore::session_metrics)).
//!
//! The randomisation unit is the device ([`Experiment::assign`] hashes its id), so every
//! standard error treats a device's sessions as one correlated unit: ratio metrics use the
//! delta method over devices (`se² = Σ_d (y_d − R·x_d)² / (Σ_d x_d)² · k/(k−1)`), and
//! differences between arms are Welch-style (`se² = se_a² + se_b²`) with a two-sided normal
//! test. Metrics:
//!
//! * **engagement rate** — sessions with a play started from a recommended row / sessions with
//!   a row shown;
//! * **videos watched** — plays past the watched threshold per user-day (a day the device had a
//!   session, UTC);
//! * **session watch time** — seconds watched per session.
//!
//! **Sample-ratio mismatch**: devices per arm against the arms' shares, Pearson's χ² with
//! arms − 1 degrees of freedom; a small p (< 0.001) means the split is broken (a client that
//! fails in one arm, a bug in assignment) and no difference should be trusted.
//!
//! **CUPED**: with a pre-period (sessions before the experiment's `start`), each device's
//! in-experiment value `Y` of a metric is adjusted by its own pre-period value `X`:
//! `Y − θ(X − X̄)`, `θ = cov(X, Y) / var(X)` pooled over arms (devices with no pre-period get
//! `X = X̄`, no adjustment). The same means, less variance: the report gives both and the
//! variance removed. These are per-device means (each device weighs the same), so they differ
//! slightly from the ratio estimates above.

use std::collections::{BTreeMap, BTreeSet};

use edgerec::events::SessionMetrics;
use edgerec::experiments::Experiment;
use serde::Serialize;

/// The metrics, in report order.
pub const METRICS: [&str; 3] = [
    "engagement_rate",
    "videos_per_user_day",
    "watch_s_per_session",
];

/// A mean with its standard error and 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// The estimate.
    pub value: f64,
    /// Its standard error.
    pub se: f64,
    /// 95% interval, lower end.
    pub lo: f64,
    /// 95% interval, upper end.
    pub hi: f64,
}

impl Estimate {
    fn new(value: f64, se: f64) -> Estimate {
        Estimate {
            value,
            se,
            lo: value - Z95 * se,
            hi: value + Z95 * se,
        }
    }
}

const Z95: f64 = 1.959_963_984_540_054;

/// One arm's online metrics.
#[derive(Debug, Clone, Serialize)]
pub struct ArmMetrics {
    /// The arm's name.
    pub arm: String,
    /// Its share of traffic in the definition.
    pub share: f64,
    /// Devices that reported a session in the arm.
    pub devices: u64,
    /// Sessions reported.
    pub sessions: u64,
    /// By metric name ([`METRICS`]).
    pub metrics: BTreeMap<String, Estimate>,
}

/// A treatment arm against the control (the definition's first arm) on one metric.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The metric.
    pub metric: String,
    /// The treatment arm.
    pub arm: String,
    /// Treatment − control, with its standard error and interval.
    pub difference: Estimate,
    /// The difference relative to the control's value.
    pub relative: f64,
    /// Two-sided p-value of "no difference".
    pub p: f64,
    /// The per-device-mean difference before and after CUPED, when there is a pre-period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cuped: Option<Cuped>,
}

/// CUPED's effect on one comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Cuped {
    /// The difference of per-device means, unadjusted.
    pub unadjusted: Estimate,
    /// The same, adjusted by the pre-period.
    pub adjusted: Estimate,
    /// Share of the variance removed (1 − var_adjusted / var_unadjusted).
    pub variance_reduction: f64,
    /// Devices with a pre-period.
    pub devices_with_pre_period: u64,
}

/// The sample-ratio-mismatch check.
#[derive(Debug, Clone, Serialize)]
pub struct Srm {
    /// Devices per arm, in definition order.
    pub observed: Vec<u64>,
    /// Expected devices per arm from the shares.
    pub expected: Vec<f64>,
    /// Pearson's χ².
    pub chi2: f64,
    /// Its p-value (arms − 1 degrees of freedom).
    pub p: f64,
    /// `p < 0.001`: the split is broken.
    pub mismatch: bool,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct AbReport {
    /// The experiment's name.
    pub experiment: String,
    /// Per arm, in definition order.
    pub arms: Vec<ArmMetrics>,
    /// Each treatment against the control, per metric.
    pub comparisons: Vec<Comparison>,
    /// Sample-ratio mismatch.
    pub srm: Srm,
    /// Sessions labelled with another experiment or none, left out.
    pub other_sessions: u64,
    /// Per UTC day (of the session's start) and arm, the in-experiment metrics: how they move
    /// as models are retrained.
    pub days: Vec<DayMetrics>,
}

/// One arm's metrics on one day.
#[derive(Debug, Clone, Serialize)]
pub struct DayMetrics {
    /// Days since the unix epoch (UTC).
    pub day: i64,
    /// The arm.
    pub arm: String,
    /// Devices with a session that day.
    pub devices: u64,
    /// Sessions that day.
    pub sessions: u64,
    /// By metric name ([`METRICS`]); videos per user-day is per device that day.
    pub metrics: BTreeMap<String, Estimate>,
}

/// What one device contributed in one period.
#[derive(Default, Clone)]
struct Unit {
    sessions_with_row: f64,
    engaged: f64,
    videos: f64,
    days: BTreeSet<i64>,
    sessions: f64,
    watch_s: f64,
}

impl Unit {
    fn add(&mut self, s: &SessionMetrics) {
        self.sessions += 1.0;
        if s.rows_shown > 0 {
            self.sessions_with_row += 1.0;
            if s.plays_from_row > 0 {
                self.engaged += 1.0;
            }
        }
        self.videos += f64::from(s.videos_watched);
        self.days.insert(s.started.div_euclid(86_400));
        self.watch_s += s.watch_seconds as f64;
    }

    /// (numerator, denominator) of metric `m`.
    fn ratio(&self, m: &str) -> (f64, f64) {
        match m {
            "engagement_rate" => (self.engaged, self.sessions_with_row),
            "videos_per_user_day" => (self.videos, self.days.len() as f64),
            _ => (self.watch_s, self.sessions),
        }
    }
}

/// The ratio Σy/Σx over units and its delta-method standard error.
fn ratio_estimate(units: &[(f64, f64)]) -> Estimate {
    let k = units.len() as f64;
    let (sy, sx): (f64, f64) = units
        .iter()
        .fold((0.0, 0.0), |(a, b), &(y, x)| (a + y, b + x));
    if sx <= 0.0 || k < 2.0 {
        return Estimate::new(if sx > 0.0 { sy / sx } else { 0.0 }, f64::NAN);
    }
    let r = sy / sx;
    let ss: f64 = units.iter().map(|&(y, x)| (y - r * x).powi(2)).sum();
    Estimate::new(r, (ss / (sx * sx) * k / (k - 1.0)).sqrt())
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if n < 2.0 {
        return (v.first().copied().unwrap_or(0.0), f64::NAN);
    }
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0),
    )
}

/// The A/B report of `sessions` (device id, session) under `experiment`: sessions whose
/// `arm` label is one of its arms count; those started before `start` (if given) form the
/// pre-period for CUPED, and the device's arm then is its assignment.
pub fn ab_report(
    sessions: &[(String, SessionMetrics)],
    experiment: &Experiment,
    start: Option<i64>,
) -> AbReport {
    let arms = &experiment.arms;
    // Per arm: device → (in-experiment unit, pre-period unit).
    let mut per_arm: Vec<BTreeMap<&str, (Unit, Unit)>> = vec![BTreeMap::new(); arms.len()];
    let mut other = 0u64;
    for (device, s) in sessions {
        let pre = start.is_some_and(|t| s.started < t);
        let arm = if pre {
            experiment
                .assign(device)
                .ok()
                .and_then(|a| arms.iter().position(|x| x.name == a.arm))
        } else {
            labelled_arm(experiment, s)
        };
        let Some(i) = arm else {
            other += 1;
            continue;
        };
        let e = per_arm[i].entry(device.as_str()).or_default();
        if pre {
            e.1.add(s);
        } else {
            e.0.add(s);
        }
    }
    // Devices in the experiment: those with an in-experiment session.
    for m in &mut per_arm {
        m.retain(|_, (u, _)| u.sessions > 0.0);
    }
    let days = per_day(sessions, experiment, start);

    let arm_metrics: Vec<ArmMetrics> = arms
        .iter()
        .zip(&per_arm)
        .map(|(a, units)| ArmMetrics {
            arm: a.name.clone(),
            share: a.share,
            devices: units.len() as u64,
            sessions: units.values().map(|(u, _)| u.sessions as u64).sum(),
            metrics: METRICS
                .iter()
                .map(|&m| {
                    let r: Vec<(f64, f64)> = units.values().map(|(u, _)| u.ratio(m)).collect();
                    (m.to_string(), ratio_estimate(&r))
                })
                .collect(),
        })
        .collect();

    let mut comparisons = Vec::new();
    for (i, arm) in arm_metrics.iter().enumerate().skip(1) {
        for &m in &METRICS {
            let c = arm_metrics[0].metrics[m];
            let t = arm.metrics[m];
            let se = (c.se.powi(2) + t.se.powi(2)).sqrt();
            let d = t.value - c.value;
            comparisons.push(Comparison {
                metric: m.into(),
                arm: arm.arm.clone(),
                difference: Estimate::new(d, se),
                relative: if c.value != 0.0 {
                    d / c.value
                } else {
                    f64::NAN
                },
                p: two_sided_p(d / se),
                cuped: start.and_then(|_| cuped(&per_arm[0], &per_arm[i], m)),
            });
        }
    }

    let total: u64 = arm_metrics.iter().map(|a| a.devices).sum();
    let observed: Vec<u64> = arm_metrics.iter().map(|a| a.devices).collect();
    let expected: Vec<f64> = arms.iter().map(|a| a.share * total as f64).collect();
    let chi2: f64 = observed
        .iter()
        .zip(&expected)
        .filter(|(_, e)| **e > 0.0)
        .map(|(&o, &e)| (o as f64 - e).powi(2) / e)
        .sum();
    let dof = arms.len().saturating_sub(1).max(1) as f64;
    let p = if total == 0 {
        1.0
    } else {
        gamma_q(dof / 2.0, chi2 / 2.0)
    };
    AbReport {
        experiment: experiment.name.clone(),
        arms: arm_metrics,
        comparisons,
        srm: Srm {
            observed,
            expected,
            chi2,
            p,
            mismatch: p < 1e-3,
        },
        other_sessions: other,
        days,
    }
}

/// The index of the arm whose label the session carries, if it is one of `experiment`'s.
fn labelled_arm(experiment: &Experiment, s: &SessionMetrics) -> Option<usize> {
    experiment.arm_index_of_label(s.arm.as_deref()?)
}

/// The in-experiment sessions' metrics per UTC day and arm (devices the unit, as above).
fn per_day(
    sessions: &[(String, SessionMetrics)],
    experiment: &Experiment,
    start: Option<i64>,
) -> Vec<DayMetrics> {
    let mut units: BTreeMap<(i64, usize), BTreeMap<&str, Unit>> = BTreeMap::new();
    for (device, s) in sessions {
        if start.is_some_and(|t| s.started < t) {
            continue;
        }
        let Some(arm) = labelled_arm(experiment, s) else {
            continue;
        };
        units
            .entry((s.started.div_euclid(86_400), arm))
            .or_default()
            .entry(device.as_str())
            .or_default()
            .add(s);
    }
    units
        .into_iter()
        .map(|((day, arm), devices)| DayMetrics {
            day,
            arm: experiment.arms[arm].name.clone(),
            devices: devices.len() as u64,
            sessions: devices.values().map(|u| u.sessions as u64).sum(),
            metrics: METRICS
                .iter()
                .map(|&m| {
                    let r: Vec<(f64, f64)> = devices.values().map(|u| u.ratio(m)).collect();
                    (m.to_string(), ratio_estimate(&r))
                })
                .collect(),
        })
        .collect()
}

/// Per-device means of `m` in two arms, unadjusted and CUPED-adjusted by the pre-period.
fn cuped(
    control: &BTreeMap<&str, (Unit, Unit)>,
    treatment: &BTreeMap<&str, (Unit, Unit)>,
    m: &str,
) -> Option<Cuped> {
    // (y, x) per device with a defined in-experiment value; x None without a pre-period.
    let values = |units: &BTreeMap<&str, (Unit, Unit)>| -> Vec<(f64, Option<f64>)> {
        units
            .values()
            .filter_map(|(u, pre)| {
                let (n, d) = u.ratio(m);
                (d > 0.0).then(|| {
                    let (pn, pd) = pre.ratio(m);
                    (n / d, (pd > 0.0).then(|| pn / pd))
                })
            })
            .collect()
    };
    let (c, t) = (values(control), values(treatment));
    let xs: Vec<f64> = c.iter().chain(&t).filter_map(|v| v.1).collect();
    if xs.len() < 3 || c.len() < 2 || t.len() < 2 {
        return None;
    }
    let (xbar, xvar) = mean_var(&xs);
    let all: Vec<(f64, f64)> = c
        .iter()
        .chain(&t)
        .map(|&(y, x)| (y, x.unwrap_or(xbar)))
        .collect();
    let ybar = all.iter().map(|v| v.0).sum::<f64>() / all.len() as f64;
    let cov = all
        .iter()
        .map(|(y, x)| (y - ybar) * (x - xbar))
        .sum::<f64>()
        / (all.len() as f64 - 1.0);
    let theta = if xvar > 0.0 { cov / xvar } else { 0.0 };
    let diff = |adjust: bool| {
        let arm = |v: &[(f64, Option<f64>)]| {
            let ys: Vec<f64> = v
                .iter()
                .map(|&(y, x)| {
                    if adjust {
                        y - theta * (x.unwrap_or(xbar) - xbar)
                    } else {
                        y
                    }
                })
                .collect();
            let (m, var) = mean_var(&ys);
            (m, var / ys.len() as f64)
        };
        let ((mc, vc), (mt, vt)) = (arm(&c), arm(&t));
        (Estimate::new(mt - mc, (vc + vt).sqrt()), vc + vt)
    };
    let (unadjusted, v0) = diff(false);
    let (adjusted, v1) = diff(true);
    Some(Cuped {
        unadjusted,
        adjusted,
        variance_reduction: if v0 > 0.0 { 1.0 - v1 / v0 } else { 0.0 },
        devices_with_pre_period: xs.len() as u64,
    })
}

/// Two-sided p-value of a standard normal statistic.
pub fn two_sided_p(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// The complementary error function (W. J. Cody's rational approximations via the
/// incomplete gamma function: `erfc(x) = Q(1/2, x²)` for x ≥ 0).
fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        2.0 - erfc(-x)
    } else {
        gamma_q(0.5, x * x)
    }
}

/// The regularised upper incomplete gamma function Q(a, x): a series below `a + 1`, a
/// continued fraction above (Numerical Recipes §6.2).
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 || a <= 0.0 {
        return 1.0;
    }
    let ln_front = -x + a * x.ln() - ln_gamma(a);
    if x < a + 1.0 {
        let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..500 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (1.0 - sum * ln_front.exp()).clamp(0.0, 1.0)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..500 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (ln_front.exp() * h).clamp(0.0, 1.0)
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The report as Markdown: the per-arm table with intervals, the comparisons, the SRM check.
pub fn to_markdown(r: &AbReport) -> String {
    use std::fmt::Write as _;
    let mut s = format!("# A/B report: {}\n\n", r.experiment);
    let _ = writeln!(
        s,
        "| arm | share | devices | sessions | engagement rate | videos / user-day | watch s / session |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for a in &r.arms {
        let f = |m: &str, digits: usize| {
            let e = a.metrics[m];
            format!("{:.d$} [{:.d$}, {:.d$}]", e.value, e.lo, e.hi, d = digits)
        };
        let _ = writeln!(
            s,
            "| {} | {:.2} | {} | {} | {} | {} | {} |",
            a.arm,
            a.share,
            a.devices,
            a.sessions,
            f("engagement_rate", 4),
            f("videos_per_user_day", 3),
            f("watch_s_per_session", 0)
        );
    }
    let _ = writeln!(
        s,
        "\n95% intervals; standard errors by the delta method over devices (the randomisation unit).\n"
    );
    let _ = writeln!(
        s,
        "| metric | arm − {} | difference [95% CI] | relative | p | CUPED difference [95% CI] | variance removed |",
        r.arms.first().map_or("control", |a| a.arm.as_str())
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for c in &r.comparisons {
        let d = c.difference;
        let (cu, vr) = match &c.cuped {
            Some(cu) => (
                format!(
                    "{:.4} [{:.4}, {:.4}] (unadjusted {:.4} ± {:.4})",
                    cu.adjusted.value,
                    cu.adjusted.lo,
                    cu.adjusted.hi,
                    cu.unadjusted.value,
                    cu.unadjusted.se
                ),
                format!("{:.0}%", 100.0 * cu.variance_reduction),
            ),
            None => ("—".into(), "—".into()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.4} [{:.4}, {:.4}] | {:+.1}% | {:.3} | {} | {} |",
            c.metric,
            c.arm,
            d.value,
            d.lo,
            d.hi,
            100.0 * c.relative,
            c.p,
            cu,
            vr
        );
    }
    let _ = writeln!(
        s,
        "\n**Sample-ratio check**: devices {:?} against expected {:?}: χ² = {:.3}, p = {:.4} — {}.",
        r.srm.observed,
        r.srm
            .expected
            .iter()
            .map(|e| format!("{e:.1}"))
            .collect::<Vec<_>>(),
        r.srm.chi2,
        r.srm.p,
        if r.srm.mismatch {
            "MISMATCH: the split is broken, do not trust the differences"
        } else {
            "no mismatch"
        }
    );
    if !r.days.is_empty() {
        let _ = writeln!(
            s,
            "\n## Per day (UTC)\n\n| day | arm | devices | sessions | engagement rate | videos / user-day | watch s / session |\n|---|---|---|---|---|---|---|"
        );
        for d in &r.days {
            let f = |m: &str| {
                let e = d.metrics[m];
                if e.se.is_finite() {
                    format!("{:.4} ± {:.4}", e.value, e.se)
                } else {
                    format!("{:.4}", e.value)
                }
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                d.day,
                d.arm,
                d.devices,
                d.sessions,
                f("engagement_rate"),
                f("videos_per_user_day"),
                f("watch_s_per_session")
            );
        }
    }
    if r.other_sessions > 0 {
        let _ = writeln!(
            s,
            "\n{} sessions of other experiments (or none) left out.",
            r.other_sessions
        );
    }
    s
}

/// Writes `r` into the directory `out`: `report.md`, `report.json` and `plots/*.svg`; returns
/// the Markdown.
pub fn write(r: &AbReport, out: &std::path::Path) -> anyhow::Result<String> {
    use edgerec_data::fs::write_atomic;
    std::fs::create_dir_all(out.join("plots"))?;
    let md = to_markdown(r);
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    write_atomic(
        &out.join("report.json"),
        serde_json::to_string_pretty(r)?.as_bytes(),
    )?;
    for (name, svg) in plots(r) {
        write_atomic(&out.join("plots").join(name), svg.as_bytes())?;
    }
    Ok(md)
}

/// One SVG bar chart per metric: each arm's estimate with its 95% interval.
pub fn plots(r: &AbReport) -> Vec<(String, String)> {
    METRICS
        .iter()
        .map(|&m| {
            let (w, h, pad) = (120.0 * r.arms.len() as f64 + 80.0, 260.0, 40.0);
            let top = r
                .arms
                .iter()
                .map(|a| a.metrics[m].hi)
                .filter(|v| v.is_finite())
                .fold(0.0f64, f64::max)
                .max(1e-9)
                * 1.1;
            let y = |v: f64| h - pad - (v.max(0.0) / top) * (h - 2.0 * pad);
            let mut svg = format!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"10\" y=\"20\">{m} (95% interval)</text>\n<line x1=\"{pad}\" y1=\"{b}\" x2=\"{w}\" y2=\"{b}\" stroke=\"#333\"/>\n",
                b = h - pad
            );
            for (i, a) in r.arms.iter().enumerate() {
                let e = a.metrics[m];
                let x = pad + 20.0 + 120.0 * i as f64;
                let cx = x + 40.0;
                svg.push_str(&format!(
                    "<rect x=\"{x}\" y=\"{:.1}\" width=\"80\" height=\"{:.1}\" fill=\"{}\"/>\n",
                    y(e.value),
                    (h - pad - y(e.value)).max(0.0),
                    if i == 0 { "#8aa" } else { "#d84" }
                ));
                if e.se.is_finite() {
                    svg.push_str(&format!(
                        "<line x1=\"{cx}\" y1=\"{:.1}\" x2=\"{cx}\" y2=\"{:.1}\" stroke=\"#000\" stroke-width=\"2\"/>\n",
                        y(e.lo),
                        y(e.hi)
                    ));
                }
                svg.push_str(&format!(
                    "<text x=\"{x}\" y=\"{:.1}\">{} {:.4}</text>\n",
                    h - pad + 16.0,
                    a.arm,
                    e.value
                ));
            }
            svg.push_str("</svg>\n");
            (format!("{m}.svg"), svg)
        })
        .chain(day_plot(r))
        .collect()
}

/// The engagement rate per day, one line per arm (`engagement_by_day.svg`), when there are
/// at least two days.
fn day_plot(r: &AbReport) -> Option<(String, String)> {
    let days: BTreeSet<i64> = r.days.iter().map(|d| d.day).collect();
    let (first, last) = (*days.first()?, *days.last()?);
    if first == last {
        return None;
    }
    let (w, h, pad) = (640.0, 300.0, 50.0);
    let top = r
        .days
        .iter()
        .map(|d| d.metrics["engagement_rate"].value)
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let x = |day: i64| pad + (day - first) as f64 / (last - first) as f64 * (w - 2.0 * pad);
    let y = |v: f64| h - pad - v.max(0.0) / top * (h - 2.0 * pad);
    let colours = ["#4a7", "#d84", "#47c", "#a4a", "#888"];
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"10\" y=\"20\">engagement rate per day (days {first}–{last} since 1970, UTC; top {top:.3})</text>\n<line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#333\"/>\n",
        b = h - pad,
        r = w - pad
    );
    for (i, a) in r.arms.iter().enumerate() {
        let points: Vec<String> = r
            .days
            .iter()
            .filter(|d| d.arm == a.arm)
            .map(|d| {
                format!(
                    "{:.1},{:.1}",
                    x(d.day),
                    y(d.metrics["engagement_rate"].value)
                )
            })
            .collect();
        let colour = colours[i % colours.len()];
        svg.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\">{}</text>\n",
            points.join(" "),
            w - pad - 100.0,
            40.0 + 16.0 * i as f64,
            a.arm
        ));
    }
    svg.push_str("</svg>\n");
    Some(("engagement_by_day.svg".into(), svg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgerec::experiments::{Arm, SCHEMA};

    fn experiment(shares: [f64; 2]) -> Experiment {
        Experiment {
            schema: SCHEMA.into(),
            name: "rank".into(),
            salt: "s".into(),
            arms: vec![
                Arm {
                    name: "control".into(),
                    share: shares[0],
                    channel: "stable".into(),
                },
                Arm {
                    name: "gbdt".into(),
                    share: shares[1],
                    channel: "exp".into(),
                },
            ],
        }
    }

    fn session(t: i64, arm: &str, engaged: bool, seconds: u64) -> SessionMetrics {
        SessionMetrics {
            session_id: t as u64,
            started: t,
            model_version: "m".into(),
            arm: Some(format!("rank.{arm}")),
            rows_shown: 1,
            plays_started: u32::from(engaged),
            plays_from_row: u32::from(engaged),
            videos_watched: u32::from(seconds >= 600),
            watch_seconds: seconds,
        }
    }

    /// Devices with a per-device propensity (stable over time, which CUPED exploits) and a
    /// treatment lift of `lift` in engagement.
    fn sessions(e: &Experiment, devices: usize, lift: f64) -> Vec<(String, SessionMetrics)> {
        let mut out = Vec::new();
        let start = 1_800_000_000;
        let mut state = 7u64;
        let mut unif = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for d in 0..devices {
            let id = format!("device-{d}");
            let arm = e.assign(&id).unwrap().arm;
            let base = 0.1 + 0.6 * unif();
            for k in 0..20 {
                let pre = k < 10;
                let p = if !pre && arm == "gbdt" {
                    base + lift
                } else {
                    base
                };
                let engaged = unif() < p;
                let t = start + (k - 10) * 86_400 + d as i64;
                let label = if pre { "none" } else { arm.as_str() };
                let mut s = session(t, label, engaged, if engaged { 1_800 } else { 0 });
                if pre {
                    s.arm = None;
                }
                out.push((id.clone(), s));
            }
        }
        out
    }

    #[test]
    fn a_real_lift_is_found_and_cuped_narrows_it() {
        let e = experiment([0.5, 0.5]);
        let r = ab_report(&sessions(&e, 2_000, 0.05), &e, Some(1_800_000_000));
        assert!(!r.srm.mismatch, "{:?}", r.srm);
        let c = r
            .comparisons
            .iter()
            .find(|c| c.metric == "engagement_rate")
            .unwrap();
        assert!(c.difference.lo > 0.0 && c.p < 0.01, "{c:?}");
        assert!(
            (c.difference.value - 0.05).abs() < 3.0 * c.difference.se,
            "{c:?}"
        );
        let cu = c.cuped.as_ref().unwrap();
        assert!(cu.variance_reduction > 0.2, "{cu:?}");
        assert!(cu.adjusted.se < cu.unadjusted.se);
        assert_eq!(r.other_sessions, 0);
        let md = to_markdown(&r);
        assert!(
            md.contains("| control | 0.50 |") && md.contains("no mismatch"),
            "{md}"
        );
        assert_eq!(plots(&r).len(), 4);
        // Ten in-experiment days, two arms.
        assert_eq!(r.days.len(), 20);
        assert!(r.days.iter().all(|d| d.sessions == d.devices));
        assert_eq!(
            r.days.iter().map(|d| d.devices).sum::<u64>(),
            r.arms.iter().map(|a| a.sessions).sum::<u64>()
        );
        assert!(md.contains("## Per day (UTC)"));
    }

    #[test]
    fn no_lift_is_not_significant_mostly() {
        let e = experiment([0.5, 0.5]);
        let r = ab_report(&sessions(&e, 2_000, 0.0), &e, Some(1_800_000_000));
        let c = &r.comparisons[0];
        assert!(c.difference.lo < 0.0 && c.difference.hi > 0.0, "{c:?}");
    }

    #[test]
    fn a_broken_split_is_flagged() {
        // Devices assigned 50/50 analysed against a 90/10 definition.
        let e = experiment([0.5, 0.5]);
        let s = sessions(&e, 1_000, 0.0);
        let wrong = experiment([0.9, 0.1]);
        let r = ab_report(&s, &wrong, None);
        assert!(r.srm.mismatch && r.srm.p < 1e-6, "{:?}", r.srm);
        assert!(r.comparisons.iter().all(|c| c.cuped.is_none()));
    }

    #[test]
    fn the_special_functions_match_known_values() {
        assert!((two_sided_p(1.959_963_984_540_054) - 0.05).abs() < 1e-9);
        assert!((two_sided_p(0.0) - 1.0).abs() < 1e-12);
        // χ² with 1 dof at 3.841459: p = 0.05; with 3 dof at 7.814728: p = 0.05.
        assert!((gamma_q(0.5, 3.841_459 / 2.0) - 0.05).abs() < 1e-6);
        assert!((gamma_q(1.5, 7.814_728 / 2.0) - 0.05).abs() < 1e-6);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
    }
}
