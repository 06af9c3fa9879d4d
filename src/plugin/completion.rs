//! `kubectl sluice completion bash|zsh|fish`: prints a shell completion script generated from
//! the clap definition, so it never drifts from the verbs. Writes to stdout only.

use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::Shell;

/// Print a shell completion script.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells `completion` supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// Runs the verb. The script completes `kubectl-sluice`, the executable kubectl runs.
pub fn run(args: &CompletionArgs) {
    print!("{}", script(args.shell));
}

/// The completion script for `shell`.
pub fn script(shell: CompletionShell) -> String {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    // clap_complete's bash script breaks subcommand completion when the program name has a
    // dash, so generate it for `kubectl_sluice` and bind the result to `kubectl-sluice`.
    let mut command = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, GENERATED, &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    text.lines()
        .map(|line| bind(line, shell))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

const GENERATED: &str = "kubectl_sluice";

/// The line with the program it completes renamed to `kubectl-sluice`, where it names it.
fn bind(line: &str, shell: Shell) -> String {
    let names_program = match shell {
        Shell::Bash => line.trim_start().starts_with("complete -F"),
        Shell::Zsh => line.starts_with("#compdef") || line.contains("compdef _"),
        _ => line.starts_with("complete -c"),
    };
    if names_program {
        line.replace(&format!(" {GENERATED}"), " kubectl-sluice")
    } else {
        line.to_string()
    }
}
