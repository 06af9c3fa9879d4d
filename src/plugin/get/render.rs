//! The text of `get rollout`: a header (status, strategy, step, weights, images with their
//! roles, replica counts) and a tree of revisions → ReplicaSets → pods, with the AnalysisRuns
//! of each revision. Pure: objects and `now` in, text out.

use super::super::output::{Colour, age, pad, paint, seconds_since};
use super::super::summary;
use crate::crd::{AnalysisPhase, AnalysisRun, POD_TEMPLATE_HASH_LABEL, Rollout};
use crate::engine::baseline::{BASELINE_ROLE, ROLE_LABEL};
use crate::engine::{REVISION_ANNOTATION, SCALE_DOWN_DEADLINE_ANNOTATION};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Everything the view shows, already filtered to the Rollout's own objects.
pub struct Snapshot<'a> {
    pub rollout: &'a Rollout,
    pub replica_sets: Vec<&'a ReplicaSet>,
    pub pods: Vec<&'a Pod>,
    pub runs: Vec<&'a AnalysisRun>,
}

/// One line of the tree: its indentation prefix, icon and name, and the columns.
struct Row {
    name: String,
    kind: &'static str,
    status: String,
    age: String,
    info: String,
}

/// Renders the header and the tree.
pub fn render(s: &Snapshot, now: jiff::Timestamp, color: bool) -> String {
    let mut out = header(s, color);
    out.push('\n');
    out.push_str(&tree(s, now, color));
    out
}

fn header(s: &Snapshot, color: bool) -> String {
    let r = s.rollout;
    let status = r.status.clone().unwrap_or_default();
    let mut out = String::new();
    let mut field = |key: &str, value: &str| {
        let key = if key.is_empty() {
            String::new()
        } else {
            format!("{key}:")
        };
        let line = format!("{}{value}", pad(&key, 17));
        let _ = writeln!(out, "{}", line.trim_end());
    };
    field("Name", r.metadata.name.as_deref().unwrap_or_default());
    field(
        "Namespace",
        r.metadata.namespace.as_deref().unwrap_or_default(),
    );
    field("Status", &summary::status_icon(r, color));
    let message = summary::message(r);
    if !message.is_empty() {
        field("Message", &message);
    }
    field("Strategy", summary::strategy(r));
    if let Some(step) = summary::step(r) {
        field("  Step", &step);
    }
    if let Some(w) = summary::set_weight(r) {
        field("  SetWeight", &w.to_string());
    }
    if let Some(w) = summary::actual_weight(r) {
        field("  ActualWeight", &w.to_string());
    }
    let images = images(s);
    for (i, line) in images.iter().enumerate() {
        field(if i == 0 { "Images" } else { "" }, line);
    }
    field("Replicas", "");
    let n = |v: Option<i32>| v.unwrap_or(0).to_string();
    field("  Desired", &r.spec.replicas.unwrap_or(1).to_string());
    field("  Current", &n(status.replicas));
    field("  Updated", &n(status.updated_replicas));
    field("  Ready", &n(status.ready_replicas));
    field("  Available", &n(status.available_replicas));
    out
}

/// Each image with the roles of the ReplicaSets running it: `example/app:1 (stable)`.
fn images(s: &Snapshot) -> Vec<String> {
    let mut by_image: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for rs in &s.replica_sets {
        let roles = roles(s.rollout, rs);
        if roles.is_empty() {
            continue;
        }
        let containers = rs
            .spec
            .as_ref()
            .and_then(|spec| spec.template.as_ref())
            .and_then(|t| t.spec.as_ref())
            .map(|p| p.containers.clone())
            .unwrap_or_default();
        for c in containers {
            let entry = by_image.entry(c.image.unwrap_or_default()).or_default();
            for role in &roles {
                if !entry.contains(role) {
                    entry.push(role);
                }
            }
        }
    }
    by_image
        .into_iter()
        .map(|(image, roles)| format!("{image} ({})", roles.join(", ")))
        .collect()
}

fn hash(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<&str> {
    meta.labels
        .as_ref()?
        .get(POD_TEMPLATE_HASH_LABEL)
        .map(String::as_str)
}

/// A canary's baseline ReplicaSet (`rollout.sluice.dev/role: baseline`).
fn is_baseline(rs: &ReplicaSet) -> bool {
    rs.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ROLE_LABEL))
        .is_some_and(|role| role == BASELINE_ROLE)
}

/// The roles of a ReplicaSet: stable, canary and baseline, or active and preview for
/// blue/green.
fn roles(r: &Rollout, rs: &ReplicaSet) -> Vec<&'static str> {
    let Some(status) = r.status.as_ref() else {
        return Vec::new();
    };
    if is_baseline(rs) {
        return vec!["baseline"];
    }
    let h = hash(&rs.metadata);
    let mut roles = Vec::new();
    if h.is_some() && h == status.stable_rs.as_deref() {
        roles.push("stable");
    }
    if let Some(bg) = status.blue_green.as_ref() {
        if h.is_some() && h == bg.active_selector.as_deref() {
            roles.push("active");
        }
        if h.is_some() && h == bg.preview_selector.as_deref() && h != bg.active_selector.as_deref()
        {
            roles.push("preview");
        }
    } else if h.is_some() && h == status.current_pod_hash.as_deref() && !summary::promoted(r) {
        roles.push("canary");
    }
    roles
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A ReplicaSet's heading in the tree: its revision, and `baseline` for a canary's baseline.
fn heading(rs: &ReplicaSet) -> String {
    let suffix = if is_baseline(rs) { " baseline" } else { "" };
    format!("revision:{}{suffix}", revision(rs))
}

fn tree(s: &Snapshot, now: jiff::Timestamp, color: bool) -> String {
    let r = s.rollout;
    let mut rows = vec![Row {
        name: format!("⟳ {}", r.metadata.name.as_deref().unwrap_or_default()),
        kind: "Rollout",
        status: summary::status_icon(r, color),
        age: age(seconds_since(r.metadata.creation_timestamp.as_ref(), now)),
        info: String::new(),
    }];
    let mut sets = s.replica_sets.clone();
    // A baseline shares its canary's revision; it follows the canary.
    sets.sort_by_key(|rs| (std::cmp::Reverse(revision(rs)), is_baseline(rs)));
    for (i, rs) in sets.iter().enumerate() {
        let last_revision = i + 1 == sets.len();
        let (branch, below) = if last_revision {
            ("└──", "   ")
        } else {
            ("├──", "│  ")
        };
        rows.push(Row {
            name: format!("{branch}# {}", heading(rs)),
            kind: "",
            status: String::new(),
            age: String::new(),
            info: String::new(),
        });
        let h = hash(&rs.metadata);
        let mut runs: Vec<&AnalysisRun> = s
            .runs
            .iter()
            .copied()
            .filter(|run| h.is_some() && hash(&run.metadata) == h)
            .collect();
        runs.sort_by_key(|run| run.metadata.creation_timestamp.clone().map(|t| t.0));
        let children = 1 + runs.len();
        rows.push(replica_set_row(s, rs, below, children == 1, now, color));
        let inner = if children == 1 { "   " } else { "│  " };
        let mut pods: Vec<&Pod> = s
            .pods
            .iter()
            .copied()
            .filter(|p| owned_by(&p.metadata, rs.metadata.uid.as_deref()))
            .collect();
        pods.sort_by_key(|p| p.metadata.name.clone());
        for (j, pod) in pods.iter().enumerate() {
            let twig = if j + 1 == pods.len() {
                "└──"
            } else {
                "├──"
            };
            rows.push(pod_row(pod, &format!("{below}{inner}{twig}"), now, color));
        }
        for (j, run) in runs.iter().enumerate() {
            let twig = if j + 1 == runs.len() {
                "└──"
            } else {
                "├──"
            };
            rows.push(run_row(run, &format!("{below}{twig}"), now, color));
        }
    }
    table(rows)
}

fn owned_by(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    uid: Option<&str>,
) -> bool {
    uid.is_some_and(|uid| {
        meta.owner_references
            .as_ref()
            .is_some_and(|refs| refs.iter().any(|o| o.uid == uid))
    })
}

fn replica_set_row(
    s: &Snapshot,
    rs: &ReplicaSet,
    below: &str,
    only_child: bool,
    now: jiff::Timestamp,
    color: bool,
) -> Row {
    let twig = if only_child { "└──" } else { "├──" };
    let desired = rs.spec.as_ref().and_then(|x| x.replicas).unwrap_or(0);
    let ready = rs
        .status
        .as_ref()
        .and_then(|x| x.ready_replicas)
        .unwrap_or(0);
    let status = if desired == 0 {
        paint(color, Colour::Grey, "• ScaledDown")
    } else if ready >= desired {
        paint(color, Colour::Green, "✔ Healthy")
    } else {
        paint(color, Colour::Blue, "◌ Progressing")
    };
    let mut info: Vec<String> = roles(s.rollout, rs).iter().map(|r| r.to_string()).collect();
    if let Some(deadline) = rs
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SCALE_DOWN_DEADLINE_ANNOTATION))
        .and_then(|v| v.parse::<jiff::Timestamp>().ok())
    {
        let left = deadline.as_second() - now.as_second();
        info.push(if left > 0 {
            format!("delay:{left}s")
        } else {
            "delay:passed".to_string()
        });
    }
    Row {
        name: format!(
            "{below}{twig}⧉ {}",
            rs.metadata.name.as_deref().unwrap_or_default()
        ),
        kind: "ReplicaSet",
        status,
        age: age(seconds_since(rs.metadata.creation_timestamp.as_ref(), now)),
        info: info.join(","),
    }
}

fn pod_row(pod: &Pod, prefix: &str, now: jiff::Timestamp, color: bool) -> Row {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    let total = pod.spec.as_ref().map_or(0, |s| s.containers.len());
    let ready = statuses.iter().filter(|c| c.ready).count();
    let restarts: i32 = statuses.iter().map(|c| c.restart_count).sum();
    let waiting = statuses
        .iter()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".to_string());
    let status = match waiting {
        Some(reason) => paint(color, Colour::Red, &format!("✖ {reason}")),
        None if total > 0 && ready == total => paint(color, Colour::Green, &format!("✔ {phase}")),
        None => paint(color, Colour::Blue, &format!("◌ {phase}")),
    };
    let mut info = format!("ready:{ready}/{total}");
    if restarts > 0 {
        let _ = write!(info, ",restarts:{restarts}");
    }
    Row {
        name: format!(
            "{prefix}□ {}",
            pod.metadata.name.as_deref().unwrap_or_default()
        ),
        kind: "Pod",
        status,
        age: age(seconds_since(pod.metadata.creation_timestamp.as_ref(), now)),
        info,
    }
}

fn run_row(run: &AnalysisRun, prefix: &str, now: jiff::Timestamp, color: bool) -> Row {
    let status = run.status.clone().unwrap_or_default();
    let (icon, colour) = match status.phase {
        Some(AnalysisPhase::Successful) => ("✔", Colour::Green),
        Some(AnalysisPhase::Failed | AnalysisPhase::Error) => ("✖", Colour::Red),
        Some(AnalysisPhase::Inconclusive) => ("⚠", Colour::Yellow),
        Some(AnalysisPhase::Running) | Some(AnalysisPhase::Pending) | None => ("◌", Colour::Blue),
    };
    let phase = status
        .phase
        .map_or_else(|| "Pending".to_string(), |p| format!("{p:?}"));
    // The counters, not the measurements: the history is bounded.
    let (ok, failed) = status
        .metric_results
        .iter()
        .fold((0, 0), |(ok, failed), m| {
            (ok + m.successful, failed + m.failed + m.error)
        });
    let mut info = Vec::new();
    if ok > 0 {
        info.push(format!("✔ {ok}"));
    }
    if failed > 0 {
        info.push(format!("✖ {failed}"));
    }
    if let Some(score) = status.judgement.as_ref().map(|j| j.latest.score) {
        info.push(format!("score:{score:.0}"));
    }
    Row {
        name: format!(
            "{prefix}α {}",
            run.metadata.name.as_deref().unwrap_or_default()
        ),
        kind: "AnalysisRun",
        status: paint(color, colour, &format!("{icon} {phase}")),
        age: age(seconds_since(run.metadata.creation_timestamp.as_ref(), now)),
        info: info.join(","),
    }
}

fn table(rows: Vec<Row>) -> String {
    let width = |f: &dyn Fn(&Row) -> &str, head: &str| {
        rows.iter()
            .map(|r| super::super::output::visible_width(f(r)))
            .chain([head.len()])
            .max()
            .unwrap_or(0)
    };
    let (wn, wk, ws, wa) = (
        width(&|r| &r.name, "NAME"),
        width(&|r| r.kind, "KIND"),
        width(&|r| &r.status, "STATUS"),
        width(&|r| &r.age, "AGE"),
    );
    let mut out = String::new();
    let mut line = |n: &str, k: &str, s: &str, a: &str, i: &str| {
        let text = format!(
            "{}  {}  {}  {}  {i}",
            pad(n, wn),
            pad(k, wk),
            pad(s, ws),
            pad(a, wa)
        );
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line("NAME", "KIND", "STATUS", "AGE", "INFO");
    for r in &rows {
        line(&r.name, r.kind, &r.status, &r.age, &r.info);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rs(
        name: &str,
        hash: &str,
        revision: &str,
        replicas: i32,
        extra: serde_json::Value,
    ) -> ReplicaSet {
        let mut value = json!({
            "metadata": {
                "name": name, "uid": name,
                "labels": {POD_TEMPLATE_HASH_LABEL: hash},
                "annotations": {REVISION_ANNOTATION: revision},
            },
            "spec": {"replicas": replicas, "selector": {}, "template": {"spec": {"containers": [{"name": "app", "image": format!("app:{revision}")}]}}},
            "status": {"replicas": replicas, "readyReplicas": replicas},
        });
        if let Some(annotations) = extra.as_object() {
            for (k, v) in annotations {
                value["metadata"]["annotations"][k] = v.clone();
            }
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn analysis_runs_show_their_counts_and_score_and_delays_count_down() {
        let rollout: Rollout = serde_json::from_value(json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"replicas": 1, "strategy": {"canary": {"steps": [{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "t"}]}}]}}},
            "status": {"phase": "Progressing", "currentPodHash": "b", "stableRS": "a", "currentStepIndex": 1}
        }))
        .unwrap();
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let old = rs(
            "web-a",
            "a",
            "1",
            1,
            json!({SCALE_DOWN_DEADLINE_ANNOTATION: "2026-01-01T00:00:25Z"}),
        );
        let new = rs("web-b", "b", "2", 1, json!({}));
        let run: AnalysisRun = serde_json::from_value(json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": "web-b-2-1", "labels": {POD_TEMPLATE_HASH_LABEL: "b"}},
            "spec": {"metrics": []},
            "status": {"phase": "Running", "judgement": {
                "score": 87.4, "result": "Marginal", "reason": null, "groups": [], "metrics": [],
                "judgedAt": "2026-01-01T00:00:00Z", "control": "baseline"
            }, "metricResults": [
                {"name": "errors", "phase": "Running", "count": 4, "successful": 3, "failed": 1},
                {"name": "latency", "phase": "Running", "count": 2, "successful": 1, "error": 1}
            ]}
        }))
        .unwrap();
        let snapshot = Snapshot {
            rollout: &rollout,
            replica_sets: vec![&old, &new],
            pods: vec![],
            runs: vec![&run],
        };
        let text = render(&snapshot, now, false);
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no {needle} in:\n{text}"))
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            line("α web-b-2-1"),
            "│ └──α web-b-2-1 AnalysisRun ◌ Running 0s ✔ 4,✖ 2,score:87",
            "{text}"
        );
        assert_eq!(
            line("⧉ web-a"),
            "└──⧉ web-a ReplicaSet ✔ Healthy 0s stable,delay:25s",
            "{text}"
        );
        assert_eq!(
            line("⧉ web-b"),
            "│ ├──⧉ web-b ReplicaSet ✔ Healthy 0s canary",
            "{text}"
        );
        assert!(
            text.contains("  Step:          1/2\n  SetWeight:     50\n"),
            "{text}"
        );
    }
}
