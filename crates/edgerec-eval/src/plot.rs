//! SVG charts of evaluation results: grouped bars with standard-error whiskers
//! ([`bar_chart`]) and lines with standard-error bands ([`line_chart`]).
//!
//! The output is a standalone SVG 1.1 document written by hand (no dependencies), to be saved
//! as a `.svg` file or inlined in a report. Conventions:
//!
//! - The y axis starts at 0 and ends at the first tick at or above the largest `mean + se`;
//!   ticks are 1, 2 or 5 × 10^k apart, about five of them. Negative means are drawn at 0
//!   (their tooltip still shows the value).
//! - Non-finite numbers (NaN, ±∞) in means, standard errors or x values are treated as 0, so
//!   the output never contains `NaN` or `inf`; a negative standard error is treated as 0.
//! - Series get colours from the Okabe–Ito palette (distinguishable with the common forms of
//!   colour blindness), then four of Paul Tol's muted colours, in order of first appearance,
//!   cycling after twelve; lines past the twelfth also change their dash pattern.
//! - All text (title, labels, series and group names) is escaped for XML.
//! - The output is deterministic: the same input gives the same bytes (coordinates are
//!   written with two decimals, tick labels with the decimals their step needs).
//! - Input with nothing to draw gives a chart that says "no data".
//!
//! ```
//! use edgerec_eval::plot::{bar_chart, line_chart, Bar, Line};
//!
//! let bar = |series: &str, mean: f64, se: f64| Bar { series: series.into(), mean, se };
//! let groups = vec![
//!     ("Recall@10".to_string(), vec![bar("popularity", 0.12, 0.01), bar("ALS", 0.21, 0.012)]),
//!     ("NDCG@10".to_string(), vec![bar("popularity", 0.10, 0.008), bar("ALS", 0.18, 0.01)]),
//! ];
//! let svg = bar_chart("ML-100K, temporal split", "mean over users", &groups);
//! assert!(svg.starts_with("<?xml") && svg.ends_with("</svg>\n"));
//! assert_eq!(svg.matches("class=\"bar\"").count(), 4);
//!
//! let curve = |series: &str, slope: f64| Line {
//!     series: series.into(),
//!     points: (1..=100).map(|n| (n as f64, slope * (n as f64).sqrt(), 0.002)).collect(),
//! };
//! let svg = line_chart("Recall@N", "N", "recall", &[curve("popularity", 0.02), curve("ALS", 0.04)]);
//! assert_eq!(svg.matches("class=\"line\"").count(), 2);
//! assert_eq!(line_chart("empty", "x", "y", &[]).matches("no data").count(), 1);
//! ```

use std::fmt::Write as _;

/// One bar of a grouped bar chart: mean with a ± standard-error whisker.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// The system the bar belongs to; bars of the same series share a colour and a slot in
    /// every group.
    pub series: String,
    /// The bar's height.
    pub mean: f64,
    /// Half the whisker's length (no whisker when 0).
    pub se: f64,
}

/// One line of a line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The legend's name for the line.
    pub series: String,
    /// `(x, mean, se)` points, drawn in increasing x; a band of ± se is drawn around the line
    /// when some se is positive.
    pub points: Vec<(f64, f64, f64)>,
}

/// Okabe & Ito (2008), "Color Universal Design": blue, orange, bluish green, vermillion,
/// reddish purple, sky blue, black, yellow (last: weakest contrast on white).
const PALETTE: [&str; 12] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442",
    // Then Paul Tol's muted wine, teal, olive and grey, so a report's dozen systems stay apart.
    "#882255", "#44AA99", "#999933", "#888888",
];
/// Dash patterns for lines, one per cycle through the palette.
const DASHES: [&str; 3] = ["", "7 4", "2 3"];

const MARGIN_LEFT: f64 = 76.0;
const MARGIN_TOP: f64 = 48.0;
const MARGIN_BOTTOM: f64 = 60.0;
const PLOT_H: f64 = 320.0;
const MIN_PLOT_W: f64 = 480.0;
const LEGEND_GAP: f64 = 24.0;
const LEGEND_ROW: f64 = 20.0;
/// Rough width of one character at font-size 12, to size the legend.
const CHAR_W: f64 = 7.0;
const GRID: &str = "#DDDDDD";
const AXIS: &str = "#333333";

/// Grouped bars: one group per metric (e.g. "Recall@10", "NDCG@10"), one bar per series
/// (system) within each group, with a ± se whisker; a legend maps colours to series names.
///
/// Every group reserves one slot per series (in order of first appearance), so a series keeps
/// its position across groups and a group lacking it shows a gap. A series repeated within
/// one group is drawn over its first bar.
pub fn bar_chart(title: &str, y_label: &str, groups: &[(String, Vec<Bar>)]) -> String {
    let series = series_of(groups);
    if series.is_empty() {
        return no_data(title);
    }
    let ymax = groups
        .iter()
        .flat_map(|(_, bars)| bars)
        .map(|b| clean(b.mean) + clean_se(b.se))
        .fold(0.0, f64::max);
    let yticks = nice_ticks(0.0, if ymax > 0.0 { ymax } else { 1.0 });

    let slots = series.len() as f64;
    let plot_w = MIN_PLOT_W.max(groups.len() as f64 * (slots * 24.0 + 32.0));
    let frame = Frame::new(plot_w, &series);
    let top = yticks.last();
    let mut svg = frame.open(title);
    frame.y_axis(&mut svg, &yticks, y_label);

    let group_w = plot_w / groups.len() as f64;
    let slot_w = group_w * 0.8 / slots;
    for (g, (name, bars)) in groups.iter().enumerate() {
        let gx = frame.x + g as f64 * group_w;
        for bar in bars {
            let s = series.iter().position(|&n| n == bar.series).unwrap_or(0);
            let x = gx + group_w * 0.1 + s as f64 * slot_w + slot_w * 0.05;
            let w = slot_w * 0.9;
            frame.bar(&mut svg, top, bar, name, PALETTE[s % PALETTE.len()], (x, w));
        }
        let _ = writeln!(
            svg,
            "<text class=\"group\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            num(gx + group_w / 2.0),
            num(frame.y + frame.h + 20.0),
            escape(name),
        );
    }
    frame.axes(&mut svg);
    for (s, name) in series.iter().enumerate() {
        let (lx, ly) = frame.legend_row(s);
        let _ = writeln!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" dy=\"0.35em\">{}</text>",
            num(lx),
            num(ly - 6.0),
            PALETTE[s % PALETTE.len()],
            num(lx + 18.0),
            num(ly),
            escape(name),
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The series of `groups`' bars, in order of first appearance.
fn series_of(groups: &[(String, Vec<Bar>)]) -> Vec<&str> {
    let mut series: Vec<&str> = Vec::new();
    for bar in groups.iter().flat_map(|(_, bars)| bars) {
        if !series.contains(&bar.series.as_str()) {
            series.push(&bar.series);
        }
    }
    series
}

/// Lines sharing an x axis, one per series, each with a ± se band where its se is positive;
/// e.g. recall@N for N = 1..100 per system. Points are drawn in increasing x whatever their
/// order in the input; lines of 12 points or fewer also get a dot on each point.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, lines: &[Line]) -> String {
    if lines.iter().all(|l| l.points.is_empty()) {
        return no_data(title);
    }
    let cleaned: Vec<Vec<(f64, f64, f64)>> = lines.iter().map(sorted_points).collect();
    let all = || cleaned.iter().flatten();
    let xmin = all().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let xmax = all().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let ymax = all().map(|p| p.1 + p.2).fold(0.0, f64::max);
    let (xlo, xhi) = if xmax > xmin {
        (xmin, xmax)
    } else {
        (xmin - 1.0, xmax + 1.0)
    };
    let xticks = nice_ticks(xlo, xhi);
    let yticks = nice_ticks(0.0, if ymax > 0.0 { ymax } else { 1.0 });
    let names: Vec<&str> = lines.iter().map(|l| l.series.as_str()).collect();
    let frame = Frame::new(MIN_PLOT_W, &names);
    let top = yticks.last();
    let (x0, x1) = (xticks.first(), xticks.last());
    let x_of = |x: f64| frame.x + (x - x0) / (x1 - x0) * frame.w;

    let mut svg = frame.open(title);
    frame.y_axis(&mut svg, &yticks, y_label);
    frame.x_axis(&mut svg, &xticks, &x_of, x_label);
    for (i, pts) in cleaned.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        if pts.iter().any(|p| p.2 > 0.0) {
            frame.band(&mut svg, top, &x_of, pts, colour);
        }
        if pts.is_empty() {
            continue;
        }
        frame.line(&mut svg, top, &x_of, pts, &lines[i].series, i);
    }
    frame.axes(&mut svg);
    for (i, name) in names.iter().enumerate() {
        let (lx, ly) = frame.legend_row(i);
        let _ = writeln!(
            svg,
            "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{}\" stroke-width=\"2\"{dash}/>\
             <text x=\"{}\" y=\"{y}\" dy=\"0.35em\">{}</text>",
            num(lx - 2.0),
            num(lx + 14.0),
            PALETTE[i % PALETTE.len()],
            num(lx + 18.0),
            escape(name),
            y = num(ly),
            dash = dash_attribute(i),
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// A line's points with non-finite numbers cleaned (see the module docs), in increasing x.
fn sorted_points(line: &Line) -> Vec<(f64, f64, f64)> {
    let mut pts: Vec<_> = line
        .points
        .iter()
        .map(|&(x, m, se)| (clean(x), clean(m), clean_se(se)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

/// The `stroke-dasharray` attribute (with a leading space) of line `i`, empty for solid lines.
fn dash_attribute(i: usize) -> String {
    match DASHES[(i / PALETTE.len()) % DASHES.len()] {
        "" => String::new(),
        d => format!(" stroke-dasharray=\"{d}\""),
    }
}

/// The plot area and the document around it.
struct Frame {
    /// Left edge of the plot area.
    x: f64,
    /// Top edge of the plot area.
    y: f64,
    /// Width of the plot area.
    w: f64,
    /// Height of the plot area.
    h: f64,
    /// Width of the document.
    width: f64,
    /// Height of the document.
    height: f64,
}

impl Frame {
    /// A plot area `plot_w` wide with a legend for `series` on its right.
    fn new(plot_w: f64, series: &[&str]) -> Frame {
        let longest = series.iter().map(|s| s.chars().count()).max().unwrap_or(0) as f64;
        let legend_w = LEGEND_GAP + 18.0 + longest * CHAR_W + 16.0;
        let height = (MARGIN_TOP + PLOT_H + MARGIN_BOTTOM)
            .max(MARGIN_TOP + 8.0 + series.len() as f64 * LEGEND_ROW + 16.0);
        Frame {
            x: MARGIN_LEFT,
            y: MARGIN_TOP,
            w: plot_w,
            h: PLOT_H,
            width: (MARGIN_LEFT + plot_w + legend_w).ceil(),
            height: height.ceil(),
        }
    }

    /// The pixel row of value `v` on a y axis from 0 to `top`, clamped to the plot area.
    fn y_of(&self, v: f64, top: f64) -> f64 {
        let v = clean(v).clamp(0.0, top);
        self.y + self.h * (1.0 - v / top)
    }

    /// The centre-left point of legend row `i`.
    fn legend_row(&self, i: usize) -> (f64, f64) {
        (
            self.x + self.w + LEGEND_GAP,
            self.y + 8.0 + i as f64 * LEGEND_ROW,
        )
    }

    /// The document's opening: XML declaration, `<svg>`, white background and title.
    fn open(&self, title: &str) -> String {
        svg_open(self.width, self.height, title)
    }

    /// Horizontal grid lines with tick labels, and the rotated y label.
    fn y_axis(&self, svg: &mut String, ticks: &Ticks, label: &str) {
        let top = ticks.last();
        for &t in &ticks.values {
            let y = self.y_of(t, top);
            let _ = writeln!(
                svg,
                "<line x1=\"{x0}\" y1=\"{y}\" x2=\"{x1}\" y2=\"{y}\" stroke=\"{GRID}\"/>\
                 <text class=\"tick\" x=\"{xl}\" y=\"{y}\" dy=\"0.35em\" text-anchor=\"end\">{label}</text>",
                x0 = num(self.x),
                x1 = num(self.x + self.w),
                xl = num(self.x - 8.0),
                y = num(y),
                label = ticks.label(t),
            );
        }
        let _ = writeln!(
            svg,
            "<text class=\"y-label\" transform=\"translate(20 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            num(self.y + self.h / 2.0),
            escape(label),
        );
    }

    /// Vertical grid lines with tick labels at `ticks` (placed by `x_of`), and the x label.
    fn x_axis(&self, svg: &mut String, ticks: &Ticks, x_of: &impl Fn(f64) -> f64, label: &str) {
        for &t in &ticks.values {
            let x = x_of(t);
            let _ = writeln!(
                svg,
                "<line x1=\"{x}\" y1=\"{y0}\" x2=\"{x}\" y2=\"{y1}\" stroke=\"{GRID}\"/>\
                 <text class=\"tick\" x=\"{x}\" y=\"{yl}\" text-anchor=\"middle\">{label}</text>",
                x = num(x),
                y0 = num(self.y),
                y1 = num(self.y + self.h),
                yl = num(self.y + self.h + 18.0),
                label = ticks.label(t),
            );
        }
        let _ = writeln!(
            svg,
            "<text class=\"x-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            num(self.x + self.w / 2.0),
            num(self.y + self.h + 42.0),
            escape(label),
        );
    }

    /// One bar of `group` at `(x, width)` on a y axis from 0 to `top`, with its ± se whisker
    /// when se is positive.
    fn bar(
        &self,
        svg: &mut String,
        top: f64,
        bar: &Bar,
        group: &str,
        colour: &str,
        (x, w): (f64, f64),
    ) {
        let (mean, se) = (clean(bar.mean), clean_se(bar.se));
        let y = self.y_of(mean, top);
        let _ = writeln!(
            svg,
            "<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\">\
             <title>{}: {}: {:.4} ± {:.4}</title></rect>",
            num(x),
            num(y),
            num(w),
            num(self.y + self.h - y),
            escape(&bar.series),
            escape(group),
            mean,
            se,
        );
        if se > 0.0 {
            let cx = x + w / 2.0;
            let cap = (w / 4.0).min(6.0);
            let (hi, lo) = (self.y_of(mean + se, top), self.y_of(mean - se, top));
            let _ = writeln!(
                svg,
                "<path class=\"whisker\" d=\"M{cx},{lo}V{hi}M{l},{hi}H{r}M{l},{lo}H{r}\" \
                 stroke=\"{AXIS}\" stroke-width=\"1.2\" fill=\"none\"/>",
                cx = num(cx),
                lo = num(lo),
                hi = num(hi),
                l = num(cx - cap),
                r = num(cx + cap),
            );
        }
    }

    /// The ± se band around a line's points `pts` (sorted by x), on a y axis from 0 to `top`.
    fn band(
        &self,
        svg: &mut String,
        top: f64,
        x_of: &impl Fn(f64) -> f64,
        pts: &[(f64, f64, f64)],
        colour: &str,
    ) {
        let upper = pts.iter().map(|p| (p.0, p.1 + p.2));
        let lower = pts.iter().rev().map(|p| (p.0, p.1 - p.2));
        let d: Vec<String> = upper
            .chain(lower)
            .map(|(x, y)| format!("{},{}", num(x_of(x)), num(self.y_of(y, top))))
            .collect();
        let _ = writeln!(
            svg,
            "<path class=\"band\" d=\"M{}Z\" fill=\"{colour}\" fill-opacity=\"0.18\" stroke=\"none\"/>",
            d.join("L"),
        );
    }

    /// Line `i` (its colour and dash pattern) through the points `pts` of `series`, sorted by
    /// x, on a y axis from 0 to `top`; with a dot on each point when there are 12 or fewer.
    fn line(
        &self,
        svg: &mut String,
        top: f64,
        x_of: &impl Fn(f64) -> f64,
        pts: &[(f64, f64, f64)],
        series: &str,
        i: usize,
    ) {
        let colour = PALETTE[i % PALETTE.len()];
        let coords: Vec<String> = pts
            .iter()
            .map(|p| format!("{},{}", num(x_of(p.0)), num(self.y_of(p.1, top))))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline class=\"line\" points=\"{}\" fill=\"none\" stroke=\"{colour}\" \
             stroke-width=\"2\" stroke-linejoin=\"round\"{dash}><title>{}</title></polyline>",
            coords.join(" "),
            escape(series),
            dash = dash_attribute(i),
        );
        if pts.len() <= 12 {
            for p in pts {
                let _ = writeln!(
                    svg,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{colour}\">\
                     <title>{}: x = {}, {:.4} ± {:.4}</title></circle>",
                    num(x_of(p.0)),
                    num(self.y_of(p.1, top)),
                    escape(series),
                    p.0,
                    p.1,
                    p.2,
                );
            }
        }
    }

    /// The left and bottom axis lines (drawn last, over the grid and the data).
    fn axes(&self, svg: &mut String) {
        let _ = writeln!(
            svg,
            "<path class=\"axes\" d=\"M{x0},{y0}V{y1}H{x1}\" stroke=\"{AXIS}\" fill=\"none\"/>",
            x0 = num(self.x),
            y0 = num(self.y),
            y1 = num(self.y + self.h),
            x1 = num(self.x + self.w),
        );
    }
}

/// The opening of a document `width` × `height` with its title.
fn svg_open(width: f64, height: f64, title: &str) -> String {
    let (w, h) = (num(width), num(height));
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <title>{t}</title>\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#FFFFFF\"/>\n\
         <text class=\"title\" x=\"{cx}\" y=\"28\" text-anchor=\"middle\" font-size=\"16\" \
         font-weight=\"bold\">{t}</text>\n",
        t = escape(title),
        cx = num(width / 2.0),
    )
}

/// A chart with only its title and the words "no data".
fn no_data(title: &str) -> String {
    let (width, height) = (MARGIN_LEFT + MIN_PLOT_W + 40.0, MARGIN_TOP + 120.0);
    let mut svg = svg_open(width, height, title);
    let _ = writeln!(
        svg,
        "<text class=\"no-data\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666666\">no data</text>",
        num(width / 2.0),
        num(MARGIN_TOP + 50.0),
    );
    svg.push_str("</svg>\n");
    svg
}

/// Axis ticks at multiples of a nice step.
#[derive(Debug, Clone, PartialEq)]
struct Ticks {
    /// Tick values, increasing; the first at or below the range's low end, the last at or
    /// above its high end.
    values: Vec<f64>,
    /// Decimals that show the step exactly.
    decimals: usize,
}

impl Ticks {
    fn first(&self) -> f64 {
        self.values[0]
    }

    fn last(&self) -> f64 {
        self.values[self.values.len() - 1]
    }

    /// A tick's label with the step's decimals.
    fn label(&self, v: f64) -> String {
        let s = format!("{:.*}", self.decimals, clean(v));
        if s.starts_with('-') && s.bytes().all(|b| matches!(b, b'-' | b'0' | b'.')) {
            s[1..].to_string()
        } else {
            s
        }
    }
}

/// About five ticks covering `lo..=hi` (which must have `lo < hi`, else a unit range is used),
/// `step` = 1, 2 or 5 × 10^k: the smallest such step giving at most five intervals over the
/// range, with the ends rounded out to multiples of the step.
fn nice_ticks(lo: f64, hi: f64) -> Ticks {
    let (lo, hi) = (clean(lo), clean(hi));
    let (lo, hi) = if hi > lo && (hi - lo).is_finite() {
        (lo, hi)
    } else {
        (lo, lo + 1.0)
    };
    let raw = (hi - lo) / 5.0;
    let mut k = raw.log10().floor() as i32;
    let norm = raw / 10f64.powi(k);
    // A small tolerance so that e.g. a span of exactly 1.0 gives step 0.2, not 0.5.
    let m = if norm <= 1.0 + 1e-9 {
        1.0
    } else if norm <= 2.0 + 1e-9 {
        2.0
    } else if norm <= 5.0 + 1e-9 {
        5.0
    } else {
        k += 1;
        1.0
    };
    let step = m * 10f64.powi(k);
    let first = (lo / step + 1e-9).floor() as i64;
    let last = (hi / step - 1e-9).ceil() as i64;
    let values = (first..=last.max(first + 1))
        .map(|i| i as f64 * step)
        .collect();
    Ticks {
        values,
        decimals: (-k).clamp(0, 12) as usize,
    }
}

/// A finite number, or 0.
fn clean(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// A finite, non-negative standard error, or 0.
fn clean_se(v: f64) -> f64 {
    clean(v).max(0.0)
}

/// A coordinate with two decimals (never `-0.00`, `NaN` or `inf`).
fn num(v: f64) -> String {
    let s = format!("{:.2}", clean(v));
    if s == "-0.00" { "0.00".to_string() } else { s }
}

/// `s` escaped for XML text and attribute values; characters XML 1.0 does not allow are
/// replaced by U+FFFD.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that `svg` is a well-formed XML document with a single `<svg>` root: balanced
    /// and properly nested tags, quoted attributes, no raw `<` or stray `&` in text or
    /// attribute values. Returns the element names in document order.
    fn check_xml(svg: &str) -> Vec<String> {
        let body = svg
            .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
            .expect("xml declaration");
        let mut stack: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        let mut rest = body;
        let mut roots = 0;
        let check_text = |text: &str| {
            assert!(
                !text.contains('<') && !text.contains('>'),
                "raw markup in {text:?}"
            );
            let mut t = text;
            while let Some(i) = t.find('&') {
                t = &t[i + 1..];
                let end = t
                    .find(';')
                    .unwrap_or_else(|| panic!("unterminated entity in {text:?}"));
                assert!(
                    ["amp", "lt", "gt", "quot", "apos"].contains(&&t[..end]),
                    "unknown entity {} in {text:?}",
                    &t[..end]
                );
            }
        };
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            check_text(text);
            if stack.is_empty() {
                assert!(text.trim().is_empty(), "text outside the root: {text:?}");
            }
            let close = rest[open..].find('>').expect("unterminated tag") + open;
            let tag = &rest[open + 1..close];
            assert!(!tag.contains('<'), "'<' inside tag {tag:?}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            } else {
                let self_closing = tag.ends_with('/');
                let tag = tag.trim_end_matches('/');
                let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
                let name = &tag[..name_end];
                assert!(
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                );
                // Attributes: name="value" separated by whitespace.
                let mut attrs = tag[name_end..].trim_start();
                let mut attr_names = Vec::new();
                while !attrs.is_empty() {
                    let eq = attrs
                        .find("=\"")
                        .unwrap_or_else(|| panic!("bad attribute in {tag:?}"));
                    let attr = &attrs[..eq];
                    assert!(
                        attr.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':'),
                        "{attr:?}"
                    );
                    assert!(
                        !attr_names.contains(&attr),
                        "duplicate attribute {attr} in {tag:?}"
                    );
                    attr_names.push(attr);
                    let value_end = attrs[eq + 2..].find('"').expect("unterminated value") + eq + 2;
                    check_text(&attrs[eq + 2..value_end]);
                    attrs = attrs[value_end + 1..].trim_start();
                }
                if stack.is_empty() {
                    roots += 1;
                    assert_eq!(name, "svg");
                }
                seen.push(name.to_string());
                if !self_closing {
                    stack.push(name.to_string());
                }
            }
            rest = &rest[close + 1..];
        }
        assert!(rest.trim().is_empty());
        assert!(stack.is_empty(), "unclosed {stack:?}");
        assert_eq!(roots, 1);
        seen
    }

    fn bar(series: &str, mean: f64, se: f64) -> Bar {
        Bar {
            series: series.into(),
            mean,
            se,
        }
    }

    fn sample_groups() -> Vec<(String, Vec<Bar>)> {
        vec![
            (
                "Recall@10".into(),
                vec![
                    bar("popularity", 0.1, 0.01),
                    bar("ALS", 0.25, 0.02),
                    bar("EASE", 0.3, 0.0),
                ],
            ),
            (
                "NDCG@10".into(),
                vec![bar("popularity", 0.05, 0.005), bar("ALS", 0.2, 0.01)],
            ),
        ]
    }

    fn attr(element: &str, name: &str) -> f64 {
        let key = format!(" {name}=\"");
        let start = element.find(&key).unwrap() + key.len();
        let end = element[start..].find('"').unwrap() + start;
        element[start..end].parse().unwrap()
    }

    /// The opening tags of elements with `class="..."`, in order.
    fn elements<'a>(svg: &'a str, class: &str) -> Vec<&'a str> {
        let key = format!("class=\"{class}\"");
        svg.match_indices(&key)
            .map(|(i, _)| {
                let start = svg[..i].rfind('<').unwrap();
                let end = svg[i..].find('>').unwrap() + i;
                &svg[start..=end]
            })
            .collect()
    }

    #[test]
    fn bar_chart_is_well_formed_svg() {
        let svg = bar_chart("Top-10 quality", "mean over users", &sample_groups());
        let names = check_xml(&svg);
        assert_eq!(names[0], "svg");
        assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains("version=\"1.1\""));
        assert!(svg.contains("viewBox=\"0 0 "));
        assert_eq!(elements(&svg, "bar").len(), 5);
        // No whisker for the bar with se = 0.
        assert_eq!(elements(&svg, "whisker").len(), 4);
        // One legend swatch per series, in order of first appearance, with palette colours.
        for (i, s) in ["popularity", "ALS", "EASE"].iter().enumerate() {
            assert!(svg.contains(&format!("fill=\"{}\"/><text", PALETTE[i])));
            assert!(svg.contains(&format!(">{s}</text>")));
        }
    }

    #[test]
    fn line_chart_is_well_formed_svg() {
        let lines = vec![
            Line {
                series: "a".into(),
                points: (1..=100)
                    .map(|n| (n as f64, n as f64 / 200.0, 0.01))
                    .collect(),
            },
            Line {
                series: "b".into(),
                points: vec![(5.0, 0.1, 0.0), (1.0, 0.05, 0.0)],
            },
            Line {
                series: "c".into(),
                points: vec![],
            },
        ];
        let svg = line_chart("Recall@N", "N", "recall", &lines);
        check_xml(&svg);
        assert_eq!(elements(&svg, "line").len(), 2);
        assert_eq!(elements(&svg, "band").len(), 1);
        // Dots only for the short line; points are drawn in increasing x.
        assert_eq!(svg.matches("<circle").count(), 2);
        let b = elements(&svg, "line")[1];
        let pts = &b[b.find("points=\"").unwrap() + 8..];
        let xs: Vec<f64> = pts[..pts.find('"').unwrap()]
            .split(' ')
            .map(|p| p.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert!(xs[0] < xs[1]);
        // x ticks 0, 20, ..., 100; y ticks 0, 0.2, 0.4, 0.6 (max mean + se = 0.51).
        let ticks: Vec<&str> = elements(&svg, "tick")
            .iter()
            .map(|e| {
                let i = svg.find(e).unwrap() + e.len();
                &svg[i..i + svg[i..].find('<').unwrap()]
            })
            .collect();
        assert_eq!(
            ticks,
            [
                "0.0", "0.2", "0.4", "0.6", "0", "20", "40", "60", "80", "100"
            ]
        );
    }

    #[test]
    fn labels_are_escaped() {
        let nasty = "a<b> & \"c\" 'd'\u{1}";
        let groups = vec![(nasty.to_string(), vec![bar(nasty, 1.0, 0.1)])];
        let svg = bar_chart(nasty, nasty, &groups);
        check_xml(&svg);
        assert!(!svg.contains(nasty));
        assert!(svg.contains("a&lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;\u{FFFD}"));
        let svg = line_chart(
            nasty,
            nasty,
            nasty,
            &[Line {
                series: nasty.into(),
                points: vec![(0.0, 1.0, 0.0)],
            }],
        );
        check_xml(&svg);
        assert!(!svg.contains(nasty));
        assert_eq!(escape("x & y < z"), "x &amp; y &lt; z");
    }

    #[test]
    fn ticks_are_nice() {
        let t = nice_ticks(0.0, 0.51);
        assert_eq!(t.decimals, 1);
        assert_eq!(
            t.values.iter().map(|&v| t.label(v)).collect::<Vec<_>>(),
            ["0.0", "0.2", "0.4", "0.6"]
        );
        let labels = |lo, hi| {
            let t = nice_ticks(lo, hi);
            t.values.iter().map(|&v| t.label(v)).collect::<Vec<_>>()
        };
        assert_eq!(labels(0.0, 1.0), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(labels(0.0, 0.3), ["0.0", "0.1", "0.2", "0.3"]);
        assert_eq!(
            labels(0.0, 0.24),
            ["0.00", "0.05", "0.10", "0.15", "0.20", "0.25"]
        );
        assert_eq!(labels(0.0, 87.0), ["0", "20", "40", "60", "80", "100"]);
        assert_eq!(labels(1.0, 100.0), ["0", "20", "40", "60", "80", "100"]);
        assert_eq!(labels(0.0, 4000.0), ["0", "1000", "2000", "3000", "4000"]);
        assert_eq!(labels(0.0, 0.0123), ["0.000", "0.005", "0.010", "0.015"]);
        assert_eq!(labels(-3.0, 3.0), ["-4", "-2", "0", "2", "4"]);
        // Degenerate ranges still give an increasing axis.
        assert_eq!(labels(0.0, 0.0), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(
            labels(f64::NAN, f64::INFINITY),
            ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
        );
        // Every step is 1, 2 or 5 × 10^k and the count stays around five.
        for hi in [
            0.003, 0.07, 0.9, 1.5, 3.3, 7.0, 12.0, 55.0, 99.0, 640.0, 1e6,
        ] {
            let t = nice_ticks(0.0, hi);
            let step = t.values[1] - t.values[0];
            let mantissa = step / 10f64.powf(step.log10().floor());
            assert!(
                [1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-6),
                "{hi}: step {step}"
            );
            assert!((4..=7).contains(&t.values.len()), "{hi}: {:?}", t.values);
            assert!(t.last() >= hi && t.first() <= 0.0);
        }
    }

    #[test]
    fn bar_heights_are_proportional_to_means() {
        let groups = vec![(
            "g".to_string(),
            vec![bar("a", 0.1, 0.0), bar("b", 0.2, 0.0), bar("c", 0.4, 0.0)],
        )];
        let svg = bar_chart("t", "y", &groups);
        let heights: Vec<f64> = elements(&svg, "bar")
            .iter()
            .map(|e| attr(e, "height"))
            .collect();
        // The axis runs to 0.4 over PLOT_H pixels.
        assert_eq!(heights, [PLOT_H / 4.0, PLOT_H / 2.0, PLOT_H]);
        // Bars stand on the x axis.
        for e in elements(&svg, "bar") {
            assert!((attr(e, "y") + attr(e, "height") - (MARGIN_TOP + PLOT_H)).abs() < 0.011);
        }
        // A series missing from a group leaves its slot: b keeps its x in both groups.
        let groups = vec![
            (
                "g1".to_string(),
                vec![bar("a", 1.0, 0.0), bar("b", 1.0, 0.0)],
            ),
            ("g2".to_string(), vec![bar("b", 1.0, 0.0)]),
        ];
        let svg = bar_chart("t", "y", &groups);
        let xs: Vec<f64> = elements(&svg, "bar").iter().map(|e| attr(e, "x")).collect();
        let group_w = MIN_PLOT_W / 2.0;
        assert!((xs[2] - xs[1] - group_w).abs() < 0.011);
    }

    #[test]
    fn non_finite_values_are_zero() {
        let groups = vec![(
            "g".to_string(),
            vec![
                bar("a", f64::NAN, f64::INFINITY),
                bar("b", 0.5, f64::NAN),
                bar("c", -0.2, -1.0),
            ],
        )];
        let svg = bar_chart("t", "y", &groups);
        check_xml(&svg);
        for bad in ["NaN", "inf", "-0.00"] {
            assert!(!svg.contains(bad), "{bad} in output");
        }
        let heights: Vec<f64> = elements(&svg, "bar")
            .iter()
            .map(|e| attr(e, "height"))
            .collect();
        assert_eq!(heights, [0.0, PLOT_H, 0.0]);
        let lines = [Line {
            series: "x".into(),
            points: vec![
                (f64::NAN, 1.0, 0.1),
                (2.0, f64::NEG_INFINITY, 0.0),
                (f64::INFINITY, 0.5, f64::NAN),
            ],
        }];
        let svg = line_chart("t", "x", "y", &lines);
        check_xml(&svg);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn empty_input_says_no_data() {
        for svg in [
            bar_chart("empty", "y", &[]),
            bar_chart("empty", "y", &[("g".to_string(), vec![])]),
            line_chart("empty", "x", "y", &[]),
            line_chart(
                "empty",
                "x",
                "y",
                &[Line {
                    series: "a".into(),
                    points: vec![],
                }],
            ),
        ] {
            check_xml(&svg);
            assert!(svg.contains(">no data</text>"));
            assert!(svg.contains(">empty</text>"));
        }
    }

    #[test]
    fn output_is_deterministic() {
        let a = bar_chart("t", "y", &sample_groups());
        assert_eq!(a, bar_chart("t", "y", &sample_groups()));
        let lines = || {
            (0..14)
                .map(|i| Line {
                    series: format!("s{i}"),
                    points: (1..=20)
                        .map(|n| (n as f64, (n * (i + 1)) as f64 / 3.0, 0.1))
                        .collect(),
                })
                .collect::<Vec<_>>()
        };
        let a = line_chart("t", "x", "y", &lines());
        assert_eq!(a, line_chart("t", "x", "y", &lines()));
        check_xml(&a);
        // Colours cycle after twelve series; the second cycle is dashed.
        assert_eq!(a.matches(&format!("stroke=\"{}\"", PALETTE[0])).count(), 4);
        assert!(a.contains("stroke-dasharray=\"7 4\""));
    }
}
