//! `backend`: see the crate docs of `rivulet_backend`.

use anyhow::Context;
use clap::Parser;
use rivulet_backend::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    rivulet_common::init_tracing(&cli.log)?;
    let token = rivulet_common::shutdown_token();
    match cli.command {
        Command::Run(config) => rivulet_backend::run(config, token)
            .await
            .context("backend failed"),
    }
}
