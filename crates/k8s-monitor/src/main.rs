//! `k8s-monitor`: see the crate docs of `rivulet_k8s_monitor`.

use anyhow::Context;
use clap::Parser;
use rivulet_k8s_monitor::{Cli, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    rivulet_common::init_tracing(&cli.log)?;
    let token = rivulet_common::shutdown_token();
    run(cli.config, token).await.context("k8s-monitor failed")
}
