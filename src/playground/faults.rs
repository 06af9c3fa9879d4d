//! Fault injection for controller tests: fail the next N requests matching a verb and
//! resource with a chosen status code. Shared state behind a mutex; touches nothing else.

use super::error::ApiError;
use std::sync::Mutex;

#[derive(Debug, Clone)]
struct Rule {
    verb: Option<String>,
    resource: Option<String>,
    code: u16,
    remaining: usize,
}

/// The fault-injection knobs of a running playground.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
}

impl Faults {
    /// Fail the next `count` requests whose verb (`get`, `list`, `watch`, `create`, `update`,
    /// `patch`, `delete`, `deletecollection`; `None` for any) and resource (plural, e.g.
    /// `replicasets` or `rollouts/status`; `None` for any) match, with HTTP `code`.
    pub fn fail_next(&self, verb: Option<&str>, resource: Option<&str>, code: u16, count: usize) {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        rules.push(Rule {
            verb: verb.map(str::to_string),
            resource: resource.map(str::to_string),
            code,
            remaining: count,
        });
    }

    /// How many injected failures are still pending.
    pub fn pending(&self) -> usize {
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|r| r.remaining)
            .sum()
    }

    /// Remove every pending fault.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The injected error for this request, if a rule matches (consuming one use of it).
    pub fn check(&self, verb: &str, resource: &str) -> Option<ApiError> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let base = resource.split('/').next().unwrap_or(resource);
        let idx = rules.iter().position(|r| {
            r.remaining > 0
                && r.verb.as_deref().is_none_or(|v| v == verb)
                && r.resource.as_deref().is_none_or(|x| {
                    x == resource || (!x.contains('/') && x == base && !resource.contains('/'))
                })
        })?;
        let rule = &mut rules[idx];
        rule.remaining -= 1;
        let code = rule.code;
        if rule.remaining == 0 {
            rules.remove(idx);
        }
        Some(ApiError::Injected {
            code,
            message: format!("injected fault: {verb} {resource} fails with {code}"),
        })
    }
}
