//! `backend`: see the crate docs of `rivulet_backend`.

use anyhow::Context;
use clap::Parser;
use rivulet_backend::{Cli, Command, admin};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    rivulet_common::init_tracing(&cli.log)?;
    match cli.command {
        Command::Run(config) => {
            let token = rivulet_common::shutdown_token();
            rivulet_backend::run(*config, token)
                .await
                .context("backend failed")
        }
        Command::DlqReplay(c) => {
            let replay = move || admin::dlq_replay(&c.kafka, &c.dlq_topic, &c.group);
            let n = tokio::task::spawn_blocking(replay)
                .await?
                .context("dlq replay failed")?;
            println!("replayed {n} dead letters");
            Ok(())
        }
        Command::Reprocess(c) => {
            let rewind = move || admin::reprocess(&c.kafka, &c.input_topic, &c.group, c.force);
            let n = tokio::task::spawn_blocking(rewind)
                .await?
                .context("reprocess failed")?;
            println!("rewound {n} partitions; restart the backends to rebuild every total");
            Ok(())
        }
    }
}
