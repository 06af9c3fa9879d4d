//! A scripted `MetricProvider` for controller tests: per metric, a queue of outcomes (or
//! errors) handed out one per call, an optional delay standing for a slow backend, and a
//! record of every call it saw. Touches nothing outside itself.

use super::{MeasureRequest, MetricProvider, Outcome, ProviderError};
use crate::crd::Measurement;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Which trait method a call was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `measure`.
    Measure,
    /// `resume`.
    Resume,
    /// `terminate`.
    Terminate,
}

/// One call the fake saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Which method.
    pub call: Call,
    /// The run's namespace and name.
    pub run: (String, String),
    /// The metric's name.
    pub metric: String,
    /// The measurement's index (`MeasureRequest::index`).
    pub index: i32,
}

/// A provider that answers from a script.
pub struct FakeProvider {
    kind: &'static str,
    delay: Option<Duration>,
    script: Mutex<HashMap<String, VecDeque<Result<Outcome, ProviderError>>>>,
    seen: Mutex<Vec<Seen>>,
}

/// Locks a mutex; a test that panicked while holding it leaves data still worth reading.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeProvider {
    /// A fake answering for provider `kind` (`"prometheus"`, `"web"`, `"job"`), nothing
    /// scripted yet.
    pub fn new(kind: &'static str) -> Self {
        FakeProvider {
            kind,
            delay: None,
            script: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Every `measure` and `resume` waits this long first (tokio's clock, so a paused clock
    /// skips it).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Queues the answer to the next `measure` or `resume` of `metric`.
    pub fn push(&self, metric: &str, answer: Result<Outcome, ProviderError>) -> &Self {
        lock(&self.script)
            .entry(metric.to_string())
            .or_default()
            .push_back(answer);
        self
    }

    /// Queues a value result (no metadata) for `metric`.
    pub fn push_value(&self, metric: &str, result: serde_json::Value) -> &Self {
        self.push(
            metric,
            Ok(Outcome::Value {
                result,
                metadata: BTreeMap::new(),
            }),
        )
    }

    /// The calls seen so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.seen).clone()
    }

    /// How many answers are still queued for `metric`.
    pub fn remaining(&self, metric: &str) -> usize {
        lock(&self.script).get(metric).map_or(0, VecDeque::len)
    }

    fn record(&self, call: Call, req: &MeasureRequest<'_>) {
        lock(&self.seen).push(Seen {
            call,
            run: (req.namespace.to_string(), req.run_name.to_string()),
            metric: req.metric.name.clone(),
            index: req.index,
        });
    }

    async fn answer(&self, call: Call, req: &MeasureRequest<'_>) -> Result<Outcome, ProviderError> {
        self.record(call, req);
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        let next = lock(&self.script)
            .get_mut(&req.metric.name)
            .and_then(VecDeque::pop_front);
        next.unwrap_or_else(|| {
            Err(ProviderError::Config(format!(
                "the fake {} provider has nothing scripted for metric {}",
                self.kind, req.metric.name
            )))
        })
    }
}

#[async_trait::async_trait]
impl MetricProvider for FakeProvider {
    fn kind(&self) -> &'static str {
        self.kind
    }

    async fn measure(&self, req: &MeasureRequest<'_>) -> Result<Outcome, ProviderError> {
        self.answer(Call::Measure, req).await
    }

    async fn resume(
        &self,
        req: &MeasureRequest<'_>,
        _measurement: &Measurement,
    ) -> Result<Outcome, ProviderError> {
        self.answer(Call::Resume, req).await
    }

    async fn terminate(
        &self,
        req: &MeasureRequest<'_>,
        _measurement: &Measurement,
    ) -> Result<(), ProviderError> {
        self.record(Call::Terminate, req);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Metric;
    use crate::providers::Args;
    use serde_json::json;

    fn request<'a>(metric: &'a Metric, args: &'a Args, index: i32) -> MeasureRequest<'a> {
        MeasureRequest {
            namespace: "shop",
            run_name: "run-1",
            run_uid: "uid-1",
            metric,
            args,
            index,
            now: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn metric(name: &str) -> Metric {
        Metric {
            name: name.into(),
            ..Metric::default()
        }
    }

    #[tokio::test]
    async fn answers_each_metric_from_its_own_queue_in_order_and_records_calls() {
        let fake = FakeProvider::new("web");
        fake.push_value("errors", json!(0.1))
            .push_value("errors", json!(0.2))
            .push("latency", Err(ProviderError::Request("boom".into())));
        let (errors, latency, args) = (metric("errors"), metric("latency"), Args::default());

        let first = fake.measure(&request(&errors, &args, 0)).await.unwrap();
        let failed = fake.measure(&request(&latency, &args, 0)).await;
        let second = fake.measure(&request(&errors, &args, 1)).await.unwrap();
        let exhausted = fake.measure(&request(&errors, &args, 2)).await;

        assert!(matches!(first, Outcome::Value { result, .. } if result == json!(0.1)));
        assert!(matches!(second, Outcome::Value { result, .. } if result == json!(0.2)));
        assert!(matches!(failed, Err(ProviderError::Request(m)) if m == "boom"));
        assert!(matches!(exhausted, Err(ProviderError::Config(_))));
        let seen: Vec<(String, i32)> = fake
            .seen()
            .into_iter()
            .map(|s| (s.metric, s.index))
            .collect();
        assert_eq!(
            seen,
            [("errors", 0), ("latency", 0), ("errors", 1), ("errors", 2)]
                .map(|(m, i)| (m.to_string(), i))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_delay_holds_each_answer_back() {
        let fake = FakeProvider::new("job").with_delay(Duration::from_secs(30));
        fake.push_value("m", json!(1));
        let (m, args) = (metric("m"), Args::default());
        let started = tokio::time::Instant::now();
        fake.measure(&request(&m, &args, 0)).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert_eq!(fake.kind(), "job");
    }
}
