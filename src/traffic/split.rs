//! Shared pure helpers of the routers: the split every provider writes (canary, stable and
//! additional weights out of `maxTrafficWeight`), the Services a Rollout names, managed-route
//! bookkeeping and small JSON helpers. No I/O.

use super::TrafficError;
use crate::crd::{Rollout, TrafficRouting, TrafficWeights};
use serde_json::Value;

/// The default total weight when `trafficRouting.maxTrafficWeight` is unset.
pub const DEFAULT_MAX_WEIGHT: i32 = 100;

/// One destination besides canary and stable (such as a baseline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extra {
    /// The Service (or, in Istio subset mode, the subset) that receives the weight.
    pub name: String,
    /// Its weight, out of `Split::max`.
    pub weight: i32,
    /// The pod-template hash behind it, for subset-level routing.
    pub hash: Option<String>,
}

/// The weights a router writes, normalised so that they always add up to `max`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// The canary's weight.
    pub canary: i32,
    /// The stable's weight: whatever the canary and the additional destinations leave.
    pub stable: i32,
    /// Additional destinations, in the order the controller gave them.
    pub additional: Vec<Extra>,
    /// The total (`maxTrafficWeight`, default 100).
    pub max: i32,
}

impl Split {
    /// Normalises controller weights: the canary and each additional weight are clamped to
    /// `0..=max` and their sum to `max`; the stable gets the rest. The stable weight the
    /// controller passed is not trusted, so weight 0 always means all traffic on stable.
    pub fn new(weights: &TrafficWeights, max: i32) -> Self {
        let max = max.max(1);
        let canary = weights.canary.weight.clamp(0, max);
        let mut left = max - canary;
        let additional = weights
            .additional
            .iter()
            .map(|d| {
                let weight = d.weight.clamp(0, left);
                left -= weight;
                Extra {
                    name: d.service_name.clone().unwrap_or_default(),
                    weight,
                    hash: d.pod_template_hash.clone(),
                }
            })
            .collect();
        Self {
            canary,
            stable: left,
            additional,
            max,
        }
    }

    /// All traffic on stable: what `remove_managed_routes` callers and aborts converge to.
    pub fn all_stable(max: i32) -> Self {
        let max = max.max(1);
        Self {
            canary: 0,
            stable: max,
            additional: Vec::new(),
            max,
        }
    }

    /// The same split rescaled to a total of 100 (for providers whose weights are
    /// percentages); rounding goes to the stable, so the total stays exactly 100.
    pub fn percent(&self) -> Self {
        if self.max == 100 {
            return self.clone();
        }
        let scale =
            |w: i32| ((i64::from(w) * 100 + i64::from(self.max) / 2) / i64::from(self.max)) as i32;
        let canary = scale(self.canary).min(100);
        let mut left = 100 - canary;
        let additional = self
            .additional
            .iter()
            .map(|e| {
                let weight = scale(e.weight).min(left);
                left -= weight;
                Extra {
                    weight,
                    ..e.clone()
                }
            })
            .collect();
        Self {
            canary,
            stable: left,
            additional,
            max: 100,
        }
    }

    /// The additional destination named `name`, if any.
    pub fn extra(&self, name: &str) -> Option<&Extra> {
        self.additional.iter().find(|e| e.name == name)
    }
}

/// Reweights a list of weighted Service entries (Gateway API backendRefs, Traefik weighted
/// services): canary, stable and additional destinations get their share of `split`, any other
/// entry is dropped (it would take an unaccounted share), and missing additional destinations
/// are appended on the stable entry's port. `is_service(entry, name)` says whether an entry
/// points at the Service `name`, in the provider's own terms.
pub fn reweight(
    entries: Vec<Value>,
    svc: &Services,
    split: &Split,
    is_service: impl Fn(&Value, &str) -> bool,
) -> Vec<Value> {
    let port = entries
        .iter()
        .find(|e| is_service(e, &svc.stable))
        .and_then(|e| e.get("port").cloned());
    let mut kept = Vec::with_capacity(entries.len() + split.additional.len());
    for mut entry in entries {
        let weight = if is_service(&entry, &svc.canary) {
            split.canary
        } else if is_service(&entry, &svc.stable) {
            split.stable
        } else if let Some(x) = split
            .additional
            .iter()
            .find(|x| is_service(&entry, &x.name))
        {
            x.weight
        } else {
            continue;
        };
        entry["weight"] = serde_json::json!(weight);
        kept.push(entry);
    }
    for x in &split.additional {
        if !kept.iter().any(|e| is_service(e, &x.name)) {
            let mut entry = serde_json::json!({"name": x.name, "weight": x.weight});
            if let Some(port) = &port {
                entry["port"] = port.clone();
            }
            kept.push(entry);
        }
    }
    kept
}

/// The canary and stable Service names of a Rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Services {
    /// `spec.strategy.canary.canaryService`.
    pub canary: String,
    /// `spec.strategy.canary.stableService`.
    pub stable: String,
}

/// The Rollout's `trafficRouting` block.
///
/// # Errors
/// `Unusable` when the Rollout has no canary strategy or no `trafficRouting`.
pub fn routing<'a>(
    rollout: &'a Rollout,
    provider: &'static str,
) -> Result<&'a TrafficRouting, TrafficError> {
    rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .and_then(|c| c.traffic_routing.as_ref())
        .ok_or_else(|| {
            rollout_unusable(
                rollout,
                provider,
                "spec.strategy.canary.trafficRouting is not set",
            )
        })
}

/// The canary and stable Services of a Rollout.
///
/// # Errors
/// `Unusable` when either is missing or empty.
pub fn services(rollout: &Rollout, provider: &'static str) -> Result<Services, TrafficError> {
    let canary = rollout.spec.strategy.canary.as_ref();
    let pick = |s: Option<&String>| s.filter(|s| !s.is_empty()).cloned();
    match (
        pick(canary.and_then(|c| c.canary_service.as_ref())),
        pick(canary.and_then(|c| c.stable_service.as_ref())),
    ) {
        (Some(canary), Some(stable)) => Ok(Services { canary, stable }),
        _ => Err(rollout_unusable(
            rollout,
            provider,
            "traffic routing needs spec.strategy.canary.canaryService and stableService",
        )),
    }
}

/// `maxTrafficWeight`, default 100.
pub fn max_weight(rollout: &Rollout) -> i32 {
    rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .and_then(|c| c.traffic_routing.as_ref())
        .and_then(|t| t.max_traffic_weight)
        .unwrap_or(DEFAULT_MAX_WEIGHT)
}

/// The names in `trafficRouting.managedRoutes`, in precedence order.
pub fn managed_routes(rollout: &Rollout) -> Vec<String> {
    rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .and_then(|c| c.traffic_routing.as_ref())
        .map(|t| t.managed_routes.iter().map(|r| r.name.clone()).collect())
        .unwrap_or_default()
}

/// Checks that a header or mirror step names a managed route.
///
/// # Errors
/// `Unusable` when `name` is not in `trafficRouting.managedRoutes`.
pub fn check_managed(
    rollout: &Rollout,
    provider: &'static str,
    name: &str,
) -> Result<Vec<String>, TrafficError> {
    let managed = managed_routes(rollout);
    if managed.iter().any(|m| m == name) {
        Ok(managed)
    } else {
        Err(rollout_unusable(
            rollout,
            provider,
            &format!("route {name:?} is not listed in trafficRouting.managedRoutes"),
        ))
    }
}

/// Which managed route (index into `managed`) a route or rule name belongs to: the name
/// itself, or the name followed by `-<number>` when one step wrote several rules.
pub fn managed_index(rule_name: &str, managed: &[String]) -> Option<usize> {
    managed.iter().position(|m| {
        rule_name == m
            || rule_name
                .strip_prefix(m.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Moves the managed entries of `items` to the front, in `managed` order, keeping the
/// relative order of everything else.
pub fn managed_first(items: Vec<Value>, managed: &[String]) -> Vec<Value> {
    type Ranked = Vec<(usize, Value)>;
    let (mut ours, theirs): (Ranked, Ranked) = items
        .into_iter()
        .map(|v| {
            let idx = name_of(&v)
                .and_then(|n| managed_index(n, managed))
                .unwrap_or(usize::MAX);
            (idx, v)
        })
        .partition(|(idx, _)| *idx != usize::MAX);
    ours.sort_by_key(|(idx, _)| *idx);
    ours.into_iter().chain(theirs).map(|(_, v)| v).collect()
}

/// The `name` field of a JSON object.
pub fn name_of(v: &Value) -> Option<&str> {
    v.get("name").and_then(Value::as_str)
}

/// A regular expression that matches values starting with `prefix` (RE2 and PCRE agree on
/// this escaping).
pub fn prefix_regex(prefix: &str) -> String {
    let mut out = String::from("^");
    for c in prefix.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push_str(".*");
    out
}

/// An `Unusable` error about the Rollout's own configuration.
pub fn rollout_unusable(rollout: &Rollout, provider: &'static str, reason: &str) -> TrafficError {
    TrafficError::Unusable {
        provider,
        kind: "Rollout",
        name: rollout.metadata.name.clone().unwrap_or_default(),
        reason: reason.to_owned(),
    }
}

/// The Rollout's namespace (`default` when unset, as in a fixture).
pub fn namespace_of(rollout: &Rollout) -> String {
    rollout
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned())
}

/// A controller owner reference to the Rollout, as JSON.
pub fn owner_reference(rollout: &Rollout) -> Value {
    serde_json::json!({
        "apiVersion": format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION),
        "kind": "Rollout",
        "name": rollout.metadata.name.clone().unwrap_or_default(),
        "uid": rollout.metadata.uid.clone().unwrap_or_default(),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Whether an object's `metadata.ownerReferences` names this Rollout (by uid).
pub fn owned_by(object: &Value, rollout: &Rollout) -> bool {
    let uid = rollout.metadata.uid.as_deref().unwrap_or_default();
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r.get("kind").and_then(Value::as_str) == Some("Rollout")
                    && r.get("uid").and_then(Value::as_str) == Some(uid)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::WeightDestination;

    fn weights(canary: i32, additional: &[(&str, i32)]) -> TrafficWeights {
        TrafficWeights {
            canary: WeightDestination {
                weight: canary,
                ..Default::default()
            },
            stable: WeightDestination {
                weight: 12345,
                ..Default::default()
            },
            additional: additional
                .iter()
                .map(|(n, w)| WeightDestination {
                    weight: *w,
                    service_name: Some((*n).to_owned()),
                    pod_template_hash: None,
                })
                .collect(),
            verified: None,
        }
    }

    #[test]
    fn stable_gets_the_rest_and_never_a_negative_share() {
        let s = Split::new(&weights(20, &[("baseline", 20)]), 100);
        assert_eq!((s.canary, s.stable, s.additional[0].weight), (20, 60, 20));
        let s = Split::new(&weights(90, &[("baseline", 20)]), 100);
        assert_eq!((s.canary, s.stable, s.additional[0].weight), (90, 0, 10));
        let s = Split::new(&weights(-5, &[]), 100);
        assert_eq!((s.canary, s.stable), (0, 100));
    }

    #[test]
    fn percent_rescales_and_keeps_the_total() {
        let s = Split::new(&weights(333, &[("b", 333)]), 1000).percent();
        assert_eq!((s.canary, s.additional[0].weight, s.stable), (33, 33, 34));
    }

    #[test]
    fn managed_rule_names_include_numbered_copies() {
        let managed = vec!["hdr".to_owned(), "mirror".to_owned()];
        assert_eq!(managed_index("hdr", &managed), Some(0));
        assert_eq!(managed_index("hdr-2", &managed), Some(0));
        assert_eq!(managed_index("hdr-x", &managed), None);
        assert_eq!(managed_index("mirror", &managed), Some(1));
    }

    #[test]
    fn prefix_regex_escapes_metacharacters() {
        assert_eq!(prefix_regex("v1.2+"), "^v1\\.2\\+.*");
    }
}
