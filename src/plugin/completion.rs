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

/// Candidates for kubectl's plugin-completion hook: kubectl runs `kubectl_complete-sluice
/// ARGS... PARTIAL` (the words after `kubectl sluice`, the last being completed) and reads one
/// candidate per line, then a `:DIRECTIVE` line (cobra's `ShellCompDirective`; 4 is "no file
/// completion"). Verbs, their sub-verbs and flags come from the clap definition.
#[must_use]
pub fn complete(words: &[String]) -> Vec<String> {
    let command = super::Cli::command();
    let (partial, done) = match words.split_last() {
        Some((last, rest)) => (last.as_str(), rest),
        None => ("", &[][..]),
    };
    let mut current = &command;
    for word in done {
        if let Some(sub) = current
            .get_subcommands()
            .find(|s| s.get_name() == word || s.get_all_aliases().any(|a| a == word))
        {
            current = sub;
        }
    }
    let mut out: Vec<String> = if partial.starts_with('-') {
        current
            .get_arguments()
            .chain(command.get_arguments().filter(|a| a.is_global_set()))
            .flat_map(|a| {
                let long = a.get_long().map(|l| format!("--{l}"));
                let short = a.get_short().map(|s| format!("-{s}"));
                long.into_iter().chain(short)
            })
            .filter(|flag| flag.starts_with(partial))
            .collect()
    } else {
        current
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
            .map(|s| s.get_name().to_string())
            .filter(|name| name.starts_with(partial))
            .collect()
    };
    out.sort();
    out.dedup();
    out.push(":4".to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn kubectl_hook_completes_verbs_sub_verbs_and_flags() {
        // (the words after `kubectl sluice`, expected candidates before the directive)
        let cases: [(&str, &[&str]); 5] = [
            ("pro", &["promote"]),
            ("co", &["completion", "convert"]),
            ("create ", &["analysisrun"]),
            ("convert --f", &["--filename"]),
            ("zzz", &[]),
        ];
        for (line, expected) in cases {
            let got = complete(&words(line));
            let (directive, candidates) = got.split_last().expect("a directive");
            assert_eq!(directive, ":4", "{line}");
            assert_eq!(candidates, expected, "{line}");
        }
    }
}
