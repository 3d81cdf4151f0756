use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = server::cli::Cli::parse();
    if let Err(error) = server::cli::run(cli).await {
        eprintln!("berth: {error:#}");
        std::process::exit(1);
    }
}
