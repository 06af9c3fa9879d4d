//! The `job` metric provider: a measurement is a `batch/v1` Job in the run's namespace, owned
//! by the AnalysisRun and named from the run's uid, the metric and the measurement's index, so
//! a retried measurement finds the Job it already created. The Job completing is success; the
//! Job failing is failure. Touches the Kubernetes API only: create, get and delete of Jobs.

use super::{MeasureRequest, MetricProvider, Outcome, ProviderError};
use crate::crd::{AnalysisPhase, FIELD_MANAGER, JobMetric, Measurement};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

/// Label on a measurement's Job: the uid of the AnalysisRun it belongs to.
pub const RUN_UID_LABEL: &str = "sluice.dev/analysis-run-uid";
/// Label on a measurement's Job: its metric's name, made a valid label value.
pub const METRIC_LABEL: &str = "sluice.dev/metric";
/// Key of the measurement metadata that names the Job.
pub const JOB_NAME_KEY: &str = "job-name";
/// How long after creating or looking at a Job to look again, by default.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// Job names become a label value on their pods (`job-name`), so they keep to 63 characters.
const MAX_NAME: usize = 63;

/// The `job` provider.
pub struct JobProvider {
    client: kube::Client,
    poll: Duration,
}

impl JobProvider {
    /// A provider creating Jobs through `client`, looking at them every `DEFAULT_POLL`.
    pub fn new(client: kube::Client) -> Self {
        JobProvider {
            client,
            poll: DEFAULT_POLL,
        }
    }

    /// Changes how long after a look the provider asks to look again.
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    fn jobs(&self, namespace: &str) -> Api<Job> {
        Api::namespaced(self.client.clone(), namespace)
    }
}

/// `text` lower-cased with every character outside `[a-z0-9-]` replaced by `-`, without
/// leading or trailing `-`: one DNS label.
fn dns_label(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    mapped.trim_matches('-').to_string()
}

fn short_digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The Job of measurement `index` of `metric` in the run with uid `run_uid`:
/// `<runUID>.<metric>.<index>` as Argo Rollouts names it, at most 63 characters and DNS-safe.
/// A metric name that had to be shortened or changed gets a digest of the original, so two
/// metrics never share a Job.
pub fn job_name(run_uid: &str, metric: &str, index: i32) -> String {
    let run = dns_label(run_uid);
    let mut label = dns_label(metric);
    let tail = format!(".{index}");
    let room = MAX_NAME.saturating_sub(run.len() + 1 + tail.len());
    if label != metric || label.len() > room || label.is_empty() {
        let digest = short_digest(metric);
        let keep = room.saturating_sub(digest.len() + 1);
        label.truncate(keep);
        let label_trimmed = label.trim_end_matches('-');
        label = if label_trimmed.is_empty() {
            digest
        } else {
            format!("{label_trimmed}-{digest}")
        };
    }
    format!("{run}.{label}{tail}")
}

/// The metric's name as a label value (at most 63 characters of `[a-z0-9-]`).
fn metric_label(metric: &str) -> String {
    let mut label = dns_label(metric);
    label.truncate(MAX_NAME);
    label.trim_end_matches('-').to_string()
}

/// The Job for one measurement, arguments substituted into its spec.
fn build(req: &MeasureRequest<'_>, metric: &JobMetric, name: &str) -> Result<Job, ProviderError> {
    let spec = if metric.spec.to_string().contains("{{") {
        req.args.substitute_json(&metric.spec)?
    } else {
        metric.spec.clone()
    };
    let mut labels = metric
        .metadata
        .as_ref()
        .map(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(RUN_UID_LABEL.to_string(), req.run_uid.to_string());
    labels.insert(METRIC_LABEL.to_string(), metric_label(&req.metric.name));
    let annotations = metric
        .metadata
        .as_ref()
        .map(|m| m.annotations.clone())
        .unwrap_or_default();
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {
            "name": name, "namespace": req.namespace, "labels": labels, "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "sluice.dev/v1alpha1", "kind": "AnalysisRun", "name": req.run_name,
                "uid": req.run_uid, "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
    });
    serde_json::from_value(job).map_err(|e| {
        ProviderError::Config(format!(
            "the job metric {}'s spec is not a batch/v1 JobSpec: {e}",
            req.metric.name
        ))
    })
}

fn owned_by(job: &Job, run_uid: &str) -> bool {
    job.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.uid == run_uid && r.controller == Some(true))
}

/// The Job named by the measurement (or, for a measurement that lost its metadata, the name it
/// would have).
fn name_of(req: &MeasureRequest<'_>, measurement: &Measurement) -> String {
    measurement
        .metadata
        .get(JOB_NAME_KEY)
        .cloned()
        .unwrap_or_else(|| job_name(req.run_uid, &req.metric.name, req.index))
}

/// The Job's `Complete` or `Failed` condition when it is `True`.
fn finished(job: &Job) -> Option<(AnalysisPhase, Option<String>)> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    let is_true = |ty: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == ty && c.status == "True")
    };
    if is_true("Complete").is_some() {
        return Some((AnalysisPhase::Successful, None));
    }
    let failed = is_true("Failed")?;
    let message = match (&failed.reason, &failed.message) {
        (Some(r), Some(m)) => format!("{r}: {m}"),
        (Some(t), None) | (None, Some(t)) => t.clone(),
        (None, None) => "the Job failed".to_string(),
    };
    Some((AnalysisPhase::Failed, Some(message)))
}

fn api_error(verb: &'static str, name: &str, source: kube::Error) -> ProviderError {
    ProviderError::Api {
        verb,
        kind: "Job",
        name: name.to_string(),
        source,
    }
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

#[async_trait::async_trait]
impl MetricProvider for JobProvider {
    fn kind(&self) -> &'static str {
        "job"
    }

    async fn measure(&self, req: &MeasureRequest<'_>) -> Result<Outcome, ProviderError> {
        let metric = req.metric.provider.job.as_ref().ok_or_else(|| {
            ProviderError::Config(format!("metric {} has no job provider", req.metric.name))
        })?;
        let name = job_name(req.run_uid, &req.metric.name, req.index);
        let job = build(req, metric, &name)?;
        let jobs = self.jobs(req.namespace);
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PostParams::default()
        };
        match jobs.create(&params, &job).await {
            Ok(_) => {}
            // An earlier attempt of this measurement created it (the status write was lost).
            Err(e) if is_status(&e, 409) => {
                let existing = jobs
                    .get(&name)
                    .await
                    .map_err(|e| api_error("get", &name, e))?;
                if !owned_by(&existing, req.run_uid) {
                    return Err(ProviderError::Config(format!(
                        "a Job named {name} already exists in {} and does not belong to \
                         AnalysisRun {}",
                        req.namespace, req.run_name
                    )));
                }
            }
            Err(e) => return Err(api_error("create", &name, e)),
        }
        Ok(Outcome::InProgress {
            resume_after: self.poll,
            metadata: BTreeMap::from([(JOB_NAME_KEY.to_string(), name)]),
        })
    }

    async fn resume(
        &self,
        req: &MeasureRequest<'_>,
        measurement: &Measurement,
    ) -> Result<Outcome, ProviderError> {
        let name = name_of(req, measurement);
        let job = match self.jobs(req.namespace).get(&name).await {
            Ok(job) => job,
            Err(e) if is_status(&e, 404) => {
                return Err(ProviderError::Response(format!(
                    "the Job {name} of this measurement no longer exists"
                )));
            }
            Err(e) => return Err(api_error("get", &name, e)),
        };
        let metadata = BTreeMap::from([(JOB_NAME_KEY.to_string(), name)]);
        Ok(match finished(&job) {
            Some((phase, message)) => Outcome::Phase {
                phase,
                message,
                metadata,
            },
            None => Outcome::InProgress {
                resume_after: self.poll,
                metadata,
            },
        })
    }

    async fn terminate(
        &self,
        req: &MeasureRequest<'_>,
        measurement: &Measurement,
    ) -> Result<(), ProviderError> {
        let name = name_of(req, measurement);
        match self
            .jobs(req.namespace)
            .delete(&name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(api_error("delete", &name, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_argo_and_stay_dns_safe_and_distinct() {
        let uid = "0b7c6a5e-1111-2222-3333-444455556666";
        assert_eq!(job_name(uid, "smoke", 2), format!("{uid}.smoke.2"));
        let long = "a-very-long-metric-name-that-cannot-possibly-fit-in-the-name";
        let a = job_name(uid, long, 0);
        let b = job_name(uid, &format!("{long}-2"), 0);
        let c = job_name(uid, "Smoke_Test", 0);
        let d = job_name(uid, "smoke-test", 0);
        for n in [&a, &b, &c, &d] {
            assert!(n.len() <= 63, "{n} is {} long", n.len());
            assert!(
                n.chars().all(|ch| ch.is_ascii_lowercase()
                    || ch.is_ascii_digit()
                    || ch == '-'
                    || ch == '.'),
                "{n}"
            );
            assert!(
                n.split('.')
                    .all(|l| !l.starts_with('-') && !l.ends_with('-')),
                "{n}"
            );
        }
        assert_ne!(a, b);
        assert_ne!(c, d);
        assert_eq!(a, job_name(uid, long, 0), "the name is deterministic");
    }

    #[test]
    fn the_job_is_owned_by_the_run_and_labelled_with_it() {
        let metric: crate::crd::Metric = serde_json::from_value(json!({
            "name": "Smoke",
            "provider": {"job": {
                "metadata": {"labels": {"team": "shop"}},
                "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "t", "image": "curl"}]}}},
            }},
        }))
        .unwrap();
        let args = super::super::Args::default();
        let req = MeasureRequest {
            namespace: "shop",
            run_name: "run-1",
            run_uid: "uid-1",
            metric: &metric,
            args: &args,
            index: 0,
            now: jiff::Timestamp::UNIX_EPOCH,
        };
        let Some(job_metric) = metric.provider.job.as_ref() else {
            panic!("no job metric in {metric:?}");
        };
        let job = serde_json::to_value(build(&req, job_metric, "uid-1.smoke.0").unwrap()).unwrap();
        assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "AnalysisRun");
        assert_eq!(job["metadata"]["labels"][RUN_UID_LABEL], "uid-1");
        assert_eq!(job["metadata"]["labels"][METRIC_LABEL], "smoke");
        assert_eq!(job["metadata"]["labels"]["team"], "shop");
        assert_eq!(job["spec"]["backoffLimit"], 0);

        // A Job found under this name after a 409 is this measurement's only when the run
        // controls it.
        let built = build(&req, job_metric, "uid-1.smoke.0").unwrap();
        assert!(owned_by(&built, "uid-1"));
        assert!(!owned_by(&built, "uid-2"), "another run's Job");
        let mut loose = built.clone();
        for owner in loose.metadata.owner_references.iter_mut().flatten() {
            owner.controller = Some(false);
        }
        assert!(!owned_by(&loose, "uid-1"), "not the controller owner");
        loose.metadata.owner_references = None;
        assert!(!owned_by(&loose, "uid-1"), "nobody's Job");
    }
}
