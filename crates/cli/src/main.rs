//! `rivulet`: see the crate docs of `rivulet_cli`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = <rivulet_cli::Cli as clap::Parser>::parse();
    if let Err(error) = rivulet_common::init_tracing(&cli.log) {
        eprintln!("rivulet: {error}");
        return std::process::ExitCode::FAILURE;
    }
    match rivulet_cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("rivulet: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
