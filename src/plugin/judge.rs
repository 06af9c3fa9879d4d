//! `kubectl sluice judge`: runs the canary judge on a JSON file (or stdin) and prints the
//! judgement as JSON or as a table. Reads only the given file; talks to no cluster.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use sluice_analysis::Judgement;
use sluice_analysis::classify::{MetricResult, SideStats};

/// Judge canary against baseline metrics from a JSON file, offline.
#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// Input JSON (see docs/judge.md); `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "INPUT.json")]
    pub file: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// Output formats of `judge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
    Table,
}

/// Runs the verb. The exit status is 0 for any verdict; read `result` for Pass/Marginal/Fail.
///
/// # Errors
/// When the input cannot be read or is invalid (the message names the field).
pub fn run(args: &JudgeArgs) -> anyhow::Result<()> {
    let text = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the judge input from stdin")?;
        text
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?
    };
    let request = sluice_analysis::input::parse(&text).context("invalid judge input")?;
    let judgement = sluice_analysis::judge_owned(request);
    let text = match args.output {
        Output::Json => format!("{}\n", serde_json::to_string_pretty(&judgement)?),
        Output::Table => table(&judgement),
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing the judgement")
        }
        _ => Ok(()),
    }
}

/// The judgement for people: one line per metric, then groups and the verdict.
fn table(j: &Judgement) -> String {
    let mut rows = vec![[
        "METRIC".to_owned(),
        "GROUP".to_owned(),
        "CLASS".to_owned(),
        "ESTIMATE".to_owned(),
        "INTERVAL".to_owned(),
        "P-VALUE".to_owned(),
        "RATIO".to_owned(),
        "CANARY".to_owned(),
        "BASELINE".to_owned(),
    ]];
    for m in &j.metrics {
        rows.push(metric_row(m));
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    let reasons: Vec<&MetricResult> = j.metrics.iter().filter(|m| m.reason.is_some()).collect();
    if !reasons.is_empty() {
        let _ = writeln!(out);
        for m in reasons {
            let _ = writeln!(out, "{}: {}", m.name, m.reason.as_deref().unwrap_or(""));
        }
    }
    let _ = writeln!(out);
    for g in &j.groups {
        let score = g
            .score
            .map_or("no scored metric".to_owned(), |s| format!("{s:.2}"));
        let _ = writeln!(out, "group {}: {score}", g.name);
    }
    let _ = writeln!(out, "score: {:.2}  result: {:?}", j.score, j.result);
    if let Some(reason) = &j.reason {
        let _ = writeln!(out, "reason: {reason}");
    }
    out
}

fn metric_row(m: &MetricResult) -> [String; 9] {
    let class = format!(
        "{:?}{}{}",
        m.classification,
        if m.critical { " (critical)" } else { "" },
        if m.muted { " (muted)" } else { "" }
    );
    let (estimate, interval, p, ratio) = match &m.statistics {
        Some(s) => (
            short(s.estimate),
            format!(
                "[{}, {}] {}%",
                short(s.confidence_interval.lower),
                short(s.confidence_interval.upper),
                short(s.confidence_interval.level * 100.0)
            ),
            format!("{:.3e} {:?}", s.p_value, s.p_value_method),
            short(s.mean_ratio),
        ),
        None => ("-".into(), "-".into(), "-".into(), "-".into()),
    };
    [
        m.name.clone(),
        m.group.clone(),
        class,
        estimate,
        interval,
        p,
        ratio,
        side(m.experiment.as_ref()),
        side(m.control.as_ref()),
    ]
}

fn side(s: Option<&SideStats>) -> String {
    match s {
        Some(SideStats::Sample(d)) => format!("n={} median={}", d.count, short(d.median)),
        Some(SideStats::Counts { events, total, .. }) => format!("{events}/{}", short(*total)),
        None => "-".into(),
    }
}

fn short(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "∞".into() } else { "-∞".into() }
    } else if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-3) {
        format!("{v:.4e}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}
