//! Simulated kubelet and endpoints controllers: pod phase, readiness and restarts per the
//! behaviour chosen for the pod, and Endpoints/EndpointSlices for Services from ready pods.

use super::{BEHAVIOUR_LABEL, PodBehaviour, Sim, gr, key_of};
use crate::playground::selectors::LabelSelector;
use crate::playground::store::Key;
use serde_json::{Value, json};
use std::sync::Arc;

/// How `pod` behaves: the first matching rule, else `BEHAVIOUR_LABEL`, else `Ready`.
pub(super) fn behaviour(sim: &Sim, pod: &Value) -> PodBehaviour {
    let labels = pod.pointer("/metadata/labels");
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    if let Some(rule) = sim
        .options
        .pod_rules
        .iter()
        .find(|r| label(&r.label) == Some(r.value.as_str()))
    {
        return rule.behaviour;
    }
    match label(BEHAVIOUR_LABEL) {
        Some("never-ready") => PodBehaviour::NeverReady,
        Some("crash-loop") => PodBehaviour::CrashLoop,
        Some("fail") => PodBehaviour::Fail,
        _ => PodBehaviour::Ready,
    }
}

fn pod_ip(uid: &str) -> String {
    let h = uid
        .bytes()
        .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("10.244.{}.{}", (h >> 8) % 256, h % 253 + 2)
}

/// Move a new pod to Running, with readiness and restarts per its behaviour.
pub fn start(sim: &Sim, key: &Key) {
    let pods = gr("", "pods");
    let Some(pod) = sim.get(&pods, key) else {
        return;
    };
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    // A failing pod that is not a Job's is restarted by the kubelet for ever: a crash loop.
    let runs_to_completion = super::controller_of(&pod).is_some_and(|(kind, _)| kind == "Job");
    let b = match behaviour(sim, &pod) {
        PodBehaviour::Fail if runs_to_completion => PodBehaviour::Ready,
        PodBehaviour::Fail => PodBehaviour::CrashLoop,
        b => b,
    };
    let now = crate::playground::ops::now();
    let ready = b == PodBehaviour::Ready;
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            let (state, restarts, last) = match b {
                PodBehaviour::CrashLoop => (
                    json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container (simulated)"}}),
                    3,
                    json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}}),
                ),
                _ => (json!({"running": {"startedAt": now}}), 0, json!({})),
            };
            json!({"name": c.get("name"), "image": c.get("image"), "imageID": format!("playground://{}", c.get("image").and_then(Value::as_str).unwrap_or_default()),
                "containerID": format!("playground://{uid}"), "ready": ready, "started": b != PodBehaviour::CrashLoop,
                "restartCount": restarts, "state": state, "lastState": last})
        })
        .collect();
    let flag = |ok: bool| if ok { "True" } else { "False" };
    let cond = |ty: &str, ok: bool| json!({"type": ty, "status": flag(ok), "lastProbeTime": null, "lastTransitionTime": now});
    let status = json!({
        "phase": "Running",
        "conditions": [cond("PodReadyToStartContainers", true), cond("Initialized", true), cond("Ready", ready), cond("ContainersReady", ready), cond("PodScheduled", true)],
        "hostIP": "172.18.0.2", "hostIPs": [{"ip": "172.18.0.2"}],
        "podIP": pod_ip(uid), "podIPs": [{"ip": pod_ip(uid)}],
        "startTime": now, "qosClass": "BestEffort", "containerStatuses": statuses,
    });
    if pod.pointer("/spec/nodeName").is_none() {
        sim.merge(
            &pods,
            key,
            None,
            json!({"spec": {"nodeName": "playground-node"}}),
            "kube-scheduler",
        );
    }
    let Some(pod) = sim.get(&pods, key) else {
        return;
    };
    sim.set_status(&pods, &pod, status, "kubelet");
}

fn is_ready(p: &Value) -> bool {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Recompute Endpoints and EndpointSlices of every Service in a namespace.
pub fn endpoints(sim: &Sim, namespace: &str) {
    let services = sim.list(&gr("", "services"), namespace);
    if services.is_empty() {
        return;
    }
    let pods = sim.list(&gr("", "pods"), namespace);
    for svc in services {
        let Some(sel) = svc
            .pointer("/spec/selector")
            .filter(|s| s.as_object().is_some_and(|m| !m.is_empty()))
        else {
            continue;
        };
        let selector = LabelSelector::from_object(&json!({"matchLabels": sel}));
        let members: Vec<&Arc<Value>> = pods
            .iter()
            .filter(|p| {
                selector.matches(p)
                    && p.pointer("/status/podIP").is_some()
                    && p.pointer("/metadata/deletionTimestamp").is_none()
            })
            .collect();
        write_endpoints(sim, &svc, &members);
    }
}

fn target_port(port: &Value, pod: Option<&Value>) -> i64 {
    match port.get("targetPort") {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(name)) => pod
            .and_then(|p| p.pointer("/spec/containers"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c.get("ports")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|cp| cp.get("name").and_then(Value::as_str) == Some(name.as_str()))
            .and_then(|cp| cp.get("containerPort").and_then(Value::as_i64))
            .unwrap_or(0),
        _ => port.get("port").and_then(Value::as_i64).unwrap_or(0),
    }
}

fn write_endpoints(sim: &Sim, svc: &Value, members: &[&Arc<Value>]) {
    let (ns, name) = key_of(svc);
    let svc_ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let first = members.first().map(|p| &***p);
    let target_ref = |p: &Value| json!({"kind": "Pod", "namespace": ns, "name": p.pointer("/metadata/name"), "uid": p.pointer("/metadata/uid")});
    let address = |p: &Value| json!({"ip": p.pointer("/status/podIP"), "nodeName": p.pointer("/spec/nodeName"), "targetRef": target_ref(p)});
    let ready: Vec<Value> = members
        .iter()
        .filter(|p| is_ready(p))
        .map(|p| address(p))
        .collect();
    let not_ready: Vec<Value> = members
        .iter()
        .filter(|p| !is_ready(p))
        .map(|p| address(p))
        .collect();
    let ports: Vec<Value> = svc_ports
        .iter()
        .map(|p| {
            let mut port = json!({"port": target_port(p, first), "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))});
            if let Some(n) = p.get("name") {
                port["name"] = n.clone();
            }
            port
        })
        .collect();
    let mut subset = json!({"ports": ports});
    if !ready.is_empty() {
        subset["addresses"] = json!(ready);
    }
    if !not_ready.is_empty() {
        subset["notReadyAddresses"] = json!(not_ready);
    }
    let subsets = if members.is_empty() {
        json!([])
    } else {
        json!([subset])
    };
    let owner = json!([{"apiVersion": "v1", "kind": "Service", "name": name, "uid": svc.pointer("/metadata/uid"), "controller": true, "blockOwnerDeletion": true}]);
    let endpoints = gr("", "endpoints");
    let key = (ns.clone(), name.clone());
    match sim.get(&endpoints, &key) {
        Some(cur) if cur.get("subsets").unwrap_or(&json!([])) == &subsets => {}
        Some(_) => sim.merge(
            &endpoints,
            &key,
            None,
            json!({"subsets": subsets}),
            "endpoint-controller",
        ),
        None => {
            let ep = json!({"metadata": {"name": name, "namespace": ns, "labels": svc.pointer("/metadata/labels").cloned().unwrap_or(json!({})), "ownerReferences": owner}, "subsets": subsets});
            sim.create(&endpoints, &ns, ep, "endpoint-controller");
        }
    }
    let slice_eps: Vec<Value> = members
        .iter()
        .map(|p| {
            let r = is_ready(p);
            json!({"addresses": [p.pointer("/status/podIP")], "conditions": {"ready": r, "serving": r, "terminating": false}, "nodeName": p.pointer("/spec/nodeName"), "targetRef": target_ref(p)})
        })
        .collect();
    let slices = gr("discovery.k8s.io", "endpointslices");
    let slice_key = (ns.clone(), format!("{name}-playground"));
    let slice_ports = json!(ports);
    match sim.get(&slices, &slice_key) {
        Some(cur)
            if cur.get("endpoints") == Some(&json!(slice_eps))
                && cur.get("ports") == Some(&slice_ports) => {}
        Some(_) => sim.merge(
            &slices,
            &slice_key,
            None,
            json!({"endpoints": slice_eps, "ports": slice_ports}),
            "endpointslice-controller",
        ),
        None => {
            let slice = json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": slice_key.1, "namespace": ns, "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}, "ownerReferences": owner},
                "addressType": "IPv4", "endpoints": slice_eps, "ports": slice_ports,
            });
            sim.create(&slices, &ns, slice, "endpointslice-controller");
        }
    }
}
