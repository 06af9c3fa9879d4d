//! Argo Rollouts `Rollout` → Sluice `Rollout`. Our API is Argo-shaped, so most fields carry as
//! they are; this module removes what we do not support (routers, step kinds) with a reason,
//! and `carry::round_trip` names every other field our types lack. Pure.

use super::carry::{self, drop_field, is_empty};
use super::report::{Conversion, Findings};
use crate::crd::Rollout;
use serde_json::{Value, json};

/// Routers Argo has and we do not.
const UNSUPPORTED_ROUTERS: [&str; 4] = ["alb", "ambassador", "appMesh", "apisix"];
/// Routers that carry the weight in Sluice.
const SUPPORTED_ROUTERS: [&str; 6] = ["gatewayAPI", "istio", "smi", "nginx", "traefik", "plugins"];
/// Argo's Gateway API traffic plugin, which Sluice has built in.
const GATEWAY_API_PLUGIN: &str = "argoproj-labs/gatewayAPI";

/// Converts one Argo `Rollout`; `deployments` are those of the input (a `workloadRef`'s
/// selector).
#[must_use]
pub fn convert(source: &Value, deployments: &[&Value]) -> Conversion {
    let mut findings = Findings::default();
    let mut spec = source.get("spec").cloned().unwrap_or_else(|| json!({}));
    workload_selector(&mut spec, deployments, &mut findings);
    if let Some(canary) = spec.pointer_mut("/strategy/canary") {
        let name = source["metadata"]["name"].as_str().unwrap_or("rollout");
        canary_strategy(canary, name, &mut findings);
    }
    drop_status(source, &mut findings);
    let object = json!({
        "apiVersion": super::API_VERSION,
        "kind": "Rollout",
        "metadata": carry::metadata(&source["metadata"]),
        "spec": spec,
    });
    finish::<Rollout>(&object, findings)
}

/// Argo takes a `workloadRef` Rollout's selector from the Deployment; Sluice wants it written.
fn workload_selector(spec: &mut Value, deployments: &[&Value], findings: &mut Findings) {
    let workload = &spec["workloadRef"];
    if is_empty(workload) || !is_empty(&spec["selector"]) {
        return;
    }
    let name = workload["name"].as_str().unwrap_or_default();
    match deployments.iter().find(|d| d["metadata"]["name"] == name) {
        Some(deployment) if !is_empty(&deployment["spec"]["selector"]) => {
            spec["selector"] = deployment["spec"]["selector"].clone();
        }
        _ => findings.push(
            "spec.selector",
            format!("Sluice needs it with a workloadRef; Deployment {name} is not in the input: copy its selector"),
        ),
    }
}

/// Parses `object` as `T`, recording what the round trip lost; refuses the object when it
/// does not fit the type.
pub fn finish<T>(object: &Value, mut findings: Findings) -> Conversion
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    match carry::round_trip::<T>(object, &mut findings) {
        Ok(back) => Conversion {
            objects: vec![back],
            findings,
        },
        Err((path, reason)) => {
            findings.push(path, format!("cannot be converted: {reason}"));
            Conversion {
                objects: Vec::new(),
                findings,
            }
        }
    }
}

/// Records a source's `status`: the controller writes its own.
pub fn drop_status(source: &Value, findings: &mut Findings) {
    if source.get("status").is_some_and(|s| !is_empty(s)) {
        findings.push("status", "written by the controller; not carried");
    }
}

fn canary_strategy(canary: &mut Value, name: &str, findings: &mut Findings) {
    let path = "spec.strategy.canary";
    let routed = match canary.get_mut("trafficRouting") {
        Some(routing) => traffic_routing(routing, findings),
        None => false,
    };
    if !routed && canary.get("trafficRouting").is_some() {
        if let Some(map) = canary.as_object_mut() {
            map.remove("trafficRouting");
        }
        findings.push(
            format!("{path}.trafficRouting"),
            "no router Sluice supports is left; the canary weight becomes the share of canary pods",
        );
    }
    if routed {
        services_for_routing(canary, name, findings);
    }
    if let Some(Value::Array(steps)) = canary.get_mut("steps") {
        let kept = std::mem::take(steps)
            .into_iter()
            .enumerate()
            .filter_map(|(i, step)| keep_step(i, step, routed, findings))
            .collect();
        *steps = kept;
    }
}

/// Sluice routes between two Services; Argo's DestinationRule-only split has none, so name
/// them after the Rollout and say so.
fn services_for_routing(canary: &mut Value, name: &str, findings: &mut Findings) {
    for (field, suffix) in [("canaryService", "canary"), ("stableService", "stable")] {
        if canary.get(field).is_some_and(|s| !is_empty(s)) {
            continue;
        }
        let service = format!("{name}-{suffix}");
        findings.push(
            format!("spec.strategy.canary.{field}"),
            format!(
                "Sluice routes between a canary and a stable Service; set to {service}: create \
                 that Service selecting the Rollout's pods"
            ),
        );
        canary[field] = json!(service);
    }
}

/// Removes the routers we lack; whether one we support is left.
fn traffic_routing(routing: &mut Value, findings: &mut Findings) -> bool {
    let path = "spec.strategy.canary.trafficRouting";
    for router in UNSUPPORTED_ROUTERS {
        let reason = format!("the {router} router is not supported by Sluice");
        drop_field(routing, path, router, &reason, findings);
    }
    if let Some(plugins) = routing.get_mut("plugins") {
        let gateway = plugins
            .as_object_mut()
            .and_then(|p| p.remove(GATEWAY_API_PLUGIN));
        for (name, config) in plugins.as_object_mut().into_iter().flatten() {
            findings.push(
                format!("{path}.plugins.{name}"),
                "carried as `config`; register the plugin with the controller (--traffic-plugin NAME=URL)",
            );
            *config = json!({ "config": config.clone() });
        }
        if plugins.as_object().is_some_and(serde_json::Map::is_empty)
            && let Some(map) = routing.as_object_mut()
        {
            map.remove("plugins");
        }
        if let Some(gateway) = gateway {
            routing["gatewayAPI"] = gateway;
        }
    }
    SUPPORTED_ROUTERS
        .iter()
        .any(|router| routing.get(*router).is_some_and(|r| !r.is_null()))
}

/// The step, unless it is of a kind we lack (or needs the traffic routing that was dropped).
fn keep_step(i: usize, step: Value, routed: bool, findings: &mut Findings) -> Option<Value> {
    let path = format!("spec.strategy.canary.steps[{i}]");
    let kind = step.as_object()?.keys().next()?.clone();
    let reason = match kind.as_str() {
        "experiment" => "Experiments are not supported by Sluice; the step is left out",
        "plugin" => "step plugins are not supported by Sluice; the step is left out",
        "setHeaderRoute" | "setMirrorRoute" | "setCanaryScale" if !routed => {
            "needs traffic routing, which was not carried; the step is left out"
        }
        _ => return Some(step),
    };
    findings.push(format!("{path}.{kind}"), reason);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_ref_takes_the_deployment_selector_from_the_input() {
        let source = json!({"metadata": {"name": "web"}, "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "strategy": {"canary": {"steps": [{"setWeight": 50}]}}}});
        let deployment = json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}}});
        let c = convert(&source, &[&deployment]);
        assert_eq!(
            c.objects[0]["spec"]["selector"],
            json!({"matchLabels": {"app": "web"}})
        );
        assert!(c.findings.0.is_empty(), "{:?}", c.findings);
        let c = convert(&source, &[]);
        assert!(c.findings.names("spec.selector"), "{:?}", c.findings);
    }

    fn rollout(canary: Value) -> Value {
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web", "uid": "x"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "a", "image": "a:1"}]}},
                "strategy": {"canary": canary},
            },
        })
    }

    fn paths(c: &Conversion) -> Vec<&str> {
        c.findings.0.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn mappings_of_canary_fields() {
        // (canary block, expected converted canary block, expected finding paths)
        let cases = [
            (
                json!({"canaryService": "c", "stableService": "s",
                       "steps": [{"setWeight": 20}, {"pause": {"duration": "1m"}}, {"pause": {}}]}),
                json!({"canaryService": "c", "stableService": "s",
                       "steps": [{"setWeight": 20}, {"pause": {"duration": "1m"}}, {"pause": {}}]}),
                vec![],
            ),
            (
                json!({"canaryService": "c", "stableService": "s",
                       "trafficRouting": {"alb": {"ingress": "i"}, "istio": {"virtualService": {"name": "vs"}}},
                       "steps": [{"setWeight": 20}]}),
                json!({"canaryService": "c", "stableService": "s",
                       "trafficRouting": {"istio": {"virtualService": {"name": "vs"}}},
                       "steps": [{"setWeight": 20}]}),
                vec!["spec.strategy.canary.trafficRouting.alb"],
            ),
            (
                json!({"trafficRouting": {"alb": {"ingress": "i"}, "managedRoutes": [{"name": "h"}]},
                       "steps": [{"setWeight": 20},
                                 {"setHeaderRoute": {"name": "h", "match": []}},
                                 {"experiment": {"templates": []}}]}),
                json!({"steps": [{"setWeight": 20}]}),
                vec![
                    "spec.strategy.canary.trafficRouting.alb",
                    "spec.strategy.canary.trafficRouting",
                    "spec.strategy.canary.steps[1].setHeaderRoute",
                    "spec.strategy.canary.steps[2].experiment",
                ],
            ),
            (
                json!({"trafficRouting": {"plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "r", "namespace": "n"}}},
                       "canaryService": "c", "stableService": "s", "steps": [{"setWeight": 5}]}),
                json!({"trafficRouting": {"gatewayAPI": {"httpRoute": "r", "namespace": "n"}},
                       "canaryService": "c", "stableService": "s", "steps": [{"setWeight": 5}]}),
                vec![],
            ),
            (
                json!({"trafficRouting": {"istio": {"virtualService": {"name": "vs"},
                       "destinationRule": {"name": "dr", "canarySubsetName": "c", "stableSubsetName": "s"}}}}),
                json!({"trafficRouting": {"istio": {"virtualService": {"name": "vs"},
                       "destinationRule": {"name": "dr", "canarySubsetName": "c", "stableSubsetName": "s"}}},
                       "canaryService": "web-canary", "stableService": "web-stable"}),
                vec![
                    "spec.strategy.canary.canaryService",
                    "spec.strategy.canary.stableService",
                ],
            ),
            (
                json!({"antiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 1}},
                       "steps": [{"setWeight": 5}]}),
                json!({"steps": [{"setWeight": 5}]}),
                vec!["spec.strategy.canary.antiAffinity"],
            ),
        ];
        for (canary, expected, expected_paths) in cases {
            let c = convert(&rollout(canary.clone()), &[]);
            assert_eq!(c.objects.len(), 1, "{canary}: {:?}", c.findings);
            assert_eq!(
                c.objects[0]["spec"]["strategy"]["canary"], expected,
                "{canary}"
            );
            assert_eq!(paths(&c), expected_paths, "{canary}");
            assert_eq!(c.objects[0]["apiVersion"], "sluice.dev/v1alpha1");
            assert_eq!(c.objects[0]["metadata"], json!({"name": "web"}));
        }
    }

    #[test]
    fn a_rollout_that_does_not_fit_our_types_is_refused_with_the_field() {
        let mut source = rollout(json!({"steps": [{"setWeight": "twenty"}]}));
        source["status"] = json!({"phase": "Healthy"});
        let c = convert(&source, &[]);
        assert!(c.objects.is_empty());
        assert_eq!(
            paths(&c),
            ["status", "spec.strategy.canary.steps[0].setWeight"]
        );
    }
}
