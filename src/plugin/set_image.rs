//! `kubectl sluice set image NAME CONTAINER=IMAGE...`: a JSON patch of the matching
//! containers' images (`*` matches every container, init and ephemeral ones included), each
//! guarded by a `test` of the container's name so a concurrent edit cannot be overwritten.

use super::context::Ctx;
use super::steer;
use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// Set a field of a Rollout.
#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(subcommand)]
    pub what: SetCommand,
    #[command(flatten)]
    pub output: super::context::OutputFlag,
}

/// What `set` changes.
#[derive(Debug, Subcommand)]
pub enum SetCommand {
    /// Set container images: `set image NAME CONTAINER=IMAGE...` (`*=IMAGE` for all).
    Image {
        /// The Rollout.
        name: String,
        /// CONTAINER=IMAGE pairs.
        #[arg(required = true, value_name = "CONTAINER=IMAGE")]
        images: Vec<String>,
    },
}

const LISTS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

/// Runs the verb.
///
/// # Errors
/// When a pair is malformed or names no container, the Rollout is missing, or the patch is
/// refused.
pub async fn run(ctx: &Ctx, args: &SetArgs) -> anyhow::Result<()> {
    let SetCommand::Image { name, images } = &args.what;
    let pairs = images
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .filter(|(c, i)| !c.is_empty() && !i.is_empty())
                .ok_or_else(|| anyhow!("{pair:?} is not CONTAINER=IMAGE"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rollout = steer::get(ctx, name).await?;
    if rollout.spec.workload_ref.is_some() {
        bail!(
            "rollout {name:?} takes its template from a workloadRef: set the image on the Deployment"
        );
    }
    let spec = serde_json::to_value(rollout.spec.template.and_then(|t| t.spec))?;
    let ops = operations(&spec, &pairs)?;
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops))?;
    let after = steer::json_patch(ctx, name, patch).await?;
    steer::confirm(ctx, &after, &format!("rollout '{name}' image updated"))
}

/// The JSON patch operations setting each pair's image in the pod spec.
fn operations(spec: &Value, pairs: &[(&str, &str)]) -> anyhow::Result<Vec<Value>> {
    let mut ops = Vec::new();
    for (container, image) in pairs {
        let before = ops.len();
        for list in LISTS {
            let Some(items) = spec.get(list).and_then(Value::as_array) else {
                continue;
            };
            for (i, item) in items.iter().enumerate() {
                let Some(found) = item.get("name").and_then(Value::as_str) else {
                    continue;
                };
                if *container == "*" || *container == found {
                    let path = format!("/spec/template/spec/{list}/{i}");
                    ops.push(json!({"op": "test", "path": format!("{path}/name"), "value": found}));
                    ops.push(
                        json!({"op": "replace", "path": format!("{path}/image"), "value": image}),
                    );
                }
            }
        }
        if ops.len() == before {
            bail!("the Rollout has no container named {container:?}");
        }
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_sets_every_container_and_a_name_sets_one() {
        let spec = json!({"containers": [{"name": "app"}, {"name": "proxy"}], "initContainers": [{"name": "init"}]});
        let all = operations(&spec, &[("*", "x:2")]).unwrap();
        assert_eq!(all.len(), 6, "{all:?}");
        let one = operations(&spec, &[("proxy", "p:2")]).unwrap();
        assert_eq!(
            one[1]["path"], "/spec/template/spec/containers/1/image",
            "{one:?}"
        );
        let missing = operations(&spec, &[("nope", "x")]).unwrap_err();
        assert!(missing.to_string().contains("no container named \"nope\""));
    }
}
