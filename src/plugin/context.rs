//! kubectl conventions shared by every cluster verb: the global flags, the client built from
//! the user's kubeconfig, and the translation of API errors into one line that says what to do.

use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::io::IsTerminal;
use std::path::PathBuf;

use super::output::Format;

/// Flags every verb accepts, as kubectl spells them.
#[derive(Debug, Args)]
pub struct Globals {
    /// Namespace of the objects; defaults to the kubeconfig context's namespace.
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Across all namespaces (`list`).
    #[arg(short = 'A', long = "all-namespaces", global = true)]
    pub all_namespaces: bool,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Path of the kubeconfig file; defaults to $KUBECONFIG, then ~/.kube/config.
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Never colour the output (it is coloured only on a terminal).
    #[arg(long = "no-color", global = true)]
    pub no_color: bool,
}

/// `-o`, on the verbs that print objects (`judge` has its own).
#[derive(Debug, Args)]
pub struct OutputFlag {
    /// Output format: json, yaml, wide or name.
    #[arg(short = 'o', long, value_enum, global = true)]
    pub output: Option<Format>,
}

/// A connection to the cluster and the flags that shape what a verb prints.
pub struct Ctx {
    pub client: Client,
    pub namespace: String,
    pub all_namespaces: bool,
    pub output: Option<Format>,
    pub color: bool,
}

/// The request an API error came from, to name it in the message.
pub struct Request<'a> {
    /// The RBAC verb: get, list, watch, patch, create.
    pub verb: &'static str,
    /// The RBAC resource, with its subresource: `rollouts/status`.
    pub resource: &'static str,
    /// The object's name, for named requests.
    pub name: Option<&'a str>,
}

impl Ctx {
    /// Builds the client from the kubeconfig the flags select.
    ///
    /// # Errors
    /// When the kubeconfig cannot be read or names no usable context.
    pub async fn connect(globals: &Globals, output: Option<Format>) -> anyhow::Result<Ctx> {
        let options = KubeConfigOptions {
            context: globals.context.clone(),
            cluster: None,
            user: None,
        };
        let config = match &globals.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                    anyhow::anyhow!("cannot read the kubeconfig {}: {e}", path.display())
                })?;
                Config::from_custom_kubeconfig(kubeconfig, &options).await
            }
            // Inside a pod without a kubeconfig (the dashboard's in-cluster install), the pod's
            // service account; the kubeconfig's error is the one worth reporting otherwise.
            None => match Config::from_kubeconfig(&options).await {
                Ok(config) => Ok(config),
                Err(error) => Config::incluster().map_err(|_| error),
            },
        }
        .map_err(|e| {
            anyhow::anyhow!("cannot load the kubeconfig ({e}); pass --kubeconfig or set KUBECONFIG")
        })?;
        let namespace = globals
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config)
            .map_err(|e| anyhow::anyhow!("cannot build a client from the kubeconfig: {e}"))?;
        Ok(Ctx {
            client,
            namespace,
            all_namespaces: globals.all_namespaces,
            output,
            color: !globals.no_color && std::io::stdout().is_terminal(),
        })
    }

    /// One line saying what went wrong with `request` and what to do next.
    pub async fn explain(&self, request: &Request<'_>, error: kube::Error) -> anyhow::Error {
        let ns = &self.namespace;
        let Request {
            verb,
            resource,
            name,
        } = request;
        let kind = resource.split('/').next().unwrap_or(resource);
        let singular = kind.trim_end_matches('s');
        match error {
            kube::Error::Api(status) if status.code == 403 => anyhow::anyhow!(
                "forbidden: you may not {verb} {resource} ({}) in namespace {ns:?}; ask for RBAC permission to {verb} {resource}",
                api_group(kind)
            ),
            kube::Error::Api(status) if status.code == 404 => {
                if api_group(kind) == crate::crd::GROUP && !self.crds_installed().await {
                    anyhow::anyhow!(
                        "the Sluice CRDs are not installed in this cluster: install them with `kubectl apply -f crds/` (or `sluice crds | kubectl apply -f -`)"
                    )
                } else if let (Some(name), true) = (name, kind.starts_with("cluster")) {
                    anyhow::anyhow!("{singular} {name:?} not found in the cluster")
                } else if let Some(name) = name {
                    anyhow::anyhow!("{singular} {name:?} not found in namespace {ns:?}")
                } else {
                    anyhow::anyhow!(
                        "{resource} not found in namespace {ns:?}: {}",
                        status.message
                    )
                }
            }
            kube::Error::Api(status) if status.code == 409 => anyhow::anyhow!(
                "{singular} {:?} changed while it was being updated; run the command again",
                name.unwrap_or_default()
            ),
            kube::Error::Api(status) => anyhow::anyhow!(
                "cannot {verb} {resource}{} in namespace {ns:?}: {} ({})",
                name.map(|n| format!(" {n:?}")).unwrap_or_default(),
                status.message,
                status.code
            ),
            other => anyhow::anyhow!("cannot reach the cluster to {verb} {resource}: {other}"),
        }
    }

    /// Whether the API server serves the `sluice.dev` group; an error other than 404 counts
    /// as installed, so a flaky call does not blame the CRDs.
    async fn crds_installed(&self) -> bool {
        let version = format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION);
        match self.client.list_api_group_resources(&version).await {
            Ok(list) => list.resources.iter().any(|r| r.name == "rollouts"),
            Err(kube::Error::Api(status)) => status.code != 404,
            Err(_) => true,
        }
    }
}

fn api_group(kind: &str) -> &'static str {
    match kind {
        "replicasets" | "deployments" => "apps",
        "pods" | "services" => "core",
        _ => crate::crd::GROUP,
    }
}
