//! `fleet-manager`: see the crate docs of `rivulet_fleet_manager`.

use anyhow::Context;
use clap::Parser;
use rivulet_fleet_manager::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    rivulet_common::init_tracing(&cli.log)?;
    match cli.command {
        Command::Serve(config) => {
            let token = rivulet_common::shutdown_token();
            rivulet_fleet_manager::run(*config, token)
                .await
                .context("fleet-manager failed")
        }
        Command::DevKeys { out } => {
            rivulet_fleet_manager::dev_keys(&out).context("dev-keys failed")?;
            println!("Wrote {0}/key.pem and {0}/jwks.json", out.display());
            Ok(())
        }
        Command::DevToken(args) => {
            println!(
                "{}",
                rivulet_fleet_manager::dev_token(&args).context("dev-token failed")?
            );
            Ok(())
        }
    }
}
