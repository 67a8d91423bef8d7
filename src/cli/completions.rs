//! `haier-sync completions SHELL` and `haier-sync man`: shell completions and a man page,
//! generated from the command line's own definition, so that they never drift from `--help`.

use super::Cli;
use anyhow::Context as _;
use clap::CommandFactory as _;
use std::io::Write as _;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL", value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script of `shell` to standard output.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<i32> {
    let mut command = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, "haier-sync", &mut out);
    out.flush().context("Failed to write the completion script")?;
    Ok(0)
}

/// Prints the man page (roff, section 1) to standard output.
pub fn man() -> anyhow::Result<i32> {
    let page = clap_mangen::Man::new(Cli::command());
    let mut out = std::io::stdout().lock();
    page.render(&mut out)
        .and_then(|()| out.flush())
        .context("Failed to write the man page")?;
    Ok(0)
}
