//! The simulated Job controller and the kubelet's part for pods that run to completion: a Job
//! gets pods from its template (owned by it, with the job-name labels), each pod ends
//! Succeeded or Failed after the ready delay (Failed when its behaviour is `Fail` or
//! `CrashLoop`), failures are
//! retried at once up to `backoffLimit`, and the Job's status and `Complete`/`Failed` conditions
//! follow, as the batch/v1 controller writes them. Acts only through `Sim`.

use super::{PodBehaviour, Sim, gr, key_of, pods};
use crate::playground::store::Key;
use serde_json::{Value, json};
use std::sync::Arc;

const JOB_CONTROLLER: &str = "job-controller";

fn int_or(v: &Value, p: &str, default: i64) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(default)
}

fn uid(v: &Value) -> &str {
    v.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn condition_true(job: &Value, ty: &str) -> bool {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == ty && c["status"] == "True"))
}

/// The kubelet ends a running pod of a Job: its containers exit 0, or 1 for a `Fail` pod.
pub fn finish_pod(sim: &Sim, key: &Key) {
    let pods_gr = gr("", "pods");
    let Some(pod) = sim.get(&pods_gr, key) else {
        return;
    };
    if pod.pointer("/metadata/deletionTimestamp").is_some() || phase(&pod) != "Running" {
        return;
    }
    let failed = matches!(
        pods::behaviour(sim, &pod),
        PodBehaviour::Fail | PodBehaviour::CrashLoop
    );
    let now = crate::playground::ops::now();
    let (phase, code, reason) = if failed {
        ("Failed", 1, "Error")
    } else {
        ("Succeeded", 0, "Completed")
    };
    let mut status = pod.get("status").cloned().unwrap_or_else(|| json!({}));
    status["phase"] = json!(phase);
    for c in status
        .get_mut("containerStatuses")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        c["ready"] = json!(false);
        c["started"] = json!(false);
        c["state"] = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": now, "finishedAt": now}});
    }
    for c in status
        .get_mut("conditions")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if c["type"] == "Ready" || c["type"] == "ContainersReady" {
            c["status"] = json!("False");
            c["reason"] = json!("PodCompleted");
            c["lastTransitionTime"] = json!(now);
        }
    }
    sim.set_status(&pods_gr, &pod, status, "kubelet");
}

/// The Job's pods, newest state from the store.
fn owned_pods(sim: &Sim, job: &Value) -> Vec<Arc<Value>> {
    let pods_gr = gr("", "pods");
    sim.api
        .store
        .dependents(uid(job))
        .into_iter()
        .filter(|(r, _)| *r == pods_gr)
        .filter_map(|(_, k)| sim.get(&pods_gr, &k))
        .filter(|p| {
            super::controller_of(p).is_some_and(|(kind, _)| kind == "Job")
                && p.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid(job)))
        })
        .collect()
}

fn create_pod(sim: &Sim, job: &Value, key: &Key) {
    let template = job.pointer("/spec/template").cloned().unwrap_or_default();
    let name = format!("{}-{}", key.1, sim.api.suffix());
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": key.0,
            "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
            "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": key.1, "uid": uid(job), "controller": true, "blockOwnerDeletion": true}]},
        "spec": template.get("spec").cloned().unwrap_or(json!({})),
    });
    if sim
        .create(&gr("", "pods"), &key.0, pod, JOB_CONTROLLER)
        .is_some()
    {
        sim.event(
            job,
            "SuccessfulCreate",
            format!("Created pod: {name}"),
            JOB_CONTROLLER,
        );
    }
}

/// Reconcile one Job: start pods until enough succeeded or too many failed, then status.
pub fn job(sim: &Sim, key: &Key) {
    let jobs = gr("batch", "jobs");
    let Some(job) = sim.get(&jobs, key) else {
        return;
    };
    if job.pointer("/metadata/deletionTimestamp").is_some()
        || condition_true(&job, "Complete")
        || condition_true(&job, "Failed")
    {
        return;
    }
    let pods = owned_pods(sim, &job);
    let count = |ph: &str| pods.iter().filter(|p| phase(p) == ph).count() as i64;
    let (succeeded, failed) = (count("Succeeded"), count("Failed"));
    let active: Vec<&Arc<Value>> = pods
        .iter()
        .filter(|p| {
            !matches!(phase(p), "Succeeded" | "Failed")
                && p.pointer("/metadata/deletionTimestamp").is_none()
        })
        .collect();
    let completions = int_or(&job, "/spec/completions", 1);
    let parallelism = int_or(&job, "/spec/parallelism", 1);
    let backoff_limit = int_or(&job, "/spec/backoffLimit", 6);
    let suspended = job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    let now = crate::playground::ops::now();
    let mut status = job.get("status").cloned().unwrap_or_else(|| json!({}));
    if status.get("startTime").is_none() && !suspended {
        status["startTime"] = json!(now);
    }
    let cond = |ty: &str, reason: &str, message: &str| json!({"type": ty, "status": "True", "reason": reason, "message": message, "lastProbeTime": now, "lastTransitionTime": now});
    let mut active_count = active.len() as i64;
    if succeeded >= completions {
        status["conditions"] = json!([
            cond(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods"
            ),
            cond(
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods"
            ),
        ]);
        status["completionTime"] = json!(now);
        sim.event(&job, "Completed", "Job completed".into(), JOB_CONTROLLER);
    } else if failed > backoff_limit {
        let message = "Job has reached the specified backoff limit";
        status["conditions"] = json!([
            cond("FailureTarget", "BackoffLimitExceeded", message),
            cond("Failed", "BackoffLimitExceeded", message),
        ]);
        for p in &active {
            sim.delete(&gr("", "pods"), &key_of(p));
        }
        active_count = 0;
        sim.event(&job, "BackoffLimitExceeded", message.into(), JOB_CONTROLLER);
    } else if !suspended {
        // Failures are retried at once; the real controller backs off exponentially (10 s, 20 s…).
        let want = parallelism.min(completions - succeeded);
        for _ in active_count..want {
            create_pod(sim, &job, key);
        }
        active_count = active_count.max(want);
    }
    status["active"] = json!(active_count);
    status["succeeded"] = json!(succeeded);
    status["failed"] = json!(failed);
    status["ready"] = json!(0);
    status["terminating"] = json!(0);
    status["uncountedTerminatedPods"] = json!({});
    if let Some(m) = status.as_object_mut() {
        m.retain(|k, v| v.as_i64() != Some(0) || k == "ready" || k == "terminating");
    }
    sim.set_status(&jobs, &job, status, JOB_CONTROLLER);
}
