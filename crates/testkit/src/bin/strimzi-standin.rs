//! `strimzi-standin`: NOT the Strimzi operator. It installs the `Kafka` and `KafkaNodePool`
//! CRDs from the project's schema files into an API server, then marks every `Kafka` ready
//! with listener addresses (no broker exists behind them) and finalizes emptied namespaces.
//! For the fleet manager's benchmark and local demo on an API server without Strimzi.

use std::path::PathBuf;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let kubeconfig = match (args.next().as_deref(), args.next()) {
        (Some("--kubeconfig"), Some(path)) => PathBuf::from(path),
        _ => {
            eprintln!(
                "usage: strimzi-standin --kubeconfig PATH\n\nA stand-in for the Strimzi operator (no brokers are made): marks every Kafka resource ready."
            );
            std::process::exit(2);
        }
    };
    let client = rivulet_testkit::kube::client_for(&kubeconfig).await;
    rivulet_testkit::strimzi::install(&client).await;
    eprintln!(
        "strimzi-standin: a stand-in for the Strimzi operator is answering for every Kafka resource (no brokers are made)."
    );
    let token = tokio_util::sync::CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    rivulet_testkit::strimzi::run(client, rivulet_testkit::strimzi::always_ready(), token).await;
}
