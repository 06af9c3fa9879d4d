//! `kubectl sluice create analysisrun --from TEMPLATE [--global] [-a NAME=VALUE]...`: an
//! AnalysisRun from an AnalysisTemplate (or, with `--global`, a ClusterAnalysisTemplate), its
//! arguments filled from `-a`, as the controller builds a step's run.

use super::context::{Ctx, Request};
use super::output::print_object;
use super::steer::FIELD_MANAGER;
use crate::crd::{
    AnalysisRun, AnalysisRunSpec, AnalysisTemplate, AnalysisTemplateSpec, ClusterAnalysisTemplate,
};
use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

/// Create an object.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(subcommand)]
    pub what: CreateCommand,
    #[command(flatten)]
    pub output: super::context::OutputFlag,
}

/// What `create` makes.
#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Create an AnalysisRun from a template.
    #[command(visible_alias = "ar")]
    Analysisrun(AnalysisRunArgs),
}

/// The flags of `create analysisrun`.
#[derive(Debug, Args)]
pub struct AnalysisRunArgs {
    /// The AnalysisTemplate (ClusterAnalysisTemplate with --global).
    #[arg(long)]
    pub from: String,
    /// Use a ClusterAnalysisTemplate.
    #[arg(long)]
    pub global: bool,
    /// A template argument: NAME=VALUE (repeatable).
    #[arg(short = 'a', long = "argument", value_name = "NAME=VALUE")]
    pub arguments: Vec<String>,
    /// The run's name; by default the template's name and a random suffix.
    #[arg(long)]
    pub name: Option<String>,
    /// The prefix of a generated name (default: TEMPLATE-).
    #[arg(long = "generate-name", conflicts_with = "name")]
    pub generate_name: Option<String>,
}

/// Runs the verb.
///
/// # Errors
/// When the template is missing, an argument has no value, or the create is refused.
pub async fn run(ctx: &Ctx, args: &CreateArgs) -> anyhow::Result<()> {
    let CreateCommand::Analysisrun(a) = &args.what;
    let template = template(ctx, a).await?;
    let spec = spec(template, &a.arguments)?;
    let metadata = ObjectMeta {
        name: a.name.clone(),
        generate_name: a.name.is_none().then(|| {
            a.generate_name
                .clone()
                .unwrap_or_else(|| format!("{}-", a.from))
        }),
        namespace: Some(ctx.namespace.clone()),
        ..ObjectMeta::default()
    };
    let run = AnalysisRun {
        metadata,
        spec,
        status: None,
    };
    let api: Api<AnalysisRun> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    let created = match api.create(&params, &run).await {
        Ok(created) => created,
        Err(e) => {
            let request = Request {
                verb: "create",
                resource: "analysisruns",
                name: a.name.as_deref(),
            };
            return Err(ctx.explain(&request, e).await);
        }
    };
    let name = created.metadata.name.clone().unwrap_or_default();
    if !print_object(
        ctx.output,
        &format!("analysisrun.sluice.dev/{name}"),
        &created,
    )? {
        println!("analysisrun '{name}' created");
    }
    Ok(())
}

async fn template(ctx: &Ctx, a: &AnalysisRunArgs) -> anyhow::Result<AnalysisTemplateSpec> {
    let name = a.from.as_str();
    let (result, resource) = if a.global {
        let api: Api<ClusterAnalysisTemplate> = Api::all(ctx.client.clone());
        (
            api.get(name).await.map(|t| t.spec.template),
            "clusteranalysistemplates",
        )
    } else {
        let api: Api<AnalysisTemplate> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
        (api.get(name).await.map(|t| t.spec), "analysistemplates")
    };
    match result {
        Ok(spec) => Ok(spec),
        Err(e) => {
            let request = Request {
                verb: "get",
                resource,
                name: Some(name),
            };
            Err(ctx.explain(&request, e).await)
        }
    }
}

/// The run's spec: the template's, with each `-a NAME=VALUE` set and every argument valued.
fn spec(template: AnalysisTemplateSpec, arguments: &[String]) -> anyhow::Result<AnalysisRunSpec> {
    let mut args = template.args;
    for pair in arguments {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("-a {pair:?} is not NAME=VALUE"))?;
        let arg = args
            .iter_mut()
            .find(|a| a.name == name)
            .ok_or_else(|| anyhow!("the template has no argument {name:?}"))?;
        arg.value = Some(value.to_string());
        arg.value_from = None;
    }
    if let Some(missing) = args
        .iter()
        .find(|a| a.value.is_none() && a.value_from.is_none())
    {
        bail!(
            "argument {:?} has no value: pass -a {}=VALUE",
            missing.name,
            missing.name
        );
    }
    Ok(AnalysisRunSpec {
        metrics: template.metrics,
        args,
        terminate: false,
        dry_run: template.dry_run,
        measurement_retention: template.measurement_retention,
        judgement: template.judgement,
        scope: None,
    })
}
