//! Request holds for race tests: park the first request matching a verb, a resource, a field
//! manager and a piece of its body until the test releases it, so a test can land another
//! write in between, deterministically. Shared state behind a mutex; touches nothing else.

use std::sync::Mutex;
use tokio::sync::oneshot;

/// Which request to hold. Every field given must match.
#[derive(Debug, Clone, Default)]
pub struct HoldFilter {
    /// The verb (`get`, `create`, `patch`, `update`, ...).
    pub verb: String,
    /// The resource with its subresource: `rollouts/status`.
    pub resource: String,
    /// The request's `fieldManager`, when only one writer's request should be held.
    pub field_manager: Option<String>,
    /// Text the request body must contain (e.g. a field name).
    pub body_contains: Option<String>,
}

impl HoldFilter {
    fn matches(&self, verb: &str, resource: &str, manager: &str, body: &[u8]) -> bool {
        self.verb == verb
            && self.resource == resource
            && self.field_manager.as_deref().is_none_or(|m| m == manager)
            && self.body_contains.as_deref().is_none_or(|text| {
                body.windows(text.len().max(1))
                    .any(|w| w == text.as_bytes())
            })
    }
}

#[derive(Debug)]
struct Rule {
    filter: HoldFilter,
    arrived: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

/// The request holds of a running playground.
#[derive(Debug, Default)]
pub struct Holds {
    rules: Mutex<Vec<Rule>>,
}

/// One armed hold: learn when its request arrived, then let it go on. Dropping it releases
/// the request too.
#[derive(Debug)]
pub struct Hold {
    arrived: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
}

impl Hold {
    /// Waits until a matching request is parked; `false` when the playground stopped first.
    pub async fn arrived(&mut self) -> bool {
        (&mut self.arrived).await.is_ok()
    }

    /// Lets the parked request (or, if none came yet, the next matching one) proceed.
    pub fn release(self) {
        // The request may have been cancelled by its client; nothing then waits.
        let _ = self.release.send(());
    }
}

impl Holds {
    /// Holds the first request matching `filter` until the returned `Hold` is released.
    pub fn hold_next(&self, filter: HoldFilter) -> Hold {
        let (arrived_tx, arrived_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        self.lock().push(Rule {
            filter,
            arrived: arrived_tx,
            release: release_rx,
        });
        Hold {
            arrived: arrived_rx,
            release: release_tx,
        }
    }

    /// Parks this request if an armed hold matches it (consuming the hold).
    pub async fn pass(&self, verb: &str, resource: &str, manager: &str, body: &[u8]) {
        let rule = {
            let mut rules = self.lock();
            let Some(index) = rules
                .iter()
                .position(|r| r.filter.matches(verb, resource, manager, body))
            else {
                return;
            };
            rules.remove(index)
        };
        // The test may have dropped its `Hold`; then the request simply goes on.
        let _ = rule.arrived.send(());
        let _ = rule.release.await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Rule>> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_patch_by(manager: &str) -> HoldFilter {
        HoldFilter {
            verb: "patch".into(),
            resource: "rollouts/status".into(),
            field_manager: Some(manager.into()),
            body_contains: Some("stableRS".into()),
        }
    }

    #[tokio::test]
    async fn only_the_matching_request_is_held_until_released() {
        let holds = std::sync::Arc::new(Holds::default());
        let mut hold = holds.hold_next(status_patch_by("sluice-controller"));
        // Other writers, other resources and other bodies pass at once.
        holds
            .pass(
                "patch",
                "rollouts/status",
                "kubectl",
                br#"{"stableRS":"a"}"#,
            )
            .await;
        holds
            .pass(
                "patch",
                "rollouts",
                "sluice-controller",
                br#"{"stableRS":"a"}"#,
            )
            .await;
        holds
            .pass("patch", "rollouts/status", "sluice-controller", b"{}")
            .await;
        let parked = tokio::spawn({
            let holds = holds.clone();
            async move {
                holds
                    .pass(
                        "patch",
                        "rollouts/status",
                        "sluice-controller",
                        br#"{"status":{"stableRS":"a"}}"#,
                    )
                    .await;
            }
        });
        assert!(hold.arrived().await);
        assert!(!parked.is_finished(), "the request went on before release");
        hold.release();
        parked.await.unwrap();
        // The hold was used up: the same request now passes.
        holds
            .pass("patch", "rollouts/status", "sluice-controller", b"stableRS")
            .await;
    }
}
